"""Daily analytics rollups and the overview dashboard over a year of 1,000,000 tickets.

Generates a year of helpdesk activity in a database of its own (``analytics_bench`` on
the embedded PostgreSQL of ``.data/bench``), then reports the time of one day's
``analytics.services.rollup_day`` (first cold run, then the median of 5), of backfilling
the last 90 days (and the rest of the year), and of ``GET /dashboards/`` (the overview)
for the last 30 days and for the whole year, signed in as a superuser, with the number of
SQL queries of each. From the project folder:

    .venv/bin/python bench/analytics_rollup.py            # generate, then measure
    .venv/bin/python bench/analytics_rollup.py --reuse    # measure again on the same data
    .venv/bin/python -m config.embedded stop --dir .data/bench

The first command starts (or reuses) the embedded PostgreSQL + Valkey of ``.data/bench``
and, unless ``--reuse`` finds the same data already there, drops and recreates its own
database, migrates it and generates the data; the last one stops the servers (the data
stays). ``--generate-only`` stops after generating, ``--json`` prints figures only.

The data is generated in SQL (``INSERT … SELECT`` over ``generate_series``, no ORM row by
row) from a fixed seed (``setseed``): the same arguments give the same rows. Every ticket
follows one of the AI agent's real paths, with the messages, audit events (created,
status changes, assignments, message_added, escalated, resolved, reopened, rated),
escalations and training examples that ``support.services`` would have written:

- AI resolves (~55 %): customer message, public AI answer, resolved by the AI; ~9 % of
  them are reopened by the customer later and then answered and resolved by an agent;
- AI asks (~15 %): the AI asks a question, the customer answers, then the AI (50 %) or an
  agent (35 %) resolves; 15 % never answer and stay awaiting the customer (nothing closes
  them automatically), the open backlog;
- AI escalates (~30 %, more for billing and cancellations): internal AI attempt, system
  notice, escalation to the General or Billing team with an agent assigned, the agent's
  public reply, sometimes a further escalation to Tier 2, then the agent resolves.

Tickets are spread over the 365 local days before ``--end`` (weekly pattern, growth over
the year, a few incident days, business-hours peak), ~40 % are rated 1–5, ratings of 4–5
are harvested as training examples, and what would only happen after ``--end`` has not
happened yet (those tickets are still open). Help-center searches (with content gaps) and
per-article daily knowledge-base metrics (AI references counted from the AI messages)
complete the picture. 200 customers in 20 organizations, 10 agents, as in issue 8.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import log, percentile  # noqa: E402
from config import embedded  # noqa: E402  (needs no settings)

DATABASE = "analytics_bench"
FACTS_FILE = "analytics_rollup.json"
SEED = 0.20251201  # setseed() takes -1 … 1
DEFAULT_END = dt.date(2026, 12, 1)
DAYS = 365
#: Tables the generator fills (their secondary indexes and foreign keys are dropped
#: during the load and rebuilt after it).
BULK_TABLES = (
    "support_ticket",
    "support_message",
    "support_ticketevent",
    "support_escalation",
    "support_trainingexample",
    "knowledge_searchlog",
    "knowledge_knowledgebasemetric",
)
BIG_TABLES = (
    "support_ticket",
    "support_message",
    "support_ticketevent",
    "support_escalation",
    "support_trainingexample",
    "knowledge_searchlog",
    "knowledge_knowledgebasemetric",
)

# --------------------------------------------------------------------------------------
# The shape of the data
# --------------------------------------------------------------------------------------

#: type, share of tickets, probability that the AI escalates it
TYPES = [
    ("bug", 0.15, 0.35),
    ("feature", 0.08, 0.25),
    ("billing", 0.17, 0.40),
    ("account", 0.20, 0.25),
    ("cancellation", 0.05, 0.70),
    ("general", 0.35, 0.22),
]
#: priority, share, factor on the agents' response time
PRIORITIES = [
    ("low", 0.20, 1.6),
    ("normal", 0.55, 1.0),
    ("high", 0.20, 0.6),
    ("urgent", 0.05, 0.35),
]
CHANNELS = [("web", 0.50), ("email", 0.25), ("chat", 0.15), ("api", 0.10)]
#: model, median latency (ms), factor on the chance that its resolution is reopened.
#: The share of Haiku grows over the year (0.2 → 0.5), Sonnet's falls (0.5 → 0.4).
MODELS = [
    ("claude-haiku-4-5-20251001", 2500, 1.4),
    ("claude-sonnet-4-5-20250929", 6500, 0.75),
    ("gpt-4.1-mini-2025-04-14", 3500, 1.1),
]
P_ASK = 0.15
#: The ticket's reference (HD-YYYYMMDD-NNNN, numbered per local day) from its plan row.
#: Like the service's f"{number:04d}", wider past 9999 (incident days): lpad would cut.
REFERENCE = (
    "'HD-' || to_char(p.day, 'YYYYMMDD') || '-'"
    " || lpad(p.number::text, greatest(4, length(p.number::text)), '0')"
)
#: Plan rows whose first resolution is an agent's (after an escalation or a question).
BY_AGENT = "(p.flow = 'E' OR (p.flow = 'A' AND NOT p.a_ai))"
#: The first message: the subject and a detail line.
DESCRIPTION = (
    "p.subject || E'.\\n\\n' || (%(details)s::text[])[1 + mod(floor(p.u_phrase * 600)::int, 5)]"
)
#: A bench article drawn by popularity rank (rank in [0, 1): 0 is the most read).
ARTICLE = "(%(article_ids)s::bigint[])[1 + floor(%(n_articles)s * {rank})::int]"
#: Agents' response-time and rating factors, by position (cycled for more agents).
AGENT_SPEED = [0.6, 0.8, 1.0, 1.0, 1.2, 1.5, 0.9, 0.7, 1.1, 2.0]
AGENT_QUALITY = [0.8, 1.0, 0.9, 1.1, 1.0, 1.3, 0.9, 1.0, 1.2, 1.6]
#: Incident days (index in the year): three times the usual volume.
INCIDENT_DAYS = (47, 173, 288)
WEEKDAY_FACTOR = [1.15, 1.10, 1.05, 1.00, 0.90, 0.45, 0.40]  # Monday … Sunday

SUBJECTS = {
    "bug": [
        "Export to CSV fails with an error",
        "Dashboard shows a blank page",
        "Notifications arrive twice",
        "Search returns no results",
        "Mobile app crashes on login",
        "Attachments fail to upload",
    ],
    "feature": [
        "Dark mode for the web app",
        "Bulk edit of records",
        "Slack integration",
        "Custom fields on reports",
        "Two-factor authentication with an app",
        "Higher API rate limit",
    ],
    "billing": [
        "Charged twice this month",
        "Invoice shows the wrong VAT number",
        "Change of payment card",
        "Refund for unused seats",
        "Upgrade to the annual plan",
        "Receipt for the last payment",
    ],
    "account": [
        "Cannot reset my password",
        "Change the account owner",
        "Add a teammate to the workspace",
        "Locked out after too many attempts",
        "Change of email address",
        "Enable single sign-on",
    ],
    "cancellation": [
        "Cancel my subscription",
        "Close our company account",
        "Downgrade to the free plan",
        "Stop the automatic renewal",
        "Delete all our data",
        "Pause the subscription for two months",
    ],
    "general": [
        "How do I export my data?",
        "Where can I find the API key?",
        "What are your support hours?",
        "How do I invite my team?",
        "Is there a mobile app?",
        "How do I change the language?",
    ],
}
DETAILS = [
    "It started this morning and happens every time.",
    "Could you help me with this, please?",
    "We need this sorted before our month-end close.",
    "I tried the help center article but it did not help.",
    "This is blocking several people in our team.",
]
ANSWERS = {
    "bug": "This is a known issue fixed in the latest release: reload the page after "
    "clearing the cache and it works again.",
    "feature": "Thanks for the idea! It is on our roadmap; you can vote for it on the "
    "public roadmap to follow its progress.",
    "billing": "I have checked your account: the duplicate charge was reversed and the "
    "refund reaches your card within 5 business days.",
    "account": "You can do this under Settings › Account; I have sent you a link that "
    "walks you through it step by step.",
    "cancellation": "Your subscription will stop at the end of the current period; your "
    "data stays available for export for 30 days.",
    "general": "Yes: the help center article linked below explains it with screenshots, "
    "it takes about two minutes.",
}
SEARCHES = [
    "export csv",
    "reset password",
    "api key",
    "invite team",
    "change email",
    "invoice vat",
    "refund",
    "cancel subscription",
    "single sign-on",
    "two factor authentication",
    "mobile app",
    "dark mode",
    "change language",
    "delete account",
    "slack integration",
    "webhooks",
    "rate limit",
    "custom fields",
    "annual plan",
    "payment card",
]
#: Searches the help center has no good answer for (content gaps).
GAP_SEARCHES = [
    "gdpr data processing agreement",
    "hipaa compliance",
    "on-premise installation",
    "zapier webhook retry",
    "invoice in polish",
    "sandbox environment",
]
ORGANIZATIONS = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Foods",
    "Hooli",
    "Pied Piper",
    "Vandelay Imports",
    "Soylent Labs",
    "Tyrell Systems",
    "Cyberdyne Retail",
    "Wonka Sweets",
    "Oscorp Energy",
    "Massive Dynamic",
    "Dunder Paper",
    "Monarch Travel",
    "Gringotts Finance",
    "Aperture Science",
    "Black Mesa",
]
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Emil", "Fatima", "Gus", "Hana", "Ivo", "June"]
LAST_NAMES = ["Lopez", "Martin", "Nguyen", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt"]


def literal(value) -> str:
    """A SQL literal of one of the constants above (never of user input)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def pick(u: str, choices: list[tuple]) -> str:
    """CASE expression drawing the first element of ``choices`` by their shares."""
    branches, cumulative = [], 0.0
    for value, share, *_ in choices[:-1]:
        cumulative += share
        branches.append(f"WHEN {u} < {cumulative:.6f} THEN {literal(value)}")
    return f"CASE {' '.join(branches)} ELSE {literal(choices[-1][0])} END"


def by_value(column: str, mapping: dict) -> str:
    """CASE expression mapping a column's value to a constant."""
    branches = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in mapping.items())
    return f"CASE {column} {branches} END"


def text_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(literal(v) for v in values) + "]"


# ======================================================================================
# Servers and database (before Django is set up)
# ======================================================================================


def services_dir() -> Path:
    configured = os.environ.get("HELPDESK_SERVICES_DIR")
    root = Path(configured).resolve() if configured else BASE_DIR / ".data" / "bench"
    if root.name in {"dev", "test"} and root.parent == BASE_DIR / ".data":
        sys.exit(f"refusing to load a benchmark into {root}: use .data/bench")
    return root


def database_exists(pg) -> bool:
    import psycopg

    conninfo = f"host={pg.socket_dir} port={pg.port} user={pg.user} dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()


def recreate_database(pg) -> None:
    import psycopg

    conninfo = f"host={pg.socket_dir} port={pg.port} user={pg.user} dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def configure_environment(root: Path) -> tuple:
    """Point Django at the bench servers' own database and Valkey, whatever the shell
    or a developer's .env says: nothing here may touch the dev or test data."""
    if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        sys.exit("unset DATABASE_URL and REDIS_URL: this benchmark uses its own servers")
    pg = embedded.ensure_postgres(root)
    redis = embedded.ensure_redis(root)
    os.environ["HELPDESK_SERVICES_DIR"] = str(root)
    os.environ["HELPDESK_ENV_FILE"] = ""
    os.environ["DATABASE_URL"] = embedded.socket_database_url(
        pg.user, pg.socket_dir, pg.port, DATABASE
    )
    os.environ["REDIS_URL"] = redis.url
    os.environ.setdefault("DEBUG", "true")  # settings refuse DEBUG off without a real key
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return pg, redis


# ======================================================================================
# Generation
# ======================================================================================


class Generator:
    def __init__(self, args, tz: str):
        self.args = args
        self.tz = tz
        self.end_day: dt.date = args.end
        self.start_day = self.end_day - dt.timedelta(days=DAYS)
        from zoneinfo import ZoneInfo

        self.end_ts = dt.datetime.combine(self.end_day, dt.time.min, tzinfo=ZoneInfo(tz))
        self.steps: dict[str, float] = {}
        self.p: dict = {}

    # ---------------------------------------------------------------------------------

    def sql(self, label: str | None, statement: str, params: dict | None = None) -> int:
        from django.db import connection

        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(statement, params if params is not None else None)
            count = cursor.rowcount
        if label:
            seconds = time.perf_counter() - started
            self.steps[label] = round(self.steps.get(label, 0) + seconds, 1)
            rows = f"{count:>12,} rows" if count is not None and count >= 0 else " " * 17
            log(f"  {label:<34}{rows}  {seconds:7.1f} s")
        return count

    def run(self) -> dict:
        from django.core.management import call_command
        from django.db import connection

        started = time.perf_counter()
        log(f"migrating {DATABASE} …")
        t = time.perf_counter()
        call_command("migrate", verbosity=0)
        self.steps["migrate"] = round(time.perf_counter() - t, 1)
        with connection.cursor() as cursor:
            # Session settings of the load only (temp_buffers before any temp table).
            cursor.execute("SET temp_buffers = '1GB'")
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute("SET synchronize_seqscans = off")
        log("reference data (users, organizations, teams, articles) …")
        t = time.perf_counter()
        self.reference_data()
        self.steps["reference data"] = round(time.perf_counter() - t, 1)
        log("plan of every ticket (setseed, generate_series) …")
        self.functions()
        self.plan()
        dropped = self.drop_for_load()
        self.tickets()
        self.messages()
        self.escalations()
        self.events()
        self.training_examples()
        self.searches()
        self.kb_metrics()
        self.restore_after_load(dropped)
        self.finish()
        log("VACUUM (ANALYZE) …")
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_days, bench_plan, bench_articles")
            cursor.execute("RESET ALL")
            cursor.execute("VACUUM (ANALYZE)")
        self.steps["vacuum analyze"] = round(time.perf_counter() - t, 1)
        total = round(time.perf_counter() - started, 1)
        log(f"generated in {total:.0f} s")
        return {"generation_s": total, "steps_s": self.steps}

    # ---------------------------------------------------------------------------------
    # Reference data: a few hundred rows, through the ORM
    # ---------------------------------------------------------------------------------

    def reference_data(self) -> None:
        from django.contrib.auth.models import Group, User

        from knowledge.models import Article, Category
        from support.models import (
            CustomerProfile,
            Organization,
            SlaPolicy,
            Team,
            TeamMembership,
        )

        args = self.args
        rng = random.Random(int(SEED * 1e8))  # noqa: S311  (reproducible, not secret)
        joined = dt.datetime.combine(self.start_day - dt.timedelta(days=60), dt.time(9))
        joined = joined.replace(tzinfo=dt.UTC)
        standard = SlaPolicy.objects.get(is_default=True)
        premium = SlaPolicy.objects.exclude(pk=standard.pk).order_by("pk").first()
        plans = ["enterprise", "business", "business", "starter", "starter", "free"]
        mrr = {"enterprise": 12000, "business": 2400, "starter": 400, "free": 0}
        organizations = Organization.objects.bulk_create(
            [
                Organization(
                    name=ORGANIZATIONS[i] if i < len(ORGANIZATIONS) else f"Company {i + 1}",
                    plan=plans[i % len(plans)],
                    mrr=mrr[plans[i % len(plans)]] + rng.randrange(0, 500),
                    sla_policy=premium if plans[i % len(plans)] == "enterprise" else None,
                )
                for i in range(args.organizations)
            ]
        )

        def person(i: int) -> tuple[str, str]:
            return FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i // 7) % len(LAST_NAMES)]

        customers = User.objects.bulk_create(
            [
                User(
                    username=f"customer{i + 1:04d}",
                    email=f"customer{i + 1:04d}@example.com",
                    first_name=person(i)[0],
                    last_name=person(i)[1],
                    password="!",  # noqa: S106  (unusable: nobody signs in as them)
                    date_joined=joined,
                )
                for i in range(args.customers)
            ]
        )
        # Every tenth customer has no organization; the others are spread over them.
        customer_orgs = [
            None if i % 10 == 9 else organizations[i % len(organizations)]
            for i in range(len(customers))
        ]
        CustomerProfile.objects.bulk_create(
            [
                CustomerProfile(user=u, organization=o, is_org_admin=i < len(organizations))
                for i, (u, o) in enumerate(zip(customers, customer_orgs, strict=True))
            ]
        )
        agents = User.objects.bulk_create(
            [
                User(
                    username=f"agent{i + 1:02d}",
                    email=f"agent{i + 1:02d}@helpdesk.example",
                    first_name=person(i + 3)[0],
                    last_name=person(i + 3)[1],
                    is_staff=True,
                    password="!",  # noqa: S106
                    date_joined=joined,
                )
                for i in range(args.agents)
            ]
        )
        manager = User.objects.create(
            username="bench-manager",
            is_staff=True,
            password="!",  # noqa: S106
            date_joined=joined,
        )
        admin = User.objects.create(
            username="bench-admin",
            is_staff=True,
            is_superuser=True,
            password="!",  # noqa: S106
            date_joined=joined,
        )
        Group.objects.get(name="Agents").user_set.add(*agents)
        Group.objects.get(name="Managers").user_set.add(manager)

        general = Team.objects.get(is_default=True)
        billing = Team.objects.create(name="Billing", handles=["billing", "cancellation"])
        tier2 = Team.objects.create(name="Tier 2", handles=["security"])
        n_general = max(1, min(len(agents) - 1, round(0.7 * len(agents))))
        TeamMembership.objects.bulk_create(
            [TeamMembership(team=general, user=a) for a in agents[:n_general]]
            + [TeamMembership(team=billing, user=a) for a in agents[n_general:]]
            + [TeamMembership(team=tier2, user=a) for a in agents[max(0, n_general - 2) :]]
        )

        category = Category.objects.create(
            name="Analytics bench", slug="analytics-bench", is_visible=False
        )
        topics = [s for subjects in SUBJECTS.values() for s in subjects]
        published = joined + dt.timedelta(days=30)
        articles = Article.objects.bulk_create(
            [
                Article(
                    title=f"{topics[i % len(topics)]} ({i // len(topics) + 1})",
                    slug=f"analytics-bench-{i + 1:04d}",
                    summary="How to sort it out, step by step.",
                    body=f"## {topics[i % len(topics)]}\n\n{ANSWERS['general']}",
                    status="published",
                    category=category,
                    published_at=published,
                )
                for i in range(args.articles)
            ]
        )

        speed = [AGENT_SPEED[i % len(AGENT_SPEED)] for i in range(len(agents))]
        quality = [AGENT_QUALITY[i % len(AGENT_QUALITY)] for i in range(len(agents))]
        hours = [standard.hours_for(p) for p, *_ in PRIORITIES]
        premium_hours = [premium.hours_for(p) for p, *_ in PRIORITIES] if premium else hours
        prices = []
        from integrations.llm.pricing import price_for

        for name, *_ in MODELS:
            found = price_for(name) or (0, 0)
            prices.append([float(found[0]), float(found[1])])
        self.p = {
            "n": args.tickets,
            "searches": args.searches,
            "seed": SEED,
            "tz": self.tz,
            "start": self.start_day,
            "days": DAYS,
            "end_ts": self.end_ts,
            "customer_ids": [u.pk for u in customers],
            "customer_orgs": [o.pk if o else None for o in customer_orgs],
            "customer_premium": [bool(o and o.plan == "enterprise") for o in customer_orgs],
            "n_customers": len(customers),
            "agent_ids": [a.pk for a in agents],
            "agent_names": [a.username for a in agents],
            "agent_speed": speed,
            "agent_quality": quality,
            "n_general": n_general,
            "n_billing": len(agents) - n_general,
            "reviewer_ids": [manager.pk, *[a.pk for a in agents[:3]]],
            "general_id": general.pk,
            "billing_id": billing.pk,
            "tier2_id": tier2.pk,
            "team_names": [general.name, billing.name, tier2.name],
            "article_ids": [a.pk for a in articles],
            "n_articles": len(articles),
            "models": [m[0] for m in MODELS],
            "model_latency": [float(m[1]) for m in MODELS],
            "model_reopen": [m[2] for m in MODELS],
            "price_in": [p[0] for p in prices],
            "price_out": [p[1] for p in prices],
            "sla_standard": hours,
            "sla_premium": premium_hours,
        }
        self.admin_id = admin.pk

    # ---------------------------------------------------------------------------------
    # The plan: one row per ticket with every random draw and every step's time
    # ---------------------------------------------------------------------------------

    def functions(self) -> None:
        for statement in (
            # A standard normal from two uniforms (Box–Muller).
            """CREATE OR REPLACE FUNCTION pg_temp.bench_z(u1 float8, u2 float8)
               RETURNS float8 LANGUAGE sql IMMUTABLE
               AS $$ SELECT sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2) $$""",
            """CREATE OR REPLACE FUNCTION pg_temp.bench_lognorm(
                   u1 float8, u2 float8, median float8, sigma float8)
               RETURNS float8 LANGUAGE sql IMMUTABLE
               AS $$ SELECT median * exp(sigma * pg_temp.bench_z(u1, u2)) $$""",
            # t + s seconds (NULL when either is).
            """CREATE OR REPLACE FUNCTION pg_temp.bench_at(t timestamptz, s float8)
               RETURNS timestamptz LANGUAGE sql IMMUTABLE
               AS $$ SELECT t + s * interval '1 second' $$""",
        ):
            self.sql(None, statement)

    def plan(self) -> None:
        p = self.p
        self.sql(None, "SELECT setseed(%(seed)s)", p)
        weekday = "ARRAY[" + ", ".join(str(f) for f in WEEKDAY_FACTOR) + "]"
        incidents = ", ".join(str(d) for d in INCIDENT_DAYS)
        # Tickets and searches per day: weekly pattern, +50 % over the year, noise, a few
        # incident days; cumulative rounding makes the totals exact.
        self.sql(
            "days",
            f"""CREATE TEMP TABLE bench_days AS
            WITH w AS (
                SELECT d AS idx, %(start)s::date + d AS day,
                       extract(isodow FROM %(start)s::date + d)::int AS dow,
                       (0.8 + 0.4 * d / (%(days)s - 1.0))
                       * ({weekday})[extract(isodow FROM %(start)s::date + d)::int]
                       * (0.85 + 0.3 * random())
                       * CASE WHEN d IN ({incidents}) THEN 3 ELSE 1 END AS w
                FROM generate_series(0, %(days)s - 1) d
            ), c AS (
                SELECT *, sum(w) OVER (ORDER BY idx) AS cum, sum(w) OVER () AS total FROM w
            )
            SELECT idx, day, dow,
                   (round(%(n)s * cum / total) - round(%(n)s * (cum - w) / total))::int AS n,
                   (round(%(searches)s * cum / total)
                    - round(%(searches)s * (cum - w) / total))::int AS s
            FROM c ORDER BY idx""",  # noqa: S608
            p,
        )
        uniforms = [
            "u_t1", "u_t2", "u_t3", "u_t4", "u_req", "u_type", "u_pri", "u_chan", "u_flow",
            "u_sub", "u_kind", "u_conf", "u_conf2", "u_model", "u_lat1", "u_lat2", "u_tok1",
            "u_tok2", "u_tok3", "u_tok4", "u_d1", "u_d2", "u_d3", "u_d4", "u_d5", "u_d6",
            "u_reopen", "u_esc2", "u_agent", "u_rated", "u_rating", "u_r1", "u_r2", "u_sent",
            "u_cite1", "u_cite2", "u_cite3", "u_ncite", "u_review", "u_quality", "u_phrase",
        ]  # fmt: skip
        draws = ",\n".join(f"random() AS {u}" for u in uniforms)
        type_idx = pick("u_type", [(i + 1, share) for i, (_, share, _) in enumerate(TYPES)])
        pri_idx = pick("u_pri", [(i + 1, share) for i, (_, share, _) in enumerate(PRIORITIES)])
        types = text_array([t for t, *_ in TYPES])
        priorities = text_array([t for t, *_ in PRIORITIES])
        p_escalate = "(ARRAY[" + ", ".join(str(t[2]) for t in TYPES) + "])[type_idx]"
        pri_factor = "(ARRAY[" + ", ".join(str(t[2]) for t in PRIORITIES) + "])[pri_idx]"
        subjects = "ARRAY[" + ", ".join(text_array(SUBJECTS[t]) for t, *_ in TYPES) + "]"
        answers = text_array([ANSWERS[t] for t, *_ in TYPES])
        n_subjects = len(SUBJECTS["bug"])
        # Seconds after t0 of each step (NULL: the step does not happen on this path).
        self.sql(
            "plan (1 row per ticket)",
            f"""CREATE TEMP TABLE bench_plan AS
            WITH u AS MATERIALIZED (
                SELECT d.idx AS day_idx, d.day, d.dow, d.idx::bigint * 1000000 + k AS seq,
                       {draws}
                FROM bench_days d CROSS JOIN LATERAL generate_series(1, d.n) k
            ), a AS (
                SELECT u.*,
                    CASE WHEN u_t3 < CASE WHEN dow >= 6 THEN 0.5 ELSE 0.85 END
                         THEN 48600 + 11520 * pg_temp.bench_z(u_t1, u_t2)
                         ELSE 86400 * u_t4 END AS tod_raw,
                    1 + floor(%(n_customers)s * power(u_req, 1.6))::int AS cust,
                    {type_idx} AS type_idx,
                    {pri_idx} AS pri_idx,
                    {pick("u_chan", CHANNELS)} AS channel,
                    CASE WHEN u_model < 0.2 + 0.3 * day_idx / (%(days)s - 1.0) THEN 1
                         WHEN u_model < 0.7 + 0.2 * day_idx / (%(days)s - 1.0) THEN 2
                         ELSE 3 END AS model_idx
                FROM u
            ), b AS (
                SELECT a.*,
                    tod_raw - 86400 * floor(tod_raw / 86400) AS tod,
                    ({types})[type_idx] AS type,
                    CASE WHEN u_flow < {p_escalate} THEN 'E'
                         WHEN u_flow < {p_escalate} + {P_ASK} THEN 'A'
                         ELSE 'R' END AS flow,
                    least(60000, greatest(600, (%(model_latency)s::float8[])[model_idx]
                          * exp(0.35 * pg_temp.bench_z(u_lat1, u_lat2))))::int AS lat
                FROM a
            ), c AS (
                SELECT b.*,
                    CASE WHEN flow = 'E' AND type IN ('billing', 'cancellation')
                         THEN %(n_general)s + 1 + floor(u_agent * %(n_billing)s)::int
                         ELSE 1 + floor(u_agent * %(n_general)s)::int END AS agent_pos,
                    CASE WHEN flow <> 'E' THEN NULL
                         WHEN type IN ('billing', 'cancellation') AND u_kind < 0.7 THEN 'policy'
                         WHEN u_kind < 0.78 THEN 'ai_low_confidence'
                         WHEN u_kind < 0.92 THEN 'customer_requested'
                         ELSE 'complex' END AS esc_kind,
                    flow = 'A' AND u_sub < 0.5 AS a_ai,
                    flow = 'A' AND u_sub >= 0.85 AS a_silent,
                    flow = 'E' AND u_esc2 < 0.10 AS esc2,
                    (tod < 8 * 3600 OR tod >= 18 * 3600 OR dow >= 6) AS off_hours
                FROM b
            ), d AS (
                SELECT c.*,
                    CASE flow
                        WHEN 'R' THEN 0.72 + 0.27 * power(u_conf, 0.7)
                        WHEN 'A' THEN 0.45 + 0.33 * u_conf
                        ELSE CASE WHEN esc_kind IN ('policy', 'customer_requested')
                                  THEN 0.5 + 0.45 * u_conf
                                  ELSE 0.05 + 0.5 * power(u_conf, 0.8) END
                    END AS conf,
                    least(259200, 30 + pg_temp.bench_lognorm(u_d1, u_d2,
                        1800 * (%(agent_speed)s::float8[])[agent_pos] * {pri_factor}
                        * CASE WHEN off_hours THEN 3 ELSE 1 END, 1.0)) AS agent_delay,
                    2 + lat / 1000.0 AS s_ai
                FROM c
            ), e AS (
                SELECT d.*,
                    flow = 'R' AND u_reopen < 0.6 * (1 - conf)
                        * (%(model_reopen)s::float8[])[model_idx] AS reopened,
                    CASE WHEN flow = 'A' AND NOT a_silent
                         THEN s_ai + least(432000, pg_temp.bench_lognorm(u_d5, u_d6, 10800, 1.2))
                    END AS s_cust2
                FROM d
            ), f AS (
                SELECT e.*,
                    CASE WHEN a_ai THEN s_cust2 + 2 + lat * (0.8 + 0.4 * u_tok3) / 1000 END
                        AS s_ai2,
                    CASE WHEN flow = 'E' THEN s_ai + agent_delay
                         WHEN flow = 'A' AND NOT a_ai THEN s_cust2 + agent_delay END AS s_ag,
                    CASE WHEN reopened
                         THEN s_ai + 1
                              + least(1209600, pg_temp.bench_lognorm(u_d5, u_d6, 72000, 1.0))
                    END AS s_reo
                FROM e
            ), g AS (
                SELECT f.*,
                    CASE WHEN esc2 THEN s_ag + pg_temp.bench_lognorm(u_d3, u_d4, 3600, 1.0)
                    END AS s_esc2,
                    s_reo + agent_delay AS s_ag2
                FROM f
            ), h AS (
                SELECT g.*,
                    CASE flow
                        WHEN 'R' THEN s_ai + 1
                        WHEN 'A' THEN CASE WHEN a_ai THEN s_ai2 + 1
                                  ELSE s_ag + pg_temp.bench_lognorm(u_d3, u_d4, 1800, 1.0) END
                        ELSE CASE WHEN esc2
                                  THEN s_esc2 + pg_temp.bench_lognorm(u_d5, u_d6, 14400, 1.0)
                                  ELSE s_ag + pg_temp.bench_lognorm(u_d3, u_d4, 5400, 1.1) END
                    END AS s_res1,
                    s_ag2 + pg_temp.bench_lognorm(u_d3, u_d4, 3600, 1.0) AS s_res2
                FROM g
            ), i AS (
                SELECT h.*,
                    CASE WHEN u_rated < 0.41
                         THEN coalesce(s_res2, s_res1)
                              + least(604800, 60 + pg_temp.bench_lognorm(u_r1, u_r2, 7200, 1.3))
                    END AS s_rate,
                    least(5, 1 + floor(5 * power(u_rating, CASE
                        WHEN flow = 'R' AND reopened THEN 1.3
                        WHEN flow = 'R' THEN 0.4
                        WHEN a_ai THEN 0.5
                        ELSE 0.55 * (%(agent_quality)s::float8[])[agent_pos]
                             * CASE WHEN agent_delay > 14400 THEN 1.6 ELSE 1 END
                    END)))::int AS rating
                FROM h
            ), t AS (
                SELECT i.*, (day + tod * interval '1 second') AT TIME ZONE %(tz)s AS t0 FROM i
            )
            SELECT
                row_number() OVER (ORDER BY t0, seq) AS id,
                row_number() OVER (PARTITION BY day ORDER BY t0, seq) AS number,
                day, t0, type, flow, a_ai, esc2, esc_kind, reopened, channel,
                ({priorities})[pri_idx] AS priority,
                (%(customer_ids)s::bigint[])[cust] AS requester_id,
                (%(customer_orgs)s::bigint[])[cust] AS organization_id,
                t0 + CASE WHEN (%(customer_premium)s::boolean[])[cust]
                          THEN (%(sla_premium)s::int[])[pri_idx]
                          ELSE (%(sla_standard)s::int[])[pri_idx] END * interval '1 hour'
                    AS sla_due_at,
                ({subjects})[type_idx][1 + floor(u_phrase * {n_subjects})::int] AS subject,
                ({answers})[type_idx] AS answer,
                (%(agent_ids)s::bigint[])[agent_pos] AS agent_id,
                (%(agent_names)s::text[])[agent_pos] AS agent_name,
                CASE WHEN flow <> 'E' THEN NULL
                     WHEN type IN ('billing', 'cancellation') THEN %(billing_id)s::bigint
                     ELSE %(general_id)s::bigint END AS team_id,
                CASE WHEN flow <> 'E' THEN NULL
                     WHEN type IN ('billing', 'cancellation') THEN (%(team_names)s::text[])[2]
                     ELSE (%(team_names)s::text[])[1] END AS team_name,
                (%(models)s::text[])[model_idx] AS model,
                round(conf::numeric, 4)::float8 AS conf,
                round((0.72 + 0.27 * power(u_conf2, 0.7))::numeric, 4)::float8 AS conf2,
                lat, (lat * (0.8 + 0.4 * u_tok3))::int AS lat2,
                1500 + floor(3500 * power(u_tok1, 1.4))::int AS tin,
                150 + floor(450 * u_tok2)::int AS tout,
                2100 + floor(3500 * power(u_tok1, 1.4) + 1500 * u_tok3)::int AS tin2,
                150 + floor(450 * u_tok4)::int AS tout2,
                (%(price_in)s::float8[])[model_idx] AS price_in,
                (%(price_out)s::float8[])[model_idx] AS price_out,
                greatest(-1, least(1, round((1.6 * u_sent - 0.8
                    - CASE WHEN flow = 'E' THEN 0.3 ELSE 0 END)::numeric, 3)))::float8
                    AS sentiment,
                (ARRAY[
                    {ARTICLE.format(rank="power(u_cite1, 2.5)")},
                    {ARTICLE.format(rank="power(u_cite2, 1.5)")},
                    {ARTICLE.format(rank="u_cite3")}
                ])[1:floor(u_ncite * 4)::int] AS cited,
                rating, u_review, u_quality, u_phrase,
                pg_temp.bench_at(t0, s_ai) AS t_ai,
                pg_temp.bench_at(t0, s_cust2) AS t_cust2,
                pg_temp.bench_at(t0, s_ai2) AS t_ai2,
                pg_temp.bench_at(t0, s_ag) AS t_ag,
                pg_temp.bench_at(t0, s_esc2) AS t_esc2,
                pg_temp.bench_at(t0, s_res1) AS t_res1,
                pg_temp.bench_at(t0, s_reo) AS t_reo,
                pg_temp.bench_at(t0, s_ag2) AS t_ag2,
                pg_temp.bench_at(t0, s_res2) AS t_res2,
                pg_temp.bench_at(t0, s_rate) AS t_rate
            FROM t
            ORDER BY t0, seq""",  # noqa: S608
            p,
        )
        self.sql(None, "ALTER TABLE bench_plan ADD PRIMARY KEY (id)")
        self.sql(None, "ANALYZE bench_plan")
        self.sql(
            None,
            """CREATE TEMP TABLE bench_articles AS
               SELECT k AS idx, (%(article_ids)s::bigint[])[k] AS id,
                      (1.0 / k) / sum(1.0 / k) OVER () AS weight,
                      CASE WHEN mod(k, 23) = 5 THEN 0.25 ELSE 0.85 END AS helpful_share
               FROM generate_series(1, %(n_articles)s) k""",
            p,
        )

    # ---------------------------------------------------------------------------------
    # Bulk load: secondary indexes and foreign keys dropped, rebuilt after
    # ---------------------------------------------------------------------------------

    def drop_for_load(self) -> dict:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
                   FROM pg_constraint c
                   WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)""",
                [list(BULK_TABLES)],
            )
            foreign_keys = cursor.fetchall()
            cursor.execute(
                """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                   FROM pg_index i
                   WHERE i.indrelid::regclass::text = ANY(%s)
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                     WHERE c.conindid = i.indexrelid)""",
                [list(BULK_TABLES)],
            )
            indexes = cursor.fetchall()
            for table, name, _ in foreign_keys:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        log(f"  dropped {len(indexes)} indexes and {len(foreign_keys)} foreign keys for the load")
        return {"foreign_keys": foreign_keys, "indexes": indexes}

    def restore_after_load(self, dropped: dict) -> None:
        from django.db import connection

        started = time.perf_counter()
        with connection.cursor() as cursor:
            for _, definition in dropped["indexes"]:
                cursor.execute(definition)
        self.steps["rebuild indexes"] = round(time.perf_counter() - started, 1)
        log(f"  {'rebuilt ' + str(len(dropped['indexes'])) + ' indexes':<51}"
            f"{self.steps['rebuild indexes']:7.1f} s")  # fmt: skip
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for table, name, definition in dropped["foreign_keys"]:
                # Re-adding validates every row: the generated references are checked.
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        self.steps["re-add foreign keys"] = round(time.perf_counter() - started, 1)
        log(f"  {'re-added and validated foreign keys':<51}"
            f"{self.steps['re-add foreign keys']:7.1f} s")  # fmt: skip

    # ---------------------------------------------------------------------------------
    # Tickets, messages, escalations, events, training examples
    # ---------------------------------------------------------------------------------

    def tickets(self) -> None:
        description = DESCRIPTION

        def before(column: str) -> str:
            return f"CASE WHEN {column} < %(end_ts)s THEN {column} END"

        steps = [
            "t_ai", "t_cust2", "t_ai2", "t_ag", "t_esc2", "t_res1", "t_reo", "t_ag2", "t_res2",
            "t_rate",
        ]  # fmt: skip
        updated = "greatest(t0, " + ", ".join(before(s) for s in steps) + ")"
        ms = "interval '1 millisecond'"
        self.sql(
            "tickets",
            f"""INSERT INTO support_ticket (
                id, reference, subject, description, type, status, priority, channel,
                requester_id, organization_id, assignee_id, team_id, ai_confidence, sentiment,
                satisfaction_rating, satisfaction_comment, reopened_count, created_at,
                updated_at, first_response_at, resolved_at, closed_at, rated_at, sla_due_at)
            SELECT id,
                {REFERENCE},
                subject,
                {description},
                type,
                CASE
                    WHEN t_res2 < %(end_ts)s THEN 'resolved'
                    WHEN t_ag2 < %(end_ts)s THEN 'awaiting_customer'
                    WHEN t_reo < %(end_ts)s THEN 'new'
                    WHEN t_res1 < %(end_ts)s THEN 'resolved'
                    WHEN t_esc2 < %(end_ts)s THEN 'escalated'
                    WHEN t_ag < %(end_ts)s THEN 'awaiting_customer'
                    WHEN t_ai2 - 500 * {ms} < %(end_ts)s THEN 'ai_responding'
                    WHEN a_ai AND t_cust2 + 1000 * {ms} < %(end_ts)s THEN 'analyzing'
                    WHEN t_cust2 < %(end_ts)s THEN 'new'
                    WHEN flow = 'E' AND t_ai < %(end_ts)s THEN 'escalated'
                    WHEN flow = 'A' AND t_ai + {ms} < %(end_ts)s THEN 'awaiting_customer'
                    WHEN t_ai - 500 * {ms} < %(end_ts)s THEN 'ai_responding'
                    WHEN t0 + 1000 * {ms} < %(end_ts)s THEN 'analyzing'
                    ELSE 'new'
                END,
                priority, channel, requester_id, organization_id,
                CASE WHEN flow = 'E' AND t_ai < %(end_ts)s THEN agent_id
                     WHEN t_ag - {ms} < %(end_ts)s THEN agent_id
                     WHEN t_ag2 - {ms} < %(end_ts)s THEN agent_id END,
                CASE WHEN flow = 'E' AND t_ai < %(end_ts)s
                     THEN CASE WHEN t_esc2 < %(end_ts)s THEN %(tier2_id)s::bigint ELSE team_id END
                END,
                CASE WHEN t_ai2 < %(end_ts)s THEN conf2 WHEN t_ai < %(end_ts)s THEN conf END,
                CASE WHEN t_ai < %(end_ts)s THEN sentiment END,
                CASE WHEN t_rate < %(end_ts)s THEN rating END,
                CASE WHEN t_rate < %(end_ts)s AND rating <= 2
                     THEN 'It took too long and did not solve my problem.' ELSE '' END,
                CASE WHEN t_reo - 2 * {ms} < %(end_ts)s THEN 1 ELSE 0 END,
                t0,
                {updated},
                CASE WHEN flow <> 'E' AND t_ai < %(end_ts)s THEN t_ai
                     WHEN flow = 'E' AND t_ag < %(end_ts)s THEN t_ag END,
                CASE WHEN t_res2 < %(end_ts)s THEN t_res2
                     WHEN t_reo - 2 * {ms} < %(end_ts)s THEN NULL
                     WHEN t_res1 < %(end_ts)s THEN t_res1 END,
                NULL,
                CASE WHEN t_rate < %(end_ts)s THEN t_rate END,
                sla_due_at
            FROM bench_plan p ORDER BY id""",  # noqa: S608
            {**self.p, "details": DETAILS},
        )
        self.sql(
            "ticket sequences",
            """INSERT INTO support_ticketsequence (day, last_number)
               SELECT day, n FROM bench_days WHERE n > 0""",
        )

    def messages(self) -> None:
        description = DESCRIPTION
        ms = "interval '1 millisecond'"
        no_ai = "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
        cost = "round(((tin * price_in + tout * price_out) / 1e6)::numeric, 6)"
        cost2 = "round(((tin2 * price_in + tout2 * price_out) / 1e6)::numeric, 6)"
        self.sql(
            "messages",
            f"""INSERT INTO support_message (
                ticket_id, sender_kind, author_id, body, is_internal, created_at, ai_model,
                ai_confidence, input_tokens, output_tokens, cost_usd, latency_ms, article_ids,
                example_ids, ai_reasoning, ai_decision)
            SELECT p.id, m.sender_kind, m.author_id, m.body, m.is_internal, m.at,
                   coalesce(m.model, ''), m.conf, m.tin, m.tout, m.cost, m.lat,
                   coalesce(m.cited, '{{}}'), '{{}}', coalesce(m.reasoning, ''),
                   coalesce(m.decision, '')
            FROM bench_plan p CROSS JOIN LATERAL (VALUES
                (1, p.t0, 'customer', p.requester_id,
                 {description},
                 false, NULL::text, NULL::float8, NULL::int, NULL::int, NULL::numeric, NULL::int,
                 NULL::bigint[], NULL::text, NULL::text),
                (2, p.t_ai, 'ai', NULL,
                 CASE p.flow
                    WHEN 'E' THEN 'AI attempt (not sent to the customer): ' || p.answer
                    WHEN 'A' THEN 'Thanks for reaching out! To look into this, could you tell '
                                  || 'me which account and browser you are using?'
                    ELSE 'Thanks for reaching out! ' || p.answer END,
                 p.flow = 'E', p.model, p.conf, p.tin, p.tout, {cost}, p.lat,
                 CASE WHEN p.flow <> 'E' THEN p.cited END,
                 'Matched the help center on "' || p.subject || '".',
                 CASE p.flow WHEN 'E' THEN 'escalate' WHEN 'A' THEN 'ask' ELSE 'resolve' END),
                (3, CASE WHEN p.flow = 'E' THEN p.t_ai + {ms} END, 'system', NULL,
                 'Thanks for your message. A person from our team will take it from here.',
                 false, {no_ai}),
                (4, p.t_cust2, 'customer', p.requester_id,
                 'I use the web app in Chrome, on our main account.', false, {no_ai}),
                (5, p.t_ai2, 'ai', NULL, 'Thanks, that helps! ' || p.answer, false, p.model,
                 p.conf2, p.tin2, p.tout2, {cost2}, p.lat2, p.cited,
                 'Answered with the customer''s details.', 'resolve'),
                (6, p.t_ag, 'agent', p.agent_id,
                 'Hi, thanks for your patience. ' || p.answer, false, {no_ai}),
                (7, p.t_reo, 'customer', p.requester_id,
                 'Sorry, it is happening again since yesterday.', false, {no_ai}),
                (8, p.t_ag2, 'agent', p.agent_id,
                 'I had a closer look and fixed it on our side; it should not come back.',
                 false, {no_ai})
            ) AS m(ord, at, sender_kind, author_id, body, is_internal, model, conf, tin, tout,
                   cost, lat, cited, reasoning, decision)
            WHERE m.at < %(end_ts)s
            ORDER BY m.at, p.id, m.ord""",  # noqa: S608
            {**self.p, "details": DETAILS},
        )

    def escalations(self) -> None:
        self.sql(
            "escalations",
            """INSERT INTO support_escalation (
                ticket_id, kind, reason, topic, ai_attempt, team_id, assignee_id, created_by_id,
                is_resolved, resolved_at, created_at)
            SELECT * FROM (
                SELECT p.id, p.esc_kind,
                    CASE p.esc_kind
                        WHEN 'policy' THEN 'Billing and cancellations are handled by people.'
                        WHEN 'customer_requested' THEN 'The customer asked for a person.'
                        WHEN 'complex' THEN 'The conversation is long or complex.'
                        ELSE 'Confidence ' || round(p.conf::numeric, 2) || ' is below 0.5.'
                    END,
                    '', p.answer, p.team_id, p.agent_id, NULL::bigint,
                    coalesce(p.t_res1 < %(end_ts)s, false),
                    CASE WHEN p.t_res1 < %(end_ts)s THEN p.t_res1 END, p.t_ai
                FROM bench_plan p WHERE p.flow = 'E' AND p.t_ai < %(end_ts)s
                UNION ALL
                SELECT p.id, 'complex', 'Needs a specialist of Tier 2.', 'security', '',
                    %(tier2_id)s::bigint, p.agent_id, p.agent_id,
                    coalesce(p.t_res1 < %(end_ts)s, false),
                    CASE WHEN p.t_res1 < %(end_ts)s THEN p.t_res1 END, p.t_esc2
                FROM bench_plan p WHERE p.t_esc2 < %(end_ts)s
            ) x ORDER BY 11, 1""",
            self.p,
        )

    def events(self) -> None:
        ms = "interval '1 millisecond'"
        status = "'status_changed'"

        def change(at, actor, kind, old, new, metadata="'{}'::jsonb"):
            return f"({at}, {status}, {actor}, {kind}, 'status', {old}, {new}, {metadata})"

        assigned = (
            "'assigned', {actor}, {kind}, 'assignee', '', p.agent_name, "
            "jsonb_build_object('old_id', NULL, 'new_id', p.agent_id))"
        )
        escalation_meta = (
            "jsonb_build_object('escalation_id', {e}.id, 'kind', {e}.kind, 'reason', {e}.reason, "
            "'team_id', {e}.team_id, 'assignee_id', {e}.assignee_id)"
        )
        values = [
            # Opening (the first customer message has no message_added event).
            f"(p.t0, 'created', p.requester_id, 'customer', '', '', {REFERENCE},"
            " jsonb_build_object('channel', p.channel, 'type', p.type, 'priority', p.priority))",
            change(f"p.t0 + 1000 * {ms}", "NULL", "'ai'", "'new'", "'analyzing'"),
            change(f"p.t_ai - 500 * {ms}", "NULL", "'ai'", "'analyzing'", "'ai_responding'"),
            # The AI asks: awaiting the customer, who answers.
            change(
                f"CASE WHEN p.flow = 'A' THEN p.t_ai + {ms} END",
                "NULL",
                "'ai'",
                "'ai_responding'",
                "'awaiting_customer'",
            ),
            change(
                f"p.t_cust2 - {ms}", "p.requester_id", "'customer'", "'awaiting_customer'", "'new'"
            ),
            change(
                f"CASE WHEN p.a_ai THEN p.t_cust2 + 1000 * {ms} END",
                "NULL",
                "'ai'",
                "'new'",
                "'analyzing'",
            ),
            change(f"p.t_ai2 - 500 * {ms}", "NULL", "'ai'", "'analyzing'", "'ai_responding'"),
            # The AI escalates: routed to a team, an agent assigned.
            change(
                "CASE WHEN p.flow = 'E' THEN p.t_ai END",
                "NULL",
                "'ai'",
                "'ai_responding'",
                "'escalated'",
                "jsonb_build_object('escalation_kind', p.esc_kind)",
            ),
            "(CASE WHEN p.flow = 'E' THEN p.t_ai END, "
            + assigned.format(actor="NULL", kind="'ai'"),
            "(CASE WHEN p.flow = 'E' THEN p.t_ai END, 'escalated', NULL, 'ai', '', '',"
            f" p.team_name, {escalation_meta.format(e='e1')})",
            # The AI resolves.
            change(
                "CASE WHEN p.flow = 'R' OR p.a_ai THEN p.t_res1 END",
                "NULL",
                "'ai'",
                "'ai_responding'",
                "'resolved'",
            ),
            "(CASE WHEN p.flow = 'R' OR p.a_ai THEN p.t_res1 END, 'resolved', NULL, 'ai',"
            " '', '', '', '{}'::jsonb)",
            # An agent answers (after the customer's answer, or the escalation).
            f"(CASE WHEN p.flow = 'A' THEN p.t_ag - {ms} END, "
            + assigned.format(actor="p.agent_id", kind="'agent'"),
            change(
                f"p.t_ag + {ms}",
                "p.agent_id",
                "'agent'",
                "CASE p.flow WHEN 'E' THEN 'escalated' ELSE 'new' END",
                "'awaiting_customer'",
            ),
            change(
                "p.t_esc2",
                "p.agent_id",
                "'agent'",
                "'awaiting_customer'",
                "'escalated'",
                "jsonb_build_object('escalation_kind', 'complex')",
            ),
            "(p.t_esc2, 'escalated', p.agent_id, 'agent', '', '', (%(team_names)s::text[])[3],"
            f" {escalation_meta.format(e='e2')})",
            change(
                f"CASE WHEN {BY_AGENT} THEN p.t_res1 END",
                "p.agent_id",
                "'agent'",
                "CASE WHEN p.esc2 THEN 'escalated' ELSE 'awaiting_customer' END",
                "'resolved'",
            ),
            f"(CASE WHEN {BY_AGENT} THEN p.t_res1 END, 'resolved', p.agent_id,"
            " 'agent', '', '', '', '{}'::jsonb)",
            # Reopened by the customer's reply, then answered and resolved by an agent.
            change(f"p.t_reo - 2 * {ms}", "p.requester_id", "'customer'", "'resolved'", "'new'"),
            f"(p.t_reo - {ms}, 'reopened', p.requester_id, 'customer', '', '', '',"
            " jsonb_build_object('reason', 'customer replied'))",
            f"(p.t_ag2 - {ms}, " + assigned.format(actor="p.agent_id", kind="'agent'"),
            change(f"p.t_ag2 + {ms}", "p.agent_id", "'agent'", "'new'", "'awaiting_customer'"),
            change("p.t_res2", "p.agent_id", "'agent'", "'awaiting_customer'", "'resolved'"),
            "(p.t_res2, 'resolved', p.agent_id, 'agent', '', '', '', '{}'::jsonb)",
            # Rated by the requester.
            "(p.t_rate, 'rated', p.requester_id, 'customer', 'satisfaction_rating', '',"
            " p.rating::text, '{}'::jsonb)",
        ]
        rows = ",\n                ".join(
            f"({i}, {v[1:]}" for i, v in enumerate(values, start=1)
        )  # (ord, at, kind, actor_id, actor_kind, field, old, new, metadata)
        # A status change is written by the action's writer only when the status is not
        # already the new one; one row per step is the services' order within the step.
        self.sql(
            "events",
            f"""INSERT INTO support_ticketevent (
                ticket_id, kind, actor_id, actor_kind, field, old_value, new_value, metadata,
                is_internal, created_at)
            SELECT ticket_id, kind, actor_id, actor_kind, field, old_value, new_value, metadata,
                   is_internal, at
            FROM (
                SELECT p.id AS ticket_id, e.kind, e.actor_id, e.actor_kind, e.field,
                       e.old_value, e.new_value, e.metadata, false AS is_internal, e.at, e.ord
                FROM bench_plan p
                LEFT JOIN support_escalation e1
                       ON e1.ticket_id = p.id AND e1.created_by_id IS NULL
                LEFT JOIN support_escalation e2
                       ON e2.ticket_id = p.id AND e2.created_by_id IS NOT NULL
                CROSS JOIN LATERAL (VALUES
                {rows}
                ) AS e(ord, at, kind, actor_id, actor_kind, field, old_value, new_value, metadata)
                WHERE e.at < %(end_ts)s
                UNION ALL
                SELECT m.ticket_id, 'message_added', m.author_id, m.sender_kind, '', '', '',
                       jsonb_build_object('message_id', m.id, 'sender_kind', m.sender_kind),
                       m.is_internal, m.created_at, 100
                FROM support_message m JOIN bench_plan p ON p.id = m.ticket_id
                WHERE NOT (m.sender_kind = 'customer' AND m.created_at = p.t0)
            ) x
            ORDER BY at, ticket_id, ord""",  # noqa: S608
            self.p,
        )

    def training_examples(self) -> None:
        # Harvested when rated 4 or 5: the last public AI/agent reply is the answer.
        self.sql(
            "training examples",
            """INSERT INTO support_trainingexample (
                ticket_id, source_message_id, ticket_type, question, answer,
                anonymized_question, anonymized_answer, pii_found, pii_remaining, outcome,
                author_kind, confidence, satisfaction_rating, quality_score, status,
                reviewed_by_id, reviewed_at, review_note, embedding, embedding_model,
                used_in_training, exported_at, times_used_by_ai, created_at, updated_at)
            SELECT x.*, coalesce(x.reviewed_at, x.created_at) FROM (
                SELECT p.id, m.id, p.type, t.subject || E'\\n\\n' || t.description, m.body,
                    t.subject || E'\\n\\n' || t.description, m.body, '{}'::varchar[],
                    '{}'::varchar[],
                    CASE WHEN p.flow = 'E' THEN 'escalated'
                         WHEN p.reopened THEN 'failed' ELSE 'successful' END,
                    CASE m.sender_kind WHEN 'ai' THEN 'ai' ELSE 'human' END,
                    m.ai_confidence, p.rating,
                    CASE WHEN old AND p.u_review < 0.7 THEN 3 + floor(3 * p.u_quality)::int END,
                    CASE WHEN NOT old OR p.u_review >= 0.85 THEN 'pending'
                         WHEN p.u_review < 0.7 THEN 'approved' ELSE 'rejected' END,
                    CASE WHEN old AND p.u_review < 0.85
                         THEN (%(reviewer_ids)s::bigint[])[1 + floor(p.u_quality * 4)::int] END,
                    CASE WHEN old AND p.u_review < 0.85
                         THEN p.t_rate + (1 + 9 * p.u_quality) * interval '1 day' END
                        AS reviewed_at,
                    CASE WHEN old AND p.u_review >= 0.7 AND p.u_review < 0.85
                         THEN 'Too specific to one customer.' ELSE '' END,
                    NULL::vector, '', false, NULL::timestamptz,
                    CASE WHEN old AND p.u_review < 0.7
                         THEN floor(20 * power(p.u_quality, 3))::int ELSE 0 END,
                    p.t_rate + interval '5 seconds' AS created_at
                FROM (SELECT *, t_rate < %(end_ts)s - interval '14 days' AS old
                      FROM bench_plan) p
                JOIN support_ticket t ON t.id = p.id
                JOIN support_message m
                  ON m.ticket_id = p.id AND NOT m.is_internal
                 AND m.sender_kind IN ('ai', 'agent')
                 AND m.created_at = coalesce(p.t_ag2, p.t_ag, p.t_ai2, p.t_ai)
                WHERE p.t_rate < %(end_ts)s AND p.rating >= 4
            ) x ORDER BY x.created_at""",
            self.p,
        )

    def searches(self) -> None:
        if not self.p["searches"]:
            return
        gap = text_array(GAP_SEARCHES)
        common = text_array(SEARCHES)
        self.sql(
            "help-center searches",
            f"""INSERT INTO knowledge_searchlog (
                query, source, result_count, best_similarity, top_article_id, user_id,
                created_at)
            WITH s AS MATERIALIZED (
                SELECT d.idx, d.day, d.dow, k, random() AS u_t1, random() AS u_t2,
                       random() AS u_t3, random() AS u_q, random() AS u_src, random() AS u_user,
                       random() AS u_res, random() AS u_sim, random() AS u_art
                FROM bench_days d CROSS JOIN LATERAL generate_series(1, d.s) k
            ), x AS (
                SELECT s.*, u_q < 0.08 AS is_gap,
                       {pick("u_src", [("help_center", 0.7), ("api", 0.1), ("ai", 0.2)])}
                           AS source,
                       CASE WHEN u_t3 < 0.8 THEN 47000 + 12000 * pg_temp.bench_z(u_t1, u_t2)
                            ELSE 86400 * u_t1 END AS tod_raw
                FROM s
            )
            SELECT
                CASE WHEN is_gap THEN ({gap})[1 + floor(u_q / 0.08 * {len(GAP_SEARCHES)})::int]
                     ELSE ({common})[1 + floor(power((u_q - 0.08) / 0.92, 1.5)
                                                * {len(SEARCHES)})::int] END,
                source,
                CASE WHEN is_gap THEN floor(3 * u_res)::int ELSE 1 + floor(9 * u_res)::int END,
                CASE WHEN is_gap AND u_res < 1 / 3.0 THEN NULL
                     WHEN is_gap THEN round((0.2 + 0.15 * u_sim)::numeric, 4)::float8
                     ELSE round((0.45 + 0.5 * u_sim)::numeric, 4)::float8 END,
                CASE WHEN is_gap AND u_res < 1 / 3.0 THEN NULL
                     ELSE (%(article_ids)s::bigint[])[
                         1 + floor(%(n_articles)s * power(u_art, 2.0))::int] END,
                CASE WHEN source = 'api' OR (source = 'help_center' AND u_user < 0.55)
                     THEN (%(customer_ids)s::bigint[])[1 + floor(%(n_customers)s * u_user)::int]
                END,
                (day + (tod_raw - 86400 * floor(tod_raw / 86400)) * interval '1 second')
                    AT TIME ZONE %(tz)s AS created_at
            FROM x ORDER BY created_at""",  # noqa: S608
            self.p,
        )

    def kb_metrics(self) -> None:
        # Views and votes drawn per article and day (popularity ~ 1/rank); impressions
        # from the day's searches; AI references counted from the AI's public answers.
        self.sql(
            "knowledge-base metrics",
            """INSERT INTO knowledge_knowledgebasemetric (
                article_id, day, views, search_impressions, ai_references, helpful_votes,
                not_helpful_votes)
            WITH r AS MATERIALIZED (
                SELECT a.idx, a.id, a.weight, a.helpful_share, d.day, d.n,
                       random() AS u1, random() AS u2, random() AS u3
                FROM bench_articles a CROSS JOIN LATERAL (
                    SELECT bd.*, a.idx AS outer_idx FROM bench_days bd ORDER BY bd.idx
                ) d
                ORDER BY a.idx, d.day
            ), refs AS (
                SELECT cited AS id,
                       (m.created_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n
                FROM support_message m CROSS JOIN LATERAL unnest(m.article_ids) cited
                WHERE m.sender_kind = 'ai' AND NOT m.is_internal
                GROUP BY 1, 2
            ), shown AS (
                SELECT top_article_id AS id,
                       (created_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n
                FROM knowledge_searchlog WHERE top_article_id IS NOT NULL
                GROUP BY 1, 2
            ), v AS (
                SELECT r.*, floor(r.n * 8 * r.weight * (0.5 + r.u1))::int AS views,
                       coalesce(refs.n, 0)::int AS ai_references,
                       coalesce(shown.n, 0)::int AS shown
                FROM r LEFT JOIN refs ON refs.id = r.id AND refs.day = r.day
                LEFT JOIN shown ON shown.id = r.id AND shown.day = r.day
            )
            SELECT id, day, views,
                   3 * shown + floor(views * 0.4 * u2)::int,
                   ai_references,
                   floor(views * 0.04 * helpful_share * (0.5 + u3))::int,
                   floor(views * 0.04 * (1 - helpful_share) * (0.5 + u3))::int
            FROM v
            WHERE views + shown + ai_references > 0
            ORDER BY day, id""",
            self.p,
        )
        self.sql(
            "article totals",
            """UPDATE knowledge_article a SET view_count = s.views,
                      helpful_count = s.helpful, not_helpful_count = s.not_helpful
               FROM (SELECT article_id, sum(views) AS views, sum(helpful_votes) AS helpful,
                            sum(not_helpful_votes) AS not_helpful
                     FROM knowledge_knowledgebasemetric GROUP BY article_id) s
               WHERE s.article_id = a.id""",
        )

    def finish(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            for table in BULK_TABLES:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                    f" coalesce((SELECT max(id) FROM {table}), 1))"
                )


# ======================================================================================
# Facts about the data and the machine
# ======================================================================================


def data_facts() -> dict:
    from django.db import connection

    facts = {}
    with connection.cursor() as cursor:
        for table in BIG_TABLES:
            cursor.execute(
                f"SELECT (SELECT count(*) FROM {table}),"  # noqa: S608  (a constant name)
                " pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
                [table, table],
            )
            rows, total, heap = cursor.fetchone()
            facts[table] = {"rows": rows, "total_mb": total // 2**20, "heap_mb": heap // 2**20}
        cursor.execute("SELECT pg_database_size(current_database())")
        facts["database_mb"] = cursor.fetchone()[0] // 2**20
    return facts


def ticket_facts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*), min(created_at), max(created_at),
                      count(*) FILTER (WHERE status IN ('resolved', 'closed')),
                      count(*) FILTER (WHERE satisfaction_rating IS NOT NULL),
                      count(*) FILTER (WHERE reopened_count > 0),
                      count(*) FILTER (WHERE assignee_id IS NOT NULL)
               FROM support_ticket"""
        )
        n, first, last, done, rated, reopened, assigned = cursor.fetchone()
        cursor.execute(
            "SELECT count(DISTINCT ticket_id) FROM support_ticketevent WHERE kind = 'escalated'"
        )
        escalated = cursor.fetchone()[0]
        cursor.execute(
            "SELECT kind, count(*) FROM support_ticketevent GROUP BY kind ORDER BY 2 DESC"
        )
        kinds = dict(cursor.fetchall())
        cursor.execute(
            "SELECT ai_model, count(*) FROM support_message WHERE ai_model <> ''"
            " GROUP BY 1 ORDER BY 2 DESC"
        )
        models = dict(cursor.fetchall())
    share = (lambda k: round(k / n, 3)) if n else (lambda k: None)
    return {
        "tickets": n,
        "first_created": first.isoformat() if first else None,
        "last_created": last.isoformat() if last else None,
        "resolved_share": share(done),
        "escalated_share": share(escalated),
        "reopened_share": share(reopened),
        "rated_share": share(rated),
        "assigned_share": share(assigned),
        "events_by_kind": kinds,
        "ai_messages_by_model": models,
    }


def database_facts() -> dict:
    from django.db import connection

    facts = {}
    with connection.cursor() as cursor:
        for name in (
            "server_version",
            "shared_buffers",
            "work_mem",
            "effective_cache_size",
            "max_parallel_workers_per_gather",
            "random_page_cost",
            "jit",
        ):
            cursor.execute(f"SHOW {name}")
            facts[name] = cursor.fetchone()[0]
    return facts


def code_facts() -> dict:
    """Fingerprint of the analytics code measured (it changes while it is written)."""
    import hashlib

    files = ["analytics/services.py", "analytics/views.py", "analytics/selectors.py"]
    digest = hashlib.sha1(usedforsecurity=False)
    for name in files:
        path = BASE_DIR / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    return {"files": files, "sha1": digest.hexdigest()[:12]}


def machine_facts() -> dict:
    memory = cpu = "?"
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
        memory = f"{kb / 2**20:.1f} GiB"
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo)
        cpu = found.group(1).strip() if found else "?"
    except (OSError, AttributeError):
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "memory": memory, "cpu": cpu}


# ======================================================================================
# Measurements
# ======================================================================================


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def captured(fn, *args, **kwargs) -> tuple[float, object, list[dict]]:
    """Run once recording every query: its SQL (CaptureQueriesContext, which rounds times
    to the millisecond) and its time measured to the microsecond around the driver call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    durations: list[float] = []

    def clock(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            durations.append(time.perf_counter() - started)

    with CaptureQueriesContext(connection) as context, connection.execute_wrapper(clock):
        seconds, result = timed(fn, *args, **kwargs)
    queries = [dict(q) for q in context.captured_queries]
    if len(durations) == len(queries):
        for query, duration in zip(queries, durations, strict=True):
            query["time"] = f"{duration:.6f}"
    return seconds, result, queries


_PLAN_SCAN = re.compile(r"(Parallel )?Seq Scan on (\w+)")
_FILTER = re.compile(r"^\s*Filter: (.*)$")


def explain(sql: str, analyze: bool) -> list[str]:
    """The plan of a captured statement; with ANALYZE it runs, in a rolled-back
    transaction (the rollup's statements write)."""
    from django.db import connection, transaction

    options = "ANALYZE, BUFFERS, " if analyze else ""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN ({options}FORMAT TEXT) {sql}")
            plan = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return plan


def seq_scans(plan: list[str]) -> list[dict]:
    """Sequential scans of the big tables in a plan, with their filters."""
    found = []
    for number, line in enumerate(plan):
        match = _PLAN_SCAN.search(line)
        if not match or match.group(2) not in BIG_TABLES:
            continue
        condition = ""
        for following in plan[number + 1 : number + 4]:
            filtered = _FILTER.match(following)
            if filtered:
                condition = filtered.group(1)
                break
        found.append({"table": match.group(2), "node": line.strip(), "filter": condition})
    return found


_COMPARISON = re.compile(r"\(?(\w+)\)?(?:::\w+)? (=|>=|<=|<|>) '")


def existing_indexes(table: str) -> list[tuple[str, list[str], bool]]:
    """(name, key columns, partial?) of the table's indexes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT i.indexrelid::regclass::text,
                      array_agg(a.attname ORDER BY k.ord), i.indpred IS NOT NULL
               FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = %s::regclass AND k.ord <= i.indnkeyatts
               GROUP BY 1, 3""",
            [table],
        )
        return cursor.fetchall()


def index_hint(table: str, condition: str) -> str:
    """Why the scan reads the whole table and what would bound it: an index on the
    columns the filter compares to constants (equalities first, then one range), unless
    one exists already, or a range with no lower bound (all the history before the day)."""
    if not condition:
        return (
            f"no filter: every row of {table} is read (an aggregate over the whole table,"
            " e.g. a running total): split it into day-bounded queries or keep the total"
            " incrementally"
        )
    equality: list[str] = []
    ranges: dict[str, set[str]] = {}
    for column, operator in _COMPARISON.findall(condition):
        if operator == "=":
            if column not in equality:
                equality.append(column)
        else:
            ranges.setdefault(column, set()).add(operator)
    if not equality and not ranges:
        return f"the filter compares no column to a constant: {condition[:120]}"
    unbounded = [c for c, ops in ranges.items() if ops <= {"<", "<="}]
    key = [*equality, *list(ranges)[:1]]
    matching = [(n, part) for n, cols, part in existing_indexes(table) if cols[: len(key)] == key]
    covering = [name for name, part in matching if not part]
    partial = [name for name, part in matching if part]
    if unbounded:
        already = f" ({covering[0]} exists on those columns)" if covering else ""
        return (
            f"{', '.join(unbounded)} has no lower bound: the query reads all the history"
            f" before the day, a large share of the table, so no index helps{already};"
            " bound it to the day (e.g. add the day's changes to the previous day's figure)"
        )
    if covering:
        return f"{covering[0]} already covers ({', '.join(key)}): check the estimates"
    only = f" ({partial[0]} is partial: its condition does not match)" if partial else ""
    return f"CREATE INDEX ON {table} ({', '.join(key)}) would serve this filter{only}"


def analyse_queries(queries: list[dict], total_seconds: float) -> dict:
    """Slowest statements, the sequential scans of big tables in any of them (plans
    without ANALYZE), and EXPLAIN ANALYZE of the slowest when one dominates."""
    statements = [
        {"seconds": float(q["time"]), "sql": q["sql"]}
        for q in queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UPDATE", "DELETE"))
    ]
    ranked = sorted(statements, key=lambda s: -s["seconds"])
    slowest = [
        {"seconds": round(s["seconds"], 3), "sql": " ".join(s["sql"].split())[:300]}
        for s in ranked[:5]
    ]
    scans = []
    for statement in ranked:
        try:
            plan = explain(statement["sql"], analyze=False)
        except Exception as exc:
            scans.append({"error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        for scan in seq_scans(plan):
            scans.append(
                {
                    **scan,
                    "statement_seconds": round(statement["seconds"], 3),
                    "sql": " ".join(statement["sql"].split())[:300],
                    "hint": index_hint(scan["table"], scan["filter"]),
                }
            )
    dominant = None
    if ranked and ranked[0]["seconds"] >= 0.3 * total_seconds and ranked[0]["seconds"] >= 0.05:
        top = ranked[0]
        try:
            plan = explain(top["sql"], analyze=True)
        except Exception as exc:
            plan = [f"EXPLAIN ANALYZE failed: {type(exc).__name__}: {exc}"]
        dominant = {
            "seconds": round(top["seconds"], 3),
            "share": round(top["seconds"] / total_seconds, 2),
            "sql": " ".join(top["sql"].split()),
            "plan": plan,
        }
    return {"slowest": slowest, "seq_scans": scans, "dominant": dominant}


def measure_rollup(day: dt.date, runs: int) -> dict:
    from analytics.services import rollup_day

    cold, written = timed(rollup_day, day)
    warm = [timed(rollup_day, day)[0] for _ in range(runs)]
    seconds, _, queries = captured(rollup_day, day)
    return {
        "day": day.isoformat(),
        "rows_written": written,
        "cold_s": round(cold, 3),
        "warm_median_s": round(statistics.median(warm), 3),
        "warm_s": [round(w, 3) for w in warm],
        "queries": len(queries),
        "db_time_s": round(sum(float(q["time"]) for q in queries), 3),
        "analysis": analyse_queries(queries, seconds),
    }


def backfill(days: list[dt.date]) -> dict:
    from analytics.services import rollup_day

    per_day = []
    started = time.perf_counter()
    for number, day in enumerate(days, start=1):
        per_day.append(timed(rollup_day, day)[0])
        if number % 10 == 0 or number == len(days):
            log(f"    {number}/{len(days)} days, {time.perf_counter() - started:.0f} s")
    return {
        "days": len(days),
        "first": days[0].isoformat() if days else None,
        "last": days[-1].isoformat() if days else None,
        "total_s": round(time.perf_counter() - started, 1),
        "mean_s": round(statistics.fmean(per_day), 3) if per_day else None,
        "max_s": round(max(per_day), 3) if per_day else None,
    }


def measure_overview(admin, start: dt.date, end: dt.date, runs: int) -> dict:
    from django.test import Client

    client = Client()
    client.force_login(admin)
    url = f"/dashboards/?start={start.isoformat()}&end={end.isoformat()}"
    first, response = timed(client.get, url)
    if response.status_code != 200:
        return {"url": url, "status": response.status_code, "error": "not a 200 response"}
    times = [timed(client.get, url)[0] for _ in range(runs)]
    _, response, queries = captured(client.get, url)
    ranked = sorted(queries, key=lambda q: -float(q["time"]))
    return {
        "url": url,
        "status": response.status_code,
        "bytes": len(response.content),
        "first_ms": round(first * 1000, 1),
        "median_ms": round(statistics.median(times) * 1000, 1),
        "p90_ms": round(percentile(times, 90) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "queries": len(queries),
        "db_ms": round(sum(float(q["time"]) for q in queries) * 1000, 1),
        "slowest": [
            {"ms": round(float(q["time"]) * 1000, 1), "sql": " ".join(q["sql"].split())[:200]}
            for q in ranked[:3]
        ],
    }


def analytics_ready() -> tuple[bool, bool]:
    """Whether rollup_day and the /dashboards/ URL exist yet (being written meanwhile)."""
    try:
        from analytics.services import rollup_day  # noqa: F401

        has_rollup = True
    except ImportError as exc:
        log(f"analytics.services.rollup_day cannot be imported: {exc}")
        has_rollup = False
    from django.urls import Resolver404, resolve

    try:
        resolve("/dashboards/")
        has_dashboard = True
    except Resolver404:
        has_dashboard = False
    return has_rollup, has_dashboard


def measure(args, admin_id: int) -> dict:
    from django.contrib.auth.models import User

    has_rollup, has_dashboard = analytics_ready()
    end = args.end
    result: dict = {"rollup_day_available": has_rollup, "dashboard_available": has_dashboard}
    if has_rollup:
        day = args.day or (end - dt.timedelta(days=DAYS // 2 + 1))
        log(f"rollup_day({day}): cold run, then {args.rollup_runs} …")
        result["rollup"] = measure_rollup(day, args.rollup_runs)
        recent = [end - dt.timedelta(days=n) for n in range(args.backfill_days, 0, -1)]
        log(f"backfill of the last {len(recent)} days …")
        result["backfill_recent"] = backfill(recent)
        if args.year_backfill:
            rest = [end - dt.timedelta(days=n) for n in range(DAYS, args.backfill_days, -1)]
            log(f"backfill of the rest of the year ({len(rest)} days) for the year overview …")
            result["backfill_rest_of_year"] = backfill(rest)
    if has_dashboard:
        admin = User.objects.get(pk=admin_id)
        last = end - dt.timedelta(days=1)
        for label, first in (
            ("last_30_days", end - dt.timedelta(days=30)),
            ("whole_year", end - dt.timedelta(days=DAYS)),
        ):
            log(f"GET overview, {label} …")
            result[f"overview_{label}"] = measure_overview(admin, first, last, args.requests)
    return result


# ======================================================================================
# Report
# ======================================================================================


def report(result: dict) -> str:
    machine, db, data = result["machine"], result["database"], result["data"]
    tickets = result["tickets"]
    lines = [
        f"Analytics rollups over {tickets['tickets']:,} tickets"
        f" ({tickets['first_created'][:10]} … {tickets['last_created'][:10]},"
        f" time zone {result['time_zone']})",
        f"  machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory']} RAM;"
        f" PostgreSQL {db['server_version']}, shared_buffers {db['shared_buffers']},"
        f" work_mem {db['work_mem']}, jit {db['jit']}",
        f"  command: {result['command']}",
        f"  analytics code measured: sha1 {result['analytics_code']['sha1']} of"
        f" {', '.join(result['analytics_code']['files'])}",
    ]
    generation = result.get("generation")
    if generation and generation.get("generated_this_run"):
        lines.append(f"  generated this run in {generation['generation_s']:.0f} s:")
    elif generation:
        lines.append(
            f"  reused data generated {generation.get('generated_at', '?')}"
            f" in {generation.get('generation_s', '?')} s:"
        )
    if generation:
        steps = generation.get("steps_s", {})
        lines.append("    " + ", ".join(f"{k} {v} s" for k, v in steps.items()))
    lines.append(
        f"  shares of tickets: resolved {tickets['resolved_share']}, escalated"
        f" {tickets['escalated_share']}, reopened {tickets['reopened_share']},"
        f" rated {tickets['rated_share']}"
    )
    lines.append("  rows (MB with indexes):")
    for table in BIG_TABLES:
        facts = data[table]
        lines.append(f"    {table:<32}{facts['rows']:>12,}{facts['total_mb']:>8,} MB")
    lines.append(f"    database {data['database_mb']:,} MB")

    m = result["measurements"]
    if m and not m.get("rollup_day_available"):
        lines.append("\nanalytics.services.rollup_day does not exist yet: rollups not measured.")
    if "rollup" in m:
        r = m["rollup"]
        lines += [
            "",
            f"rollup_day({r['day']}): cold {r['cold_s']:.3f} s, warm median"
            f" {r['warm_median_s']:.3f} s of {len(r['warm_s'])} {r['warm_s']};"
            f" {r['queries']} queries, {r['db_time_s']:.3f} s in SQL; rows {r['rows_written']}",
            "  slowest statements:",
        ]
        analysis = r["analysis"]
        for s in analysis["slowest"]:
            lines.append(f"    {s['seconds']:7.3f} s  {s['sql'][:150]}")
        if analysis["seq_scans"]:
            lines.append("  sequential scans of big tables in the rollup's plans:")
            for scan in analysis["seq_scans"]:
                if "error" in scan:
                    lines.append(f"    (EXPLAIN failed: {scan['error']})")
                    continue
                lines.append(
                    f"    {scan['table']} in a {scan['statement_seconds']:.3f} s statement:"
                    f" {scan['filter'][:160] or '(no filter)'}"
                )
                lines.append(f"      → {scan['hint']}")
        if analysis["dominant"]:
            d = analysis["dominant"]
            lines += [
                f"  the slowest statement dominates ({d['share']:.0%} of the rollup,"
                f" {d['seconds']:.3f} s): EXPLAIN (ANALYZE, BUFFERS):",
                *("    " + line for line in d["plan"]),
            ]
    for key, label in (
        ("backfill_recent", "backfill, last days"),
        ("backfill_rest_of_year", "backfill, rest of the year"),
    ):
        if m.get(key, {}).get("days"):
            b = m[key]
            lines.append(
                f"{label}: {b['days']} days ({b['first']} … {b['last']}) in {b['total_s']} s"
                f" (mean {b['mean_s']} s, max {b['max_s']} s per day)"
            )
    if m and not m.get("dashboard_available"):
        lines.append("\n/dashboards/ is not routed yet: the overview was not measured.")
    for key in ("overview_last_30_days", "overview_whole_year"):
        if key not in m:
            continue
        o = m[key]
        lines.append("")
        if "error" in o:
            lines.append(f"GET {o['url']}: HTTP {o['status']} ({o['error']})")
            continue
        lines.append(
            f"GET {o['url']}: first {o['first_ms']} ms, median {o['median_ms']} ms"
            f" (p90 {o['p90_ms']}, max {o['max_ms']}) of {result['requests']};"
            f" {o['queries']} queries ({o['db_ms']} ms in SQL), {o['bytes']:,} bytes"
        )
        for s in o["slowest"]:
            lines.append(f"    {s['ms']:7.1f} ms  {s['sql'][:150]}")
    return "\n".join(lines)


# ======================================================================================
# Main
# ======================================================================================


def facts_match(facts: dict, args) -> bool:
    return (
        facts.get("complete") is True
        and facts.get("tickets") == args.tickets
        and facts.get("end") == args.end.isoformat()
        and facts.get("seed") == SEED
        and facts.get("customers") == args.customers
        and facts.get("organizations") == args.organizations
        and facts.get("agents") == args.agents
        and facts.get("articles") == args.articles
        and facts.get("searches") == args.searches
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=DEFAULT_END,
                        help="first day after the data (default %(default)s)")  # fmt: skip
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--organizations", type=int, default=20)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--searches", type=int, default=400_000)
    parser.add_argument("--reuse", action="store_true",
                        help="skip generation when the same data is already there")  # fmt: skip
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=None,
                        help="day of the single-day rollup (default: mid-year)")  # fmt: skip
    parser.add_argument("--rollup-runs", type=int, default=5)
    parser.add_argument("--backfill-days", type=int, default=90)
    parser.add_argument("--no-year-backfill", dest="year_backfill", action="store_false",
                        help="skip rolling up the rest of the year (year overview)")  # fmt: skip
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    if args.agents < 2:
        parser.error("--agents must be at least 2 (General and Billing teams)")

    root = services_dir()
    pg, _ = configure_environment(root)
    facts_file = root / FACTS_FILE
    facts = json.loads(facts_file.read_text()) if facts_file.exists() else {}
    reuse = args.reuse and facts_match(facts, args) and database_exists(pg)
    if not reuse:
        if args.reuse:
            log("--reuse: no matching data in .data/bench, generating it")
        facts_file.unlink(missing_ok=True)
        recreate_database(pg)

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User

    tz = getattr(settings, "ANALYTICS_TIME_ZONE", settings.TIME_ZONE)
    if reuse:
        from django.core.management import call_command

        log(f"reusing the data generated {facts.get('generated_at')} (--reuse); migrating …")
        call_command("migrate", verbosity=0)  # analytics migrations may be newer than the data
        generation = {**facts, "generated_this_run": False}
    else:
        generator = Generator(args, tz)
        generated = generator.run()
        facts = {
            "complete": True,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "tickets": args.tickets,
            "end": args.end.isoformat(),
            "seed": SEED,
            "time_zone": tz,
            "customers": args.customers,
            "organizations": args.organizations,
            "agents": args.agents,
            "articles": args.articles,
            "searches": args.searches,
            **generated,
        }
        facts_file.write_text(json.dumps(facts, indent=2))
        generation = {**facts, "generated_this_run": True}
    if facts.get("time_zone") != tz:
        log(f"warning: data generated for time zone {facts.get('time_zone')}, settings say {tz}")
    admin_id = User.objects.get(username="bench-admin").pk

    result = {
        "command": " ".join([".venv/bin/python", "bench/analytics_rollup.py", *sys.argv[1:]]),
        "time_zone": tz,
        "requests": args.requests,
        "machine": machine_facts(),
        "analytics_code": code_facts(),
        "database": database_facts(),
        "generation": generation,
        "data": data_facts(),
        "tickets": ticket_facts(),
        "measurements": {} if args.generate_only else measure(args, admin_id),
    }
    print(json.dumps(result, indent=2, default=str) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
