"""CPU cost of the work a ticket brings, for the capacity model of docs/deploy.md.

In process, through Django's test client (the whole middleware stack, DRF, token auth,
``DEBUG=false`` settings), on own embedded servers (``.data/bench-capacity``):

- ``create``: ``POST /api/tickets/`` as a customer (the outbox row, the hand-over of the
  analysis to the broker, the live update);
- ``reply``: ``POST /api/tickets/<ref>/messages/`` as an agent (public reply);
- ``list``: ``GET /api/tickets/`` as an agent (a page of 25);
- ``analysis``: ``support.ai.pipeline.analyze_ticket`` with the offline ``local`` LLM
  provider and the local embedding model over the demo help center (triage, hybrid
  search, answer, routing): what an AI worker spends on one ticket besides the LLM
  provider's own time.

For each: CPU milliseconds per operation in this process (``time.process_time``), in
PostgreSQL and in Redis (psutil, the servers' process trees), and wall time. Run from the
project folder:

    .venv/bin/python bench/capacity.py            # --count 200 --analyses 40
    .venv/bin/python bench/capacity.py --json     # figures only

The machine's other load counts in wall time, much less in CPU time; say it with the
figures (``cat /proc/loadavg``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
SERVICES_DIR = BASE_DIR / ".data" / "bench-capacity"
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    HELPDESK_ENV_FILE="",
    HELPDESK_SERVICES_DIR=str(SERVICES_DIR),
    HELPDESK_EMBEDDED_SERVICES="true",
    DEBUG="false",
    SECRET_KEY="capacity-bench-" + "x" * 40,
    ALLOWED_HOSTS="testserver",
    SECURE_SSL_REDIRECT="false",
    LOG_LEVEL="WARNING",
    HF_HUB_OFFLINE="1",
    # A benchmark is not a flood: lift the per-user limits and the ticket budget.
    API_THROTTLE_TICKET_CREATE="1000000/hour",
    API_THROTTLE_USER="1000000/min",
    HELPDESK_TICKETS_PER_HOUR_PER_USER="1000000",
    HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS="1000000",
)


def process_tree_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of ``pid`` and its children so far."""
    import psutil

    if not pid:
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        return 0.0
    return total


class Meter:
    """CPU of this process, PostgreSQL and Redis over a block, per operation."""

    def __init__(self, postgres_pid: int | None, redis_pid: int | None):
        self.pids = {"postgres": postgres_pid, "redis": redis_pid}

    def measure(self, count: int, run) -> dict[str, float]:
        before = {name: process_tree_cpu(pid) for name, pid in self.pids.items()}
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(count):
            run(i)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        after = {name: process_tree_cpu(pid) for name, pid in self.pids.items()}
        figures = {
            "app_cpu_ms": 1000 * cpu / count,
            **{f"{n}_cpu_ms": 1000 * (after[n] - before[n]) / count for n in self.pids},
            "wall_ms": 1000 * wall / count,
        }
        figures["total_cpu_ms"] = (
            figures["app_cpu_ms"] + figures["postgres_cpu_ms"] + figures["redis_cpu_ms"]
        )
        return {key: round(value, 2) for key, value in figures.items()} | {"n": count}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200, help="creates, replies and lists")
    parser.add_argument("--analyses", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from config import embedded
    from core.outbox import writing_history
    from knowledge import services as kb_services
    from knowledge.demo import load_demo_knowledge
    from knowledge.models import Article
    from support import services
    from support.ai.pipeline import analyze_ticket

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    call_command("migrate", verbosity=0)
    users = get_user_model()
    customer, _ = users.objects.get_or_create(
        username="capacity-customer", defaults={"email": "capacity-customer@example.com"}
    )
    EmailAddress.objects.get_or_create(
        user=customer, email=customer.email, defaults={"verified": True, "primary": True}
    )
    agent, _ = users.objects.get_or_create(
        username="capacity-agent",
        defaults={"email": "capacity-agent@example.com", "is_staff": True},
    )
    agent.groups.add(Group.objects.get_or_create(name="Agents")[0])
    customer_auth = f"Token {Token.objects.get_or_create(user=customer)[0].key}"
    agent_auth = f"Token {Token.objects.get_or_create(user=agent)[0].key}"

    log("loading and embedding the demo help center (first run only)")
    load_demo_knowledge()
    for article_id in Article.objects.filter(status="published").values_list("pk", flat=True):
        kb_services.article_embed(article_id=article_id)

    meter = Meter(
        embedded.ensure_postgres(SERVICES_DIR).pid, embedded.ensure_redis(SERVICES_DIR).pid
    )
    client = Client()
    created: list[str] = []

    def create(i: int) -> None:
        response = client.post(
            "/api/tickets/",
            {"subject": f"Export fails #{i}", "description": "The CSV export times out."},
            content_type="application/json",
            HTTP_AUTHORIZATION=customer_auth,
        )
        assert response.status_code == 201, response.content[:500]
        created.append(response.json()["reference"])

    def reply(i: int) -> None:
        response = client.post(
            f"/api/tickets/{created[i % len(created)]}/messages/",
            {"body": "Thanks, we are looking into it.", "is_internal": False},
            content_type="application/json",
            HTTP_AUTHORIZATION=agent_auth,
        )
        assert response.status_code == 201, response.content[:500]

    def listing(i: int) -> None:
        response = client.get("/api/tickets/", HTTP_AUTHORIZATION=agent_auth)
        assert response.status_code == 200, response.content[:500]

    for warm_up in (create, reply, listing):  # imports, caches, connections
        for i in range(10):
            warm_up(i)

    figures = {}
    for name, run in [("create", create), ("reply", reply), ("list", listing)]:
        log(f"{name} × {args.count}")
        figures[name] = meter.measure(args.count, run)

    # Tickets written without follow-up work (writing_history), analysed here in process.
    questions = [
        "How do I reset my password? The email never arrives.",
        "Our CSV export stops at 50,000 rows, how do we get the rest?",
        "I was charged twice this month",
        "The API answers 429 Too Many Requests",
    ]
    with writing_history():
        tickets = [
            services.ticket_open(
                requester=customer,
                subject=questions[i % len(questions)][:60],
                description=questions[i % len(questions)],
            ).pk
            for i in range(args.analyses + 3)
        ]
    for ticket_id in tickets[:3]:  # loads the embedding model
        analyze_ticket(ticket_id)
    log(f"analysis × {args.analyses}")
    figures["analysis"] = meter.measure(args.analyses, lambda i: analyze_ticket(tickets[3 + i]))

    figures["machine"] = {
        "cpus": os.cpu_count(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
