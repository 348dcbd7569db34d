"""What scheduling follow-up work costs a ticket create, in process: the time of
``support.services.ticket_open`` from the call to the end of its after-commit callbacks
(the outbox row and its hand-over to the broker, the live update) and its SQL queries.

Run from the project folder (own embedded servers in ``.data/bench``; no worker, so the
queued messages are dropped at the end):

    HELPDESK_SERVICES_DIR=.data/bench DEBUG=true .venv/bin/python bench/outbox_overhead.py

To compare with a tree before the outbox, copy this file into that tree and run it there
the same way. ``--count`` creates (after 20 warm-up ones), ``--json`` figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HELPDESK_ENV_FILE", "")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from support import services

    call_command("migrate", verbosity=0)
    customer, _ = get_user_model().objects.get_or_create(
        username="outbox-bench", defaults={"email": "outbox-bench@example.com"}
    )

    def create(i: int) -> tuple[float, int]:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            services.ticket_open(
                requester=customer,
                subject=f"Benchmark ticket {i}",
                description="The export to CSV stops at 10,000 rows; is there a limit?",
            )  # autocommit: its on-commit callbacks have run when it returns
            elapsed = (time.perf_counter() - started) * 1000
        return elapsed, len(queries)

    for i in range(20):
        create(i)
    times, counts = zip(*(create(i) for i in range(args.count)), strict=True)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    figures = {
        "creates": args.count,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(list(times), 95), 2),
        "mean_ms": round(statistics.fmean(times), 2),
        "queries_per_create": statistics.median(counts),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
