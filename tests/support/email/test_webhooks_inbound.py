"""The providers' inbound webhooks: mail POSTed to our real anymail URLs in the shapes the
providers send (Mailgun's raw-MIME route, Postmark's inbound JSON, SendGrid's "Send Raw"
parse; Amazon SES's SNS notification as anymail hands it over), signed as they sign them,
through the one door every mail takes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pytest
from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent, EventType, inbound
from django.db import OperationalError
from django.test import Client

from support import services
from support.models import InboundEmail, Message, SupportAddress, Ticket
from tests.support.email.conftest import BASIC_AUTH, CONFIGURED, SIGNING_KEY, TOKEN

pytestmark = pytest.mark.django_db

SUPPORT = "support@acme.example"
TIMESTAMP = "1764644000"
MAILGUN_URL = "/email/anymail/mailgun/inbound/"
POSTMARK_URL = "/email/anymail/postmark/inbound/"
SENDGRID_URL = "/email/anymail/sendgrid/inbound/"


@pytest.fixture(autouse=True)
def _anymail(anymail_webhooks):
    """Every test here talks to the webhooks as a configured provider would."""


@pytest.fixture(autouse=True)
def support_address(db):
    return SupportAddress.objects.create(email=SUPPORT, name="Acme Support", is_default=True)


@pytest.fixture
def provider():
    """A client that sees the 5xx a provider would (not the test's exception)."""
    return Client(raise_request_exception=False)


def mail(
    *,
    sender: str = "Dana Reyes <dana@client.example>",
    subject: str = "The printer is on fire",
    body: str = "It started this morning.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = message_id or make_msgid(domain="client.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    return message


def wire(message: EmailMessage) -> str:
    return message.as_bytes(policy=policy.SMTP).decode("utf-8")


def basic_auth(credentials: str = BASIC_AUTH) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def mailgun_form(message: EmailMessage, *, key: str = SIGNING_KEY, token: str = TOKEN) -> dict:
    """Mailgun's route ``forward()`` to a ``mime`` URL: form fields, signature inline."""
    signature = hmac.new(key.encode(), f"{TIMESTAMP}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "recipient": SUPPORT,
        "sender": "dana@client.example",
        "from": message["From"],
        "subject": message["Subject"],
        "body-mime": wire(message),
        "timestamp": TIMESTAMP,
        "token": token,
        "signature": signature,
    }


def postmark_json(message: EmailMessage, *, raw: bool) -> str:
    """Postmark's inbound webhook JSON (``RawEmail`` with "include raw email content")."""
    payload = {
        "FromName": "Dana Reyes",
        "MessageStream": "inbound",
        "From": "dana@client.example",
        "FromFull": {"Email": "dana@client.example", "Name": "Dana Reyes", "MailboxHash": ""},
        "To": SUPPORT,
        "ToFull": [{"Email": SUPPORT, "Name": "", "MailboxHash": ""}],
        "Cc": "",
        "CcFull": [],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": SUPPORT,
        "Subject": str(message["Subject"]),
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": str(message["Date"]),
        "TextBody": message.get_content(),
        "HtmlBody": "",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": "<dana@client.example>"},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "X-Spam-Score", "Value": "-0.1"},
            {"Name": "Message-ID", "Value": str(message["Message-ID"])},
            *(
                [{"Name": "In-Reply-To", "Value": str(message["In-Reply-To"])}]
                if message["In-Reply-To"]
                else []
            ),
        ],
        "Attachments": [],
    }
    if raw:
        payload["RawEmail"] = wire(message)
    return json.dumps(payload)


def sendgrid_raw_form(message: EmailMessage) -> dict:
    """SendGrid's Inbound Parse with "POST the raw, full MIME message"."""
    return {
        "email": wire(message),
        "to": SUPPORT,
        "from": message["From"],
        "subject": message["Subject"],
        "envelope": json.dumps({"to": [SUPPORT], "from": "dana@client.example"}),
        "charsets": json.dumps({"to": "UTF-8", "subject": "UTF-8", "from": "UTF-8"}),
        "dkim": "{@client.example : pass}",
        "SPF": "pass",
        "sender_ip": "203.0.113.7",
        "spam_score": "0.1",
        "spam_report": "",
    }


def ses_sns_json(message: EmailMessage) -> tuple[str, dict]:
    """An SES receipt rule's SNS action (base64 content) delivered by SNS over HTTPS."""
    raw = message.as_bytes(policy=policy.SMTP)
    ses_event = {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2026-12-02T03:00:00.000Z",
            "source": "dana@client.example",
            "messageId": "jpn4ij1scfb2t7qj5hdbf6tq1d9a6qbpprjf1go1",
            "destination": [SUPPORT],
            "headersTruncated": False,
            "commonHeaders": {"subject": str(message["Subject"])},
        },
        "receipt": {
            "timestamp": "2026-12-02T03:00:00.000Z",
            "recipients": [SUPPORT],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "action": {
                "type": "SNS",
                "topicArn": "arn:aws:sns:us-east-1:111111111111:inbound",
                "encoding": "BASE64",
            },
        },
        "content": base64.b64encode(raw).decode("ascii"),
    }
    sns_id = "8f1c7f7b-4d4e-5a0a-9d8a-2f4f3e6c1b11"
    body = json.dumps(
        {
            "Type": "Notification",
            "MessageId": sns_id,
            "TopicArn": "arn:aws:sns:us-east-1:111111111111:inbound",
            "Subject": "Amazon SES Email Receipt Notification",
            "Message": json.dumps(ses_event),
            "Timestamp": "2026-12-02T03:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )
    return body, {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_id,
    }


def assert_new_email_ticket(message: EmailMessage) -> Ticket:
    inbound = InboundEmail.objects.get()
    assert (inbound.door, inbound.outcome, inbound.email_message_id) == (
        "webhook",
        "created",
        message["Message-ID"],
    )
    assert inbound.recipients == [SUPPORT]
    ticket = inbound.ticket
    assert (ticket.channel, ticket.subject, ticket.requester.email) == (
        "email",
        "The printer is on fire",
        "dana@client.example",
    )
    assert ticket.messages.get().email_message_id == message["Message-ID"]
    return ticket


# ---- each provider, signed ---------------------------------------------------------


def test_a_signed_mailgun_raw_mime_post_opens_an_email_ticket(provider):
    message = mail()

    response = provider.post(MAILGUN_URL, mailgun_form(message), **basic_auth())

    assert response.status_code == 200
    assert_new_email_ticket(message)
    with InboundEmail.objects.get().raw.open("rb") as stored:
        assert stored.read() == message.as_bytes(policy=policy.SMTP)  # kept as sent


@pytest.mark.parametrize("raw", [True, False], ids=["raw-email", "parsed-fields"])
def test_a_postmark_inbound_post_with_basic_auth_opens_an_email_ticket(provider, raw):
    message = mail()

    response = provider.post(
        POSTMARK_URL, postmark_json(message, raw=raw), "application/json", **basic_auth()
    )

    assert response.status_code == 200
    ticket = assert_new_email_ticket(message)
    assert ticket.description == "It started this morning."


@pytest.mark.filterwarnings("ignore:django-anymail has dropped official support for SendGrid")
def test_a_sendgrid_send_raw_post_with_basic_auth_opens_an_email_ticket(provider):
    message = mail()

    response = provider.post(SENDGRID_URL, sendgrid_raw_form(message), **basic_auth())

    assert response.status_code == 200
    assert_new_email_ticket(message)


def test_an_amazon_ses_sns_action_notification_opens_an_email_ticket():
    """SES's view needs boto3 (``django-anymail[amazon-ses]``), not installed here: the
    event it makes of an SNS action's notification is sent as anymail sends it."""
    message = mail()
    body, _ = ses_sns_json(message)
    ses_event = json.loads(json.loads(body)["Message"])
    parsed = AnymailInboundMessage.parse_raw_mime_bytes(base64.b64decode(ses_event["content"]))
    parsed.envelope_recipient = ses_event["receipt"]["recipients"][0]

    inbound.send(
        sender=None,
        event=AnymailInboundEvent(
            event_type=EventType.INBOUND, esp_event=ses_event, message=parsed, event_id="x"
        ),
        esp_name="Amazon SES",
    )

    assert_new_email_ticket(message)
    with InboundEmail.objects.get().raw.open("rb") as stored:
        assert stored.read() == message.as_bytes(policy=policy.SMTP)  # the bytes SES had


# ---- refused before our code -------------------------------------------------------


def test_a_mailgun_post_with_a_wrong_signature_is_refused_and_nothing_is_stored(provider):
    response = provider.post(
        MAILGUN_URL, mailgun_form(mail(), key="key-someone-else"), **basic_auth()
    )

    assert response.status_code == 400
    assert not InboundEmail.objects.exists()
    assert not Ticket.objects.exists()


def test_a_mailgun_post_without_basic_auth_is_refused(provider):
    response = provider.post(MAILGUN_URL, mailgun_form(mail()))

    assert response.status_code == 400
    assert not InboundEmail.objects.exists()


@pytest.mark.parametrize("auth", [{}, basic_auth("anymail:guess")], ids=["none", "wrong"])
def test_a_postmark_post_without_the_right_basic_auth_is_refused(provider, auth):
    response = provider.post(
        POSTMARK_URL, postmark_json(mail(), raw=True), "application/json", **auth
    )

    assert response.status_code in (400, 403)
    assert not InboundEmail.objects.exists()


@pytest.mark.filterwarnings("ignore:django-anymail has dropped official support for SendGrid")
def test_a_sendgrid_post_without_basic_auth_is_refused(provider):
    response = provider.post(SENDGRID_URL, sendgrid_raw_form(mail()))

    assert response.status_code == 400
    assert not InboundEmail.objects.exists()


def test_the_webhooks_are_closed_when_no_secret_is_configured(provider, settings):
    """Unconfigured, the settings' secret is one nobody knows: nobody's post is taken."""
    if os.environ.get("ANYMAIL_WEBHOOK_SECRET"):
        pytest.skip("ANYMAIL_WEBHOOK_SECRET is set in this environment")
    settings.ANYMAIL = CONFIGURED

    response = provider.post(
        POSTMARK_URL, postmark_json(mail(), raw=True), "application/json", **basic_auth()
    )

    assert response.status_code == 400
    assert not InboundEmail.objects.exists()


# ---- one mail, however often and by whichever door ---------------------------------


def test_a_retried_post_is_still_one_message(provider):
    message = mail()
    form = mailgun_form(message)

    first = provider.post(MAILGUN_URL, form, **basic_auth())
    again = provider.post(MAILGUN_URL, form, **basic_auth())

    assert (first.status_code, again.status_code) == (200, 200)
    assert InboundEmail.objects.count() == 1
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 1


def test_the_same_mail_by_webhook_and_by_smtp_is_one_message(provider):
    message = mail()

    response = provider.post(
        POSTMARK_URL, postmark_json(message, raw=True), "application/json", **basic_auth()
    )
    by_smtp = services.email_receive(
        message.as_bytes(policy=policy.SMTP), door="smtp", recipients=[SUPPORT]
    )

    assert response.status_code == 200
    inbound = InboundEmail.objects.get()
    assert by_smtp == inbound and inbound.door == "webhook"
    assert Message.objects.count() == 1


def test_smtp_first_then_the_webhook_is_one_message(provider):
    message = mail()
    services.email_receive(message.as_bytes(policy=policy.SMTP), door="smtp", recipients=[SUPPORT])

    response = provider.post(MAILGUN_URL, mailgun_form(message), **basic_auth())

    assert response.status_code == 200
    assert InboundEmail.objects.get().door == "smtp"
    assert (Ticket.objects.count(), Message.objects.count()) == (1, 1)


def test_a_reply_by_webhook_threads_to_the_ticket(provider):
    first = mail()
    provider.post(MAILGUN_URL, mailgun_form(first), **basic_auth())
    ticket = Ticket.objects.get()
    reply = mail(
        subject="Re: The printer is on fire",
        body="Still burning.\n",
        in_reply_to=first["Message-ID"],
    )

    response = provider.post(MAILGUN_URL, mailgun_form(reply, token="b" * 50), **basic_auth())

    assert response.status_code == 200
    assert InboundEmail.objects.get(email_message_id=reply["Message-ID"]).outcome == "appended"
    assert Ticket.objects.get() == ticket
    assert list(ticket.messages.order_by("pk").values_list("body", flat=True))[-1] == (
        "Still burning."
    )


def test_an_outage_answers_5xx_keeps_the_mail_and_the_providers_retry_finishes_it(
    provider, monkeypatch
):
    """A database outage while deciding: the mail is stored, the request fails (503 from
    the outage middleware), the provider retries, and the retry makes the ticket, once."""
    from support.services import email as email_service

    decide = email_service._decide
    calls = []

    def outage_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return decide(*args, **kwargs)

    monkeypatch.setattr(email_service, "_decide", outage_once)
    message = mail()
    form = mailgun_form(message)

    failed = provider.post(MAILGUN_URL, form, **basic_auth())

    assert failed.status_code == 503
    stored = InboundEmail.objects.get()
    assert (stored.outcome, stored.door) == ("received", "webhook")
    assert not Ticket.objects.exists()

    retried = provider.post(MAILGUN_URL, form, **basic_auth())

    assert retried.status_code == 200
    stored.refresh_from_db()
    assert stored.outcome == "created"
    assert (InboundEmail.objects.count(), Ticket.objects.count(), Message.objects.count()) == (
        1,
        1,
        1,
    )


def test_non_ascii_mail_survives_both_the_raw_and_the_rebuilt_paths(provider):
    """Mailgun's raw MIME with an 8-bit UTF-8 body; Postmark's parsed fields rebuilt by
    anymail (its as_bytes) with a UTF-8 subject and body."""
    raw_8bit = mail(subject="Größe der Datei")
    raw_8bit.set_content("Die Größe ist falsch: 日本語.\n", cte="8bit")
    form = mailgun_form(raw_8bit)
    assert "日本語" in form["body-mime"]  # 8-bit, not encoded
    rebuilt = mail(
        sender="Dana <dana@client.example>", subject="Ça ne marche pas", body="Déjà vu ✓\n"
    )

    first = provider.post(MAILGUN_URL, form, **basic_auth())
    second = provider.post(
        POSTMARK_URL, postmark_json(rebuilt, raw=False), "application/json", **basic_auth()
    )

    assert (first.status_code, second.status_code) == (200, 200)
    subjects = dict(InboundEmail.objects.values_list("email_message_id", "ticket__subject"))
    assert subjects == {
        raw_8bit["Message-ID"]: "Größe der Datei",
        rebuilt["Message-ID"]: "Ça ne marche pas",
    }
    bodies = set(Message.objects.values_list("body", flat=True))
    assert bodies == {"Die Größe ist falsch: 日本語.", "Déjà vu ✓"}
