"""The SMTP door end to end: mail sent with ``smtplib`` to the real receiver (aiosmtpd on a
free port, in a thread of the test, or ``manage.py run_smtp`` in a child process), and
what the desk made of it once ``sendmail`` returned."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import pytest
from django.db import OperationalError

from core.models import OutboxItem
from support.email import smtp
from support.email.addresses import reply_address
from support.email.smtp import InboundController
from support.models import InboundEmail, SupportAddress, Ticket
from tests.conftest import subprocess_env
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

SUPPORT = "support@acme.example"
BASE_DIR = Path(__file__).resolve().parents[3]


def mail(*, sender="Dana <dana@client.example>", subject="Printer on fire", body="Help") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain="client.example")
    message.set_content(body)
    return message.as_bytes(policy=policy.SMTP)  # CRLF line ends, as on the wire


@pytest.fixture
def support_address(db):
    return SupportAddress.objects.create(email=SUPPORT, name="Acme Support", is_default=True)


@pytest.fixture
def receiver(support_address):
    """Start a receiver (keyword arguments of InboundController); stopped after the test."""
    started = []

    def start(**options) -> int:
        port = free_port()
        controller = InboundController(hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


def test_a_mail_is_a_committed_ticket_when_sendmail_returns(receiver):
    port = receiver()

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        refused = client.sendmail("dana@client.example", [SUPPORT], mail())

    assert refused == {}
    inbound = InboundEmail.objects.get()
    assert (inbound.door, inbound.outcome, inbound.recipients) == ("smtp", "created", [SUPPORT])
    ticket = Ticket.objects.get()
    assert (ticket.subject, ticket.channel, ticket.requester.email) == (
        "Printer on fire",
        "email",
        "dana@client.example",
    )
    # As the final delivery server, the receiver records the envelope sender.
    assert inbound.raw.open("rb").read().startswith(b"Return-Path: <dana@client.example>\r\n")
    # The AI analysis is scheduled as for a ticket from any other door.
    assert OutboxItem.objects.filter(task="support.tasks.analyze_ticket", args=[ticket.pk]).exists()


def test_a_reply_to_the_plus_address_continues_its_ticket(receiver):
    port = receiver()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("dana@client.example", [SUPPORT], mail())
    ticket = Ticket.objects.get()

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("dana@client.example", [reply_address(ticket)], mail(subject="Re: hi"))

    assert ticket.messages.count() == 2
    assert InboundEmail.objects.filter(outcome="appended", ticket=ticket).exists()


def test_an_unknown_recipient_is_refused_with_550(receiver):
    port = receiver()

    with (
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refusal,
    ):
        client.sendmail("dana@client.example", ["sales@acme.example"], mail())

    assert refusal.value.recipients["sales@acme.example"][0] == 550
    assert not InboundEmail.objects.exists()


def test_an_inactive_support_address_takes_no_mail(receiver, support_address):
    support_address.is_active = False
    support_address.save()
    port = receiver()

    with (
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        client.sendmail("dana@client.example", [SUPPORT], mail())


def test_too_many_recipients_are_refused_with_452(receiver):
    port = receiver(max_recipients=2)
    recipients = [SUPPORT, "support+a@acme.example", "support+b@acme.example"]

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        refused = client.sendmail("dana@client.example", recipients, mail())

    assert refused == {"support+b@acme.example": (452, b"4.5.3 Too many recipients")}
    assert InboundEmail.objects.get().recipients == [SUPPORT, "support+a@acme.example"]


def test_a_mail_over_the_size_limit_is_refused_with_552(receiver):
    port = receiver(data_size_limit=2000)
    big = mail(body="\n".join(["x" * 70] * 80))

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        # Announced with SIZE=: refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as announced:
            client.sendmail("dana@client.example", [SUPPORT], big)
        # Not announced: refused once the data passes the limit.
        client.rset()
        client.mail("dana@client.example")
        client.rcpt(SUPPORT)
        code, _ = client.data(big)

    assert announced.value.smtp_code == 552
    assert code == 552
    assert not InboundEmail.objects.exists()


def test_a_bounce_with_an_empty_envelope_sender_opens_nothing(receiver):
    port = receiver()
    bounce = mail(sender="MAILER-DAEMON@mx.client.example", subject="Delivery Status Notification")

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("", [SUPPORT], bounce)

    assert InboundEmail.objects.get().outcome == "ignored"
    assert not Ticket.objects.exists()


def test_connections_beyond_the_limit_are_told_to_come_back(receiver):
    port = receiver(max_connections=1)

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as first:
        first.ehlo()
        with pytest.raises(smtplib.SMTPConnectError) as refusal:
            smtplib.SMTP("127.0.0.1", port, timeout=30)
        assert refusal.value.smtp_code == 421
    # The slot is free again once the first connection has gone.
    for _ in range(50):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as again:
                assert again.noop()[0] == 250
            break
        except smtplib.SMTPConnectError:
            time.sleep(0.05)
    else:
        pytest.fail("the receiver did not free the connection slot")


def test_a_database_outage_is_a_temporary_failure(receiver, monkeypatch):
    port = receiver()

    def outage(raw, recipients):
        raise OperationalError("connection to server failed")

    monkeypatch.setattr(smtp, "_receive", outage)

    with (
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
        pytest.raises(smtplib.SMTPDataError) as failure,
    ):
        client.sendmail("dana@client.example", [SUPPORT], mail())

    assert failure.value.smtp_code == 451  # the sender keeps the mail and retries


@pytest.mark.slow
def test_the_run_smtp_command_serves_until_terminated(support_address, tmp_path):
    port = free_port()
    log = tmp_path / "smtp.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_smtp", "--port", str(port)],
            cwd=BASE_DIR,
            env=subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("dana@client.example", [SUPPORT], mail())
        assert Ticket.objects.get().channel == "email"

        process.terminate()
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
