"""What automation rules cost: (a) the time they add to a ticket write, (b) the time-rule
sweep over 100,000 open tickets.

(a) In process, the p50/p95 of each step of a ticket's life as the services run it
(``ticket_open``; a customer's ``message_add``; an agent's ``ticket_change_priority`` to
urgent) and of the three together, with 0 and then ``--rules`` (200) enabled event rules
of mixed triggers and conditions (requester domains, organizations, patterns, keywords,
plans, sentiment…): most never match, three do and act (an internal note when a ticket
about an invoice opens; priority high when the customer writes "still"; route to a team
when the priority changes to urgent, a cascade). The two configurations alternate in
blocks of 25 tickets so that drift (cache, autovacuum) hits both alike.

(b) ``--tickets`` (100,000) open tickets bulk-inserted with COPY (every column the model
has, defaults from the model, so new columns need no change here), anchors spread over
30 days, then ``--time-rules`` (20) enabled time rules ("N days awaiting the customer",
"N hours since created with low priority", "N days escalated"…) swept by
``automation.timed.run_time_rules``: the first run (many fire), the runs until nothing is
due any more (the sweep fires at most ``MAX_BATCHES`` × batch per rule per run), and a
steady-state run (nothing new: what the beat pays every minute), with the SQL of each,
and ``EXPLAIN (ANALYZE, BUFFERS)`` of the due-ticket query of three rules. Event rules are
disabled during (b), so the figures are the sweep's own (actions still cascade through
the engine).

From the project folder (own embedded PostgreSQL + Valkey in ``.data/bench-rules``, or
``HELPDESK_SERVICES_DIR``; each run recreates the database ``rules_bench``):

    .venv/bin/python bench/automation_rules.py                      # 200 rules, 100,000 tickets
    .venv/bin/python bench/automation_rules.py --writes 100 --tickets 10000   # a quick check
    .venv/bin/python -m config.embedded stop --dir .data/bench-rules

Options: ``--rules`` (200), ``--writes`` (300 tickets per configuration), ``--tickets``
(100000), ``--time-rules`` (20), ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import log, summary  # noqa: E402
from config import embedded  # noqa: E402  (needs no settings)

DATABASE = "rules_bench"
SEED = 19
DOMAIN = "bench-customer.example"


# ======================================================================================
# Servers and settings (before Django)
# ======================================================================================


def configure() -> Path:
    configured = os.environ.get("HELPDESK_SERVICES_DIR")
    root = Path(configured).resolve() if configured else BASE_DIR / ".data" / "bench-rules"
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
    os.environ.setdefault("DEBUG", "true")  # settings refuse DEBUG off without a real key
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return root


# ======================================================================================
# Reference data and rules
# ======================================================================================


def people():
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from support.models import CustomerProfile, Organization, Team

    User = get_user_model()
    agents_group, _ = Group.objects.get_or_create(name=settings.AGENTS_GROUP)
    orgs = [
        Organization.objects.create(name=f"Bench org {i}", plan=plan)
        for i, plan in enumerate(["free", "business", "enterprise", "business"])
    ]
    customers = []
    for i in range(200):
        user = User.objects.create_user(
            f"bench-customer-{i}", f"customer{i}@{DOMAIN}", "x", first_name=f"C{i}"
        )
        CustomerProfile.objects.update_or_create(user=user, defaults={"organization": orgs[i % 3]})
        customers.append(user)
    agents = []
    for i in range(10):
        user = User.objects.create_user(
            f"bench-agent-{i}", f"agent{i}@bench.example", "x", is_staff=True
        )
        user.groups.add(agents_group)
        agents.append(user)
    teams = [Team.objects.create(name=name) for name in ("Tier 2", "Billing", "Security")]
    return orgs, customers, agents, teams


def cond(field, operator, value):
    return {"field": field, "operator": operator, "value": value}


def event_rules(count: int, *, orgs, teams, agents, actor) -> list:
    """``count`` rules of mixed triggers; all but three never match the bench's tickets."""
    from automation.services.rules import rule_create

    rng = random.Random(SEED)  # noqa: S311 (reproducible data, not secrets)
    unused_org = orgs[3].pk  # nobody of the bench belongs to it
    triggers = (
        ["ticket_created"] * 30
        + ["customer_message"] * 25
        + ["priority_changed"] * 10
        + ["status_changed"] * 10
        + ["agent_message"] * 8
        + ["ai_message"] * 7
        + ["assignee_changed"] * 5
        + ["escalated"] * 5
    )
    shapes = [
        lambda i: cond("requester_domain", "in", [f"client{i}.example", f"other{i}.example"]),
        lambda i: cond("organization", "is", unused_org),
        lambda i: cond("text", "matches", rf"\b(chargeback|lawsuit|gdpr-{i})\b"),
        lambda i: cond("text", "contains", f"keyword-{i}"),
        lambda i: {
            "match": "all",
            "conditions": [cond("type", "is", "cancellation"), cond("plan", "is", "enterprise")],
        },
        lambda i: {
            "match": "any",
            "conditions": [
                cond("subject", "contains", f"outage {i}"),
                cond("sentiment", "lt", -0.9),
            ],
        },
        lambda i: cond("requester_email", "matches", rf"^vip-{i}@"),
        lambda i: {
            "match": "all",
            "conditions": [
                cond("channel", "is", "email"),
                cond("priority", "in", ["low"]),
                cond("text", "contains", f"urgent-{i}"),
            ],
        },
    ]
    actions = [
        lambda: [{"type": "add_note", "body": "Rule note"}],
        lambda: [{"type": "assign_team", "team": rng.choice(teams).pk}],
        lambda: [{"type": "set_priority", "priority": "high"}],
        lambda: [{"type": "assign_person", "user": rng.choice(agents).pk}],
        lambda: [{"type": "escalate", "topic": "", "reason": "Bench rule"}],
    ]
    made = []
    for i in range(count - 3):
        shape = shapes[i % len(shapes)](i)
        document = shape if "match" in shape else {"match": "all", "conditions": [shape]}
        made.append(
            rule_create(
                actor=actor,
                name=f"Bench rule {i}",
                trigger=triggers[i % len(triggers)],
                conditions=document,
                actions=rng.choice(actions)(),
                position=100 + i,
            )
        )
    matching = [
        (
            "Invoice note",
            "ticket_created",
            cond("subject", "contains", "invoice"),
            [{"type": "add_note", "body": "Billing question: see the billing FAQ."}],
        ),
        (
            "Customer waits",
            "customer_message",
            cond("text", "contains", "still"),
            [{"type": "set_priority", "priority": "high"}],
        ),
        (
            "Urgent to Tier 2",
            "priority_changed",
            cond("priority", "changed_to", "urgent"),
            [{"type": "assign_team", "team": teams[0].pk}],
        ),
    ]
    for position, (name, trigger, condition, acts) in enumerate(matching, start=1):
        made.append(
            rule_create(
                actor=actor,
                name=name,
                trigger=trigger,
                conditions={"match": "all", "conditions": [condition]},
                actions=acts,
                position=position,
            )
        )
    return made


TIME_RULE_SHAPES = [
    # (since, unit, status condition or None, extra condition, action)
    (
        "status_entered",
        "days",
        "awaiting_customer",
        None,
        {"type": "set_status", "status": "closed"},
    ),
    ("status_entered", "days", "escalated", None, {"type": "set_priority", "priority": "urgent"}),
    ("created", "hours", None, cond("priority", "is", "low"), {"type": "add_note", "body": "Old"}),
    (
        "status_entered",
        "hours",
        "new",
        cond("channel", "is", "email"),
        {"type": "add_note", "body": "Unanswered email"},
    ),
    (
        "created",
        "days",
        None,
        cond("type", "is", "billing"),
        {"type": "set_priority", "priority": "high"},
    ),
]


def time_rules(count: int, *, actor) -> list:
    from automation.services.rules import rule_create

    made = []
    for i in range(count):
        since, unit, status, extra, action = TIME_RULE_SHAPES[i % len(TIME_RULE_SHAPES)]
        delay = {"days": 20 + i, "hours": 48 + 12 * i}[unit]
        items = []
        if status:
            items.append(cond("status", "is", status))
        if extra:
            items.append(extra)
        made.append(
            rule_create(
                actor=actor,
                name=f"Time rule {i}",
                trigger="time_elapsed",
                since=since,
                delay=delay,
                delay_unit=unit,
                conditions={"match": "all", "conditions": items},
                actions=[action],
                position=1000 + i,
                is_enabled=True,
            )
        )
    return made


# ======================================================================================
# (a) ticket writes with and without rules
# ======================================================================================


class QueryCounter:
    """Counts the SQL statements run through Django (``connection.execute_wrapper``)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


#: The three configurations of (a): no rule, the rules that never match, all of them.
CONFIGS = ("none", "non-matching", "all")
MATCHING = ("Invoice note", "Customer waits", "Urgent to Tier 2")


def configure_rules(config: str) -> None:
    from automation.models import Rule

    events = Rule.objects.filter(trigger__in=EVENT_TRIGGER_NAMES)
    events.update(is_enabled=config != "none")
    if config == "non-matching":
        events.filter(name__in=MATCHING).update(is_enabled=False)


def ticket_writes(args, *, customers, agents) -> dict:
    from django.db import connection

    from support import services

    steps = ("ticket_open", "message_add", "priority", "all three")
    times = {c: {k: [] for k in steps} for c in CONFIGS}
    queries = {c: [] for c in CONFIGS}
    counter = [0]

    def one(config: str | None) -> None:
        i = counter[0]
        counter[0] += 1
        customer = customers[i % len(customers)]
        agent = agents[i % len(agents)]
        count = QueryCounter()
        with connection.execute_wrapper(count):
            t0 = time.perf_counter()
            ticket = services.ticket_open(
                requester=customer,
                subject=f"Cannot export the invoice {i}",
                description="The CSV export of invoices stops at 10,000 rows.",
                type="billing",
            )
            t1 = time.perf_counter()
            services.message_add(
                ticket=ticket,
                author=customer,
                body="I still cannot export it.",
                sender_kind="customer",
            )
            t2 = time.perf_counter()
            services.ticket_change_priority(ticket=ticket, priority="urgent", actor=agent)
            t3 = time.perf_counter()
        if config is not None:
            record = times[config]
            for key, value in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                record[key].append(value * 1000)
            queries[config].append(count.count)

    configure_rules("all")
    for _ in range(20):
        one(None)  # warm-up: caches, compiled patterns, connections
    block = 25
    done = 0
    while done < args.writes:
        for config in CONFIGS:
            configure_rules(config)
            for _ in range(min(block, args.writes - done)):
                one(config)
        done += block
        log(f"  (a) {min(done, args.writes)}/{args.writes} tickets per configuration")
    configure_rules("none")
    return {
        config: {
            **{k: summary(v) for k, v in times[config].items()},
            "queries": sorted(queries[config])[len(queries[config]) // 2],
        }
        for config in CONFIGS
    }


EVENT_TRIGGER_NAMES = [
    "ticket_created",
    "customer_message",
    "agent_message",
    "ai_message",
    "status_changed",
    "priority_changed",
    "assignee_changed",
    "escalated",
]


# ======================================================================================
# (b) the time-rule sweep over many open tickets
# ======================================================================================


def bulk_tickets(count: int, *, customers, orgs) -> float:
    """``count`` open tickets with COPY; every column of the model, from its defaults
    unless set here."""
    from django.db import connection
    from django.db.models import JSONField
    from django.utils import timezone

    from support.models import Ticket

    rng = random.Random(SEED)  # noqa: S311 (reproducible data, not secrets)
    now = timezone.now()
    fields = [f for f in Ticket._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    statuses = ["awaiting_customer"] * 4 + ["new"] * 3 + ["escalated"] * 2 + ["analyzing"]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with (
            raw.cursor() as pg,
            pg.copy(f"COPY {Ticket._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for i in range(count):
                created = now - timedelta(minutes=rng.randint(10, 30 * 24 * 60))
                customer = customers[i % len(customers)]
                values = {
                    "reference": f"HD-B{i:09d}",
                    "subject": f"Bulk ticket {i}",
                    "description": "Loaded by the automation benchmark.",
                    "type": rng.choice(["general", "billing", "bug", "account"]),
                    "status": rng.choice(statuses),
                    "priority": rng.choice(["low", "normal", "normal", "high"]),
                    "channel": rng.choice(["web", "email", "chat", "api"]),
                    "requester_id": customer.pk,
                    "organization_id": orgs[i % 3].pk,
                    "created_at": created,
                    "updated_at": created,
                    "status_changed_at": created + (now - created) * rng.random() * 0.9,
                }
                row = []
                for f in fields:
                    key = f.attname
                    if key in values:
                        value = values[key]
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


def sweep(args, *, actor, customers, orgs) -> dict:
    from django.db import connection
    from django.utils import timezone

    from automation import timed
    from automation.models import RuleFiring

    log(f"  (b) COPY {args.tickets:,} open tickets …")
    copy_seconds = bulk_tickets(args.tickets, customers=customers, orgs=orgs)
    rules = time_rules(args.time_rules, actor=actor)
    now = timezone.now()

    def run() -> tuple[float, int, int]:
        count = QueryCounter()
        with connection.execute_wrapper(count):
            started = time.perf_counter()
            fired = timed.run_time_rules(now=now)
            elapsed = time.perf_counter() - started
        return elapsed, sum(fired.values()), count.count

    log("  (b) first sweep …")
    first = run()
    log(f"  (b) first sweep: {first[1]} fired in {first[0]:.1f} s")
    drain = [first]
    while drain[-1][1] and len(drain) < args.max_runs:
        drain.append(run())
        log(f"  (b) sweep {len(drain)}: {drain[-1][1]} fired in {drain[-1][0]:.1f} s")
    steady = [run() for _ in range(args.steady_runs)]
    steady.sort()
    middle = steady[len(steady) // 2]

    plans = {}
    with connection.cursor() as cursor:
        for rule in rules[:3]:
            query = timed.due_tickets(rule, now).values_list("pk", timed.anchor_column(rule))[
                : timed._batch_size()
            ]
            sql, params = query.query.sql_with_params()
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plans[rule.name] = [line for (line,) in cursor.fetchall()]
    return {
        "tickets": args.tickets,
        "copy_seconds": round(copy_seconds, 1),
        "time_rules": len(rules),
        "nothing_due_at_the_end": not drain[-1][1],
        "first_run": {
            "seconds": round(first[0], 2),
            "fired": first[1],
            "queries": first[2],
        },
        "runs_until_nothing_due": len(drain),
        "fired_in_all": sum(d[1] for d in drain),
        "drain_seconds": round(sum(d[0] for d in drain), 2),
        "steady_run": {
            "seconds": round(middle[0], 3),
            "fired": middle[1],
            "queries": middle[2],
            "runs": len(steady),
        },
        "firings_rows": RuleFiring.objects.count(),
        "plans": plans,
    }


# ======================================================================================
# Report
# ======================================================================================


def report(figures: dict) -> None:
    a = figures["writes"]
    print(
        f"\n(a) ticket writes in process ({figures['writes_per_config']} tickets per "
        f"configuration): no rule; {figures['rules'] - 3} enabled rules that never match; "
        f"all {figures['rules']} (3 of which match and act, one through a cascade). ms."
    )
    print(f"{'step':<13}" + "".join(f"{c + ' p50':>18}{'p95':>8}" for c in CONFIGS))
    for step in ("ticket_open", "message_add", "priority", "all three"):
        cells = "".join(f"{a[c][step]['p50']:>18.2f}{a[c][step]['p95']:>8.2f}" for c in CONFIGS)
        print(f"{step:<13}{cells}")
    base = a["none"]["all three"]
    for config in CONFIGS[1:]:
        row = a[config]["all three"]
        print(
            f"added by {config:<13} p50 {row['p50'] - base['p50']:+.2f} ms, "
            f"p95 {row['p95'] - base['p95']:+.2f} ms; SQL per ticket (median) "
            f"{a['none']['queries']} -> {a[config]['queries']}"
        )
    b = figures["sweep"]
    print(
        f"\n(b) time-rule sweep: {b['time_rules']} time rules over {b['tickets']:,} open "
        f"tickets (COPY {b['copy_seconds']} s)"
    )
    print(f"{'run':<32}{'seconds':>10}{'fired':>9}{'queries':>10}")
    f = b["first_run"]
    print(f"{'first':<32}{f['seconds']:>10.2f}{f['fired']:>9}{f['queries']:>10}")
    drained = "until nothing due" if b["nothing_due_at_the_end"] else "still due after"
    label = f"{drained} ({b['runs_until_nothing_due']} runs)"
    print(f"{label:<32}{b['drain_seconds']:>10.2f}{b['fired_in_all']:>9}")
    s = b["steady_run"]
    label = (
        f"steady state (median of {s['runs']})"
        if b["nothing_due_at_the_end"]
        else f"next run, backlog left ({s['runs']})"
    )
    print(f"{label:<32}{s['seconds']:>10.3f}{s['fired']:>9}{s['queries']:>10}")
    for name, lines in b["plans"].items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) due tickets of “{name}”:")
        for line in lines:
            print(f"  {line}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--time-rules", type=int, default=20)
    parser.add_argument("--max-runs", type=int, default=5, help="sweeps to empty the backlog")
    parser.add_argument("--steady-runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    root = configure()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    log(f"servers in {root}, database {DATABASE}: migrating …")
    call_command("migrate", verbosity=0)
    from automation.models import Rule

    Rule.objects.all().delete()  # the shipped default rules: measured apart from ours
    orgs, customers, agents, teams = people()
    boss = get_user_model().objects.create_superuser("bench-manager", "manager@bench.example", "x")
    event_rules(args.rules, orgs=orgs, teams=teams, agents=agents, actor=boss)
    log(f"(a) {args.writes} ticket writes with 0 and with {args.rules} rules …")
    figures = {
        "rules": args.rules,
        "writes_per_config": args.writes,
        "writes": ticket_writes(args, customers=customers, agents=agents),
    }
    figures["sweep"] = sweep(args, actor=boss, customers=customers, orgs=orgs)
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")  # no worker: drop
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    else:
        report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
