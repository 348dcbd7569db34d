"""Ticket creation through the API, side by side: this project against django-helpdesk.

Issue 21 asks for at least 3x the peer's create throughput, measured side by side. This
script sets both up on this machine and loads them the same way, interleaved:

- **the peer**: django-helpdesk 2.6.1 from PyPI in its own virtualenv
  (``.data/bench-peer/venv``, made with ``python3.11 -m venv``; Django, Django REST
  framework, psycopg, psycopg-pool, uvicorn, httptools and uvloop at the versions of this
  project's ``requirements.lock``), with a minimal generated Django project
  (``.data/bench-peer/peersite``: standard middleware, ``helpdesk/`` included, DRF token
  authentication, ``HELPDESK_TEAMS_MODE_ENABLED = False`` so that pinax-teams is not
  needed). Its REST API is on by default in 2.6.1 (``HELPDESK_API_ENABLED``; there is no
  ``HELPDESK_ACTIVATE_API_ENDPOINT`` setting in that release): ``POST /helpdesk/api/tickets/``
  needs a staff user (``IsAdminUser``) and takes ``queue``, ``title``, ``description``
  (plus the optional ``submitter_email``, ``priority``…); the serializer hands them to the
  web form (``TicketForm.save``), which writes the ticket and its first follow-up and sends
  the submitter's notification mail in the request. The benchmark creates tickets as a
  staff user with a token, in one queue, with a submitter address.
- **this project**: production settings (``DEBUG=false``, the database pool), the customer
  path ``POST /api/tickets/`` with a token (as ``bench/create_tickets.py``), per-user rate
  limits and ticket budget lifted, and by default a Celery worker (prefork, 2 processes)
  and beat running, as ``make run`` does: the AI analysis runs after each create.

Both are served alike: uvicorn with 2 worker processes (``--workers``), no access log,
``DEBUG`` off, a psycopg pool of 2-10 connections per process (``timeout`` 3 s,
health checks on), on one embedded PostgreSQL (``config.embedded``, in
``.data/bench-peer/servers``) with a database each: ``helpdesk`` (this project) and
``peer_bench``; both are made afresh at every start from a migrated template. Mail goes
to Django's dummy backend on both sides (built, not delivered).

Each round loads this project (A) then the peer (B) with the same client (threads with
one keep-alive ``httpx`` client each, ``--concurrency`` at a time, ``--requests`` creates),
after a warm-up of 50 creates per server; the pair's ratio is A's req/s over B's. With
the worker on, it analyses while this project is loaded and is frozen (SIGSTOP, with beat)
during the peer's runs, so its backlog never takes CPU from the peer
(``--between-runs pause``, the default; the backlog left after each run is reported), or
the next run waits until it has caught up (``--between-runs drain``: no ticket waiting for
its analysis, the outbox owes nothing; the time it took is reported; the local AI
analyses far fewer tickets per second than the API opens, so this is slow). Each run
prints ``/proc/loadavg`` before and after. SQL statements per create are counted in
process, for one create through each API after a first one (Django's test client, the
same token and body, a statement wrapper on the connection: everything sent through
Django's cursors, after-commit work included, not the transactions' BEGIN/COMMIT), on
each side's own virtualenv and settings, with this project's Valkey commands for it
(``INFO commandstats``, connection handshakes left out). The CPU milliseconds per create
of each side's uvicorn processes and of PostgreSQL are measured around each run (psutil):
they move much less with the machine's other work than req/s.

From the project folder (installs the peer on first use, about a minute):

    .venv/bin/python bench/peer_create.py                    # 3 pairs of 2,000 creates, c=8
    .venv/bin/python bench/peer_create.py --requests 300     # quick check
    .venv/bin/python bench/peer_create.py --worker both      # with and without the worker
    .venv/bin/python -m config.embedded stop --dir .data/bench-peer/servers

The figures are printed as a table and kept in ``.data/bench-peer/results-<time>.json``;
the servers' logs are in ``.data/bench-peer/logs``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402

from bench.common import log, percentile  # noqa: E402
from config import embedded  # noqa: E402
from tests.servers import celery_worker_command, free_port, uvicorn_command  # noqa: E402

ROOT = BASE_DIR / ".data" / "bench-peer"
VENV = ROOT / "venv"
PEER_PYTHON = VENV / "bin" / "python"
PEER_SITE = ROOT / "peersite"
SERVERS = ROOT / "servers"
LOGS = ROOT / "logs"

PEER_PACKAGE = "django-helpdesk==2.6.1"
# Installed in the peer's virtualenv at the versions this project locks.
SHARED_PINS = (
    "Django",
    "djangorestframework",
    "asgiref",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "uvicorn",
    "httptools",
    "uvloop",
    "websockets",  # uvicorn's --ws implementation in `make run`'s command line
)
PROJECT_DB = embedded.DATABASE_NAME
PEER_DB = "peer_bench"
WEB_WORKERS = 2  # as `make run`
WARM_UP = 50
DESCRIPTION = "The export to CSV stops at 10,000 rows; is there a limit?"
# Tickets the AI has not finished with (as tests/faults/test_outbox_faults.py).
UNFINISHED = ["new", "analyzing", "ai_responding"]
DUMMY_MAIL = "django.core.mail.backends.dummy.EmailBackend"


# ======================================================================================
# The peer: virtualenv and generated Django project
# ======================================================================================


def peer_requirements() -> list[str]:
    lock = (BASE_DIR / "requirements.lock").read_text()
    pins = []
    for name in SHARED_PINS:
        match = re.search(rf"^{re.escape(name)}==(\S+)", lock, re.MULTILINE | re.IGNORECASE)
        if match is None:
            raise SystemExit(f"{name} is not pinned in requirements.lock")
        pins.append(f"{name}=={match.group(1)}")
    return [PEER_PACKAGE, *pins]


def ensure_peer_venv() -> None:
    """The peer's own virtualenv (never this project's .venv), installed from PyPI."""
    requirements = peer_requirements()
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == "\n".join(requirements):
        return
    log(f"installing {', '.join(requirements)} into {VENV}")
    if not PEER_PYTHON.exists():
        subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)  # noqa: S603, S607
    pip = [str(PEER_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)  # noqa: S603
    subprocess.run([*pip, *requirements], check=True)  # noqa: S603
    stamp.write_text("\n".join(requirements))


PEER_SETTINGS = '''\
"""Generated by bench/peer_create.py: django-helpdesk as its install guide sets it up,
in production mode, with the database settings of the project it is compared with."""

import os

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "peersite.urls"
ASGI_APPLICATION = "peersite.asgi.application"
SITE_ID = 1
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_ROOT = os.environ["MEDIA_ROOT"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
DEFAULT_FROM_EMAIL = "helpdesk@example.com"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "helpdesk",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PEER_DB_NAME"],
        "USER": os.environ["PEER_DB_USER"],
        "HOST": os.environ["PEER_DB_HOST"],
        "PORT": os.environ["PEER_DB_PORT"],
        "ATOMIC_REQUESTS": False,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        # The pool of the project it is compared with (config/settings.py).
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 10, "timeout": 3.0}},
    }
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
# Teams need pinax-teams (an extra); the API does not use them.
HELPDESK_TEAMS_MODE_ENABLED = False
'''

PEER_URLS = """\
from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("helpdesk/", include("helpdesk.urls", namespace="helpdesk")),
    path("health/", lambda request: HttpResponse("ok")),
]
"""

PEER_ASGI = """\
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peersite.settings")
application = get_asgi_application()
"""

PEER_MANAGE = """\
import os
import sys

from django.core.management import execute_from_command_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peersite.settings")
execute_from_command_line(sys.argv)
"""


def write_peer_site() -> str:
    """Write the peer's Django project; returns a fingerprint of it and the package."""
    package = PEER_SITE / "peersite"
    package.mkdir(parents=True, exist_ok=True)
    files = {
        PEER_SITE / "manage.py": PEER_MANAGE,
        package / "__init__.py": "",
        package / "settings.py": PEER_SETTINGS,
        package / "urls.py": PEER_URLS,
        package / "asgi.py": PEER_ASGI,
    }
    for path, text in files.items():
        path.write_text(text)
    return hashlib.sha256((PEER_PACKAGE + PEER_SETTINGS).encode()).hexdigest()[:16]


# ======================================================================================
# Databases
# ======================================================================================


@dataclass
class Postgres:
    socket_dir: str
    port: int
    pid: int  # the postmaster's

    def admin(self, query: str, params=None) -> list:
        conninfo = f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def sql(self, database: str, query: str, params=None) -> list:
        conninfo = f"host={self.socket_dir} port={self.port} user=postgres dbname={database}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def fresh_database(self, name: str, fingerprint: str, migrate) -> None:
        """An empty, migrated ``name``, copied from a template that is migrated again
        only when ``fingerprint`` (the migrations, the peer's version) changed."""
        template = f"{name}_migrated"
        rows = self.admin(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [template],
        )
        if not rows or rows[0][0] != fingerprint:
            self.admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.admin(f'CREATE DATABASE "{name}"')
            log(f"migrating {name} (once per migration change)")
            migrate()
            self.admin(f'ALTER DATABASE "{name}" RENAME TO "{template}"')
            self.admin(f"COMMENT ON DATABASE \"{template}\" IS '{fingerprint}'")
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def project_migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(BASE_DIR.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(BASE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# ======================================================================================
# The two sides
# ======================================================================================


@dataclass
class Side:
    """One helpdesk under test: how to run its Python, its server and one create."""

    name: str
    python: str
    cwd: Path
    env: dict[str, str]
    app: str
    create_path: str
    title_key: str  # the field of the ticket's title in a create
    token: str = ""
    body_extra: dict = field(default_factory=dict)
    url: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(  # noqa: S603 (our own command lines)
            [self.python, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{self.name}: {' '.join(args)[:80]} failed:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def manage(self, *args: str, timeout: float = 600) -> str:
        return self.run("manage.py", *args, timeout=timeout)

    def body(self, i: int) -> dict:
        title = f"Benchmark ticket {i}"
        return {
            **self.body_extra,
            self.title_key: title,
            "description": DESCRIPTION,
        }

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(LOGS / f"{self.name}-{name}.log", "ab") as out:
            out.write(f"---- {name} started at {time.strftime('%H:%M:%S')} ----\n".encode())
            out.flush()
            process = subprocess.Popen(  # noqa: S603
                command, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes[name] = process
        return process

    def web_start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = uvicorn_command(port, "--workers", str(WEB_WORKERS), "--log-level", "warning")
        command[0:4] = [self.python, "-m", "uvicorn", self.app]  # this side's Python and app
        process = self.spawn("web", command)
        wait_http(f"{self.url}/health/", process, LOGS / f"{self.name}-web.log")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            with contextlib.suppress(Exception):
                self.stop(name)


def wait_http(url: str, process: subprocess.Popen, log_file: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log_file.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} not up in {timeout} s")
        time.sleep(0.2)


def base_env() -> dict[str, str]:
    """This environment without test, Django, Celery or helpdesk settings of its own."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTEST_VERSION", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER"}
        and not key.startswith(("DJANGO_", "CELERY_", "HELPDESK_", "EMAIL_", "DATABASE_"))
        and key not in {"REDIS_URL", "VIRTUAL_ENV", "PYTHONPATH"}
    }


def project_side(pg: Postgres, redis_url: str) -> Side:
    env = base_env()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        HELPDESK_ENV_FILE="",
        DEBUG="false",
        SECRET_KEY=f"bench-{secrets.token_urlsafe(40)}",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        DATABASE_URL=embedded.socket_database_url("postgres", pg.socket_dir, pg.port, PROJECT_DB),
        REDIS_URL=redis_url,
        DATABASE_POOL="true",
        HELPDESK_SERVICES_DIR=str(SERVERS),
        STATIC_ROOT=str(ROOT / "static"),
        MEDIA_ROOT=str(ROOT / "media-project"),
        EMAIL_BACKEND=DUMMY_MAIL,
        LOG_LEVEL="WARNING",
        # The per-user limits would stop a benchmark after 60 tickets.
        API_THROTTLE_TICKET_CREATE="1000000/hour",
        API_THROTTLE_USER="1000000/min",
        HELPDESK_TICKETS_PER_HOUR_PER_USER="1000000",
        HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS="1000000",
    )
    return Side(
        name="project",
        python=sys.executable,
        cwd=BASE_DIR,
        env=env,
        app="config.asgi:application",
        create_path="/api/tickets/",
        title_key="subject",
        body_extra={"type": "general"},
    )


def peer_side(pg: Postgres) -> Side:
    env = base_env()
    env.update(
        DJANGO_SETTINGS_MODULE="peersite.settings",
        SECRET_KEY=f"bench-{secrets.token_urlsafe(40)}",
        MEDIA_ROOT=str(ROOT / "media-peer"),
        PEER_DB_NAME=PEER_DB,
        PEER_DB_USER="postgres",
        PEER_DB_HOST=pg.socket_dir,
        PEER_DB_PORT=str(pg.port),
    )
    return Side(
        name="peer",
        python=str(PEER_PYTHON),
        cwd=PEER_SITE,
        env=env,
        app="peersite.asgi:application",
        create_path="/helpdesk/api/tickets/",
        title_key="title",
    )


PROJECT_USER = """
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user, _ = get_user_model().objects.get_or_create(
    username="bench-customer", defaults={"email": "bench-customer@example.com"})
EmailAddress.objects.update_or_create(user=user, email=user.email,
    defaults={"verified": True, "primary": True})
print("TOKEN=" + Token.objects.get_or_create(user=user)[0].key)
"""

PEER_USER = """
from django.contrib.auth import get_user_model
from helpdesk.models import Queue
from rest_framework.authtoken.models import Token
queue, _ = Queue.objects.get_or_create(slug="support", defaults={"title": "Support"})
user, _ = get_user_model().objects.get_or_create(
    username="bench-agent",
    defaults={"email": "bench-agent@example.com", "is_staff": True})
print("QUEUE=%d" % queue.id)
print("TOKEN=" + Token.objects.get_or_create(user=user)[0].key)
"""


def printed(output: str, key: str) -> str:
    return next(line[len(key) + 1 :] for line in output.splitlines() if line.startswith(key + "="))


def prepare_project(side: Side, pg: Postgres) -> None:
    pg.fresh_database(
        PROJECT_DB,
        project_migrations_fingerprint(),
        lambda: side.manage("migrate", "--noinput", timeout=1200),
    )
    side.token = printed(side.manage("shell", "-c", PROJECT_USER), "TOKEN")


def prepare_peer(side: Side, pg: Postgres, fingerprint: str) -> None:
    pg.fresh_database(PEER_DB, fingerprint, lambda: side.manage("migrate", "--noinput"))
    out = side.manage("shell", "-c", PEER_USER)
    side.token = printed(out, "TOKEN")
    side.body_extra = {
        "queue": int(printed(out, "QUEUE")),
        "submitter_email": "customer@example.com",
        "priority": 3,
    }


# ======================================================================================
# Celery worker and beat of this project (as `make run`)
# ======================================================================================


def worker_start(side: Side, timeout: float = 120) -> None:
    log_file = LOGS / "project-worker.log"
    marker = log_file.stat().st_size if log_file.exists() else 0
    process = side.spawn(
        "worker",
        celery_worker_command(
            pool="prefork", concurrency=2, hostname=f"bench-peer-{time.monotonic_ns()}@%h"
        ),
    )
    deadline = time.monotonic() + timeout
    while "ready." not in log_file.read_text(errors="replace")[marker:]:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"Celery worker not ready:\n{log_file.read_text()[-3000:]}")
        time.sleep(0.3)
    side.spawn(
        "beat",
        [
            *(side.python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"),
            *("--schedule", str(ROOT / "celerybeat-schedule"), "--pidfile="),
        ],
    )


def worker_stop(side: Side) -> None:
    side.stop("beat")
    side.stop("worker")


def worker_signal(side: Side, signum: int) -> None:
    """SIGSTOP / SIGCONT this project's worker (main process and pool) and beat."""
    for name in ("worker", "beat"):
        process = side.processes.get(name)
        if process is None or process.poll() is not None:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            main = psutil.Process(process.pid)
            for one in (main, *main.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    one.send_signal(signum)


def owed(pg: Postgres) -> int:
    """Tickets still waiting for their analysis, plus work the outbox still owes."""
    ((tickets,),) = pg.sql(
        PROJECT_DB, "SELECT count(*) FROM support_ticket WHERE status = ANY(%s)", [UNFINISHED]
    )
    ((outbox,),) = pg.sql(
        PROJECT_DB,
        "SELECT count(*) FROM core_outboxitem WHERE status IN ('pending', 'sent', 'running')",
    )
    return tickets + outbox


def drain(pg: Postgres, timeout: float) -> float:
    """Wait until the worker has caught up; the seconds it took."""
    started = time.monotonic()
    while (left := owed(pg)) > 0:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"the worker still owes {left} items after {timeout:.0f} s")
        time.sleep(1)
    return round(time.monotonic() - started, 1)


# ======================================================================================
# Load and SQL count
# ======================================================================================


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (uvicorn's workers, the
    postmaster's backends) so far: what a run costs, whatever else the machine runs."""
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        main = psutil.Process(pid)
        for one in (main, *main.children(recursive=True)):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = one.cpu_times()
                total += times.user + times.system
    return total


def measured_load(side: Side, pg: Postgres, requests: int, concurrency: int, start: int) -> dict:
    """``load`` plus the CPU milliseconds per create of the web server and PostgreSQL."""
    web = side.processes["web"].pid
    web_before, pg_before = cpu_seconds(web), cpu_seconds(pg.pid)
    run = load(side, requests, concurrency, start)
    created = max(run["created"], 1)
    run["web_cpu_ms"] = round((cpu_seconds(web) - web_before) * 1000 / created, 1)
    run["pg_cpu_ms"] = round((cpu_seconds(pg.pid) - pg_before) * 1000 / created, 1)
    return run


def load(side: Side, requests: int, concurrency: int, start: int = 0) -> dict:
    """``requests`` creates through ``side``'s API, ``concurrency`` at a time."""
    local = threading.local()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    clients: list[httpx.Client] = []

    def create(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(
                base_url=side.url, headers=side.headers, timeout=60
            )
            with lock:
                clients.append(client)
        started = time.perf_counter()
        try:
            response = client.post(side.create_path, json=side.body(i))
            outcome = None if response.status_code == 201 else response.text[:200]
            outcome = outcome and f"{response.status_code} {outcome}"
        except httpx.HTTPError as error:
            outcome = repr(error)
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            if outcome is None:
                latencies.append(elapsed)
            else:
                failures.append(outcome)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(create, range(start, start + requests)))
    wall = time.perf_counter() - started
    for client in clients:
        client.close()
    return {
        "side": side.name,
        "created": len(latencies),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "seconds": round(wall, 1),
        "req_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        "loadavg_after": loadavg(),
    }


# Runs in each side's own Python: one create through the API in process (Django's test
# client, the benchmark's token and body), counting every SQL statement on the connection
# from the request's start to the end of its after-commit callbacks, and the commands the
# side's Valkey processed meanwhile (REDIS_URL: this project only; nothing else uses it then;
# connection handshakes left out, as a long-running server reuses its connections).
COUNT_QUERIES = """
import collections, json, os, sys
import django
django.setup()
from django.db import connection
from django.test import Client

path, token, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = Client(HTTP_AUTHORIZATION="Token " + token, SERVER_NAME="127.0.0.1")
assert client.post(path, body, content_type="application/json").status_code == 201  # warm
statements = []

def count(execute, sql, params, many, context):
    statements.append(sql)
    return execute(sql, params, many, context)

# Valkey's per-command call counts (only this project has one); connection handshakes
# (a new event loop's channel-layer connection, this script's own INFO) left out.
HANDSHAKE = {"hello", "client|setinfo", "select", "ping", "info", "auth"}
valkey = None
if os.environ.get("REDIS_URL"):
    import redis
    valkey = redis.Redis.from_url(os.environ["REDIS_URL"])

def redis_calls():
    if valkey is None:
        return collections.Counter()
    stats = valkey.info("commandstats")
    return collections.Counter({k[len("cmdstat_"):]: v["calls"] for k, v in stats.items()})

body["title" if "title" in body else "subject"] += " (counted)"
redis_before = redis_calls()
with connection.execute_wrapper(count):
    status = client.post(path, body, content_type="application/json").status_code
redis = {k: n for k, n in (redis_calls() - redis_before).items() if k not in HANDSHAKE}
kinds = collections.Counter(s.split(None, 1)[0].upper() for s in statements)
print("RESULT=" + json.dumps(
    {"status": status, "queries": len(statements), "by_kind": kinds,
     "redis_commands": sum(redis.values()), "redis_by_command": redis}
))
"""


def count_queries(side: Side) -> dict:
    out = side.run("-c", COUNT_QUERIES, side.create_path, side.token, json.dumps(side.body(-1)))
    result = json.loads(printed(out, "RESULT"))
    if result["status"] != 201:
        raise SystemExit(f"{side.name}: the counted create answered {result['status']}")
    return result


# ======================================================================================
# Main
# ======================================================================================


def run_mode(project: Side, peer: Side, pg: Postgres, args, with_worker: bool) -> dict:
    label = "with worker+beat" if with_worker else "without worker"
    if with_worker:
        worker_start(project)
        drain(pg, args.drain_timeout)  # the warm-up's tickets
    pairs = []
    for round_number in range(1, args.rounds + 1):
        runs = {}
        for side in (project, peer):
            before = loadavg()
            log(f"[{label}] round {round_number} {side.name}: loadavg before {before}")
            offset = round_number * 1_000_000 + (2_000_000_000 if with_worker else 0)
            paused = with_worker and side is peer and args.between_runs == "pause"
            if paused:
                worker_signal(project, signal.SIGSTOP)
            try:
                run = measured_load(side, pg, args.requests, args.concurrency, offset)
            finally:
                if paused:
                    worker_signal(project, signal.SIGCONT)
            run["loadavg_before"] = before
            if side is project and with_worker:
                run["backlog_after"] = owed(pg)
                if args.between_runs == "drain":
                    run["worker_catch_up_s"] = drain(pg, args.drain_timeout)
            log(f"  {json.dumps(run)}")
            if run["failures"]:
                raise SystemExit(f"{side.name}: {run['failures']} failures: {run['first_failure']}")
            runs[side.name] = run
        runs["ratio"] = round(runs["project"]["req_per_s"] / runs["peer"]["req_per_s"], 2)
        pairs.append(runs)
    if with_worker:
        worker_stop(project)
    return {
        "mode": label,
        "pairs": pairs,
        "median_ratio": statistics.median(p["ratio"] for p in pairs),
        **{
            f"median_{key}": {
                name: statistics.median(p[name][key] for p in pairs) for name in ("project", "peer")
            }
            for key in ("req_per_s", "p50_ms", "p95_ms", "web_cpu_ms", "pg_cpu_ms")
        },
    }


COLUMNS = (  # header, key in a run, width
    ("req/s", "req_per_s", 7),
    ("p50 ms", "p50_ms", 9),
    ("p95 ms", "p95_ms", 9),
    ("web CPU", "web_cpu_ms", 9),
    ("PG CPU", "pg_cpu_ms", 8),
    ("backlog", "backlog_after", 9),
    ("catch-up s", "worker_catch_up_s", 12),
)


def report(results: dict) -> str:
    sql = results["sql"]
    lines = [
        f"{results['requests']} creates per run, concurrency {results['concurrency']}, "
        f"uvicorn {WEB_WORKERS} workers each, {results['cpus']} CPUs.",
        f"SQL statements per create: project {sql['project']['queries']} "
        f"{dict(sql['project']['by_kind'])}, peer {sql['peer']['queries']} "
        f"{dict(sql['peer']['by_kind'])}; Redis commands per create: project "
        f"{sql['project']['redis_commands']} {sql['project']['redis_by_command']} (the peer "
        "uses no Redis).",
        "web CPU / PG CPU: CPU ms per create of the uvicorn processes / of the whole "
        "PostgreSQL (with the worker, PG CPU includes its queries); backlog: what the "
        "worker still owed after the run.",
    ]
    header = "".join(f"{title:>{width}}" for title, _, width in COLUMNS)
    for mode in results["modes"]:
        lines += [f"\n{mode['mode']}:", f"{'round':<6}{'side':<9}{header}  loadavg before -> after"]
        for n, pair in enumerate(mode["pairs"], 1):
            for name in ("project", "peer"):
                run = pair[name]
                cells = "".join(f"{run.get(key, '')!s:>{width}}" for _, key, width in COLUMNS)
                lines.append(
                    f"{n:<6}{name:<9}{cells}  {run['loadavg_before']} -> {run['loadavg_after']}"
                )
            lines.append(f"{'':<6}ratio project/peer: {pair['ratio']}")
        lines.append(f"median ratio {mode['median_ratio']}; medians (project / peer):")
        lines += [
            f"  {title:<8}{mode['median_' + key]['project']:>8} / {mode['median_' + key]['peer']}"
            for title, key, _ in COLUMNS[:5]
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="creates per run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="pairs (this project, peer)")
    parser.add_argument(
        "--worker",
        choices=["with", "without", "both"],
        default="with",
        help="run this project's Celery worker and beat during its runs (as make run)",
    )
    parser.add_argument(
        "--between-runs",
        choices=["pause", "drain"],
        default="pause",
        help="with the worker: SIGSTOP it (and beat) during the peer's runs, its backlog "
        "kept (pause), or wait until it has caught up after each run of this project (drain)",
    )
    parser.add_argument("--drain-timeout", type=float, default=1800)
    args = parser.parse_args(argv)

    ensure_peer_venv()
    fingerprint = write_peer_site()
    info = embedded.ensure_postgres(SERVERS)
    redis_url = embedded.ensure_redis(SERVERS).url
    pg = Postgres(info.socket_dir, info.port, info.pid)
    project, peer = project_side(pg, redis_url), peer_side(pg)
    try:
        log("preparing databases")
        prepare_project(project, pg)
        prepare_peer(peer, pg, fingerprint)
        sql = {side.name: count_queries(side) for side in (project, peer)}
        log(f"SQL per create: {json.dumps(sql)}")
        for side in (project, peer):
            side.web_start()
            warm = load(side, WARM_UP, args.concurrency, start=-10_000)
            if warm["failures"]:
                raise SystemExit(f"{side.name} warm-up failed: {warm['first_failure']}")
        modes = {"with": [True], "without": [False], "both": [True, False]}[args.worker]
        results = {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "sql": sql,
            "cpus": os.cpu_count(),
            "modes": [run_mode(project, peer, pg, args, with_worker=w) for w in modes],
        }
    finally:
        project.stop_all()
        peer.stop_all()
    path = ROOT / f"results-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(
        f"\n(kept in {path.relative_to(BASE_DIR)}; stop the servers with "
        f"`.venv/bin/python -m config.embedded stop --dir {SERVERS.relative_to(BASE_DIR)}`)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
