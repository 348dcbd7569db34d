"""The preview: what a rule would have matched among the last tickets, with the facts its
trigger would have seen, in a bounded number of queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automation.services import rules as services
from support.models import Ticket
from support.services import message_add, ticket_change_priority, ticket_open
from tests.factories import CustomerFactory


@pytest.fixture(autouse=True)
def _no_default_rules(db):
    """The shipped rules (a data migration) stay out of these counts and lists."""
    from automation.models import Rule

    Rule.objects.filter(is_default=True).delete()


def conditions(*items, match="all"):
    return {"match": match, "conditions": list(items)}


def cond(field, operator, value):
    return {"field": field, "operator": operator, "value": value}


@pytest.fixture
def thirty(customer):
    """30 tickets, 7 of them about invoices."""
    tickets = []
    for i in range(30):
        about = "invoice" if i % 4 == 0 and i < 28 else "login"
        tickets.append(
            ticket_open(
                requester=customer, subject=f"Question {i} about {about}", description="Hello"
            )
        )
    return tickets


@pytest.mark.django_db
def test_a_rule_matching_7_of_30_tickets(thirty, django_assert_max_num_queries):
    fields = {
        "trigger": "ticket_created",
        "conditions": conditions(cond("subject", "contains", "invoice")),
    }

    with django_assert_max_num_queries(3):
        preview = services.rule_preview(fields)

    assert (preview.matched, preview.examined) == (7, 30)
    assert preview.sentence == "Would have matched 7 of the last 30 tickets."
    assert len(preview.examples) == 7
    reference, subject, why = preview.examples[0]
    assert "invoice" in subject and reference.startswith("HD-")
    assert why == "subject contains invoice"


@pytest.mark.django_db
def test_examples_are_at_most_ten_and_the_limit_counts_the_latest(thirty):
    preview = services.rule_preview({"trigger": "ticket_created", "conditions": {}}, limit=20)

    assert (preview.matched, preview.examined) == (20, 20)
    assert len(preview.examples) == 10
    latest = Ticket.objects.order_by("-created_at", "-id").first()
    assert preview.examples[0][0] == latest.reference


@pytest.mark.django_db
def test_message_triggers_see_the_messages_of_that_sender(customer, agent):
    angry = ticket_open(requester=customer, subject="A", description="first")
    calm = ticket_open(requester=customer, subject="B", description="first")
    silent = ticket_open(requester=customer, subject="C", description="first")
    message_add(
        ticket=angry, author=customer, body="This is a REFUND request", sender_kind="customer"
    )
    message_add(ticket=calm, author=customer, body="thanks", sender_kind="customer")
    message_add(ticket=silent, author=agent, body="refund processed", sender_kind="agent")
    rule = {
        "trigger": "customer_message",
        "conditions": conditions(cond("text", "matches", r"\brefund\b")),
    }

    preview = services.rule_preview(rule)

    assert [example[1] for example in preview.examples] == ["A"]
    agent_rule = {**rule, "trigger": "agent_message"}
    assert [e[1] for e in services.rule_preview(agent_rule).examples] == ["C"]


@pytest.mark.django_db
def test_change_triggers_replay_the_latest_change(customer, agent):
    raised = ticket_open(requester=customer, subject="raised", description="d")
    lowered = ticket_open(requester=customer, subject="lowered", description="d")
    ticket_open(requester=customer, subject="untouched", description="d")
    ticket_change_priority(ticket=raised, priority="urgent", actor=agent)
    ticket_change_priority(ticket=lowered, priority="low", actor=agent)

    preview = services.rule_preview(
        {
            "trigger": "priority_changed",
            "conditions": conditions(cond("priority", "changed_to", "urgent")),
        }
    )

    assert (preview.matched, preview.examined) == (1, 3)
    assert preview.examples[0][1] == "raised"


@pytest.mark.django_db
def test_time_rules_count_only_tickets_whose_delay_has_elapsed(customer):
    old = ticket_open(requester=customer, subject="old", description="d")
    ticket_open(requester=customer, subject="new", description="d")
    Ticket.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=4))
    rule = {
        "trigger": "time_elapsed",
        "since": "created",
        "delay": 3,
        "delay_unit": "days",
        "conditions": {},
    }

    preview = services.rule_preview(rule)

    assert (preview.matched, preview.examined) == (1, 2)
    assert preview.examples[0][1] == "old"


@pytest.mark.django_db
def test_ai_decision_is_read_for_all_tickets_at_once(org_a, django_assert_max_num_queries):
    for i in range(5):
        requester = CustomerFactory(username=f"ai{i}", profile__organization=org_a)
        ticket_open(requester=requester, subject=f"T{i}", description="d")
    rule = {
        "trigger": "ticket_created",
        "conditions": conditions(cond("ai_decision", "is", "escalate")),
    }

    with django_assert_max_num_queries(4):
        preview = services.rule_preview(rule)

    assert (preview.matched, preview.examined) == (0, 5)  # no AI message yet


@pytest.mark.django_db
def test_tags_are_read_for_all_tickets_at_once(thirty, agent, django_assert_max_num_queries):
    from support.services import ticket_tag

    for ticket in thirty[:3]:
        ticket_tag(ticket=ticket, add=["vip"], actor=agent)
    rule = {"trigger": "ticket_created", "conditions": conditions(cond("tags", "contains", "vip"))}

    with django_assert_max_num_queries(4):
        preview = services.rule_preview(rule)

    assert (preview.matched, preview.examined) == (3, 30)


@pytest.mark.django_db
def test_a_saved_rule_previews_like_its_fields(manager, thirty):
    rule = services.rule_create(
        actor=manager,
        name="Invoices",
        trigger="ticket_created",
        conditions=conditions(cond("subject", "contains", "INVOICE")),
        actions=[{"type": "add_note", "body": "Invoice question"}],
    )

    assert services.rule_preview(rule).matched == 7


@pytest.mark.django_db
def test_sla_breached_rules_count_open_tickets_past_due(customer, agent):
    from support.services import ticket_resolve

    late = ticket_open(requester=customer, subject="late", description="d")
    done = ticket_open(requester=customer, subject="done", description="d")
    ticket_open(requester=customer, subject="in time", description="d")
    ticket_resolve(ticket=done, actor=agent)
    past = timezone.now() - timedelta(hours=1)
    Ticket.objects.filter(pk__in=[late.pk, done.pk]).update(sla_due_at=past)
    Ticket.objects.exclude(pk__in=[late.pk, done.pk]).update(
        sla_due_at=timezone.now() + timedelta(hours=5)
    )

    preview = services.rule_preview({"trigger": "sla_breached", "conditions": {}})

    assert [example[1] for example in preview.examples] == ["late"]
