"""The queue (admin changelist) with tags and custom fields shown and filtered: the right
tickets, and a query count that does not grow with the page."""

from __future__ import annotations

import pytest

from support import services
from support.models import CustomField, Tag
from tests.factories import CustomerFactory

CHANGELIST = "/admin/support/ticket/"
# Session, user, the manager check and the permissions, the filters' choices (staff,
# teams, tags in use), the field definitions (once for the column and the filter), the
# count, the page and its tags: 12, with 5 tickets on the page or 50.
MAX_QUERIES = 12

pytestmark = pytest.mark.django_db


@pytest.fixture
def fields(manager):
    def define(key, label, kind, choices=(), position=0):
        return services.custom_field_save(
            field=CustomField(
                key=key, label=label, kind=kind, choices=list(choices), position=position
            ),
            actor=manager,
        )

    return {
        "plan": define("plan", "Plan tier", "choice", ["free", "gold"], 1),
        "vip": define("vip", "VIP", "boolean", position=2),
        "order": define("order", "Order number", "text", position=3),
        "os": define("os", "Systems", "multi_choice", ["ios", "android", "web"], 4),
    }


def make_tickets(count, *, org, agent):
    """``count`` tickets, each with three tags and four custom field values."""
    tickets = []
    for i in range(count):
        requester = CustomerFactory(username=f"q{i}", profile__organization=org)
        ticket = services.ticket_open(requester=requester, subject=f"T{i}", description="d")
        services.ticket_tag(
            ticket=ticket,
            add=["billing", f"batch-{i % 3}", "even" if i % 2 == 0 else "odd"],
            actor=agent,
        )
        services.ticket_set_custom_fields(
            ticket=ticket,
            values={
                "plan": "gold" if i % 2 == 0 else "free",
                "vip": i % 5 == 0,
                "order": f"A-{1000 + i}",
                "os": ["ios", "web"] if i % 2 == 0 else ["android"],
            },
            actor=agent,
        )
        tickets.append(ticket)
    return tickets


def rows(response) -> int:
    return response.content.decode().count('class="field-reference"')


@pytest.mark.parametrize("count", [5, 50])
def test_queue_queries_stay_bounded_with_tags_and_fields_shown_and_filtered(
    client, agent, org_a, fields, count, django_assert_max_num_queries
):
    make_tickets(count, org=org_a, agent=agent)
    client.force_login(agent)
    client.get(CHANGELIST)  # the session's first read is not the page's

    pages = {
        "": count,
        "tag=billing": count,
        "tag=even": (count + 1) // 2,
        "cf=plan:gold": (count + 1) // 2,
        "cf=os:android": count // 2,
        "tag=even&cf=vip:true": len([i for i in range(count) if i % 10 == 0]),
    }
    for query, expected in pages.items():
        with django_assert_max_num_queries(MAX_QUERIES):
            response = client.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200
        assert rows(response) == expected, query


def test_the_columns_show_tags_and_field_values(client, agent, org_a, fields):
    make_tickets(1, org=org_a, agent=agent)
    client.force_login(agent)

    html = client.get(CHANGELIST).content.decode()

    for tag in ("billing", "batch-0", "even"):
        assert f'<span class="hd-badge hd-tag">{tag}</span>' in html
    assert "Plan tier: gold" in html and "VIP: Yes" in html
    assert "Order number: A-1000" in html and "Systems: ios, web" in html


def test_filters_return_the_right_tickets(client, agent, org_a, fields):
    tickets = make_tickets(4, org=org_a, agent=agent)
    bare = services.ticket_open(requester=tickets[0].requester, subject="Bare", description="d")
    client.force_login(agent)

    def shown(query):
        html = client.get(f"{CHANGELIST}?{query}").content.decode()
        return {t.reference for t in [*tickets, bare] if t.reference in html}

    def of(*indexes):
        return {tickets[i].reference for i in indexes}

    assert shown("tag=odd") == of(1, 3)
    assert shown("tag=batch-1") == of(1)
    assert shown("cf=plan:free") == of(1, 3)
    assert shown("cf=vip:true") == of(0)
    assert shown("cf=vip:false") == of(1, 2, 3)
    assert shown("cf=order:A-1002") == of(2)
    assert shown("cf=os:web") == of(0, 2)
    assert shown("tag=even&cf=plan:gold") == of(0, 2)
    assert bare.reference in shown("")


def test_the_filters_offer_tags_in_use_and_choice_fields(client, agent, manager, org_a, fields):
    make_tickets(2, org=org_a, agent=agent)
    services.tag_save(tag=Tag(name="unused"), actor=manager)  # on no ticket: not offered
    client.force_login(agent)

    response = client.get(CHANGELIST)

    specs = {spec.title: spec for spec in response.context["cl"].filter_specs}
    tags = [value for value, _ in specs["tag"].lookup_choices]
    assert tags == ["batch-0", "batch-1", "billing", "even", "odd"]
    options = dict(specs["custom field"].lookup_choices)
    assert options["plan:gold"] == "Plan tier: gold"
    assert options["vip:false"] == "VIP: no"
    assert options["os:android"] == "Systems: android"
    assert not any(key.startswith("order:") for key in options)  # text: by URL only


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("cf=plan:platinum", "is not one of"),
        ("cf=nosuch:1", "There is no custom field"),
        ("cf=plan", "key:value"),
    ],
)
def test_a_bad_custom_field_filter_says_why_and_shows_nothing(
    client, agent, org_a, fields, query, message
):
    make_tickets(2, org=org_a, agent=agent)
    client.force_login(agent)

    response = client.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 200 and rows(response) == 0
    texts = [str(m) for m in response.context["messages"]]
    assert any(message in text for text in texts), texts
