"""Emails go out after commit, once, to the right people."""

import pytest
from django.core import mail
from django.db import transaction

from support import services
from support.models import TeamMembership
from support.tasks import ticket_effects
from tests.factories import AgentFactory, TeamFactory


@pytest.mark.django_db
def test_customer_gets_each_public_reply_but_no_internal_note(ticket, agent, run_effects):
    with run_effects():
        services.message_add(ticket=ticket, author=agent, body="Please try again now.")
        services.message_add(ticket=ticket, author=agent, body="VIP customer", is_internal=True)

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["customer-a@example.com"]
    assert email.subject == f"[{ticket.reference}] Cannot export invoices"
    assert "Please try again now." in email.body
    assert "VIP customer" not in email.body
    html = email.alternatives[0][0]
    assert "Please try again now." in html and f"/tickets/{ticket.reference}/" in html


@pytest.mark.django_db
def test_resolution_email_asks_for_a_rating(ticket, agent, run_effects):
    with run_effects():
        services.ticket_resolve(ticket=ticket, actor=agent)

    (email,) = mail.outbox
    assert "Resolved" in email.subject
    assert f"/tickets/{ticket.reference}/#rate" in email.body


@pytest.mark.django_db
def test_escalation_notifies_the_team_contact(ticket, run_effects):
    TeamFactory(name="Billing", handles=["billing"], escalation_contact="billing@corp.test")

    with run_effects():
        services.ticket_escalate(
            ticket=ticket,
            kind="policy",
            reason="Refund dispute",
            ai_attempt="Explained the refund window",
        )

    (email,) = mail.outbox
    assert email.to == ["billing@corp.test"]
    assert "Refund dispute" in email.body and "Explained the refund window" in email.body


@pytest.mark.django_db
def test_escalation_without_contact_notifies_members(ticket, run_effects):
    team = TeamFactory(name="Billing", handles=["billing"])
    for name in ("ann", "bob"):
        TeamMembership.objects.create(team=team, user=AgentFactory(username=name))

    with run_effects():
        services.ticket_escalate(ticket=ticket, kind="complex", reason="r")

    assert sorted(mail.outbox[0].to) == ["ann@example.com", "bob@example.com"]


@pytest.mark.django_db
def test_assignee_is_told_unless_they_took_it_themselves(ticket, agent, run_effects):
    other = AgentFactory(username="agent-b")
    with run_effects():
        services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
        services.ticket_assign(ticket=ticket, assignee=other, actor=agent)

    assert [m.to for m in mail.outbox] == [["agent-b@example.com"]]


@pytest.mark.django_db
def test_assignee_hears_when_the_customer_writes(ticket, agent, customer, run_effects):
    services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    with run_effects():
        services.message_add(ticket=ticket, author=customer, body="Here is the log")

    (email,) = mail.outbox
    assert email.to == ["agent-a@example.com"] and "Here is the log" in email.body


@pytest.mark.django_db
def test_nothing_is_sent_when_the_transaction_rolls_back(
    ticket, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                services.message_add(ticket=ticket, author=agent, body="Draft")
                raise RuntimeError("boom")
        except RuntimeError:
            pass

    assert callbacks == []
    assert not ticket.messages.filter(body="Draft").exists()


@pytest.mark.django_db
def test_a_redelivered_task_sends_no_second_email(ticket, agent):
    from core.models import OutboxItem

    message = services.message_add(ticket=ticket, author=agent, body="Done")
    item = OutboxItem.objects.get(
        task="support.tasks.ticket_effects", kwargs__message_id=message.pk
    )

    # The broker delivers the same outbox item twice (a re-send, a redelivery).
    for _ in range(2):
        ticket_effects.apply(item.args, item.kwargs, headers={"outbox_id": item.pk})

    assert len(mail.outbox) == 1
    item.refresh_from_db()
    assert (item.status, item.attempts) == ("done", 1)
