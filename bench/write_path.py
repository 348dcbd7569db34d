"""What a ticket create costs in process, and whether that cost grows with the backlog.

For each backlog size (``--backlogs``, default 1,000, 10,000 and 100,000 open tickets,
topped up with COPY between sizes, spread over new / escalated / awaiting the customer,
a third of them assigned to one of ten agents, due times from overdue to three days):

- ``service``: ``support.services.ticket_open`` as the portal calls it, from the call to
  the end of its after-commit callbacks (outbox rows and their hand-over to the broker,
  the hand-over of the live update), with the SQL statements of the calling thread;
- ``api``: ``POST /api/tickets/`` through Django's test client with an API token (the
  whole stack: middleware, authentication, throttles, the ticket budget, serializers);
- ``publisher``: what the live update then costs off the request thread (the time until
  ``support.realtime.flush`` returns after each create, measured in a separate pass so it
  does not slow the creates down), the SQL of one publish, and how many times the feed's
  counts (a GROUP BY over every open ticket) were computed during the timed creates;
- ``throughput``: creates per second of one thread, back to back, the publisher running
  beside it, until everything was published.

From the project folder (own embedded PostgreSQL + Valkey in ``.data/bench-writepath``, or
``HELPDESK_SERVICES_DIR``; each run recreates the database ``writepath_bench``; production
settings with ``DEBUG`` off and a throw-away ``SECRET_KEY``; no Celery worker, the queued
tasks are dropped at the end):

    .venv/bin/python bench/write_path.py                       # 1,000 / 10,000 / 100,000
    .venv/bin/python bench/write_path.py --backlogs 10000 --creates 200   # a quick check
    .venv/bin/python -m config.embedded stop --dir .data/bench-writepath

Options: ``--creates`` (300 per measure and size, after 30 warm-up ones), ``--backlogs``,
``--profile`` (cProfile of the service creates at the last size, top 25 by cumulative
time, on stderr), ``--json``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import log, summary  # noqa: E402
from config import embedded  # noqa: E402  (needs no settings)

DATABASE = "writepath_bench"
SEED = 21
DOMAIN = "writepath.example"


def configure() -> Path:
    configured = os.environ.get("HELPDESK_SERVICES_DIR")
    root = Path(configured).resolve() if configured else BASE_DIR / ".data" / "bench-writepath"
    if root.name in {"dev", "test"} and root.parent == BASE_DIR / ".data":
        sys.exit(f"refusing to load a benchmark into {root}: use a folder of its own")
    if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        sys.exit("unset DATABASE_URL and REDIS_URL: this benchmark uses its own servers")
    import psycopg
    import redis

    pg = embedded.ensure_postgres(root)
    valkey = embedded.ensure_redis(root)
    admin = f"host={pg.socket_dir} port={pg.port} user={pg.user} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    client = redis.Redis.from_url(valkey.url)
    client.flushall()
    client.close()
    os.environ["HELPDESK_SERVICES_DIR"] = str(root)
    os.environ["HELPDESK_ENV_FILE"] = ""
    os.environ["DATABASE_URL"] = embedded.socket_database_url(
        pg.user, pg.socket_dir, pg.port, DATABASE
    )
    os.environ["REDIS_URL"] = valkey.url
    # Production settings (DEBUG off: cached templates, the connection pool, no query
    # log), a throw-away key, plain HTTP for the test client.
    for name, value in {
        "DEBUG": "false",
        "SECRET_KEY": f"bench-{secrets.token_urlsafe(40)}",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(name, value)
    # A benchmark creates far more tickets than one customer may per hour.
    for name, value in {
        "API_THROTTLE_TICKET_CREATE": "100000000/hour",
        "API_THROTTLE_USER": "100000000/min",
        "HELPDESK_TICKETS_PER_HOUR_PER_USER": "100000000",
        "HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS": "100000000",
    }.items():
        os.environ[name] = value
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return root


def people():
    from allauth.account.models import EmailAddress
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from support.models import CustomerProfile, Organization

    User = get_user_model()
    agents_group, _ = Group.objects.get_or_create(name=settings.AGENTS_GROUP)
    orgs = [Organization.objects.create(name=f"Writepath org {i}") for i in range(3)]
    customers = []
    for i in range(50):
        user = User.objects.create_user(f"wp-customer-{i}", f"c{i}@{DOMAIN}", "x")
        CustomerProfile.objects.update_or_create(user=user, defaults={"organization": orgs[i % 3]})
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        customers.append(user)
    agents = []
    for i in range(10):
        user = User.objects.create_user(f"wp-agent-{i}", f"a{i}@{DOMAIN}", "x", is_staff=True)
        user.groups.add(agents_group)
        agents.append(user)
    token = Token.objects.create(user=customers[0]).key
    return orgs, customers, agents, token


def bulk_tickets(start: int, count: int, *, customers, orgs, agents) -> float:
    """``count`` more open tickets with COPY (every column of the model, from its defaults
    unless set here)."""
    from django.db import connection
    from django.db.models import JSONField
    from django.utils import timezone

    from support.models import Ticket

    rng = random.Random(SEED + start)  # noqa: S311 (reproducible data, not secrets)
    now = timezone.now()
    fields = [f for f in Ticket._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    statuses = ["new"] * 4 + ["escalated"] * 2 + ["awaiting_customer"] * 3 + ["analyzing"]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with (
            raw.cursor() as pg,
            pg.copy(f"COPY {Ticket._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for i in range(start, start + count):
                created = now - timedelta(minutes=rng.randint(10, 30 * 24 * 60))
                due = now + timedelta(minutes=rng.randint(-600, 3 * 24 * 60))
                values = {
                    "reference": f"HD-W{i:09d}",
                    "subject": f"Backlog ticket {i}",
                    "description": "Loaded by the write-path benchmark.",
                    "type": rng.choice(["general", "billing", "bug", "account"]),
                    "status": rng.choice(statuses),
                    "priority": rng.choice(["low", "normal", "normal", "high"]),
                    "channel": rng.choice(["web", "email", "chat", "api"]),
                    "requester_id": customers[i % len(customers)].pk,
                    "organization_id": orgs[i % len(orgs)].pk,
                    "assignee_id": rng.choice(agents).pk if rng.random() < 0.33 else None,
                    "sla_due_at": due,
                    "created_at": created,
                    "updated_at": created,
                    "status_changed_at": created,
                }
                row = []
                for f in fields:
                    if f.attname in values:
                        value = values[f.attname]
                    else:
                        value = f.get_default()
                        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                            value = created
                    if isinstance(f, JSONField) and value is not None:
                        value = json.dumps(value)
                    row.append(value)
                copy.write_row(row)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Ticket._meta.db_table}")
    return time.perf_counter() - started


class QueryCounter:
    """Counts the SQL statements of one connection (``connection.execute_wrapper``)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


class CountsCounter:
    """How many times the feed's counts were computed (any thread)."""

    def __init__(self):
        from support import selectors

        self.calls = 0
        self._original = selectors.feed_counts

        def counted(*args, **kwargs):
            self.calls += 1
            return self._original(*args, **kwargs)

        selectors.feed_counts = counted


def flush() -> None:
    """Wait until the live updates of the creates so far are out (new code only)."""
    from support import realtime

    waiter = getattr(realtime, "flush", None)
    if waiter is not None:
        waiter(timeout=30)


def measure(args, *, customers, token, counts: CountsCounter, profile: bool) -> dict:
    from django.db import connection
    from django.test import Client

    from support import realtime, services

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    body = {
        "subject": "Cannot export invoices",
        "description": "The CSV export stops at 10,000 rows; is there a limit?",
        "type": "billing",
    }
    serial = [0]

    def service() -> tuple[float, int]:
        serial[0] += 1
        customer = customers[serial[0] % len(customers)]
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            started, cpu = time.perf_counter(), time.thread_time()
            services.ticket_open(
                requester=customer,
                subject=f"Cannot export invoice {serial[0]}",
                description=body["description"],
                type="billing",
            )
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
        return elapsed * 1000, cpu * 1000, counter.count

    def api() -> tuple[float, int]:
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            started, cpu = time.perf_counter(), time.thread_time()
            response = client.post("/api/tickets/", body, content_type="application/json")
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
        if response.status_code != 201:
            sys.exit(f"API create failed: {response.status_code} {response.content[:300]!r}")
        return elapsed * 1000, cpu * 1000, counter.count

    for _ in range(30):  # warm-up: caches, compiled templates, connections
        service()
        api()
    flush()

    figures = {}
    for name, create in (("service", service), ("api", api)):
        computed = counts.calls
        times, cpu_times, queries = [], [], []
        profiler = cProfile.Profile() if profile and name == "service" else None
        started, process_cpu = time.perf_counter(), time.process_time()
        for _ in range(args.creates):
            if profiler:
                profiler.enable()
            ms, cpu_ms, n = create()
            if profiler:
                profiler.disable()
            times.append(ms)
            cpu_times.append(cpu_ms)
            queries.append(n)
        flush()
        elapsed, process_cpu = time.perf_counter() - started, time.process_time() - process_cpu
        figures[name] = {
            **summary(times),
            # CPU of the calling thread, and of the whole process (the publisher included)
            # per create: what the machine's other load changes least.
            "cpu_ms_p50": round(sorted(cpu_times)[len(cpu_times) // 2], 2),
            "process_cpu_ms": round(process_cpu / args.creates * 1000, 2),
            "queries": sorted(queries)[len(queries) // 2],
            "per_second": round(args.creates / elapsed, 1),
            "counts_computed": counts.calls - computed,
        }
        if profiler:
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(25)

    # The live update alone: each create's publish waited for, off the clock of the create.
    waits = []
    for _ in range(min(args.creates, 100)):
        service()
        started = time.perf_counter()
        flush()
        waits.append((time.perf_counter() - started) * 1000)
    ticket_id = services.ticket_open(
        requester=customers[0], subject="One publish", description="Counted."
    ).pk
    flush()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        realtime.publish("ticket_opened", {"ticket_id": ticket_id})
    figures["publisher"] = {"flush_ms": summary(waits), "queries": counter.count}
    return figures


def report(results: dict) -> None:
    for backlog, figures in results.items():
        print(f"backlog {backlog:,} open tickets")
        for name in ("service", "api"):
            f = figures[name]
            print(
                f"  {name:8} p50 {f['p50']:6.2f} ms  p95 {f['p95']:6.2f} ms  "
                f"CPU {f['cpu_ms_p50']:5.2f} ms (process {f['process_cpu_ms']:5.2f} ms)  "
                f"{f['queries']} queries  {f['per_second']:6.1f}/s  "
                f"counts computed {f['counts_computed']}×"
            )
        p = figures["publisher"]
        print(
            f"  publish  p50 {p['flush_ms']['p50']:6.2f} ms  p95 {p['flush_ms']['p95']:6.2f} ms "
            f"(until flushed, after a create)  {p['queries']} queries"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--backlogs", default="1000,10000,100000")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    backlogs = sorted(int(b) for b in args.backlogs.split(","))

    root = configure()
    import django

    django.setup()
    from django.core.management import call_command

    log(f"servers in {root}, database {DATABASE}: migrating …")
    call_command("migrate", verbosity=0)
    from support.models import Ticket

    orgs, customers, agents, token = people()
    counts = CountsCounter()
    results = {}
    for backlog in backlogs:
        have = Ticket.objects.open().count()
        if backlog > have:
            log(f"COPY {backlog - have:,} open tickets …")
            bulk_tickets(have, backlog - have, customers=customers, orgs=orgs, agents=agents)
        log(f"backlog {backlog:,}: {args.creates} creates per measure …")
        results[backlog] = measure(
            args,
            customers=customers,
            token=token,
            counts=counts,
            profile=args.profile and backlog == backlogs[-1],
        )
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")  # no worker: drop
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
