"""Emails about tickets, rendered from templates (plain text and HTML).

Who hears what: the customer on each public reply and on resolution (with the rating
link); the team on escalation (its contact address, else its members); the assignee on
assignment and when the customer writes back.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from support.models import Escalation, Message, Ticket


def _send(*, template: str, subject: str, to: list[str], context: dict) -> int:
    to = [address for address in dict.fromkeys(to) if address]
    if not to:
        return 0
    context = {**context, "site_url": settings.SITE_URL}
    text = render_to_string(f"support/email/{template}.txt", context)
    html = render_to_string(f"support/email/{template}.html", context)
    email = EmailMultiAlternatives(subject=subject, body=text, to=to)
    email.attach_alternative(html, "text/html")
    return email.send()


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _ticket_url(ticket: Ticket) -> str:
    return f"{settings.SITE_URL}{ticket.get_absolute_url()}"


def public_reply(ticket: Ticket, message: Message) -> int:
    return _send(
        template="reply",
        subject=f"[{ticket.reference}] {ticket.subject}",
        to=[ticket.requester.email],
        context={"ticket": ticket, "message": message, "ticket_url": _ticket_url(ticket)},
    )


def resolved(ticket: Ticket) -> int:
    return _send(
        template="resolved",
        subject=f"[{ticket.reference}] Resolved: {ticket.subject}",
        to=[ticket.requester.email],
        context={
            "ticket": ticket,
            "ticket_url": _ticket_url(ticket),
            "rate_url": f"{_ticket_url(ticket)}#rate",
        },
    )


def escalated(ticket: Ticket, escalation: Escalation) -> int:
    team = escalation.team
    if team is None:
        recipients = [ticket.assignee.email] if ticket.assignee else []
    elif team.escalation_contact:
        recipients = [team.escalation_contact]
    else:
        recipients = list(team.members.filter(is_active=True).values_list("email", flat=True))
    return _send(
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
    return _send(
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
    return _send(
        template="customer_replied",
        subject=f"[{ticket.reference}] New reply from {_name(ticket.requester)}",
        to=[ticket.assignee.email],
        context={
            "ticket": ticket,
            "message": message,
            "admin_url": f"{settings.SITE_URL}/admin/support/ticket/{ticket.pk}/change/",
        },
    )
