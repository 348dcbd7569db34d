"""The SMTP door under load: 5,000 mails sent with ``smtplib`` to ``manage.py run_smtp``.

Starts the built-in receiver (``manage.py run_smtp``, as ``make run`` does, in a child
process with production settings: ``DEBUG`` off, a throw-away ``SECRET_KEY``) against a
scratch database, then N client threads, each with one SMTP connection, send their share
of M distinct mails: every other mail opens a ticket (from S senders, each its first mail
a new customer), the others are replies, threaded by ``In-Reply-To``/``References`` to a
mail the same thread sent earlier, from its sender, with the quoted history an email
client adds. The receiver answers ``250`` to ``DATA`` only once ``email_receive`` has
committed the mail and what it made of it, so the time from the start of ``sendmail`` to
its return is the time from receipt to the ticket (or the reply) committed. Reported:
mails per second over the whole run, p50/p95/max of that latency (all mails, new tickets,
replies), and the row counts that prove it (M ``InboundEmail`` rows, M/2 email tickets,
M messages, outcomes ``created``/``appended``). From the project folder:

    .venv/bin/python bench/email_smtp.py            # 5,000 mails, 4 clients, 500 senders
    .venv/bin/python bench/email_smtp.py --messages 400 --clients 2   # a quick check
    .venv/bin/python -m config.embedded stop --dir .data/bench-email

It uses servers of its own (embedded PostgreSQL + Valkey in ``.data/bench-email``, or
``--dir``): each run recreates the database ``email_bench`` and empties that Valkey (the
ticket budgets live there, keyed by user id, and a new database reuses the ids). No
Celery worker runs: the follow-up work each new ticket queues (the AI's analysis) is left
in the broker and dropped. The clients and the receiver share this machine's cores.
Options: ``--messages`` (5000), ``--clients`` (4), ``--senders`` (500), ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import log, summary  # noqa: E402
from config import embedded  # noqa: E402  (needs no settings)

DATABASE = "email_bench"
SUPPORT = "support@bench.example"
SENDER_DOMAIN = "bench-client.example"


# ======================================================================================
# Servers and settings (before Django)
# ======================================================================================


def configure(root: Path) -> dict[str, str]:
    """Own servers, a fresh database, production settings for this process and the child."""
    if root.name in {"dev", "test", "bench"} and root.parent == BASE_DIR / ".data":
        sys.exit(f"refusing to empty the servers of {root}: use a folder of its own")
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
    env = {
        "HELPDESK_SERVICES_DIR": str(root),
        "HELPDESK_ENV_FILE": "",
        "DATABASE_URL": embedded.socket_database_url(pg.user, pg.socket_dir, pg.port, DATABASE),
        "REDIS_URL": valkey.url,
        "DEBUG": "false",
        "SECRET_KEY": f"bench-{secrets.token_urlsafe(40)}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_receiver(port: int) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "run_smtp", "--host", "127.0.0.1", "--port", str(port)]
    # Its output goes to stderr, beside the progress lines: stdout is the report.
    process = subprocess.Popen(command, cwd=BASE_DIR, env=dict(os.environ), stdout=sys.stderr)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("run_smtp exited")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as probe:
                probe.noop()
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("run_smtp did not answer in 60 s")


# ======================================================================================
# The mails
# ======================================================================================


def new_ticket(sender: str, number: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Customer {sender.split('@')[0]} <{sender}>"
    message["To"] = SUPPORT
    message["Subject"] = f"Invoice export fails ({number})"
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(idstring=f"new{number}", domain=SENDER_DOMAIN)
    message.set_content(
        "Hello,\n\nthe CSV export of invoices stops at 10,000 rows since Monday. "
        f"Order {number} is missing from the file.\nIs there a limit?\n\nThanks,\n{sender}\n"
    )
    return message


def reply_to(original: EmailMessage, number: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = original["From"]
    message["To"] = SUPPORT
    message["Subject"] = f"Re: {original['Subject']}"
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(idstring=f"re{number}", domain=SENDER_DOMAIN)
    message["In-Reply-To"] = original["Message-ID"]
    message["References"] = original["Message-ID"]
    quoted = "\n".join(f"> {line}" for line in original.get_content().splitlines())
    message.set_content(
        f"It happens again today with order {number}, same file.\n\n"
        f"On {original['Date']}, {original['From']} wrote:\n{quoted}\n"
    )
    return message


# ======================================================================================
# The clients
# ======================================================================================


class Client(threading.Thread):
    """One SMTP connection sending its share of the mails, one after the other."""

    def __init__(self, number: int, *, port: int, count: int, senders: list[str], start):
        super().__init__(name=f"smtp-client-{number}", daemon=True)
        self.number, self.port, self.count, self.senders = number, port, count, senders
        self.start_gate = start
        self.rng = random.Random(number)  # noqa: S311  (which earlier mail a reply answers)
        self.timings: dict[str, list[float]] = {"new": [], "reply": []}
        self.errors: list[str] = []
        self.sent = {"new": 0, "reply": 0}

    def run(self) -> None:
        originals: list[EmailMessage] = []
        connection = smtplib.SMTP("127.0.0.1", self.port, timeout=120)
        connection.ehlo("bench.client.example")
        self.start_gate.wait()
        try:
            for k in range(self.count):
                serial = k * 1000 + self.number
                if k % 2 == 0 or not originals:
                    kind = "new"
                    sender = self.senders[(k // 2) % len(self.senders)]
                    message = new_ticket(sender, serial)
                else:
                    kind = "reply"
                    message = reply_to(self.rng.choice(originals), serial)
                envelope_from = message["From"].addresses[0].addr_spec
                raw = message.as_bytes(policy=policy.SMTP)
                started = time.perf_counter()
                try:
                    refused = connection.sendmail(envelope_from, [SUPPORT], raw)
                except (smtplib.SMTPException, OSError) as error:
                    self.errors.append(f"{kind}: {error!r}")
                    connection = self._reconnect(connection)
                    continue
                self.timings[kind].append((time.perf_counter() - started) * 1000)
                if refused:
                    self.errors.append(f"{kind}: refused {refused}")
                    continue
                self.sent[kind] += 1
                if kind == "new":
                    originals.append(message)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                connection.quit()

    def _reconnect(self, connection):
        with contextlib.suppress(OSError):
            connection.close()
        connection = smtplib.SMTP("127.0.0.1", self.port, timeout=120)
        connection.ehlo("bench.client.example")
        return connection


def shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# ======================================================================================
# Run
# ======================================================================================


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--dir", default=str(BASE_DIR / ".data" / "bench-email"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    root = Path(args.dir).resolve()
    log(f"servers in {root}; database {DATABASE} recreated")
    configure(root)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import Count

    from support.models import InboundEmail, Message, SupportAddress, Ticket

    call_command("migrate", verbosity=0)
    SupportAddress.objects.create(email=SUPPORT, name="Bench Support", is_default=True)

    port = free_port()
    receiver = start_receiver(port)
    log(f"run_smtp on 127.0.0.1:{port} (pid {receiver.pid})")
    try:
        senders = [f"customer{i:04d}@{SENDER_DOMAIN}" for i in range(args.senders)]
        gate = threading.Barrier(args.clients + 1)
        clients = [
            Client(
                n,
                port=port,
                count=count,
                senders=senders[n :: args.clients],
                start=gate,
            )
            for n, count in enumerate(shares(args.messages, args.clients))
        ]
        for client in clients:
            client.start()
        gate.wait()
        started = time.perf_counter()
        for client in clients:
            client.join()
        wall = time.perf_counter() - started
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)

    new = [t for c in clients for t in c.timings["new"]]
    replies = [t for c in clients for t in c.timings["reply"]]
    sent = {kind: sum(c.sent[kind] for c in clients) for kind in ("new", "reply")}
    errors = [e for c in clients for e in c.errors]
    outcomes = dict(InboundEmail.objects.values_list("outcome").annotate(n=Count("id")).order_by())
    figures = {
        "messages": args.messages,
        "clients": args.clients,
        "senders": args.senders,
        "seconds": round(wall, 2),
        "messages_per_second": round(args.messages / wall, 1),
        "latency_ms": summary(new + replies),
        "new_ticket_ms": summary(new) if new else None,
        "reply_ms": summary(replies) if replies else None,
        "errors": len(errors),
        "rows": {
            "inbound_emails": InboundEmail.objects.count(),
            "outcomes": outcomes,
            "email_tickets": Ticket.objects.filter(channel="email").count(),
            "messages": Message.objects.count(),
            "customers_created": Ticket.objects.values("requester").distinct().count(),
        },
        "expected": {
            "inbound_emails": args.messages,
            "email_tickets": sent["new"],
            "messages": sent["new"] + sent["reply"],
        },
    }
    checks = {
        "inbound_emails": figures["rows"]["inbound_emails"] == args.messages,
        "email_tickets": figures["rows"]["email_tickets"] == sent["new"],
        "messages": figures["rows"]["messages"] == args.messages,
        "outcomes": outcomes == {"created": sent["new"], "appended": sent["reply"]},
    }
    figures["ok"] = all(checks.values()) and not errors
    if args.json:
        print(json.dumps(figures))
    else:
        print(report(figures, checks))
    for error in errors[:10]:
        log(f"error: {error}")
    return 0 if figures["ok"] else 1


def report(figures: dict, checks: dict) -> str:
    def row(label: str, s: dict | None) -> str:
        if not s:
            return f"| {label} | 0 | | | | |"
        return f"| {label} | {s['n']} | {s['p50']} | {s['p95']} | {s['max']} | {s['mean']} |"

    rows = figures["rows"]
    lines = [
        f"{figures['messages']} mails, {figures['clients']} SMTP clients, "
        f"{figures['senders']} senders: {figures['seconds']} s, "
        f"**{figures['messages_per_second']} mails/s**",
        "",
        "| sendmail → committed (ms) | n | p50 | p95 | max | mean |",
        "| --- | --- | --- | --- | --- | --- |",
        row("all mails", figures["latency_ms"]),
        row("new tickets", figures["new_ticket_ms"]),
        row("replies (In-Reply-To)", figures["reply_ms"]),
        "",
        "| rows | found | expected | |",
        "| --- | --- | --- | --- |",
        f"| InboundEmail | {rows['inbound_emails']} | {figures['expected']['inbound_emails']} "
        f"| {'ok' if checks['inbound_emails'] else 'MISMATCH'} |",
        f"| email tickets | {rows['email_tickets']} | {figures['expected']['email_tickets']} "
        f"| {'ok' if checks['email_tickets'] else 'MISMATCH'} |",
        f"| messages | {rows['messages']} | {figures['expected']['messages']} "
        f"| {'ok' if checks['messages'] else 'MISMATCH'} |",
        f"| outcomes | {rows['outcomes']} | created/appended | "
        f"{'ok' if checks['outcomes'] else 'MISMATCH'} |",
        f"| send errors | {figures['errors']} | 0 | "
        f"{'ok' if not figures['errors'] else 'ERRORS'} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
