"""Rule actions, each through the real support services, fired by a real change."""

from __future__ import annotations

import pytest

from automation import actions
from automation.models import Rule, RuleFiring, WebhookDelivery, WebhookEndpoint
from core.errors import DomainError
from core.models import OutboxItem
from support import services
from support.models import Escalation, Message, Ticket
from tests.factories import AgentFactory, SavedReplyFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _only_these_rules(db):
    Rule.objects.filter(is_default=True).update(is_enabled=False)


def rule(actions_, *, trigger="priority_changed", name="Rule", conditions=None, **fields):
    return Rule.objects.create(
        name=name,
        trigger=trigger,
        conditions=conditions or {},
        actions=actions.validate(actions_),
        is_enabled=True,
        **fields,
    )


def bump(ticket, agent, priority="high"):
    """The person's change that triggers the rules under test."""
    services.ticket_change_priority(ticket=ticket, priority=priority, actor=agent)
    return Ticket.objects.get(pk=ticket.pk)


def applied(ticket):
    return list(
        ticket.events.filter(kind="rule_applied").order_by("pk").values_list("metadata", flat=True)
    )


def test_assign_team_routes_the_ticket(ticket, agent):
    team = TeamFactory(name="Billing")
    r = rule([{"type": "assign_team", "team": team.pk}])

    ticket = bump(ticket, agent)

    assert ticket.team == team
    assert ticket.events.filter(kind="field_changed", field="team", new_value="Billing").exists()
    assert applied(ticket) == [
        {"rule_id": r.pk, "rule": "Rule", "action": "assign_team", "detail": "team Billing"}
    ]
    firing = RuleFiring.objects.get(rule=r, ticket=ticket)
    assert firing.outcome == [{"action": "assign_team", "result": "done", "detail": "team Billing"}]
    assert firing.key == str(ticket.events.get(kind="priority_changed").pk)


def test_assign_person_and_round_robin(ticket, agent):
    person = AgentFactory(username="pat")
    team = TeamFactory(name="Tier 2")
    member = AgentFactory(username="robin")
    team.members.add(member)
    rule([{"type": "assign_person", "user": person.pk}], name="A")
    ticket = bump(ticket, agent)
    assert ticket.assignee == person
    assert ticket.events.filter(kind="assigned", new_value="pat").exists()

    other = services.ticket_open(requester=ticket.requester, subject="Hi", description="Hello")
    Rule.objects.all().delete()
    rule([{"type": "assign_round_robin", "team": team.pk}], name="B")
    other = bump(other, agent)
    assert (other.team, other.assignee) == (team, member)


def test_set_priority_type_and_status(ticket, agent):
    rule(
        [
            {"type": "set_type", "ticket_type": "bug"},
            {"type": "set_status", "status": "awaiting_customer"},
        ],
        trigger="ticket_created",
    )
    fresh = services.ticket_open(requester=ticket.requester, subject="Crash", description="Boom")
    fresh.refresh_from_db()
    assert (fresh.type, fresh.status) == ("bug", "awaiting_customer")
    event = fresh.events.get(kind="field_changed", field="type")
    assert (event.old_value, event.new_value, event.actor_kind) == ("general", "bug", "system")

    Rule.objects.all().delete()
    rule([{"type": "set_priority", "priority": "urgent"}], trigger="assignee_changed")
    services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"


def test_set_status_resolved_and_closed(ticket, agent):
    rule([{"type": "set_status", "status": "resolved"}])
    ticket = bump(ticket, agent)
    assert ticket.status == "resolved" and ticket.resolved_at is not None
    assert ticket.events.filter(kind="resolved", actor_kind="system").exists()

    Rule.objects.all().delete()
    rule([{"type": "set_status", "status": "closed"}])
    ticket = bump(ticket, agent, "low")
    assert ticket.status == "closed" and ticket.closed_at is not None


def test_an_impossible_transition_is_refused_not_raised(ticket, agent):
    services.ticket_resolve(ticket=ticket, actor=agent)
    r = rule(
        [
            {"type": "set_status", "status": "awaiting_customer"},
            {"type": "add_note", "body": "Looked at by the rule."},
        ]
    )

    ticket = bump(ticket, agent)  # the person's change goes through

    assert (ticket.priority, ticket.status) == ("high", "resolved")
    outcome = RuleFiring.objects.get(rule=r).outcome
    assert outcome[0]["result"] == "refused"
    assert "cannot become awaiting customer" in outcome[0]["detail"]
    assert outcome[1]["result"] == "done"  # the next action still ran
    assert ticket.messages.filter(sender_kind="system", is_internal=True).exists()
    refused = ticket.events.filter(kind="rule_applied").first()
    assert refused.metadata["detail"].startswith("refused: A ticket that is resolved")
    assert refused.is_internal


def test_add_note_is_an_internal_system_message(ticket, agent):
    rule([{"type": "add_note", "body": "VIP customer: call them."}])
    ticket = bump(ticket, agent)
    note = ticket.messages.get(sender_kind="system")
    assert note.is_internal and note.author is None and note.body == "VIP customer: call them."


def test_send_saved_reply_as_the_team(ticket, agent):
    reply = SavedReplyFactory(title="Hello", new_status="awaiting_customer")
    reply.body = "Hi {{ customer.first_name }}, {{ ticket.reference }}. {{ agent.first_name }}"
    reply.save()
    rule([{"type": "send_saved_reply", "saved_reply": reply.pk}])

    ticket = bump(ticket, agent)

    message = ticket.messages.get(sender_kind="agent")
    assert message.body == f"Hi Casey, {ticket.reference}. The support team"
    assert not message.is_internal and message.author is None
    assert ticket.status == "awaiting_customer" and ticket.first_response_at is not None
    # The customer is emailed about it like any public reply.
    assert OutboxItem.objects.filter(
        task="support.tasks.ticket_effects", args__0="public_reply"
    ).exists()


def test_an_archived_saved_reply_is_refused(ticket, agent):
    reply = SavedReplyFactory(is_active=False)
    r = rule([{"type": "send_saved_reply", "saved_reply": reply.pk}])
    ticket = bump(ticket, agent)
    assert RuleFiring.objects.get(rule=r).outcome[0]["result"] == "refused"
    assert not ticket.messages.filter(sender_kind="agent").exists()


def test_notify_email_is_sent_after_commit(ticket, agent, run_effects, mailoutbox):
    team = TeamFactory(name="Escalations", escalation_contact="oncall@example.com")
    services.ticket_route(ticket=ticket, team=team)
    r = rule(
        [
            {
                "type": "notify_email",
                "to": "team",
                "subject": "Urgent: {{ ticket.reference }}",
                "body": "{{ ticket.subject }} needs a look.",
            }
        ]
    )

    with run_effects():
        bump(ticket, agent)

    item = OutboxItem.objects.get(task="automation.tasks.send_rule_email")
    assert item.args[:3] == [ticket.pk, r.pk, "team"]
    mail = [m for m in mailoutbox if m.to == ["oncall@example.com"]]
    assert len(mail) == 1
    assert mail[0].subject == f"Urgent: {ticket.reference}"
    assert mail[0].body == "Cannot export invoices needs a look."


def test_notify_email_recipients(ticket, agent):
    ticket = Ticket.objects.select_related("requester", "assignee", "team").get(pk=ticket.pk)
    assert actions.recipients_for(ticket, "requester", []) == ["customer-a@example.com"]
    assert actions.recipients_for(ticket, "assignee", []) == []
    assert actions.recipients_for(ticket, "addresses", ["a@x.io", "a@x.io"]) == ["a@x.io"]
    team = TeamFactory(name="Members")
    team.members.add(agent)
    services.ticket_route(ticket=ticket, team=team)
    ticket = Ticket.objects.select_related("requester", "assignee", "team").get(pk=ticket.pk)
    assert actions.recipients_for(ticket, "team", []) == [agent.email]


def test_escalate_with_a_topic(ticket, agent):
    security = TeamFactory(name="Security", handles=["security"])
    rule([{"type": "escalate", "topic": "security", "reason": "Suspicious login"}])

    ticket = bump(ticket, agent)

    escalation = ticket.escalations.get()
    assert (escalation.kind, escalation.topic, escalation.team) == ("policy", "security", security)
    assert escalation.reason == "Suspicious login"
    assert ticket.status == "escalated"
    assert ticket.events.filter(kind="escalated", actor_kind="system").exists()


def test_escalate_a_request_for_a_person_as_the_customers(ticket, agent):
    rule([{"type": "escalate", "topic": "human", "reason": "Asked for a person"}])
    ticket = bump(ticket, agent)
    assert ticket.escalations.get().kind == Escalation.Kind.CUSTOMER_REQUESTED


def test_call_webhook_queues_a_delivery(ticket, agent):
    endpoint = WebhookEndpoint.objects.create(name="CRM", url="http://127.0.0.1:9/hook")
    r = rule([{"type": "call_webhook", "endpoint": endpoint.pk}])

    bump(ticket, agent)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event="rule.action")
    assert delivery.payload["data"]["rule"] == {"id": r.pk, "name": "Rule"}
    assert OutboxItem.objects.filter(task="automation.tasks.deliver_webhook").exists()


def test_a_disabled_webhook_is_refused(ticket, agent):
    endpoint = WebhookEndpoint.objects.create(
        name="Old", url="http://127.0.0.1:9/hook", is_active=False
    )
    r = rule([{"type": "call_webhook", "endpoint": endpoint.pk}])
    bump(ticket, agent)
    assert RuleFiring.objects.get(rule=r).outcome[0]["result"] == "refused"


@pytest.mark.parametrize(
    ("actions_", "message"),
    [
        ([], "at least one action"),
        ([{"type": "explode"}], "unknown type “explode”"),
        ([{"type": "assign_team"}], "team is required"),
        ([{"type": "assign_team", "team": 999999}], "no team with id 999999"),
        ([{"type": "set_status", "status": "analyzing"}], "status is one of"),
        ([{"type": "set_priority", "priority": "high", "extra": 1}], "unknown argument(s) extra"),
        ([{"type": "notify_email", "to": "addresses", "subject": "s", "body": "b"}], "addresses"),
        (
            [
                {
                    "type": "notify_email",
                    "to": "addresses",
                    "addresses": ["x"],
                    "subject": "s",
                    "body": "b",
                }
            ],
            "“x” is not an email address",
        ),
        ([{"type": "add_note", "body": "   "}], "note is required"),
    ],
)
def test_validate_names_the_faulty_action(actions_, message):
    with pytest.raises(DomainError) as error:
        actions.validate(actions_)
    assert error.value.field == "actions"
    assert message in error.value.message


def test_validate_refuses_a_customer_as_assignee(customer):
    with pytest.raises(DomainError, match="is not active staff"):
        actions.validate([{"type": "assign_person", "user": customer.pk}])


def test_the_registry_describes_actions_for_forms():
    described = actions.ACTIONS["notify_email"].describe()
    assert [a["name"] for a in described["args"]] == ["to", "addresses", "subject", "body"]
    status = actions.ACTIONS["set_status"].describe()["args"][0]
    assert [c["value"] for c in status["choices"]] == ["awaiting_customer", "resolved", "closed"]
    assert Message.SenderKind.SYSTEM == "system"
