"""The SMTP door with PostgreSQL or Redis away, on the fault stack's real servers.

A sending server retries a mail answered with a 4xx code; so while the database is down
the door must answer ``451`` (never ``250`` for a mail it could not keep, never a 5xx that
would bounce it), and once PostgreSQL is back the retried mail makes exactly one message.
"""

from __future__ import annotations

import smtplib
import socket
import sys
import time
from email.message import EmailMessage

import pytest

from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SUPPORT = "support@faults.example"


def wait_for_port(port: int, process, logs, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"run_smtp exited:\n{logs()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"run_smtp not listening after {timeout}s:\n{logs()[-3000:]}")


def mail(number: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Fay Customer <fay{number}@customer.example>"
    message["To"] = SUPPORT
    message["Subject"] = f"Printer number {number} is on fire"
    message["Message-ID"] = f"<fault-{number}@customer.example>"
    message.set_content("It started smoking after the last update. What should I do?")
    return message


def send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(message)


def temporary_refusal(message: EmailMessage, port: int) -> int | None:
    """Send; the 4xx code if the door refused it for now (at RCPT, which asks the
    database whether the address is ours, or at DATA), None when it took it."""
    try:
        send(port, message)
    except smtplib.SMTPRecipientsRefused as error:
        ((code, _),) = error.recipients.values()
        return code
    except smtplib.SMTPDataError as error:
        return error.smtp_code
    return None


def inbound(stack, number: int) -> list[tuple]:
    return stack.sql(
        "SELECT i.outcome, count(m.id) FROM support_inboundemail i"
        " LEFT JOIN support_message m ON m.email_message_id = i.email_message_id"
        " WHERE i.email_message_id = %s GROUP BY i.outcome",
        [f"<fault-{number}@customer.example>"],
    )


def start_door(stack):
    port = free_port()
    command = [sys.executable, "manage.py", "run_smtp", "--host", "127.0.0.1"]
    process = stack._spawn("smtp", [*command, "--port", str(port)])
    wait_for_port(port, process, lambda: stack.logs("smtp"))
    return port, process


def test_smtp_door_keeps_taking_mail_while_redis_is_down(fault_stack):
    """Redis carries only what follows a mail (the AI's analysis through the outbox, live
    updates): while it is away the door still commits the ticket and the work stays owed in
    the outbox (which hands it over once Redis is back: tests/faults/test_outbox_faults.py)."""
    stack = fault_stack
    stack.sql(
        "INSERT INTO support_supportaddress (email, name, is_default, is_active, created_at)"
        " VALUES (%s, 'Faults', false, true, now()) ON CONFLICT (email) DO NOTHING",
        [SUPPORT],
    )
    port, process = start_door(stack)
    try:
        stack.redis_stop()
        try:
            started = time.monotonic()
            send(port, mail(10))
            assert time.monotonic() - started < 10, "the door waited on Redis"
            assert inbound(stack, 10) == [("created", 1)]
            (owed,) = stack.sql(
                "SELECT count(*) FROM core_outboxitem o JOIN support_ticket t"
                " ON o.args = jsonb_build_array(t.id)"
                " JOIN support_inboundemail i ON i.ticket_id = t.id"
                " WHERE i.email_message_id = %s AND o.task = 'support.tasks.analyze_ticket'",
                ["<fault-10@customer.example>"],
            )[0]
            assert owed == 1, "the AI's analysis of the mail was not kept in the outbox"
        finally:
            stack.redis_start()
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_smtp_door_answers_451_while_postgres_is_down_and_keeps_the_retried_mail(fault_stack):
    stack = fault_stack
    stack.sql(
        "INSERT INTO support_supportaddress (email, name, is_default, is_active, created_at)"
        " VALUES (%s, 'Faults', false, true, now()) ON CONFLICT (email) DO NOTHING",
        [SUPPORT],
    )
    port, process = start_door(stack)
    try:
        send(port, mail(1))
        assert inbound(stack, 1) == [("created", 1)]

        stack.postgres_stop()
        try:
            started = time.monotonic()
            assert temporary_refusal(mail(2), port) == 451
            assert time.monotonic() - started < 15, "the door took too long to give up"
        finally:
            stack.postgres_start()

        # The sender retries after the outage: the same mail, kept once, one message.
        deadline = time.monotonic() + 30
        while (code := temporary_refusal(mail(2), port)) is not None:
            assert code == 451, code
            assert time.monotonic() < deadline, "the door did not recover"
            time.sleep(0.5)
        send(port, mail(2))  # a second retry changes nothing
        assert inbound(stack, 2) == [("created", 1)]
        assert process.poll() is None, "the SMTP door died with the database"
        assert " 500 " not in stack.logs("smtp")
    finally:
        process.terminate()
        process.wait(timeout=15)
