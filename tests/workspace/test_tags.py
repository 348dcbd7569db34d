"""Tags: the services (free and curated lists, the limit, events, who may tag), AI triage's
suggestions, the ticket page's panel and the tags admin, the API (field, filter, PATCH,
/api/tags/), rules that tag and rules on tags, and the tags rollup on the dashboard."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from analytics import services as analytics_services
from analytics.models import TagDaily
from automation.models import Rule
from automation.services.rules import rule_create
from core.errors import DomainError, NotPermitted
from integrations.llm.local import LocalProvider
from support import services
from support.ai import pipeline
from support.models import Tag, Ticket, TicketEvent, TicketTag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def names(ticket) -> list[str]:
    return sorted(ticket.tags.values_list("name", flat=True))


def tag_events(ticket):
    return list(ticket.events.filter(kind=TicketEvent.Kind.TAGS_CHANGED).order_by("pk"))


@pytest.fixture
def curated(settings):
    settings.HELPDESK_TAGS_FREE = False
    Tag.objects.create(name="billing", keywords="invoice\ncharged twice")
    Tag.objects.create(name="vip")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# ======================================================================================
# Services
# ======================================================================================


def test_an_agent_tags_a_ticket_with_new_names_in_free_mode(ticket, agent):
    services.ticket_set_tags(ticket=ticket, tags=["Billing Issue", "vip", "VIP"], actor=agent)

    assert names(ticket) == ["billing-issue", "vip"]
    assert Tag.objects.get(name="billing-issue").created_by == agent
    link = TicketTag.objects.get(ticket=ticket, tag__name="vip")
    assert (link.added_by, link.added_by_kind) == (agent, "agent")
    [event] = tag_events(ticket)
    assert (event.field, event.old_value, event.new_value) == ("tags", "", "billing-issue, vip")
    assert event.metadata == {"added": ["billing-issue", "vip"], "removed": []}
    assert event.actor == agent and event.is_internal


def test_replacing_the_set_records_what_was_added_and_removed(ticket, agent):
    services.ticket_set_tags(ticket=ticket, tags=["a", "b"], actor=agent)
    services.ticket_set_tags(ticket=ticket, tags=["b", "c"], actor=agent)
    services.ticket_set_tags(ticket=ticket, tags=["c", "b"], actor=agent)  # no change

    assert names(ticket) == ["b", "c"]
    events = tag_events(ticket)
    assert len(events) == 2
    assert (events[1].old_value, events[1].new_value) == ("a, b", "b, c")
    assert events[1].metadata == {"added": ["c"], "removed": ["a"]}
    assert events[1].description == "tags changed from a, b to b, c"


def test_ticket_tag_adds_and_removes_leaving_the_others(ticket, agent):
    services.ticket_set_tags(ticket=ticket, tags=["a", "b"], actor=agent)
    services.ticket_tag(ticket=ticket, add=["c"], remove=["a", "not-there"], actor=agent)
    assert names(ticket) == ["b", "c"]


def test_curated_mode_refuses_unknown_names_and_names_them(ticket, agent, curated):
    with pytest.raises(DomainError) as refused:
        services.ticket_tag(ticket=ticket, add=["vip", "urgent-ish"], actor=agent)

    assert refused.value.field == "tags"
    assert "“urgent-ish”" in refused.value.message
    assert names(ticket) == [] and not Tag.objects.filter(name="urgent-ish").exists()
    services.ticket_tag(ticket=ticket, add=["VIP"], actor=agent)
    assert names(ticket) == ["vip"]


def test_bad_names_are_refused(ticket, agent):
    for bad in ["", "   ", "!!", "x" * 51, "-leading"]:
        with pytest.raises(DomainError) as refused:
            services.ticket_tag(ticket=ticket, add=[bad], actor=agent)
        assert refused.value.field == "tags"
    assert not tag_events(ticket)


def test_a_ticket_has_at_most_twenty_tags(ticket, agent):
    services.ticket_set_tags(ticket=ticket, tags=[f"t{n}" for n in range(20)], actor=agent)

    with pytest.raises(DomainError, match="at most 20"):
        services.ticket_tag(ticket=ticket, add=["one-more"], actor=agent)
    with pytest.raises(DomainError, match="at most 20"):
        services.ticket_set_tags(ticket=ticket, tags=[f"u{n}" for n in range(21)], actor=agent)
    assert len(names(ticket)) == 20


def test_customers_cannot_tag(ticket, customer):
    with pytest.raises(NotPermitted):
        services.ticket_tag(ticket=ticket, add=["mine"], actor=customer)
    with pytest.raises(NotPermitted):
        services.ticket_tag(ticket=ticket, add=["mine"], actor=None)  # nobody said who
    assert names(ticket) == [] and not Tag.objects.exists()


def test_a_tag_change_updates_the_live_pages_after_commit(
    ticket, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        services.ticket_tag(ticket=ticket, add=["vip"], actor=agent)
    assert callbacks  # the live update (support.realtime) runs once the change commits


def test_only_managers_change_the_list(agent, manager):
    with pytest.raises(NotPermitted):
        services.tag_save(tag=Tag(name="vip"), actor=agent)
    tag = services.tag_save(
        tag=Tag(name="  Very Important ", keywords=" vip \n\n key account "), actor=manager
    )
    assert (tag.name, tag.keywords, tag.created_by) == (
        "very-important",
        "vip\nkey account",
        manager,
    )
    with pytest.raises(DomainError) as taken:
        services.tag_save(tag=Tag(name="very important"), actor=manager)
    assert taken.value.field == "name"
    with pytest.raises(NotPermitted):
        services.tag_delete(tag=tag, actor=agent)
    services.tag_delete(tag=tag, actor=manager)
    assert not Tag.objects.exists()


# ======================================================================================
# AI triage's suggestions
# ======================================================================================


def test_analysis_suggests_tags_whose_keywords_the_ticket_mentions(customer, agent, curated):
    Tag.objects.create(name="ios", keywords="iPhone\niPad")
    Tag.objects.create(name="android", keywords="android")
    Tag.objects.create(name="ipa", keywords="ipa")  # "iPad" is not the word "ipa"
    ticket = services.ticket_open(
        requester=customer,
        subject="The app crashes on my iphone",
        description="Since the update it closes at once. I was CHARGED   TWICE too.",
    )
    services.ticket_tag(ticket=ticket, add=["vip"], actor=agent)

    pipeline.analyze_ticket(ticket.pk, provider=LocalProvider())

    ticket.refresh_from_db()
    assert ticket.suggested_tags == ["billing", "ios"]
    assert names(ticket) == ["vip"]  # suggestions wait for an agent


def test_accepting_a_suggestion_adds_the_tag_and_clears_it(ticket, agent, curated):
    Ticket.objects.filter(pk=ticket.pk).update(suggested_tags=["billing", "vip"])

    services.ticket_tag(ticket=ticket, add=["billing"], actor=agent)

    ticket.refresh_from_db()
    assert ticket.suggested_tags == ["vip"] and names(ticket) == ["billing"]


def test_suggestions_come_from_the_customers_words_not_internal_notes(ticket, agent, curated):
    services.message_add(ticket=ticket, author=agent, body="vip invoice", is_internal=True)
    assert services.ticket_tag_suggestions(ticket) == []
    services.message_add(ticket=ticket, author=ticket.requester, body="Where is my invoice?")
    assert services.ticket_tag_suggestions(ticket) == ["billing"]


# ======================================================================================
# Admin: the ticket page's panel and the list of tags
# ======================================================================================


def act(client, ticket, action, **data):
    return client.post(
        reverse("admin:support_ticket_act", args=[ticket.pk, action]), data, follow=True
    )


def test_the_ticket_page_adds_removes_and_accepts_tags(client, ticket, agent, curated):
    Ticket.objects.filter(pk=ticket.pk).update(suggested_tags=["billing"])
    client.force_login(agent)

    page = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()
    assert 'data-suggested-tag="billing"' in page
    assert '<option value="vip">' in page and "Add a tag from the list" in page

    response = act(client, ticket, "tag_add", tag="vip")
    assert "Tagged vip." in response.content.decode()
    response = act(client, ticket, "tag_accept", tag="billing")
    assert "suggested by the AI" in response.content.decode()
    assert names(ticket) == ["billing", "vip"]
    page = response.content.decode()
    assert 'data-tag="billing"' in page and 'data-suggested-tag="billing"' not in page

    response = act(client, ticket, "tag_remove", tag="vip")
    assert names(ticket) == ["billing"]
    response = act(client, ticket, "tag_add", tag="made-up")
    assert "not in the list of tags" in response.content.decode()
    assert names(ticket) == ["billing"]
    assert [e.new_value for e in tag_events(ticket)] == ["vip", "billing, vip", "billing"]


def test_a_suggestion_can_be_dismissed(client, ticket, agent, curated):
    Ticket.objects.filter(pk=ticket.pk).update(suggested_tags=["billing"])
    client.force_login(agent)
    act(client, ticket, "tag_dismiss", tag="billing")
    ticket.refresh_from_db()
    assert ticket.suggested_tags == [] and names(ticket) == []


def test_agents_read_the_list_of_tags_and_managers_change_it(client, ticket, agent, manager):
    services.ticket_tag(ticket=ticket, add=["vip"], actor=agent)
    client.force_login(agent)
    listing = client.get(reverse("admin:support_tag_changelist"))
    assert listing.status_code == 200 and "vip" in listing.content.decode()
    assert client.get(reverse("admin:support_tag_add")).status_code == 403
    tag = Tag.objects.get(name="vip")
    response = client.post(reverse("admin:support_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Tag.objects.filter(pk=tag.pk).exists()

    client.force_login(manager)
    response = client.post(
        reverse("admin:support_tag_add"),
        {"name": "Key Account", "description": "", "keywords": "enterprise"},
    )
    assert response.status_code == 302
    assert Tag.objects.get(name="key-account").created_by == manager
    response = client.post(
        reverse("admin:support_tag_add"), {"name": "key account", "keywords": ""}
    )
    assert "exists already" in response.content.decode()
    client.post(reverse("admin:support_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert not Tag.objects.filter(pk=tag.pk).exists() and names(ticket) == []


# ======================================================================================
# API
# ======================================================================================


def test_staff_see_tags_customers_do_not(ticket, agent, customer):
    services.ticket_tag(ticket=ticket, add=["vip", "billing"], actor=agent)
    url = reverse("api-ticket-detail", kwargs={"reference": ticket.reference})

    assert api(agent).get(url).json()["tags"] == ["billing", "vip"]
    assert api(customer).get(url).json()["tags"] is None


def test_staff_set_tags_with_patch_and_bad_names_are_400(ticket, agent, customer, settings):
    url = reverse("api-ticket-detail", kwargs={"reference": ticket.reference})

    response = api(agent).patch(url, {"tags": ["Refund", "vip"], "priority": "high"}, "json")
    assert response.status_code == 200
    assert response.json()["tags"] == ["refund", "vip"] and response.json()["priority"] == "high"

    too_many = [f"t{n}" for n in range(21)]
    for bad in (["no spaces!"], [" " + "x" * 50], ["a\n"], [0], too_many):
        response = api(agent).patch(url, {"tags": bad}, "json")
        assert response.status_code == 400 and "tags" in response.json()
    settings.HELPDESK_TAGS_FREE = False
    response = api(agent).patch(url, {"tags": ["vip", "brand-new"], "priority": "low"}, "json")
    assert response.status_code == 400
    assert "“brand-new”" in response.json()["tags"][0]
    ticket.refresh_from_db()
    assert ticket.priority == "high"  # one change: nothing of it was kept
    assert api(customer).patch(url, {"tags": ["mine"]}, "json").status_code == 403
    assert names(ticket) == ["refund", "vip"]


def test_the_list_filters_by_any_of_the_tags(customer, agent):
    tickets = [
        services.ticket_open(requester=customer, subject=f"T{n}", description="x") for n in range(4)
    ]
    services.ticket_tag(ticket=tickets[0], add=["billing"], actor=agent)
    services.ticket_tag(ticket=tickets[1], add=["vip", "billing"], actor=agent)
    services.ticket_tag(ticket=tickets[2], add=["ios"], actor=agent)

    response = api(agent).get(reverse("api-ticket-list"), {"tag": "billing,VIP"})
    assert {t["subject"] for t in response.json()["results"]} == {"T0", "T1"}
    response = api(agent).get(reverse("api-ticket-list"), {"tag": "ios"})
    assert [t["subject"] for t in response.json()["results"]] == ["T2"]
    # Customers do not see tags: the filter tells them nothing.
    response = api(customer).get(reverse("api-ticket-list"), {"tag": "ios"})
    assert len(response.json()["results"]) == 4


def _list_queries(agent) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api(agent).get(reverse("api-ticket-list"), {"tag": "vip"})
    assert response.status_code == 200
    return len(queries)


def test_the_list_with_tags_has_no_n_plus_one(customer, agent, django_assert_max_num_queries):
    def add(count):
        for n in range(count):
            ticket = services.ticket_open(requester=customer, subject=f"S{n}", description="x")
            services.ticket_tag(ticket=ticket, add=["vip", f"t{n}"], actor=agent)

    add(2)
    few = _list_queries(agent)
    add(10)
    with django_assert_max_num_queries(few):
        response = api(agent).get(reverse("api-ticket-list"), {"tag": "vip"})
    assert len(response.json()["results"]) == 12
    assert all(len(t["tags"]) == 2 for t in response.json()["results"])


def test_the_tags_api_staff_read_managers_write(ticket, agent, manager, customer):
    services.ticket_tag(ticket=ticket, add=["vip"], actor=agent)
    url = reverse("api-tag-list")

    listing = api(agent).get(url)
    assert listing.status_code == 200
    assert [(t["name"], t["ticket_count"]) for t in listing.json()] == [("vip", 1)]
    assert api(customer).get(url).status_code == 403
    assert api(agent).post(url, {"name": "x"}, "json").status_code == 403

    created = api(manager).post(url, {"name": "Key Account", "keywords": "enterprise"}, "json")
    assert created.status_code == 201
    assert created.json()["name"] == "key-account" and created.json()["ticket_count"] == 0
    again = api(manager).post(url, {"name": "key account"}, "json")
    assert again.status_code == 400 and "name" in again.json()
    bad = api(manager).post(url, {"name": "what?"}, "json")
    assert bad.status_code == 400 and "name" in bad.json()

    detail = reverse("api-tag-detail", kwargs={"pk": created.json()["id"]})
    changed = api(manager).patch(detail, {"description": "Big ones"}, "json")
    assert changed.status_code == 200 and changed.json()["description"] == "Big ones"
    assert api(agent).delete(detail).status_code == 403
    assert api(manager).delete(detail).status_code == 204
    assert not Tag.objects.filter(name="key-account").exists()


# ======================================================================================
# Rules
# ======================================================================================


@pytest.fixture
def only_these_rules(db):
    Rule.objects.filter(is_default=True).update(is_enabled=False)


def test_a_rule_tags_billing_tickets_on_creation(customer, manager, only_these_rules):
    rule_create(
        actor=manager,
        name="Billing tag",
        trigger="ticket_created",
        conditions={"conditions": [{"field": "type", "operator": "is", "value": "billing"}]},
        actions=[{"type": "add_tags", "tags": "Billing, finance"}],
        is_enabled=True,
    )
    billing = services.ticket_open(
        requester=customer, subject="Invoice", description="Wrong VAT", type="billing"
    )
    other = services.ticket_open(requester=customer, subject="Hi", description="Hello")

    assert names(billing) == ["billing", "finance"] and names(other) == []
    [event] = tag_events(billing)
    assert event.actor_kind == "system" and event.actor is None
    assert TicketTag.objects.filter(ticket=billing, added_by_kind="system").count() == 2


def test_a_rule_conditioned_on_a_tag(customer, agent, manager, only_these_rules):
    rule_create(
        actor=manager,
        name="VIPs first",
        trigger="customer_message",
        conditions={"conditions": [{"field": "tags", "operator": "contains", "value": "VIP"}]},
        actions=[
            {"type": "set_priority", "priority": "urgent"},
            {"type": "remove_tags", "tags": ["waiting"]},
        ],
        is_enabled=True,
    )
    vip = services.ticket_open(requester=customer, subject="A", description="x")
    plain = services.ticket_open(requester=customer, subject="B", description="x")
    services.ticket_tag(ticket=vip, add=["vip", "waiting"], actor=agent)
    services.ticket_tag(ticket=plain, add=["waiting"], actor=agent)

    for ticket in (vip, plain):
        services.message_add(ticket=ticket, author=customer, body="Any news?")
        ticket.refresh_from_db()

    assert (vip.priority, names(vip)) == ("urgent", ["vip"])
    assert (plain.priority, names(plain)) == ("normal", ["waiting"])


def test_rules_refuse_bad_tag_conditions_and_unknown_curated_tags(manager, curated):
    with pytest.raises(DomainError, match="not in the list of tags: nope"):
        rule_create(
            actor=manager,
            name="x",
            trigger="ticket_created",
            actions=[{"type": "add_tags", "tags": ["vip", "nope"]}],
        )
    with pytest.raises(DomainError, match="tags cannot use"):
        rule_create(
            actor=manager,
            name="y",
            trigger="ticket_created",
            conditions={"conditions": [{"field": "tags", "operator": "is", "value": "vip"}]},
            actions=[{"type": "add_tags", "tags": ["vip"]}],
        )


# ======================================================================================
# Dashboards
# ======================================================================================


def test_the_rollup_counts_tickets_per_tag_and_the_dashboard_shows_them(
    client, customer, agent, manager
):
    first = services.ticket_open(requester=customer, subject="A", description="x")
    second = services.ticket_open(requester=customer, subject="B", description="x")
    services.ticket_tag(ticket=first, add=["refund", "vip"], actor=agent)
    services.ticket_tag(ticket=second, add=["refund"], actor=agent)
    services.ticket_resolve(ticket=first, actor=agent)
    services.ticket_reopen(ticket=first, actor=agent)
    services.ticket_resolve(ticket=first, actor=agent)  # resolved twice: counted once
    day = analytics_services.local_today()

    analytics_services.rollup_day(day)
    analytics_services.rollup_day(day)  # idempotent

    rows = {
        row.tag.name: (row.tickets_opened, row.tickets_resolved)
        for row in TagDaily.objects.filter(day=day).select_related("tag")
    }
    assert rows == {"refund": (2, 1), "vip": (1, 1)}

    client.force_login(manager)
    page = client.get(reverse("analytics:overview"))
    assert page.status_code == 200
    assert "Tickets by tag" in page.content.decode() and "refund" in page.content.decode()
    csv = client.get(reverse("analytics:overview"), {"csv": "tags"}).content.decode()
    assert csv.splitlines()[:3] == ["Tag,Opened,Resolved", "refund,2,1", "vip,1,1"]
    overview = api(manager).get(reverse("api-analytics-overview"), {"start": day, "end": day})
    assert overview.json()["tags"][0] == {
        "tag": "refund",
        "tickets_opened": 2,
        "tickets_resolved": 1,
    }
    client.force_login(CustomerFactory(username="nosy"))
    assert client.get(reverse("analytics:overview")).status_code == 403


# ======================================================================================
# Demo data
# ======================================================================================


def test_the_demo_has_a_curated_list_and_tagged_tickets():
    from support.demo import load_demo_support, load_demo_users

    for _ in range(2):  # loading twice changes nothing
        load_demo_users()
        load_demo_support()

    assert {"billing", "refund", "bug", "ios", "android", "vip"} <= set(
        Tag.objects.values_list("name", flat=True)
    )
    assert "money back" in Tag.objects.get(name="refund").keywords.splitlines()
    vip = Ticket.objects.filter(tags__name="vip").values_list("subject", flat=True)
    assert sorted(vip) == ["Export to CSV times out", "Invoice PDF is blank"]
    assert TicketTag.objects.count() == 9
