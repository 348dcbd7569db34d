"""The agent workspace in admin: the queue, the ticket page and its actions."""

import pytest
from django.urls import reverse
from django.utils import timezone

from support import services
from support.models import Ticket, TicketEvent
from tests.factories import CustomerFactory, SavedReplyFactory

CHANGELIST = "/admin/support/ticket/"


def act(client, ticket, action, **data):
    return client.post(reverse("admin:support_ticket_act", args=[ticket.pk, action]), data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("viewer", "status"), [("customer", 302), ("agent", 200), ("manager", 200)]
)
def test_only_staff_reach_the_queue(request, client, ticket, viewer, status):
    client.force_login(request.getfixturevalue(viewer))

    assert client.get(CHANGELIST).status_code == status


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2, 40])
def test_queue_queries_do_not_grow_with_the_page(
    client, agent, org_a, count, django_assert_max_num_queries
):
    for i in range(count):
        requester = CustomerFactory(username=f"q{i}", profile__organization=org_a)
        t = services.ticket_open(requester=requester, subject=f"T{i}", description="d")
        services.ticket_assign(ticket=t, assignee=agent, actor=agent)
    client.force_login(agent)

    with django_assert_max_num_queries(12):
        response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.content.decode().count('class="field-reference"') == count


@pytest.mark.django_db
def test_queue_filters(client, agent, customer):
    mine = services.ticket_open(requester=customer, subject="Mine", description="d")
    services.ticket_assign(ticket=mine, assignee=agent, actor=agent)
    late = services.ticket_open(requester=customer, subject="Late", description="d")
    Ticket.objects.filter(pk=late.pk).update(
        sla_due_at=timezone.now() - timezone.timedelta(hours=1)
    )
    client.force_login(agent)

    def shown(query):
        html = client.get(f"{CHANGELIST}?{query}").content.decode()
        return {t.reference for t in (mine, late) if t.reference in html}

    assert shown("assignee=mine") == {mine.reference}
    assert shown("assignee=unassigned") == {late.reference}
    assert shown("sla=breached") == {late.reference}
    assert shown(f"q={late.reference}") == {late.reference}
    assert shown("q=customer-a@example.com") == {mine.reference, late.reference}
    assert shown("o=-8") == {mine.reference, late.reference}  # sortable by age/SLA columns


@pytest.mark.django_db
def test_ticket_page_shows_conversation_notes_and_events(client, ticket, agent):
    services.message_add(
        ticket=ticket, author=agent, body="Internal: check Stripe", is_internal=True
    )
    client.force_login(agent)

    html = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()

    assert "The export button spins forever." in html
    assert "hd-internal" in html and "Internal: check Stripe" in html
    assert "Event log" in html and "Created" in html
    assert 'name="_save"' not in html  # no field is edited directly


@pytest.mark.django_db
def test_reply_note_and_resolve_from_the_ticket_page(client, ticket, agent):
    client.force_login(agent)

    act(client, ticket, "reply", body="Internal thought", is_internal="on")
    act(client, ticket, "reply", body="Fixed it for you", and_resolve="on")

    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert list(ticket.messages.values_list("body", "is_internal"))[1:] == [
        ("Internal thought", True),
        ("Fixed it for you", False),
    ]


@pytest.mark.django_db
def test_each_button_calls_its_service(client, ticket, agent):
    reply = SavedReplyFactory(body="Hi {{ customer.first_name }}")
    client.force_login(agent)

    act(client, ticket, "assign_to_me")
    act(client, ticket, "priority", priority="high")
    act(client, ticket, "escalate", kind="complex", reason="Needs engineering", topic="")
    act(client, ticket, "saved_reply", saved_reply=reply.pk)
    act(client, ticket, "resolve")
    act(client, ticket, "reopen")
    act(client, ticket, "close")

    ticket.refresh_from_db()
    assert ticket.assignee == agent and ticket.priority == "high"
    assert ticket.status == "closed" and ticket.reopened_count == 1
    kinds = list(ticket.events.values_list("kind", flat=True))
    for kind in (
        "assigned",
        "priority_changed",
        "escalated",
        "message_added",
        "resolved",
        "reopened",
        "closed",
    ):
        assert kind in kinds


@pytest.mark.django_db
def test_a_refused_action_is_reported_and_changes_nothing(client, ticket, agent):
    client.force_login(agent)

    response = act(client, ticket, "reopen")
    page = client.get(response.url).content.decode()

    assert "Only a resolved or closed ticket can be reopened." in page
    ticket.refresh_from_db()
    assert ticket.status == "new"


@pytest.mark.django_db
def test_customers_cannot_use_the_action_endpoint(client, ticket, customer):
    client.force_login(customer)

    act(client, ticket, "resolve")

    ticket.refresh_from_db()
    assert ticket.status == "new"


@pytest.mark.django_db
def test_agents_cannot_delete_tickets_or_touch_events(client, ticket, agent):
    event = ticket.events.get()
    client.force_login(agent)

    assert client.get(f"{CHANGELIST}{ticket.pk}/delete/").status_code == 403
    assert client.post(f"/admin/support/ticketevent/{event.pk}/delete/").status_code == 403
    assert (
        client.post(
            f"/admin/support/ticketevent/{event.pk}/change/", {"new_value": "x"}
        ).status_code
        == 403
    )
    assert Ticket.objects.filter(pk=ticket.pk).exists()
    assert TicketEvent.objects.get(pk=event.pk).new_value == ticket.reference


@pytest.mark.django_db
def test_bulk_assign_to_me(client, agent, customer):
    tickets = [
        services.ticket_open(requester=customer, subject=f"B{i}", description="d") for i in range(3)
    ]
    client.force_login(agent)

    client.post(
        CHANGELIST, {"action": "assign_to_me_action", "_selected_action": [t.pk for t in tickets]}
    )

    assert Ticket.objects.filter(assignee=agent).count() == 3
