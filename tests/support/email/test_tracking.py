"""Delivery events from the providers' tracking webhooks, signed as they sign them,
POSTed to our real URL, recorded on the message the mail carried, once."""

import base64
import hashlib
import hmac
import json

import pytest
from django.core import mail

from support import services
from tests.support.email.conftest import BASIC_AUTH, CONFIGURED, SIGNING_KEY, TOKEN

MAILGUN_URL = "/email/anymail/mailgun/tracking/"
POSTMARK_URL = "/email/anymail/postmark/tracking/"


@pytest.fixture(autouse=True)
def _anymail(anymail_webhooks):
    """Every test here talks to the webhooks as a configured provider would."""


@pytest.fixture
def sent(ticket, agent, run_effects):
    """An agent's reply, mailed: its Message-ID is on the message."""
    with run_effects():
        message = services.message_add(ticket=ticket, author=agent, body="Try again now.")
    message.refresh_from_db()
    assert message.email_message_id and len(mail.outbox) == 1
    return message


def _auth() -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(BASIC_AUTH.encode()).decode()}


def _mailgun(
    event_data: dict,
    *,
    token: str = TOKEN,
    key: str = SIGNING_KEY,
) -> str:
    """Mailgun's tracking webhook body (JSON, "signature" + "event-data")."""
    timestamp = "1764644000"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event_data,
        }
    )


def _delivered(message_id: str, **extra) -> dict:
    return {
        "event": "delivered",
        "timestamp": 1764644000.329574,
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "log-level": "info",
        "recipient": "customer-a@example.com",
        "message": {
            "headers": {
                "to": "customer-a@example.com",
                "message-id": message_id.strip("<>"),  # Mailgun drops the brackets
                "from": "Helpdesk <support@localhost>",
                "subject": "[HD-x] Cannot export invoices",
            },
            "attachments": [],
            "size": 2048,
        },
        "delivery-status": {
            "tls": True,
            "mx-host": "mx.example.com",
            "code": 250,
            "description": "",
            "attempt-no": 1,
            "message": "OK",
        },
        "user-variables": {},
        "tags": [],
        **extra,
    }


def _bounced(message_id: str) -> dict:
    return _delivered(
        message_id,
        event="failed",
        severity="permanent",
        reason="bounce",
        **{
            "log-level": "error",
            "delivery-status": {
                "code": 550,
                "description": "",
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "attempt-no": 1,
            },
        },
    )


@pytest.mark.django_db
def test_mailgun_delivered_is_recorded_on_the_message(client, sent):
    response = client.post(
        MAILGUN_URL,
        _mailgun(_delivered(sent.email_message_id)),
        content_type="application/json",
        **_auth(),
    )

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.delivery_status == "delivered"
    event = sent.delivery_events[-1]
    assert (event["event"], event["esp"], event["recipient"]) == (
        "delivered",
        "Mailgun",
        "customer-a@example.com",
    )


@pytest.mark.django_db
def test_mailgun_bounce_outweighs_and_says_why(client, sent):
    client.post(
        MAILGUN_URL,
        _mailgun(_delivered(sent.email_message_id), token="t1"),
        content_type="application/json",
        **_auth(),
    )
    response = client.post(
        MAILGUN_URL,
        _mailgun(_bounced(sent.email_message_id), token="t2"),
        content_type="application/json",
        **_auth(),
    )

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.delivery_status == "bounced"
    assert "does not exist" in sent.delivery_events[-1]["mta_response"]


@pytest.mark.django_db
def test_the_metadata_our_mail_carried_finds_the_message(client, sent, ticket, agent):
    other = services.message_add(ticket=ticket, author=agent, body="Another reply.")
    data = _delivered(
        "<unknown@mailgun.test>", **{"user-variables": {"helpdesk_message": str(other.pk)}}
    )

    client.post(MAILGUN_URL, _mailgun(data), content_type="application/json", **_auth())

    other.refresh_from_db()
    sent.refresh_from_db()
    assert other.delivery_status == "delivered" and sent.delivery_status == "sent"


@pytest.mark.django_db
def test_a_bad_signature_is_refused_and_records_nothing(client, sent):
    body = _mailgun(_delivered(sent.email_message_id), key="not-the-key")

    response = client.post(MAILGUN_URL, body, content_type="application/json", **_auth())

    assert response.status_code in (400, 403)
    sent.refresh_from_db()
    assert sent.delivery_status == "sent" and len(sent.delivery_events) == 1


@pytest.mark.django_db
def test_missing_basic_auth_is_refused(client, sent):
    response = client.post(
        MAILGUN_URL, _mailgun(_delivered(sent.email_message_id)), content_type="application/json"
    )

    assert response.status_code in (400, 403)
    sent.refresh_from_db()
    assert sent.delivery_status == "sent"


@pytest.mark.django_db
def test_the_same_event_twice_is_recorded_once(client, sent):
    body = _mailgun(_delivered(sent.email_message_id))
    for _ in range(2):  # the provider retries its webhook
        response = client.post(MAILGUN_URL, body, content_type="application/json", **_auth())
        assert response.status_code == 200

    sent.refresh_from_db()
    assert [e["event"] for e in sent.delivery_events] == ["sent", "delivered"]


@pytest.mark.django_db
def test_postmark_bounce_finds_the_message_by_the_providers_id(client, sent):
    # What the Postmark backend got back when it sent the mail.
    services.message_record_sent(
        message=sent,
        email_message_id=sent.email_message_id,
        provider_message_ids=["883953f4-6105-42a2-a16a-77a8eac79483"],
        recipients=["customer-a@example.com"],
    )
    payload = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message "
        "(ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "customer-a@example.com",
        "From": "support@localhost",
        "BouncedAt": "2026-12-02T03:00:00.000Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "[HD-x] Cannot export invoices",
        "Metadata": {},
    }

    for _ in range(2):
        response = client.post(
            POSTMARK_URL, json.dumps(payload), content_type="application/json", **_auth()
        )
        assert response.status_code == 200

    sent.refresh_from_db()
    assert sent.delivery_status == "bounced"
    assert [e["event"] for e in sent.delivery_events] == ["sent", "sent", "bounced"]


@pytest.mark.django_db
def test_opens_and_unknown_messages_record_nothing(client, sent):
    opened = _delivered(sent.email_message_id, event="opened")
    stranger = _delivered("<nobody@elsewhere.test>")
    for n, data in enumerate([opened, stranger]):
        response = client.post(
            MAILGUN_URL, _mailgun(data, token=f"t{n}"), content_type="application/json", **_auth()
        )
        assert response.status_code == 200

    sent.refresh_from_db()
    assert sent.delivery_status == "sent"


@pytest.mark.django_db
def test_agents_see_the_delivery_status(admin_client, sent, ticket):
    services.message_record_delivery(
        message=sent,
        event="bounced",
        detail={"event_id": "e1", "recipient": "customer-a@example.com"},
    )

    page = admin_client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()

    assert "Email bounced" in page


@pytest.mark.django_db
def test_staff_see_the_delivery_status_in_the_api_customers_do_not(
    client, sent, ticket, agent, customer
):
    url = f"/api/tickets/{ticket.reference}/messages/"
    client.force_login(agent)
    staff = {m["id"]: m for m in _results(client.get(url).json())}
    client.force_login(customer)
    theirs = {m["id"]: m for m in _results(client.get(url).json())}

    assert staff[sent.pk]["delivery_status"] == "sent"
    assert theirs[sent.pk]["delivery_status"] is None


def _results(data):
    return data["results"] if isinstance(data, dict) else data


@pytest.mark.django_db
def test_without_a_configured_secret_the_webhooks_are_closed(client, sent, settings):
    settings.ANYMAIL = CONFIGURED  # nothing set in the environment
    payload = {
        "RecordType": "Delivery",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": "customer-a@example.com",
        "DeliveredAt": "2026-12-02T03:00:00Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"helpdesk_message": str(sent.pk)},
        "MessageStream": "outbound",
        "ServerID": 23,
        "Tag": "",
    }

    response = client.post(POSTMARK_URL, json.dumps(payload), content_type="application/json")

    assert response.status_code in (400, 403)
    sent.refresh_from_db()
    assert sent.delivery_status == "sent"
