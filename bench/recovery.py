"""How long the product takes to catch up after Redis (Valkey) or a Celery worker comes back.

Runs the production-mode stack of the fault tests (``tests/faults/conftest.py``: uvicorn
with ``DEBUG=false``, a prefork Celery worker, beat with the outbox relay, its own embedded
PostgreSQL and Valkey with an append-only file) in ``.data/bench-faults``, and for each of
``--runs`` rounds:

- **Valkey**: stop it, open 5 tickets through the API (answered from PostgreSQL alone; the
  analyses wait in the outbox), start it again, and time until every ticket is analysed and
  the outbox owes nothing;
- **worker**: open 3 tickets, SIGKILL the worker (main process and pool) while an analysis
  runs, start a new worker, and time from its start until every ticket is analysed (the
  dead worker's lease, ``OUTBOX_LEASE_SECONDS``, has to run out first).

From the project folder (the default ``--runs 3`` takes about four minutes):

    .venv/bin/python bench/recovery.py
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
os.environ.setdefault("HELPDESK_SERVICES_DIR", str(BASE_DIR / ".data" / "bench"))

from tests.faults.conftest import FaultStack, services_dir  # noqa: E402
from tests.faults.test_outbox_faults import open_ticket, wait_all_done  # noqa: E402


def valkey_round(stack, headers, n: int) -> float:
    stack.redis_stop()
    try:
        references = []
        for i in range(5):
            response = open_ticket(stack, headers, f"Valkey round {n} ticket {i}")
            assert response.status_code == 201, response.text
            references.append(response.json()["reference"])
    finally:
        stack.redis_start()
    started = time.monotonic()
    wait_all_done(stack, references, timeout=180)
    return time.monotonic() - started


def worker_round(stack, headers, n: int) -> float:
    stack.worker_stop()
    stack.worker_start()
    references = [
        open_ticket(stack, headers, f"Worker round {n} ticket {i}").json()["reference"]
        for i in range(3)
    ]
    deadline = time.monotonic() + 60
    while not stack.sql(
        "SELECT 1 FROM support_ticket WHERE reference = ANY(%s) AND status = 'analyzing'",
        [references],
    ):
        assert time.monotonic() < deadline, "no analysis started"
        time.sleep(0.02)
    stack.worker_kill()
    stack.worker_start()
    started = time.monotonic()
    wait_all_done(stack, references, timeout=180)
    return time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    stack = FaultStack(services_dir())
    try:
        stack.setup()
        stack.worker_start()
        stack.beat_start()
        stack.wait_ready(60)
        headers = {"Authorization": f"Token {stack.token('recovery-bench')}"}
        wait_all_done(stack, [open_ticket(stack, headers, "warm-up").json()["reference"]])
        valkey = [valkey_round(stack, headers, n) for n in range(args.runs)]
        worker = [worker_round(stack, headers, n) for n in range(args.runs)]
    finally:
        stack.teardown()
    figures = {
        "valkey_back_to_all_done_s": [round(v, 1) for v in valkey],
        "valkey_median_s": round(statistics.median(valkey), 1),
        "worker_back_to_all_done_s": [round(v, 1) for v in worker],
        "worker_median_s": round(statistics.median(worker), 1),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
