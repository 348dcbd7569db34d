"""Demo data for a fresh install: idempotent, so loading it twice changes nothing.

Each loader looks its rows up by a natural key first (usernames, organization and team
names, ticket subjects per requester). Tickets are created and moved through the same
services the product uses, so their events and timestamps are real.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.demo import DemoLogin

DEMO_LOGINS = (
    DemoLogin("customer", "customer", "customer-demo", "/tickets/ and /roadmap/"),
    DemoLogin("agent", "agent", "agent-demo", "/admin/"),
    DemoLogin("manager", "manager", "manager-demo", "/admin/"),
    DemoLogin("admin", "admin", "admin-demo", "/admin/"),
)

_PROFILES = {
    "customer": {"first_name": "Casey", "last_name": "Customer", "email": "casey@acme.example"},
    "agent": {"first_name": "Alex", "last_name": "Agent", "email": "alex@helpdesk.example"},
    "manager": {"first_name": "Morgan", "last_name": "Manager", "email": "morgan@helpdesk.example"},
    "admin": {"first_name": "Ada", "last_name": "Admin", "email": "ada@helpdesk.example"},
}

ORGANIZATIONS = [
    # name, plan, MRR, SLA policy name
    ("Acme Corp", "enterprise", Decimal("12000"), "Premium"),  # opted in to betas
    ("Globex", "business", Decimal("1500"), None),
    ("Initech", "starter", Decimal("99"), None),
]

CUSTOMERS = [
    # username, first, last, organization, org admin?
    ("customer", "Casey", "Customer", "Acme Corp", False),
    ("dana", "Dana", "Ortiz", "Acme Corp", True),
    ("li", "Li", "Wei", "Globex", False),
    ("sam", "Sam", "Patel", "Initech", False),
]

TEAMS = [
    # name, handles, default?, round robin?
    ("Billing", ["billing", "cancellation"], False, True),
    ("Security", ["security", "legal"], False, False),
    ("Engineering", ["bug"], False, True),
    ("General", [], True, True),
]

SAVED_REPLIES = [
    (
        "Greeting",
        "Hi {{ customer.first_name }},\n\nThanks for reaching out about "
        "{{ ticket.reference }}. I'm looking into it now.\n\n{{ agent.first_name }}",
        "",
    ),
    (
        "Need more details",
        "Hi {{ customer.first_name }}, could you send a screenshot and the "
        "steps that lead to the problem?",
        "awaiting_customer",
    ),
    (
        "Refund processed",
        "Hi {{ customer.first_name }}, your refund is on its way and should "
        "appear within 5–10 business days.",
        "resolved",
    ),
]

#: The curated list of tags: name, description, keywords (AI triage suggests the tag when
#: a ticket mentions one).
TAGS = [
    ("billing", "Invoices, charges and plans", ["invoice", "charged", "payment", "billing"]),
    ("refund", "Money back", ["refund", "money back", "chargeback"]),
    ("bug", "Something is broken", ["error", "crash", "blank", "times out", "bug"]),
    ("ios", "The iPhone and iPad app", ["iphone", "ipad", "ios"]),
    ("android", "The Android app", ["android"]),
    ("vip", "Customers on the enterprise plan", []),
    ("security", "Logins, access, suspicious activity", ["suspicious", "login", "password"]),
    ("api", "The REST API and integrations", ["api", "429", "rate limit", "integration"]),
    ("export", "CSV and PDF exports", ["export", "csv", "pdf"]),
]

#: Custom fields: key, label, kind, choices, required for types, customer visible,
#: customer editable, help text.
CUSTOM_FIELDS = [
    (
        "order_number",
        "Order number",
        "text",
        [],
        ["billing"],
        True,
        True,
        "On your invoice, e.g. A-1001.",
    ),
    ("device", "Device", "multi_choice", ["web", "ios", "android", "desktop"], [], True, True, ""),
    (
        "plan_tier",
        "Plan tier",
        "choice",
        ["starter", "business", "enterprise"],
        [],
        False,
        False,
        "The customer's plan as billing sees it (team only).",
    ),
]

# requester, subject, type, priority, description, then what happens
TICKETS = [
    (
        "customer",
        "Invoice PDF is blank",
        "billing",
        "normal",
        "When I download last month's invoice the PDF opens but every page is blank.",
        [
            "tags:billing,bug,vip",
            'fields:{"order_number": "A-1001", "device": ["web"], "plan_tier": "enterprise"}',
            "agent_reply:Thanks Casey, we found a rendering bug and re-issued the invoice.",
            "resolve",
            "rate:5:Fast and friendly, thank you!",
        ],
    ),
    (
        "customer",
        "How do I add a teammate?",
        "account",
        "low",
        "Where can I invite a colleague to our workspace?",
        ["agent_reply:Go to Settings → Members → Invite. Need anything else?"],
    ),
    (
        "customer",
        "Export to CSV times out",
        "bug",
        "high",
        "Exporting more than 10k rows to CSV times out after 30 seconds.",
        [
            "tags:bug,export,vip",
            'fields:{"device": ["web", "desktop"], "plan_tier": "enterprise"}',
            "note:Reproduced on staging; engineering ticket filed.",
            "escalate:complex:Needs engineering: export timeout",
        ],
    ),
    (
        "dana",
        "Please cancel our second seat",
        "cancellation",
        "normal",
        "We no longer need the seat for our intern, please remove it from billing.",
        [],
    ),
    (
        "li",
        "Suspicious login from another country",
        "account",
        "urgent",
        "I got an email about a login from a place I have never been to.",
        ["escalate_topic:policy:security:Possible account takeover"],
    ),
    (
        "li",
        "Dark mode?",
        "feature",
        "low",
        "Is there a dark mode for the dashboard?",
        ["agent_reply:Not yet, but it is on our roadmap!", "resolve", "close"],
    ),
    (
        "sam",
        "Charged twice this month",
        "billing",
        "high",
        "My card was charged twice on the 3rd for the Starter plan.",
        [
            "tags:billing,refund",
            'fields:{"order_number": "A-2040", "plan_tier": "starter"}',
            "escalate:policy:Billing dispute: double charge",
        ],
    ),
    (
        "sam",
        "API returns 429",
        "general",
        "normal",
        "Our integration gets HTTP 429 after a few requests per second.",
        ["tags:api"],
    ),
]


def _demo_password(username: str) -> str:
    return f"{username}-demo"


def _verify_email(user) -> None:
    """Demo people have a verified email (allauth's row), so they sign in and act at once."""
    from allauth.account.models import EmailAddress

    if user.email:
        EmailAddress.objects.update_or_create(
            user=user, email=user.email.lower(), defaults={"verified": True, "primary": True}
        )


@transaction.atomic
def load_demo_users() -> list[DemoLogin]:
    from django.contrib.auth.models import Group

    User = get_user_model()
    agents, _ = Group.objects.get_or_create(name=settings.AGENTS_GROUP)
    managers, _ = Group.objects.get_or_create(name=settings.MANAGERS_GROUP)
    for login in DEMO_LOGINS:
        user, created = User.objects.get_or_create(
            username=login.username, defaults=_PROFILES[login.role]
        )
        if created:
            user.set_password(login.password)
        user.is_staff = login.role != "customer"
        user.is_superuser = login.role == "admin"
        user.save()
        _verify_email(user)
        if login.role == "agent":
            user.groups.add(agents)
        if login.role == "manager":
            user.groups.add(agents, managers)
    return list(DEMO_LOGINS)


@transaction.atomic
def load_demo_support() -> None:
    from support.models import (
        CustomerProfile,
        Organization,
        SavedReply,
        SlaPolicy,
        Team,
        TeamMembership,
    )

    _demo_business_hours()
    User = get_user_model()
    organizations = {}
    for name, plan, mrr, policy in ORGANIZATIONS:
        organizations[name], _ = Organization.objects.get_or_create(
            name=name,
            defaults={
                "plan": plan,
                "mrr": mrr,
                "sla_policy": SlaPolicy.objects.filter(name=policy).first(),
            },
        )
    for username, first, last, org, is_admin in CUSTOMERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@{org.split()[0].lower()}.example",
            },
        )
        if created:
            user.set_password(_demo_password(username))
            user.save()
        _verify_email(user)
        CustomerProfile.objects.get_or_create(
            user=user, defaults={"organization": organizations[org], "is_org_admin": is_admin}
        )

    staff = list(User.objects.filter(username__in=["agent", "manager"]))
    for name, handles, is_default, round_robin in TEAMS:
        team, _ = Team.objects.get_or_create(
            name=name,
            defaults={"handles": handles, "is_default": is_default, "round_robin": round_robin},
        )
        for user in staff:
            TeamMembership.objects.get_or_create(team=team, user=user)

    author = User.objects.filter(username="admin").first()
    for title, body, new_status in SAVED_REPLIES:
        SavedReply.objects.get_or_create(
            title=title, defaults={"body": body, "new_status": new_status, "created_by": author}
        )

    from support.models import Tag

    for name, description, keywords in TAGS:
        Tag.objects.get_or_create(
            name=name,
            defaults={
                "description": description,
                "keywords": "\n".join(keywords),
                "created_by": author,
            },
        )

    from support.models import CustomField

    for position, spec in enumerate(CUSTOM_FIELDS):
        key, label, kind, choices, required, visible, editable, help_text = spec
        CustomField.objects.get_or_create(
            key=key,
            defaults={
                "label": label,
                "kind": kind,
                "choices": choices,
                "required_for_types": required,
                "customer_visible": visible,
                "customer_editable": editable,
                "help_text": help_text,
                "position": position,
            },
        )

    for spec in TICKETS:
        _demo_ticket(*spec)


def _demo_business_hours() -> None:
    """An office-hours calendar (Mon–Fri 09:00–17:00, Berlin, two holidays) and the SLA
    policy of the Starter plan counted in it: Initech's due times skip nights and weekends."""
    import datetime as dt

    from support.models import BusinessCalendar, BusinessHours, Holiday, SlaPolicy

    calendar, created = BusinessCalendar.objects.get_or_create(
        name="Office hours (Berlin)", defaults={"time_zone": "Europe/Berlin"}
    )
    if created:
        BusinessHours.objects.bulk_create(
            BusinessHours(calendar=calendar, weekday=d, start_time=dt.time(9), end_time=dt.time(17))
            for d in range(5)
        )
        year = timezone.localdate().year
        Holiday.objects.bulk_create(
            [
                Holiday(calendar=calendar, date=dt.date(year, 12, 25), name="Christmas Day"),
                Holiday(calendar=calendar, date=dt.date(year + 1, 1, 1), name="New Year's Day"),
            ]
        )
    SlaPolicy.objects.get_or_create(
        name="Starter (office hours)",
        defaults={
            "plan": "starter",
            "calendar": calendar,
            "low_hours": 40,
            "normal_hours": 16,
            "high_hours": 8,
            "urgent_hours": 4,
        },
    )


def _demo_ticket(username, subject, type_, priority, description, script) -> None:
    from support import services
    from support.models import Ticket

    User = get_user_model()
    requester = User.objects.get(username=username)
    if Ticket.objects.filter(requester=requester, subject=subject).exists():
        return
    agent = User.objects.get(username="agent")
    ticket = services.ticket_open(
        requester=requester, subject=subject, description=description, type=type_, priority=priority
    )
    for step in script:
        verb, _, rest = step.partition(":")
        if verb.startswith("escalate") and ticket.escalations.exists():
            continue  # the always-escalate rules (automation) did it on opening
        if verb == "agent_reply":
            services.message_add(ticket=ticket, author=agent, body=rest)
        elif verb == "tags":
            services.ticket_tag(ticket=ticket, add=rest.split(","), actor=agent)
        elif verb == "fields":
            services.ticket_set_custom_fields(ticket=ticket, values=json.loads(rest), actor=agent)
        elif verb == "note":
            services.message_add(ticket=ticket, author=agent, body=rest, is_internal=True)
        elif verb == "resolve":
            services.ticket_resolve(ticket=ticket, actor=agent)
        elif verb == "close":
            services.ticket_close(ticket=ticket, actor=agent)
        elif verb == "rate":
            rating, _, comment = rest.partition(":")
            services.ticket_rate(
                ticket=ticket, actor=requester, rating=int(rating), comment=comment
            )
        elif verb == "escalate":
            kind, _, reason = rest.partition(":")
            services.ticket_escalate(ticket=ticket, kind=kind, reason=reason, actor=agent)
        elif verb == "escalate_topic":
            kind, topic, reason = rest.split(":", 2)
            services.ticket_escalate(
                ticket=ticket,
                kind=kind,
                topic=topic,
                reason=reason,
                actor=None,
                actor_kind="system",
            )


def load_demo() -> list[DemoLogin]:
    """Support's part of ``load_demo_data`` (core): the logins, organizations, teams and
    tickets; the other apps' loaders run after it."""
    logins = load_demo_users()
    load_demo_support()
    return logins
