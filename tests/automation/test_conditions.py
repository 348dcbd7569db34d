"""The condition language of rules: every field and operator, and the validator."""

from __future__ import annotations

import datetime as dt

import pytest

from automation import conditions
from automation.conditions import FIELDS, facts_for, matches, validate
from core.errors import DomainError
from support import services
from support.models import Message, Ticket, TicketEvent
from tests.factories import AgentFactory, TeamFactory

pytestmark = pytest.mark.django_db


def one(field, operator, value):
    return {"match": "all", "conditions": [{"field": field, "operator": operator, "value": value}]}


def holds(ticket, field, operator, value, **facts) -> bool:
    document = validate(one(field, operator, value))
    return matches(document, facts_for(ticket, **facts))


@pytest.fixture
def loaded(ticket):
    return Ticket.objects.select_related("organization", "team", "requester", "assignee").get(
        pk=ticket.pk
    )


def test_an_empty_document_always_holds(loaded):
    assert validate({}) == {"match": "all", "conditions": []}
    assert matches(validate(None), facts_for(loaded))
    assert matches({"match": "any", "conditions": []}, facts_for(loaded))


def test_choice_fields_is_is_not_in_not_in(loaded):
    # The ticket fixture: billing, normal, new, web; organization Acme on plan business.
    assert holds(loaded, "type", "is", "billing")
    assert not holds(loaded, "type", "is_not", "billing")
    assert holds(loaded, "priority", "in", ["normal", "high"])
    assert holds(loaded, "priority", "not_in", ["urgent"])
    assert holds(loaded, "status", "is", "new")
    assert holds(loaded, "channel", "is", "web")
    assert holds(loaded, "plan", "is", "business")
    assert not holds(loaded, "plan", "in", ["free", "starter"])


def test_id_fields_with_none(loaded, org_a, org_b):
    assert holds(loaded, "organization", "is", org_a.pk)
    assert holds(loaded, "organization", "is", str(org_a.pk))  # a form sends text
    assert holds(loaded, "organization", "not_in", [org_b.pk])
    assert holds(loaded, "assignee", "is", "none")
    assert holds(loaded, "team", "is", "none")
    agent = AgentFactory()
    team = TeamFactory(name="Billing")
    services.ticket_assign(ticket=loaded, assignee=agent, actor=agent)
    services.ticket_route(ticket=loaded, team=team)
    loaded = Ticket.objects.select_related("organization", "team", "requester").get(pk=loaded.pk)
    assert holds(loaded, "assignee", "is", agent.pk)
    assert holds(loaded, "assignee", "is_not", "none")
    assert holds(loaded, "team", "in", [team.pk])


def test_requester_email_and_domain(loaded):
    # customer-a@example.com
    assert holds(loaded, "requester_email", "is", "Customer-A@Example.com")
    assert holds(loaded, "requester_email", "contains", "@example.")
    assert holds(loaded, "requester_email", "matches", r"^customer-\w@")
    assert not holds(loaded, "requester_email", "not_contains", "example")
    assert holds(loaded, "requester_domain", "is", "@EXAMPLE.com")
    assert holds(loaded, "requester_domain", "not_in", ["acme.com"])


def test_subject_text_and_message(loaded):
    message = Message.objects.create(
        ticket=loaded, sender_kind="customer", author=loaded.requester, body="Any news on REFUNDS?"
    )
    assert holds(loaded, "subject", "contains", "EXPORT")
    assert holds(loaded, "subject", "is", "cannot export invoices")
    assert holds(loaded, "subject", "is_not", "Something else")
    assert holds(loaded, "text", "contains", "spins forever")  # the description
    assert not holds(loaded, "text", "contains", "refund")
    assert holds(loaded, "text", "contains", "refund", message=message)
    assert holds(loaded, "text", "matches", r"\brefunds?\b", message=message)
    assert holds(loaded, "text", "not_contains", "lawyer", message=message)
    assert holds(loaded, "message", "contains", "news", message=message)
    assert not holds(loaded, "message", "contains", "export", message=message)
    assert not holds(loaded, "message", "contains", "news")  # no message: empty


def test_sender_kind_from_the_message_or_the_event(loaded):
    note = Message.objects.create(ticket=loaded, sender_kind="agent", body="x", is_internal=True)
    assert holds(loaded, "sender_kind", "is", "agent", message=note)
    event = TicketEvent(kind="message_added", metadata={"sender_kind": "ai"})
    assert holds(loaded, "sender_kind", "in", ["ai", "system"], event=event)


def test_numbers(loaded):
    assert not holds(loaded, "sentiment", "lt", 0)  # unknown: no comparison holds
    assert holds(loaded, "sentiment", "is_empty", True)
    services.ticket_record_ai_assessment(ticket=loaded, confidence=0.42, sentiment=-0.6)
    loaded.refresh_from_db()
    assert holds(loaded, "sentiment", "lt", -0.5)
    assert holds(loaded, "sentiment", "lte", "-0.6")
    assert not holds(loaded, "sentiment", "gt", 0)
    assert holds(loaded, "ai_confidence", "gte", 0.42)
    assert holds(loaded, "ai_confidence", "eq", 0.42)
    assert holds(loaded, "ai_confidence", "is_empty", False)


def test_ai_decision_from_the_message_or_the_last_ai_message(loaded):
    assert not holds(loaded, "ai_decision", "is", "ask")
    Message.objects.create(ticket=loaded, sender_kind="ai", body="a", ai_decision="escalate")
    last = Message.objects.create(ticket=loaded, sender_kind="ai", body="b", ai_decision="ask")
    assert holds(loaded, "ai_decision", "is", "ask")
    older = Message.objects.filter(ai_decision="escalate").get()
    assert holds(loaded, "ai_decision", "is", "escalate", message=older)
    assert holds(loaded, "ai_decision", "in", ["ask", "draft"], message=last)


def test_changed_from_and_to_read_the_triggering_event(loaded, agent):
    services.ticket_change_priority(ticket=loaded, priority="urgent", actor=agent)
    event = loaded.events.get(kind="priority_changed")
    assert holds(loaded, "priority", "changed_from", "normal", event=event)
    assert holds(loaded, "priority", "changed_to", "urgent", event=event)
    assert not holds(loaded, "priority", "changed_to", "high", event=event)
    assert not holds(loaded, "status", "changed_to", "new", event=event)  # not a status change
    assert not holds(loaded, "priority", "changed_to", "urgent")  # no event


def test_business_hours_use_the_tickets_calendar(loaded):
    # Without a calendar the desk is open around the clock.
    assert holds(
        loaded, "business_hours", "is", "in", now=dt.datetime(2026, 12, 5, 3, tzinfo=dt.UTC)
    )
    assert not holds(loaded, "business_hours", "is", "out")


def test_groups_nest_with_all_and_any(loaded):
    document = validate(
        {
            "match": "all",
            "conditions": [
                {"field": "type", "operator": "is", "value": "billing"},
                {
                    "match": "any",
                    "conditions": [
                        {"field": "priority", "operator": "is", "value": "urgent"},
                        {"field": "text", "operator": "contains", "value": "spins"},
                    ],
                },
            ],
        }
    )
    assert matches(document, facts_for(loaded))
    document["conditions"][1]["conditions"][1]["value"] = "nothing like it"
    assert not matches(document, facts_for(loaded))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"match": "most", "conditions": []}, "“match” is “all” or “any”"),
        (one("colour", "is", "red"), "unknown field “colour”"),
        (one("type", "contains", "bill"), "type cannot use “contains”"),
        (one("type", "is", "invoice"), "“invoice” is not one of"),
        (one("priority", "in", []), "non-empty list"),
        (one("assignee", "is", "someone"), "give an id"),
        (one("sentiment", "lt", "very"), "give a number"),
        (one("text", "matches", "(unclosed"), "not a valid regular expression"),
        (one("text", "matches", "a" * 1001), "at most 1000 characters"),
        (one("requester_domain", "is", "not a domain"), "not an email domain"),
        (one("sentiment", "is_empty", "yes"), "give true or false"),
        ({"conditions": ["type is billing"]}, "Condition 1: expected an object"),
    ],
)
def test_validate_names_the_faulty_condition(document, message):
    with pytest.raises(DomainError) as error:
        validate(document)
    assert error.value.field == "conditions"
    assert message in error.value.message


def test_validate_limits_nesting_and_size():
    deep = {"match": "all", "conditions": []}
    for _ in range(conditions.MAX_DEPTH):
        deep = {"match": "all", "conditions": [deep]}
    with pytest.raises(DomainError, match="nest at most"):
        validate(deep)
    many = {"conditions": [{"field": "type", "operator": "is", "value": "bug"}] * 51}
    with pytest.raises(DomainError, match="at most 50 conditions"):
        validate(many)


def test_the_registry_describes_each_field_for_forms():
    described = FIELDS["priority"].describe()
    assert described["kind"] == "choice"
    assert {"name": "changed_to", "label": "changed to"} in described["operators"]
    assert {"value": "urgent", "label": "Urgent"} in described["choices"]
    assert FIELDS["team"].describe()["model"] == "support.Team"


def test_patterns_are_compiled_once():
    conditions.compiled.cache_clear()
    for _ in range(3):
        conditions.compiled(r"\binvoice\b")
    assert conditions.compiled.cache_info().hits == 2


def test_business_hours_with_an_office_calendar_and_a_holiday(loaded):
    from zoneinfo import ZoneInfo

    from support.models import BusinessCalendar, BusinessHours, Holiday, SlaPolicy

    berlin = ZoneInfo("Europe/Berlin")
    calendar = BusinessCalendar.objects.create(name="Office", time_zone="Europe/Berlin")
    for weekday in range(5):
        BusinessHours.objects.create(
            calendar=calendar, weekday=weekday, start_time=dt.time(9), end_time=dt.time(17)
        )
    Holiday.objects.create(calendar=calendar, date=dt.date(2026, 12, 24), name="Christmas Eve")
    SlaPolicy.objects.update(is_default=False)
    SlaPolicy.objects.create(name="Office", calendar=calendar, is_default=True)

    def at(*args):
        return dt.datetime(*args, tzinfo=berlin)

    assert holds(loaded, "business_hours", "is", "in", now=at(2026, 12, 23, 10))  # Wednesday
    assert holds(loaded, "business_hours", "is", "out", now=at(2026, 12, 23, 18))  # evening
    assert holds(loaded, "business_hours", "is", "out", now=at(2026, 12, 26, 10))  # Saturday
    assert holds(loaded, "business_hours", "is", "out", now=at(2026, 12, 24, 10))  # holiday
