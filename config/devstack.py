"""Run the whole product on one machine: ``python -m config.devstack`` (``make run``).

1. Writes a git-ignored ``.env`` on first use (``DEBUG=true`` and a random ``SECRET_KEY``).
2. Starts the embedded PostgreSQL + pgvector and Valkey (unless ``DATABASE_URL`` /
   ``REDIS_URL`` are set), reusing servers that are already running. Both keep their data
   and their address across restarts (see ``config.embedded``).
3. Migrates and loads the demo data (both idempotent). With ``DEBUG`` off (a trial in
   production mode) it collects the static files first, and loads the demo data (users
   with known passwords, ``--force``) only when ``HELPDESK_DEMO=true`` asks for it.
4. Supervises the ASGI web server (uvicorn: HTTP + WebSocket), a Celery worker and Celery
   beat (``config.supervisor``): a process that exits is restarted after 1 s, then 2, 4, …
   up to 30 s while it keeps crashing (back to 1 s once it stayed up for a minute), and the
   log says so (``worker exited with -9 (SIGKILL) after 42.0 s; restarting in 1 s``).
   Ctrl-C or SIGTERM stops all of them (SIGTERM, SIGKILL after 10 s) and the embedded
   servers this run started; servers that were already running are left running.
5. Prints the URLs and demo logins once ``/health/ready/`` answers 200.

The web workers and Celery's children write their metrics into one folder
(``PROMETHEUS_MULTIPROC_DIR``, default ``.data/prometheus``, emptied at each start), so that
``/metrics`` adds them up.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from config import embedded
from config.supervisor import Supervisor

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def ensure_dotenv(path: Path = BASE_DIR / ".env") -> None:
    """A development .env so that manage.py works on its own after the first run."""
    if path.exists() or os.environ.get("SECRET_KEY"):
        return
    path.write_text(
        "# Written by `make run` for local development. Never commit this file.\n"
        "DEBUG=true\n"
        f"SECRET_KEY=dev-{secrets.token_urlsafe(48)}\n"
    )
    print(f"Wrote {path.name} (DEBUG=true, random SECRET_KEY) for local development.")


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, str(BASE_DIR / "manage.py"), *args], check=True, env=env, cwd=BASE_DIR)


def env_flags(env: dict[str, str]) -> tuple[bool, bool]:
    """``(DEBUG, HELPDESK_DEMO)`` as the settings will read them (``.env`` included)."""
    import environ

    class Reader(environ.Env):
        ENVIRON = dict(env)  # read the .env like settings do, without touching os.environ

    env_file = env.get("HELPDESK_ENV_FILE", str(BASE_DIR / ".env"))
    if env_file and Path(env_file).is_file():
        Reader.read_env(env_file)
    reader = Reader()
    return reader.bool("DEBUG", default=False), reader.bool("HELPDESK_DEMO", default=False)


def demo_data_args(env: dict[str, str]) -> list[str] | None:
    """Arguments for ``manage.py load_demo_data``, or None to skip it: with DEBUG off (a
    production-mode trial) only when ``HELPDESK_DEMO=true`` asks, and then with ``--force``
    (its users have known passwords)."""
    debug, demo = env_flags(env)
    if debug:
        return []
    return ["--force"] if demo else None


def prepare_metrics_dir(env: dict[str, str]) -> str:
    """The folder where the web workers and Celery's children write their metrics
    (``PROMETHEUS_MULTIPROC_DIR``, default ``.data/prometheus``), emptied of an earlier
    run's files: ``/metrics`` adds up every process (``config.metrics``)."""
    folder = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or BASE_DIR / ".data" / "prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    return str(folder)


def _interrupt(signum, _frame):
    raise KeyboardInterrupt  # SIGTERM before the supervisor runs: clean up as on Ctrl-C


def wait_ready(url: str, timeout: float = 180.0) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
                return json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(1)
    return None


def banner(base_url: str, ready: dict | None) -> str:
    from support.demo import DEMO_LOGINS

    status = "all components up" if ready else "NOT READY (see the log above)"
    lines = [
        "",
        "=" * 72,
        f" Helpdesk is running at {base_url}/   ({status})",
        "=" * 72,
        f"  Customer portal   {base_url}/",
        f"  Agent workspace   {base_url}/admin/",
        f"  REST API          {base_url}/api/   (docs {base_url}/api/docs/)",
        f"  Health            {base_url}/health/ready/",
        f"  Metrics           {base_url}/metrics   (Prometheus; loopback or METRICS_TOKEN)",
        "",
        "  Demo logins (username / password):",
        *(
            f"    {d.role:<9} {d.username:<9} / {d.password:<14} {base_url}{d.where}"
            for d in DEMO_LOGINS
        ),
        "",
        "  A crashed web server, worker or beat is restarted (see the log).",
        "  Ctrl-C stops the web server, the Celery worker and beat, and the services.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.devstack", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--no-demo", action="store_true", help="skip the demo data")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "2")),
        help="uvicorn processes (Django runs sync views on one thread per process)",
    )
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)
    ensure_dotenv()
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env["PROMETHEUS_MULTIPROC_DIR"] = prepare_metrics_dir(env)
    services_dir = embedded.default_services_dir()
    started_here: list[str] = []
    if not env.get("DATABASE_URL"):
        was_running = embedded.status(services_dir)["postgres_pid"] is not None
        env["DATABASE_URL"] = embedded.ensure_postgres(services_dir).url
        if not was_running:
            started_here.append("postgres")
    if not env.get("REDIS_URL"):
        was_running = embedded.status(services_dir)["redis"] is not None
        env["REDIS_URL"] = embedded.ensure_redis(services_dir).url
        if not was_running:
            started_here.append("redis")
    print(f"PostgreSQL: {env['DATABASE_URL']}\nRedis:      {env['REDIS_URL']}")

    try:
        manage("migrate", "--noinput", env=env)
        if not env_flags(env)[0]:
            # Production mode serves fingerprinted files from STATIC_ROOT (WhiteNoise).
            manage("collectstatic", "--noinput", "-v", "0", env=env)
        demo_args = None if args.no_demo else demo_data_args(env)
        if demo_args is not None:
            manage("load_demo_data", *demo_args, env=env)
        elif not args.no_demo:
            print("DEBUG is off: demo data not loaded (HELPDESK_DEMO=true loads it).")

        supervisor = Supervisor()
        supervisor.add(
            "web",
            [
                *(PYTHON, "-m", "uvicorn", "config.asgi:application"),
                *("--host", args.host, "--port", str(args.port)),
                # Frames above 1 MiB close the socket; consumers refuse smaller ones above
                # HELPDESK_WS_MAX_MESSAGE_BYTES with an error frame.
                *("--workers", str(args.web_workers), "--ws", "websockets"),
                *("--ws-max-size", "1048576", "--no-access-log"),
            ],
            env=env,
            cwd=BASE_DIR,
        )
        supervisor.add(
            "worker",
            [
                *(PYTHON, "-m", "celery", "-A", "config", "worker"),
                *("--loglevel", "INFO", "--concurrency", "2"),
            ],
            env=env,
            cwd=BASE_DIR,
        )
        supervisor.add(
            "beat",
            [PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
            env=env,
            cwd=BASE_DIR,
        )
        # The email channel's SMTP door (INBOUND_SMTP_HOST:INBOUND_SMTP_PORT, 2525).
        supervisor.add("smtp", [PYTHON, "manage.py", "run_smtp"], env=env, cwd=BASE_DIR)

        base_url = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}"  # noqa: E501, S104

        def announce() -> None:
            ready = wait_ready(f"http://127.0.0.1:{args.port}/health/ready/")
            print(banner(base_url, ready), flush=True)

        threading.Thread(target=announce, daemon=True).start()
        return supervisor.run()
    except KeyboardInterrupt:
        return 130
    finally:
        if started_here:
            stopped = embedded.stop(services_dir)
            print(
                "Stopped embedded services: "
                + ", ".join(name for name, was in stopped.items() if was)
            )


if __name__ == "__main__":
    sys.exit(main())
