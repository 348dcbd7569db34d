"""Run the whole product on one machine: ``python -m config.devstack`` (``make run``).

1. Writes a git-ignored ``.env`` on first use (``DEBUG=true`` and a random ``SECRET_KEY``).
2. Starts the embedded PostgreSQL + pgvector and Valkey (unless ``DATABASE_URL`` /
   ``REDIS_URL`` are set), reusing servers that are already running.
3. Migrates and loads the demo data (both idempotent).
4. Supervises the ASGI web server (uvicorn: HTTP + WebSocket), a Celery worker and Celery
   beat as one group: when one exits, or on Ctrl-C, all are stopped, and so are the
   embedded servers this run started.
5. Prints the URLs and demo logins once ``/health/ready/`` answers 200.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from config import embedded

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
        "",
        "  Demo logins (username / password):",
        *(
            f"    {d.role:<9} {d.username:<9} / {d.password:<14} {base_url}{d.where}"
            for d in DEMO_LOGINS
        ),
        "",
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

    ensure_dotenv()
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
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
        if not args.no_demo:
            manage("load_demo_data", env=env)

        from honcho.manager import Manager

        manager = Manager()
        bind = f"--host {shlex.quote(args.host)} --port {args.port}"
        manager.add_process(
            "web",
            f"{shlex.quote(PYTHON)} -m uvicorn config.asgi:application {bind} "
            # Frames above 1 MiB close the socket; consumers refuse smaller ones above
            # HELPDESK_WS_MAX_MESSAGE_BYTES with an error frame.
            f"--workers {args.web_workers} --ws websockets --ws-max-size 1048576 "
            "--no-access-log",
            env=env,
            cwd=str(BASE_DIR),
        )
        manager.add_process(
            "worker",
            f"{shlex.quote(PYTHON)} -m celery -A config worker --loglevel INFO --concurrency 2",
            env=env,
            cwd=str(BASE_DIR),
        )
        manager.add_process(
            "beat",
            f"{shlex.quote(PYTHON)} -m celery -A config beat --loglevel INFO",
            env=env,
            cwd=str(BASE_DIR),
        )

        base_url = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}"  # noqa: E501, S104

        def announce() -> None:
            ready = wait_ready(f"http://127.0.0.1:{args.port}/health/ready/")
            print(banner(base_url, ready), flush=True)

        threading.Thread(target=announce, daemon=True).start()
        manager.loop()
        return manager.returncode or 0
    finally:
        if started_here:
            stopped = embedded.stop(services_dir)
            print(
                "Stopped embedded services: "
                + ", ".join(name for name, was in stopped.items() if was)
            )


if __name__ == "__main__":
    sys.exit(main())
