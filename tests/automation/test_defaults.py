"""The rules shipped with the helpdesk (data migration): reminder, auto-close, and the
always-escalate policy of triage as rules."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps as django_apps

from automation import actions, conditions, timed
from automation.models import Rule, RuleFiring
from core.clock import set_clock
from core.models import OutboxItem
from support import services
from support.ai.triage import POLICY_RULES
from support.models import SavedReply

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _shipped(db):
    """The migration's rules (a transactional test elsewhere in the run may have flushed
    the tables since they were migrated)."""
    if not Rule.objects.filter(is_default=True).exists():
        importlib.import_module("automation.migrations.0004_default_rules").ship(django_apps, None)
        split = importlib.import_module("automation.migrations.0005_policy_refund_questions")
        split.split(django_apps, None)


def test_the_defaults_are_shipped_enabled_and_valid():
    defaults = Rule.objects.filter(is_default=True)
    names = set(defaults.values_list("name", flat=True))
    assert {"Remind after 3 days awaiting the customer", "Close 7 days after resolution"} <= names
    assert len(names) == 2 + 2 * len(POLICY_RULES)
    for rule in defaults:
        assert rule.is_enabled
        assert conditions.validate(rule.conditions) == rule.conditions
        assert actions.validate(rule.actions) == rule.actions


def test_the_policy_rules_use_the_patterns_of_triage():
    shipped = {
        tuple((item["operator"], item["value"]) for item in rule.conditions["conditions"])
        for rule in Rule.objects.filter(is_default=True, trigger="ticket_created")
        if rule.actions[0]["type"] == "escalate"
    }
    triage = {
        (("matches", rule[2]),) + ((("not_matches", rule[3]),) if len(rule) > 3 else ())
        for rule in POLICY_RULES
    }
    assert shipped == triage


def test_a_question_about_refunds_is_answered_and_a_refund_request_goes_to_people(customer):
    question = services.ticket_open(
        requester=customer,
        subject="Refunds",
        description="Where can I read your money back policy?",
    )
    request = services.ticket_open(
        requester=customer, subject="Refund", description="I want a refund for my last invoice."
    )
    question.refresh_from_db()
    request.refresh_from_db()
    assert question.status != "escalated"
    assert request.status == "escalated"


def test_a_reminder_after_three_days_awaiting_the_customer(customer, agent):
    with set_clock(T0):
        ticket = services.ticket_open(requester=customer, subject="Export", description="Help")
        services.message_add(ticket=ticket, author=agent, body="Which browser do you use?")

    assert timed.run_time_rules(now=T0 + dt.timedelta(days=2, hours=23)) == {}
    due = T0 + dt.timedelta(days=3)
    assert timed.run_time_rules(now=due) == {"Remind after 3 days awaiting the customer": 1}
    assert timed.run_time_rules(now=due + dt.timedelta(days=3)) == {}  # once per wait

    reminder = ticket.messages.filter(sender_kind="agent").order_by("pk").last()
    assert reminder.body.startswith("Hi Casey,\n\nWe are still waiting for your reply about")
    assert ticket.reference in reminder.body and "{{" not in reminder.body
    assert not reminder.is_internal
    ticket.refresh_from_db()
    assert ticket.status == "awaiting_customer"
    # The customer is emailed the reminder, like any reply of the team.
    assert OutboxItem.objects.filter(
        task="support.tasks.ticket_effects", args=["public_reply"], kwargs__message_id=reminder.pk
    ).exists()
    assert not SavedReply.objects.exists()  # the text is the rule's, editable there


def test_close_seven_days_after_resolution(customer, agent):
    with set_clock(T0):
        ticket = services.ticket_open(requester=customer, subject="Export", description="Help")
        services.ticket_resolve(ticket=ticket, actor=agent)
    assert timed.run_time_rules(now=T0 + dt.timedelta(days=6)) == {}
    assert timed.run_time_rules(now=T0 + dt.timedelta(days=7)) == {
        "Close 7 days after resolution": 1
    }
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert ticket.events.filter(kind="closed", actor_kind="system").exists()


def test_a_reopened_ticket_is_not_closed(customer, agent):
    with set_clock(T0):
        ticket = services.ticket_open(requester=customer, subject="Export", description="Help")
        services.ticket_resolve(ticket=ticket, actor=agent)
    with set_clock(T0 + dt.timedelta(days=1)):
        services.message_add(ticket=ticket, author=customer, body="It is back")
    assert timed.run_time_rules(now=T0 + dt.timedelta(days=8)) == {}
    ticket.refresh_from_db()
    assert ticket.status == "new"


def test_a_new_policy_ticket_goes_to_people_at_once(customer):
    ticket = services.ticket_open(
        requester=customer,
        subject="Charged twice",
        description="My card was charged twice this month, please refund the extra one.",
    )
    ticket.refresh_from_db()
    assert ticket.status == "escalated"
    escalation = ticket.escalations.get()
    assert (escalation.kind, escalation.topic) == ("policy", "billing")
    assert escalation.reason == "Always handled by people: billing dispute."
    # The refund rule matched too; the ticket was already with people.
    fired = RuleFiring.objects.filter(ticket=ticket).values_list("rule__name", flat=True)
    assert set(fired) == {
        "Always escalate: billing dispute (new ticket)",
        "Always escalate: refund request (new ticket)",
    }


def test_a_customer_message_with_policy_words_escalates(ticket, customer):
    services.message_add(ticket=ticket, author=customer, body="I will talk to my lawyer.")
    ticket.refresh_from_db()
    assert ticket.status == "escalated"
    assert ticket.escalations.get().topic == "legal"

    # Already with people: a second such message does not escalate again.
    services.message_add(ticket=ticket, author=customer, body="My lawyer is waiting.")
    assert ticket.escalations.count() == 1


def test_asking_for_a_person_is_the_customers_request(customer):
    ticket = services.ticket_open(
        requester=customer, subject="Help", description="Can I talk to a human please?"
    )
    assert ticket.escalations.get().kind == "customer_requested"


def test_an_ordinary_ticket_is_left_to_the_ai(ticket):
    ticket.refresh_from_db()
    assert ticket.status == "new" and not ticket.escalations.exists()


def test_a_disabled_default_does_nothing(customer):
    Rule.objects.filter(is_default=True, trigger="ticket_created").update(is_enabled=False)
    ticket = services.ticket_open(
        requester=customer, subject="Hacked", description="My account was hacked."
    )
    ticket.refresh_from_db()
    assert ticket.status == "new"
