"""Bulk actions on the queue: assign, status, priority, tags, merge, a saved reply, through
admin (a form page, then a summary) and ``POST /api/tickets/bulk/``; each ticket through
its service, refusals listed with their reason, bad parameters refused before anything
changes, a cap on the selection, staff only."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from rest_framework.test import APIClient

from core.errors import NotPermitted
from support import bulk, services
from support.models import Tag, Ticket, TicketEvent
from tests.factories import AgentFactory, SavedReplyFactory

CHANGELIST = "/admin/support/ticket/"
BULK_API = "/api/tickets/bulk/"

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def three(customer):
    return [
        services.ticket_open(requester=customer, subject=f"Bulk {i}", description="d")
        for i in range(3)
    ]


@pytest.fixture
def colleague_agent(db):
    return AgentFactory(username="agent-b", first_name="Bea", last_name="Lopez")


def refs(tickets) -> list[str]:
    return [t.reference for t in tickets]


def fresh(tickets) -> list[Ticket]:
    return [Ticket.objects.get(pk=t.pk) for t in tickets]


def admin_action(client, action, tickets, **form):
    """The action's form page, or (``apply`` in ``form``) its run."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [t.pk for t in tickets], **form}
    return client.post(CHANGELIST, data)


def summary(response) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    result = response.context["result"]
    return result.done, result.refused


# ======================================================================================
# Admin: the form page, then the summary
# ======================================================================================


def test_assign_shows_a_form_with_the_selection_then_a_summary(
    client, agent, colleague_agent, three
):
    client.force_login(agent)

    page = admin_action(client, "assign_action", three)

    html = page.content.decode()
    assert page.status_code == 200 and "Assign to" in html
    for ticket in three:
        assert f'name="{ACTION_CHECKBOX_NAME}" value="{ticket.pk}"' in html
    assert all(t.assignee_id is None for t in fresh(three))  # nothing yet

    response = admin_action(
        client, "assign_action", three, apply="Apply", assignee=str(colleague_agent.pk)
    )

    done, refused = summary(response)
    assert done == [(r, "assigned to Bea Lopez") for r in refs(three)] and refused == []
    html = response.content.decode()
    assert "Done: 3" in html and "Refused: 0" in html
    assert all(t.assignee == colleague_agent for t in fresh(three))
    assert TicketEvent.objects.filter(ticket__in=three, kind="assigned").count() == 3


def test_status_priority_and_unassign_through_their_forms(client, agent, three):
    client.force_login(agent)
    services.ticket_assign(ticket=three[0], assignee=agent, actor=agent)

    admin_action(client, "status_action", three, apply="Apply", status="awaiting_customer")
    admin_action(client, "priority_action", three, apply="Apply", priority="high")
    response = admin_action(client, "assign_action", three, apply="Apply", assignee="none")

    done, _ = summary(response)
    assert done[0] == (three[0].reference, "unassigned")
    assert done[1] == (three[1].reference, "already unassigned")
    tickets = fresh(three)
    assert {t.status for t in tickets} == {"awaiting_customer"}
    assert {t.priority for t in tickets} == {"high"}
    assert all(t.assignee_id is None for t in tickets)
    for kind in ("status_changed", "priority_changed"):
        assert TicketEvent.objects.filter(ticket__in=three, kind=kind).count() == 3


def test_tags_are_added_and_removed_on_each_ticket(client, agent, three):
    services.ticket_tag(ticket=three[0], add=["old"], actor=agent)
    client.force_login(agent)

    response = admin_action(
        client, "tags_action", three, apply="Apply", add_tags="VIP, billing", remove_tags="old"
    )

    done, refused = summary(response)
    assert refused == [] and done[0] == (three[0].reference, "tags +vip +billing −old")
    for ticket in three:
        assert sorted(ticket.tags.values_list("name", flat=True)) == ["billing", "vip"]
    assert TicketEvent.objects.filter(ticket__in=three, kind="tags_changed").count() == 4


def test_merge_into_one_of_the_selection(client, agent, three):
    client.force_login(agent)
    keep = three[1]

    page = admin_action(client, "merge_action", three)
    assert f'value="{keep.reference}"' in page.content.decode()  # a radio per ticket
    response = admin_action(client, "merge_action", three, apply="Apply", keep=keep.reference)

    done, refused = summary(response)
    assert refused == []
    assert dict(done) == {
        three[0].reference: f"merged into {keep.reference}",
        keep.reference: "kept: the others were merged into it",
        three[2].reference: f"merged into {keep.reference}",
    }
    tickets = fresh(three)
    assert tickets[0].merged_into == keep and tickets[2].merged_into == keep
    assert tickets[0].status == "closed" and tickets[1].merged_into is None
    assert keep.messages.filter(moved_from__in=[three[0], three[2]]).count() >= 2


def test_merge_into_a_ticket_outside_the_selection(client, agent, customer, three):
    target = services.ticket_open(requester=customer, subject="Original", description="d")
    client.force_login(agent)

    response = admin_action(
        client, "merge_action", three, apply="Apply", keep="other", other=target.reference
    )

    done, _ = summary(response)
    assert [note for _, note in done] == [f"merged into {target.reference}"] * 3
    assert Ticket.objects.filter(merged_into=target).count() == 3


def test_a_saved_reply_is_sent_to_each(client, agent, three):
    reply = SavedReplyFactory(title="Looking into it", body="Hi {{ customer.first_name }}")
    client.force_login(agent)

    response = admin_action(
        client, "saved_reply_action", three, apply="Apply", saved_reply=str(reply.pk)
    )

    done, _ = summary(response)
    assert [note for _, note in done] == ["sent “Looking into it”"] * 3
    for ticket in three:
        assert ticket.messages.filter(author=agent, body="Hi Casey").exists()


def test_a_mixed_selection_reports_what_was_refused_and_why(client, agent, three):
    services.ticket_close(ticket=three[1], actor=agent)
    services.ticket_resolve(ticket=three[2], actor=agent)
    client.force_login(agent)

    response = client.post(
        CHANGELIST, {"action": "resolve_action", ACTION_CHECKBOX_NAME: [t.pk for t in three]}
    )

    html = response.content.decode()
    assert "Done: 1" in html and "Refused: 2" in html
    assert three[1].reference in html and "A ticket that is closed cannot become resolved." in html
    assert three[2].reference in html and "This ticket is already resolved." in html
    assert [t.status for t in fresh(three)] == ["resolved", "closed", "resolved"]


def test_the_quick_actions_show_the_same_summary(client, agent, three):
    client.force_login(agent)

    taken = client.post(
        CHANGELIST, {"action": "assign_to_me_action", ACTION_CHECKBOX_NAME: [three[0].pk]}
    )
    urgent = client.post(
        CHANGELIST, {"action": "mark_urgent_action", ACTION_CHECKBOX_NAME: [three[0].pk]}
    )
    closed = client.post(
        CHANGELIST, {"action": "close_action", ACTION_CHECKBOX_NAME: [three[0].pk]}
    )

    assert summary(taken)[0] == [(three[0].reference, "assigned to you")]
    assert summary(urgent)[0] == [(three[0].reference, "priority urgent")]
    assert summary(closed)[0] == [(three[0].reference, "closed")]


def test_bad_parameters_show_the_form_again_and_change_nothing(client, agent, three):
    client.force_login(agent)

    bad_tag = admin_action(client, "tags_action", three, apply="Apply", add_tags="a/b")
    no_tag = admin_action(client, "tags_action", three, apply="Apply")
    no_target = admin_action(
        client, "merge_action", three, apply="Apply", keep="other", other="HD-19990101-0001"
    )

    assert "“a/b”" in bad_tag.content.decode() and "result" not in bad_tag.context
    assert "Name at least one tag to add or to remove." in no_tag.content.decode()
    assert "There is no ticket HD-19990101-0001." in no_target.content.decode()
    assert not any(t.tags.exists() for t in three)
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()
    assert not TicketEvent.objects.filter(ticket__in=three, kind="tags_changed").exists()


def test_the_selection_is_capped(client, agent, three, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_TICKETS", 2)
    client.force_login(agent)

    quick = client.post(
        CHANGELIST,
        {"action": "close_action", ACTION_CHECKBOX_NAME: [t.pk for t in three]},
        follow=True,
    )
    form = client.post(
        CHANGELIST,
        {"action": "priority_action", ACTION_CHECKBOX_NAME: [t.pk for t in three]},
        follow=True,
    )

    for response in (quick, form):
        texts = [str(m) for m in response.context["messages"]]
        assert any("Select at most 2 tickets at once" in text for text in texts)
    assert {t.status for t in fresh(three)} == {"new"}


def test_an_unexpected_failure_is_reported_for_its_ticket_only(agent, three, monkeypatch):
    change = services.ticket_change_priority

    def flaky(*, ticket, **kwargs):
        if ticket.pk == three[1].pk:
            raise RuntimeError("boom")
        return change(ticket=ticket, **kwargs)

    monkeypatch.setattr(services, "ticket_change_priority", flaky)

    result = bulk.run("priority", three, {"priority": "low"}, actor=agent)

    assert result.refused == [(three[1].reference, "failed: internal error")]
    assert [r for r, _ in result.done] == [three[0].reference, three[2].reference]
    assert [t.priority for t in fresh(three)] == ["low", "normal", "low"]


def test_export_to_csv_lists_the_selection(client, agent, three):
    client.force_login(agent)

    response = client.post(
        CHANGELIST, {"action": "export_csv_action", ACTION_CHECKBOX_NAME: [three[0].pk]}
    )

    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    assert three[0].reference in body and three[1].reference not in body


def test_customers_cannot_reach_the_bulk_actions(client, customer, three):
    client.force_login(customer)

    response = admin_action(client, "status_action", three, apply="Apply", status="closed")

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert {t.status for t in fresh(three)} == {"new"}
    with pytest.raises(NotPermitted):
        bulk.run("status", three, {"status": "closed"}, actor=customer)


# ======================================================================================
# API
# ======================================================================================


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"action": "assign"}, lambda t, agent: t.assignee == agent),
        ({"action": "status", "status": "closed"}, lambda t, agent: t.status == "closed"),
        ({"action": "priority", "priority": "urgent"}, lambda t, agent: t.priority == "urgent"),
        (
            {"action": "tags", "add_tags": ["vip", "Refund Request"]},
            lambda t, agent: (
                set(t.tags.values_list("name", flat=True)) == {"vip", "refund-request"}
            ),
        ),
    ],
)
def test_each_simple_action_through_the_api(agent, three, params, check):
    response = api(agent).post(BULK_API, {"tickets": refs(three), **params}, format="json")

    assert response.status_code == 200, response.json()
    assert len(response.json()["done"]) == 3 and response.json()["refused"] == []
    assert all(check(t, agent) for t in fresh(three))


def test_merge_and_saved_reply_through_the_api(agent, three):
    reply = SavedReplyFactory(title="Thanks", body="Thanks!")

    sent = api(agent).post(
        BULK_API,
        {"tickets": refs(three[:2]), "action": "saved_reply", "saved_reply": reply.pk},
        format="json",
    )
    merged = api(agent).post(
        BULK_API,
        {"tickets": refs(three), "action": "merge", "merge_into": three[0].reference},
        format="json",
    )

    assert [d["note"] for d in sent.json()["done"]] == ["sent “Thanks”"] * 2
    assert merged.json()["done"][1:] == [
        {"ticket": t.reference, "note": f"merged into {three[0].reference}"} for t in three[1:]
    ]
    assert Ticket.objects.filter(merged_into=three[0]).count() == 2


def test_api_lists_refused_tickets_with_their_reason(agent, three):
    services.ticket_close(ticket=three[0], actor=agent)

    response = api(agent).post(
        BULK_API,
        {"tickets": [*refs(three), "HD-19990101-0001"], "action": "status", "status": "reopen"},
        format="json",
    )

    body = response.json()
    assert response.status_code == 200
    assert body["done"] == [{"ticket": three[0].reference, "note": "reopened"}]
    assert body["refused"] == [
        {"ticket": "HD-19990101-0001", "reason": "No such ticket."},
        {
            "ticket": three[1].reference,
            "reason": "Only a resolved or closed ticket can be reopened.",
        },
        {
            "ticket": three[2].reference,
            "reason": "Only a resolved or closed ticket can be reopened.",
        },
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "assign", "assignee": 999999}, "assignee"),
        ({"action": "status", "status": "new"}, "status"),
        ({"action": "status"}, "status"),
        ({"action": "priority", "priority": "soon"}, "priority"),
        ({"action": "saved_reply", "saved_reply": 999999}, "saved_reply"),
        ({"action": "tags", "add_tags": ["no/slash"]}, "add_tags"),
        ({"action": "tags", "add_tags": [1]}, "add_tags"),
        ({"action": "merge", "merge_into": "HD-19990101-0001"}, "merge_into"),
        ({"action": "merge"}, "merge_into"),
        ({"action": "explode"}, "action"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field_and_change_nothing(
    agent, customer, three, params, field
):
    response = api(agent).post(BULK_API, {"tickets": refs(three), **params}, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    tickets = fresh(three)
    assert all(t.assignee_id is None and t.status == "new" for t in tickets)
    assert not TicketEvent.objects.filter(ticket__in=three).exclude(kind="created").exists()


def test_curated_tags_refuse_an_unknown_name(agent, three, settings):
    settings.HELPDESK_TAGS_FREE = False

    response = api(agent).post(
        BULK_API, {"tickets": refs(three), "action": "tags", "add_tags": ["new-one"]}, format="json"
    )

    assert response.status_code == 400 and "add_tags" in response.json()
    assert not any(t.tags.exists() for t in three)


def test_api_caps_the_selection(agent, three, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_TICKETS", 2)

    response = api(agent).post(
        BULK_API, {"tickets": refs(three), "action": "status", "status": "closed"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"tickets": ["Select at most 2 tickets at once (3 selected)."]}
    assert {t.status for t in fresh(three)} == {"new"}


@pytest.mark.parametrize(("who", "code"), [("anonymous", 401), ("customer", 403)])
def test_only_staff_use_the_bulk_api(request, three, who, code):
    user = None if who == "anonymous" else request.getfixturevalue(who)

    response = api(user).post(
        BULK_API, {"tickets": refs(three), "action": "status", "status": "closed"}, format="json"
    )

    assert response.status_code == code
    assert {t.status for t in fresh(three)} == {"new"}


def test_curated_tags_are_named_on_the_form(client, agent, manager, three, settings):
    settings.HELPDESK_TAGS_FREE = False
    services.tag_save(tag=Tag(name="refund"), actor=manager)
    client.force_login(agent)

    page = admin_action(client, "tags_action", three)
    refused = admin_action(client, "tags_action", three, apply="Apply", add_tags="brand-new")

    assert "Tags of the list only: refund." in page.content.decode()
    assert "“brand-new” is not in the list of tags" in refused.content.decode()
    assert not any(t.tags.exists() for t in three)
