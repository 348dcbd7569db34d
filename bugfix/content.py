"""What the helpdesk writes on GitHub: the issue of a bug ticket, and the draft pull
request of a suggested fix. Customer data is scrubbed (``support.pii``) before it leaves."""

from __future__ import annotations

import re

from django.conf import settings

from knowledge.models import Article
from support import pii
from support.services import ticket_people_names

MARKER = "<!-- helpdesk-ticket:{reference} -->"
_STEP = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.+)$", re.M)
_ENVIRONMENT = re.compile(
    r"\b(?:Chrome|Chromium|Firefox|Safari|Edge|Opera)\s*\d+(?:\.\d+)*"
    r"|\b(?:Windows|macOS|Mac OS X?|iOS|iPadOS|Android|Linux|Ubuntu|Debian|Fedora)"
    r"(?:\s+\d+(?:\.\d+)*)?"
    r"|\b(?:desktop|mobile|web|iPhone|iPad) app\b"
    r"|\b(?:version|v)\s?\d+\.\d+(?:\.\d+)*",
    re.I,
)


def marker(ticket) -> str:
    return MARKER.format(reference=ticket.reference)


def _scrub(ticket, text: str) -> str:
    return pii.anonymize(text, names=ticket_people_names(ticket))[0]


def issue_title(ticket) -> str:
    return f"{_scrub(ticket, ticket.subject)} [{ticket.reference}]"[:250]


def issue_body(ticket) -> str:
    description = _scrub(ticket, ticket.description)
    steps = _STEP.findall(description)
    environment = sorted({m.group().strip() for m in _ENVIRONMENT.finditer(description)})
    plan = ticket.organization.get_plan_display() if ticket.organization else "no organization"
    cited = set()
    for ids in ticket.messages.filter(sender_kind="ai").values_list("article_ids", flat=True):
        cited.update(ids)
    articles = Article.objects.filter(pk__in=cited).order_by("title")
    lines = [
        "## What the customer reports",
        "",
        description,
        "",
        "## Steps to reproduce",
        "",
        *([f"{i}. {step}" for i, step in enumerate(steps, 1)] or ["Not given in the ticket."]),
        "",
        "## Environment",
        "",
        *([f"- {item}" for item in environment] or ["- Not given in the ticket."]),
        "",
        "## Customer impact",
        "",
        f"- Priority: {ticket.get_priority_display()}",
        f"- Customer plan: {plan}",
        f"- Reported: {ticket.created_at:%Y-%m-%d %H:%M} UTC",
        "",
        "## Links",
        "",
        f"- Helpdesk ticket {ticket.reference}: "
        f"{settings.SITE_URL}/admin/support/ticket/{ticket.pk}/change/",
        *[
            f"- Help article the AI cited: {a.title} {settings.SITE_URL}{a.get_absolute_url()}"
            for a in articles
        ],
        "",
        "_Opened by the helpdesk; customer personal data was removed._",
        marker(ticket),
    ]
    return "\n".join(lines)


def pull_request_body(link, explanation: str, confidence: float) -> str:
    return "\n".join(
        [
            f"Suggested fix for #{link.issue_number} (helpdesk ticket {link.ticket.reference}).",
            "",
            "## Explanation",
            "",
            explanation.strip() or "(none given)",
            "",
            f"AI confidence: {confidence:.2f}. Drafted by the helpdesk's AI agent: a person "
            "reviews it before it is marked ready; it is never merged automatically.",
            "",
            f"Refs #{link.issue_number}",
            marker(link.ticket),
        ]
    )
