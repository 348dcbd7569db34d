"""The providers' inbound webhooks (django-anymail): mail a provider received for us,
POSTed to ``/email/anymail/<provider>/inbound/``, goes through the one door every mail
takes, ``services.email_receive(raw, door="webhook")``.

anymail checks the request before we see it (basic auth with ``ANYMAIL["WEBHOOK_SECRET"]``
for every provider; Mailgun's HMAC signature with ``MAILGUN_WEBHOOK_SIGNING_KEY`` too; for
SendGrid's inbound parse and Amazon SES's SNS posts, which anymail does not verify, basic
auth is the lock) and answers 400 (SES: 401) to a request that fails; then it sends
``anymail.signals.inbound`` with the mail as an ``AnymailInboundMessage``.
:func:`on_inbound` (connected in ``SupportConfig.ready``) hands the mail over as the
provider sent it when the payload has it (Mailgun's ``body-mime``, SendGrid's "Send Raw"
``email``, Postmark's ``RawEmail``, SES's SNS ``content``), else as anymail rebuilt it
from the parsed fields (Postmark without the raw option, Mailgun's parsed route).

The service stores the mail before deciding anything, and the same ``Message-ID`` twice is
one mail. So an error here (a database outage) is left to propagate: the request fails
with a 5xx (503 from the outage middleware), the provider retries later, and the retry
finds the stored mail and finishes it. (Other errors while deciding are kept on the stored
mail by the service, for the admin's "Process again".)
"""

from __future__ import annotations

import base64
import logging

from anymail.signals import inbound
from django.http import HttpRequest

logger = logging.getLogger(__name__)

#: Form fields holding the whole mail: Mailgun's "raw MIME" route, SendGrid's "Send Raw".
RAW_FORM_FIELDS = ("body-mime", "email")


def raw_mime(event) -> bytes:
    """The mail's bytes: as the provider sent them when it did, else rebuilt by anymail."""
    esp_event = event.esp_event
    if isinstance(esp_event, HttpRequest):
        for field in RAW_FORM_FIELDS:
            if esp_event.POST.get(field):
                return esp_event.POST[field].encode("utf-8")
    elif isinstance(esp_event, dict):
        if esp_event.get("RawEmail"):  # Postmark, "include raw email content"
            return str(esp_event["RawEmail"]).encode("utf-8")
        content = esp_event.get("content")  # Amazon SES, SNS action
        if content:
            action = (esp_event.get("receipt") or {}).get("action") or {}
            if action.get("encoding") == "BASE64":
                return base64.b64decode(content)
            return str(content).encode("utf-8")
    return event.message.as_bytes()


def on_inbound(sender, event, esp_name: str, **kwargs) -> None:
    from support import services

    message = event.message
    recipient = message.envelope_recipient
    inbound_email = services.email_receive(
        raw_mime(event), door="webhook", recipients=[recipient] if recipient else None
    )
    logger.info(
        "%s inbound mail %s: %s",
        esp_name,
        inbound_email.email_message_id,
        inbound_email.outcome,
        extra={"esp": esp_name, "event_id": str(event.event_id or ""), "inbound": inbound_email.pk},
    )


def connect() -> None:
    inbound.connect(on_inbound, dispatch_uid="support.email.inbound_webhooks")
