"""Emails about tickets, rendered from templates (plain text and HTML).

Who hears what: the customer on each public reply and on resolution (with the rating
link), with the ticket's participants copied (Cc); the team on escalation (its contact
address, else its members); the assignee on assignment and when the customer writes back.

Mail to the customer is threaded (``support.email.outbound``: Message-ID, In-Reply-To,
References, Reply-To, From the ticket's support address) and, on email tickets, reads as
mail: a greeting, the reply, a sign-off and the customer's last message quoted below.
The Message-ID of a reply is recorded on its message (``services.message_record_sent``),
with the provider's id when an anymail backend sent it, for the delivery events.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from config import metrics
from support.email import outbound
from support.models import Escalation, Message, Ticket

logger = logging.getLogger(__name__)


def _send(
    *,
    template: str,
    subject: str,
    to: list[str],
    context: dict,
    cc: list[str] = (),
    from_email: str | None = None,
    headers: dict | None = None,
    metadata: dict | None = None,
) -> EmailMultiAlternatives | None:
    to = [address for address in dict.fromkeys(to) if address]
    if not to:
        return None
    cc = [address for address in dict.fromkeys(cc) if address and address not in to]
    context = {**context, "site_url": settings.SITE_URL}
    text = render_to_string(f"support/email/{template}.txt", context)
    html = render_to_string(f"support/email/{template}.html", context)
    headers = dict(headers or {})
    reply_to = [headers.pop("Reply-To")] if "Reply-To" in headers else None
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=from_email,
        to=to,
        cc=cc,
        reply_to=reply_to,  # its own argument: anymail's backends read it, not the header
        headers=headers,
    )
    email.attach_alternative(html, "text/html")
    if metadata:
        email.metadata = metadata  # anymail sends it along; its webhooks hand it back
    try:
        email.send()
    except Exception:
        metrics.email_sent(template=template, failed=True)
        raise
    metrics.email_sent(template=template)
    return email


def _staff_mail(**kwargs) -> int:
    return 1 if _send(headers=outbound.staff_headers(), **kwargs) else 0


def _provider_ids(email: EmailMultiAlternatives) -> list[str]:
    """The ids an anymail backend got from the provider (none through plain SMTP)."""
    status = getattr(email, "anymail_status", None)
    if status is None:
        return []
    ids = {r.message_id for r in (status.recipients or {}).values() if r.message_id}
    if isinstance(status.message_id, str):
        ids.add(status.message_id)
    return sorted(ids)


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _ticket_url(ticket: Ticket) -> str:
    return f"{settings.SITE_URL}{ticket.get_absolute_url()}"


def _customer(ticket: Ticket) -> str:
    return ticket.requester.first_name or _name(ticket.requester)


def _team_name(support) -> str:
    return (support.name if support and support.name else "") or "support"


def _quoted(ticket: Ticket, message: Message | None) -> Message | None:
    """The customer's last message before ``message`` (what the reply answers)."""
    earlier = ticket.messages.filter(sender_kind=Message.SenderKind.CUSTOMER, is_internal=False)
    if message is not None:
        earlier = earlier.exclude(pk=message.pk).filter(created_at__lte=message.created_at)
    return earlier.order_by("created_at", "id").last()


def automatic_cap_reached(ticket: Ticket) -> bool:
    """Loop protection: at most ``HELPDESK_EMAIL_AUTO_REPLIES_PER_DAY`` automatic replies
    (the AI's) are mailed on one ticket in 24 hours, whatever the other side sends back;
    the replies stay on the ticket page, and people's replies are always mailed."""
    mailed = ticket.messages.filter(
        sender_kind=Message.SenderKind.AI,
        is_internal=False,
        created_at__gte=timezone.now() - timedelta(days=1),
    ).exclude(email_message_id="")
    return mailed.count() >= settings.HELPDESK_EMAIL_AUTO_REPLIES_PER_DAY


def public_reply(ticket: Ticket, message: Message) -> int:
    """The reply (an agent's, the AI's) to the requester, participants copied.

    The AI's replies and the helpdesk's own notices (a merge's) carry
    ``Auto-Submitted: auto-replied``; an agent's do not."""
    from support import services

    automatic = message.sender_kind in (Message.SenderKind.AI, Message.SenderKind.SYSTEM)
    capped = message.sender_kind == Message.SenderKind.AI
    if capped and not message.email_message_id and automatic_cap_reached(ticket):
        logger.warning(
            "automatic reply on %s not mailed: %s automatic replies in a day already",
            ticket.reference,
            settings.HELPDESK_EMAIL_AUTO_REPLIES_PER_DAY,
        )
        return 0
    support = outbound.support_address_of(ticket)
    message_id = message.email_message_id or outbound.new_message_id(support)
    quoted = _quoted(ticket, message)
    email = _send(
        template="reply",
        subject=outbound.subject(ticket, f"[{ticket.reference}] {ticket.subject}"),
        to=[ticket.requester.email],
        cc=outbound.participants(ticket),
        from_email=outbound.from_header(support),
        headers=outbound.customer_headers(
            ticket,
            support=support,
            message_id=message_id,
            automatic=automatic,
            before=message,
        ),
        metadata={"helpdesk_message": str(message.pk), "ticket": ticket.reference},
        context={
            "ticket": ticket,
            "message": message,
            "ticket_url": _ticket_url(ticket),
            "as_email": outbound.is_email_ticket(ticket),
            "customer_name": _customer(ticket),
            "team_name": _team_name(support),
            "quoted": quoted,
            "quoted_lines": quoted.body.splitlines() if quoted else [],
        },
    )
    if email is None:
        return 0
    services.message_record_sent(
        message=message,
        email_message_id=message_id,
        provider_message_ids=_provider_ids(email),
        recipients=[*email.to, *email.cc],
    )
    return 1


def resolved(ticket: Ticket) -> int:
    """The resolution notice (a system notice: ``Auto-Submitted: auto-replied``)."""
    support = outbound.support_address_of(ticket)
    email = _send(
        template="resolved",
        subject=outbound.subject(ticket, f"[{ticket.reference}] Resolved: {ticket.subject}"),
        to=[ticket.requester.email],
        cc=outbound.participants(ticket),
        from_email=outbound.from_header(support),
        headers=outbound.customer_headers(
            ticket, support=support, message_id=outbound.new_message_id(support), automatic=True
        ),
        context={
            "ticket": ticket,
            "ticket_url": _ticket_url(ticket),
            "rate_url": f"{_ticket_url(ticket)}#rate",
            "as_email": outbound.is_email_ticket(ticket),
            "customer_name": _customer(ticket),
            "team_name": _team_name(support),
        },
    )
    return 1 if email else 0


def escalated(ticket: Ticket, escalation: Escalation) -> int:
    team = escalation.team
    if team is None:
        recipients = [ticket.assignee.email] if ticket.assignee else []
    elif team.escalation_contact:
        recipients = [team.escalation_contact]
    else:
        recipients = list(team.members.filter(is_active=True).values_list("email", flat=True))
    return _staff_mail(
        template="escalated",
        subject=f"[{ticket.reference}] Escalated to {team or 'people'}: {ticket.subject}",
        to=recipients,
        context={
            "ticket": ticket,
            "escalation": escalation,
            "admin_url": f"{settings.SITE_URL}/admin/support/ticket/{ticket.pk}/change/",
        },
    )


def assigned(ticket: Ticket, user) -> int:
    return _staff_mail(
        template="assigned",
        subject=f"[{ticket.reference}] Assigned to you: {ticket.subject}",
        to=[user.email],
        context={
            "ticket": ticket,
            "user": user,
            "admin_url": f"{settings.SITE_URL}/admin/support/ticket/{ticket.pk}/change/",
        },
    )


def customer_replied(ticket: Ticket, message: Message) -> int:
    if ticket.assignee is None:
        return 0
    return _staff_mail(
        template="customer_replied",
        subject=f"[{ticket.reference}] New reply from {_name(ticket.requester)}",
        to=[ticket.assignee.email],
        context={
            "ticket": ticket,
            "message": message,
            "admin_url": f"{settings.SITE_URL}/admin/support/ticket/{ticket.pk}/change/",
        },
    )
