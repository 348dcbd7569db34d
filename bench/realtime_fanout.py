"""Broadcast fan-out over WebSocket: 1,000 live connections to one ticket.

Starts uvicorn on ``config.asgi`` (HTTP + WebSocket, as ``make run`` does) against a
database and Redis of its own, opens N concurrent WebSocket connections to
``/ws/tickets/`` as the ticket's customer (API token, as an API client would), subscribes
each one to the ticket, then has an agent reply M times through the service path
(``services.message_add``: transaction, commit, ``after_commit`` → ``realtime.publish``
→ Redis channel layer → every consumer) and reports, for each reply, the time from the
start of the service call to the moment each connection received the message:
p50/p95/max over all receipts, and per reply the time until the last connection had it.
From the project folder:

    HELPDESK_SERVICES_DIR=.data/bench .venv/bin/python bench/realtime_fanout.py
    .venv/bin/python -m config.embedded stop --dir .data/bench

The first command starts (or reuses) an embedded PostgreSQL + Valkey in ``.data/bench``
(with ``DATABASE_URL`` / ``REDIS_URL`` set it uses those instead); the second stops them.
Both the server and the replying process run with production settings (``DEBUG`` off:
cached templates, the connection pool), a throw-away ``SECRET_KEY`` and plain HTTP.
Options: ``--connections`` (1000), ``--messages`` (50), ``--interval`` seconds between
replies (0.5), ``--workers`` uvicorn processes (2, as ``make run``), ``--ws`` uvicorn's
WebSocket implementation (``websockets``, as ``make run``), ``--no-compression``
(clients do not offer permessage-deflate; browsers do), ``--json``.

The clients run in this process (one asyncio loop) and stamp each frame as it is read,
before parsing; the reply is made from a thread of the same process. Both sides use this
machine's clock. The payload is the real one (fields and the page's HTML for the message).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Never load the benchmark into the dev database by accident.
if not os.environ.get("DATABASE_URL"):
    os.environ.setdefault("HELPDESK_SERVICES_DIR", str(BASE_DIR / ".data" / "bench"))
# Production settings over plain HTTP on the loopback (the child server inherits them).
for name, value in {
    "DEBUG": "false",
    "SECRET_KEY": f"bench-{secrets.token_urlsafe(40)}",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "LOG_LEVEL": "WARNING",
    "HELPDESK_ENV_FILE": "",
}.items():
    os.environ.setdefault(name, value)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
sys.path.insert(0, str(BASE_DIR))

import django  # noqa: E402

from bench.common import log, summary  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from config.embedded import socket_database_url  # noqa: E402
from support import services  # noqa: E402

MARK = "fanout-bench"


def database_url() -> str:
    s = connection.settings_dict
    if str(s["HOST"]).startswith("/"):
        return socket_database_url(s["USER"], s["HOST"], s["PORT"], s["NAME"])
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ======================================================================================
# Fixture: a customer with a token, an agent, one ticket
# ======================================================================================


def prepare() -> tuple[str, str, object]:
    from django.contrib.auth import get_user_model

    call_command("migrate", verbosity=0)
    User = get_user_model()
    customer = User.objects.filter(username="bench-customer").first()
    if customer is None:
        customer = services.customer_register(
            username="bench-customer",
            email="bench@example.com",
            password=secrets.token_urlsafe(16),
        )
    agent, _ = User.objects.get_or_create(
        username="bench-agent", defaults={"is_staff": True, "email": "agent@example.com"}
    )
    token, _ = Token.objects.get_or_create(user=customer)
    ticket = services.ticket_open(
        requester=customer, subject="Fan-out benchmark", description="Broadcast me."
    )
    return token.key, agent, ticket


# ======================================================================================
# The server
# ======================================================================================


def start_server(port: int, workers: int, ws: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--ws",
        ws,
        "--ws-max-size",
        "1048576",
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "4096",
    ]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("uvicorn exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("uvicorn did not answer in 60 s")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


# ======================================================================================
# The clients
# ======================================================================================


class Client:
    def __init__(self, number: int):
        self.number = number
        self.received: dict[int, float] = {}  # reply number → receipt time
        self.socket = None
        self.ready = asyncio.Event()

    async def run(self, url: str, token: str, reference: str, gate: asyncio.Semaphore, compress):
        async with gate:
            self.socket = await connect(
                url,
                additional_headers={"Authorization": f"Token {token}"},
                compression="deflate" if compress else None,
                open_timeout=60,
                max_size=2**20,
            )
            hello = json.loads(await self.socket.recv())
            assert hello["type"] == "hello", hello
            await self.socket.send(json.dumps({"action": "subscribe", "ticket": reference}))
            while True:
                frame = json.loads(await self.socket.recv())
                if frame["type"] == "subscribed":
                    break
        self.ready.set()
        async for raw in self.socket:
            stamp = time.time()
            if '"type":"message"' not in raw or MARK not in raw:
                continue
            body = json.loads(raw)["body"]
            self.received[int(body.split("#", 1)[1].split(" ", 1)[0])] = stamp


async def measure(args, token: str, agent, ticket, port: int, server) -> dict:
    url = f"ws://127.0.0.1:{port}/ws/tickets/"
    clients = [Client(n) for n in range(args.connections)]
    gate = asyncio.Semaphore(100)  # connections being opened at once
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(c.run(url, token, ticket.reference, gate, not args.no_compression))
        for c in clients
    ]
    waiting = asyncio.gather(*(c.ready.wait() for c in clients))
    failures = asyncio.gather(*tasks)
    done, _ = await asyncio.wait(
        [asyncio.ensure_future(waiting), asyncio.ensure_future(failures)],
        return_when=asyncio.FIRST_COMPLETED,
    )
    for future in done:
        if future.exception():
            raise future.exception()
    connect_s = time.perf_counter() - started
    log(f"{len(clients)} connections open and subscribed in {connect_s:.1f} s")
    memory_connected = rss_mb(server.pid)

    sent: dict[int, tuple[float, float]] = {}

    def reply(number: int) -> None:
        t0 = time.time()
        services.message_add(ticket=ticket, author=agent, body=f"{MARK} #{number} sent at {t0:.6f}")
        sent[number] = (t0, time.time())

    await asyncio.sleep(1.0)
    for number in range(args.messages):
        await asyncio.to_thread(reply, number)
        await asyncio.sleep(args.interval)
    await asyncio.sleep(max(2.0, args.interval))

    receipts, completion, missing = [], [], 0
    for number, (t0, _) in sent.items():
        times = [c.received[number] for c in clients if number in c.received]
        missing += len(clients) - len(times)
        if times:
            receipts += [(t - t0) * 1000 for t in times]
            completion.append((max(times) - t0) * 1000)
    service_ms = [(t1 - t0) * 1000 for t0, t1 in sent.values()]

    for c in clients:
        await c.socket.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "connections": len(clients),
        "replies": len(sent),
        "connect_and_subscribe_s": round(connect_s, 2),
        "receipts_ms": summary(receipts),
        "all_connections_received_ms": summary(completion),
        "service_call_ms": summary(service_ms),
        "missing_receipts": missing,
        "server_rss_mb_with_connections": memory_connected,
    }


def report(result: dict) -> str:
    r = result
    rows = [
        (
            f"WebSocket fan-out — {r['connections']:,} connections to one ticket,"
            f" {r['replies']} replies {r['interval_s']} s apart; uvicorn {r['workers']} worker(s)"
            f" ({r['ws']}),"
            f" permessage-deflate {'on' if r['compression'] else 'off'},"
            f" {r['cpu_count']} CPUs"
        ),
        f"  connections opened and subscribed in {r['connect_and_subscribe_s']} s;"
        f" server RSS {r['server_rss_mb_with_connections']} MB; missing receipts:"
        f" {r['missing_receipts']}",
        "",
        "  ms from the service call to receipt          p50     p95     max    mean",
    ]
    for label, key in (
        ("every connection, every reply", "receipts_ms"),
        ("last connection of each reply", "all_connections_received_ms"),
        ("service call (commit + publish)", "service_call_ms"),
    ):
        s = r[key]
        figures = f"{s['p50']:>7.1f} {s['p95']:>7.1f} {s['max']:>7.1f} {s['mean']:>7.1f}"
        rows.append(f"  {label:<42}{figures}")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes (make run: 2)")
    parser.add_argument(
        "--ws", default="websockets", help="uvicorn's WebSocket implementation (make run's)"
    )
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)

    token, agent, ticket = prepare()
    port = free_port()
    server = start_server(port, args.workers, args.ws)
    try:
        result = asyncio.run(measure(args, token, agent, ticket, port, server))
    finally:
        server.terminate()
        server.wait(timeout=30)
    result.update(
        workers=args.workers,
        ws=args.ws,
        compression=not args.no_compression,
        interval_s=args.interval,
        cpu_count=os.cpu_count(),
    )
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if result["missing_receipts"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
