"""How our mail about a ticket is addressed and threaded.

Every mail to a customer about a ticket carries:

- ``Message-ID``: made here (``make_msgid`` on the support address's domain) and stored on
  the message it carries (``Message.email_message_id``), so a reply names it;
- ``In-Reply-To``: the last mail the customer sent on the ticket, else the last one we sent;
- ``References``: the ticket's Message-IDs in order (theirs and ours), at most
  :data:`MAX_REFERENCES`, the first always kept (it roots the thread);
- ``Reply-To``: the ticket's signed plus-address (:func:`support.email.addresses.reply_address`),
  which names the ticket even when a client drops the two headers above;
- ``From``: the support address the ticket came in through, else the default one, else
  ``DEFAULT_FROM_EMAIL``;
- ``X-Helpdesk-Loop``: our token; mail that comes back carrying it is refused as a loop.

``Auto-Submitted: auto-replied`` (RFC 3834) marks what a machine wrote to the customer: the
AI's replies and the system's notices (the resolution notice). An agent's own reply is
personal mail and does not carry it. Notices to staff say ``auto-generated``.
"""

from __future__ import annotations

import hashlib
from email.utils import make_msgid

from django.conf import settings

from support.email.addresses import (
    default_address,
    from_header,
    normalize,
    reply_address,
    support_address_for,
)
from support.models import Message, SupportAddress, Ticket, TicketChannel

LOOP_HEADER = "X-Helpdesk-Loop"
MAX_REFERENCES = 20


def loop_token() -> str:
    """``HELPDESK_EMAIL_LOOP_TOKEN``, else a stable token derived from ``SECRET_KEY``."""
    configured = getattr(settings, "HELPDESK_EMAIL_LOOP_TOKEN", "")
    if configured:
        return configured
    return hashlib.sha256(f"helpdesk-loop:{settings.SECRET_KEY}".encode()).hexdigest()[:24]


def is_email_ticket(ticket: Ticket) -> bool:
    return ticket.channel == TicketChannel.EMAIL


def support_address_of(ticket: Ticket) -> SupportAddress | None:
    """The address the ticket's first mail was sent to, else the default address."""
    first = ticket.inbound_emails.order_by("received_at", "pk").first()
    found = support_address_for(list(first.recipients)) if first else None
    return found or default_address()


def new_message_id(support: SupportAddress | None) -> str:
    email = support.email if support else normalize(settings.DEFAULT_FROM_EMAIL)
    domain = email.partition("@")[2] or "localhost"
    return make_msgid(domain=domain)


def _thread(ticket: Ticket, *, before: Message | None = None):
    messages = ticket.messages.filter(is_internal=False).exclude(email_message_id="")
    if before is not None:
        messages = messages.exclude(pk=before.pk).filter(created_at__lte=before.created_at)
    return messages.order_by("created_at", "id")


def in_reply_to(ticket: Ticket, *, before: Message | None = None) -> str:
    thread = _thread(ticket, before=before)
    theirs = thread.filter(sender_kind=Message.SenderKind.CUSTOMER).last()
    last = theirs or thread.last()
    return last.email_message_id if last else ""


def references(ticket: Ticket, *, before: Message | None = None) -> list[str]:
    ids = list(
        dict.fromkeys(_thread(ticket, before=before).values_list("email_message_id", flat=True))
    )
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return ids


def subject(ticket: Ticket, default: str) -> str:
    """Email tickets keep their mail's subject, with the reference in it; others ``default``."""
    if not is_email_ticket(ticket):
        return default
    original = ticket.subject.strip()
    while original[:3].lower() in ("re:", "aw:", "sv:"):
        original = original[3:].strip()
    tag = f"[{ticket.reference}]"
    return f"Re: {original}" if tag in original else f"Re: {original} {tag}"


def participants(ticket: Ticket) -> list[str]:
    """Who is copied (Cc): the ticket's participants but the requester and our own addresses."""
    ours = {a.lower() for a in SupportAddress.objects.values_list("email", flat=True)}
    ours.add(normalize(settings.DEFAULT_FROM_EMAIL))
    requester = normalize(ticket.requester.email)
    cc = []
    for email in ticket.participants.values_list("email", flat=True):
        address = normalize(email)
        if not address or address == requester or address in ours:
            continue
        local, _, domain = address.partition("@")
        if f"{local.split('+')[0]}@{domain}" in ours:
            continue
        cc.append(address)
    return list(dict.fromkeys(cc))


def customer_headers(
    ticket: Ticket,
    *,
    support: SupportAddress | None,
    message_id: str,
    automatic: bool,
    before: Message | None = None,
) -> dict[str, str]:
    headers = {
        "Message-ID": message_id,
        "Reply-To": reply_address(ticket, support),
        LOOP_HEADER: loop_token(),
    }
    parent = in_reply_to(ticket, before=before)
    if parent:
        headers["In-Reply-To"] = parent
    chain = references(ticket, before=before)
    if chain:
        headers["References"] = " ".join(chain)
    if automatic:
        headers["Auto-Submitted"] = "auto-replied"
    return headers


def staff_headers() -> dict[str, str]:
    return {LOOP_HEADER: loop_token(), "Auto-Submitted": "auto-generated"}


__all__ = [
    "LOOP_HEADER",
    "customer_headers",
    "from_header",
    "in_reply_to",
    "is_email_ticket",
    "loop_token",
    "new_message_id",
    "participants",
    "references",
    "staff_headers",
    "subject",
    "support_address_of",
]
