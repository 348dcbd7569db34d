"""Rules' write path (create, change, enable, disable, delete, reorder) and the preview.

Who may do what: any agent (``core.roles.is_agent``) reads rules and previews them;
only managers (``core.roles.is_manager``: the Managers group and superusers) create,
change, enable, disable, reorder and delete them, since one rule acts on every ticket of
the desk. New rules are created disabled unless ``is_enabled=True`` is asked for: the
admin and the API show the preview first.

Conditions and actions are validated by the engine's validators
(``automation.conditions.validate`` and ``automation.actions.validate``, each raising
``DomainError(field="conditions"|"actions")``); this module adds the checks that need the
database (the team, person, saved reply or webhook endpoint an action names exists and
may be used) and the trigger's timing fields (time rules need ``since``, ``delay`` and
``delay_unit``; event rules must not have them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from automation.models import Rule
from core import roles
from core.errors import DomainError, NotPermitted

#: Fields a caller may set (``rule_create`` / ``rule_update``).
EDITABLE = (
    "name",
    "description",
    "is_enabled",
    "position",
    "stop_processing",
    "trigger",
    "since",
    "delay",
    "delay_unit",
    "business_time",
    "conditions",
    "actions",
)
TIMING = ("since", "delay", "delay_unit")
#: The last tickets a preview looks at.
PREVIEW_LIMIT = 1000
PREVIEW_EXAMPLES = 10


# ======================================================================================
# Permissions
# ======================================================================================


def can_view(user) -> bool:
    return roles.is_agent(user)


def can_manage(user) -> bool:
    return roles.is_agent(user) and roles.is_manager(user)


def _require_manager(actor) -> None:
    if actor is not None and not can_manage(actor):
        raise NotPermitted("Only managers can change automation rules.")


# ======================================================================================
# Validation
# ======================================================================================


def _validate_conditions(conditions) -> dict:
    from automation import conditions as registry

    if conditions in (None, ""):
        conditions = {}
    if not isinstance(conditions, dict | list):
        raise DomainError(
            'Conditions must be a JSON object such as {"match": "all", "conditions": [...]}.',
            field="conditions",
        )
    return registry.validate(conditions)


def _validate_actions(actions) -> list:
    from automation import actions as registry

    validated = registry.validate(actions)
    for action in validated:
        _check_references(action)
    return validated


def _check_references(action: dict) -> None:
    """What the engine's validator leaves to the database: a saved reply that is still
    active (it checks that teams, agents, saved replies and endpoints exist)."""
    from support.models import SavedReply

    if (
        action.get("type") == "send_saved_reply"
        and not SavedReply.objects.filter(pk=action.get("saved_reply"), is_active=True).exists()
    ):
        raise DomainError(
            f"The saved reply {action.get('saved_reply')} is archived: choose an active one.",
            field="actions",
        )


def _validate_timing(data: dict) -> None:
    trigger = data.get("trigger")
    if trigger not in Rule.Trigger.values:
        raise DomainError(
            f"Unknown trigger {trigger!r}; one of: {', '.join(Rule.Trigger.values)}.",
            field="trigger",
        )
    if trigger == Rule.Trigger.TIME_ELAPSED:
        if data.get("since") not in Rule.Since.values:
            raise DomainError(
                f"A time rule counts from one of: {', '.join(Rule.Since.values)}.",
                field="since",
            )
        delay = data.get("delay")
        if delay is None or isinstance(delay, bool) or not isinstance(delay, int) or delay < 1:
            raise DomainError("A time rule needs a delay of at least 1.", field="delay")
        if data.get("delay_unit") not in Rule.Unit.values:
            raise DomainError(
                f"A time rule's delay is in one of: {', '.join(Rule.Unit.values)}.",
                field="delay_unit",
            )
        return
    for name in TIMING:
        if data.get(name) not in (None, ""):
            raise DomainError(
                f"Only time rules ({Rule.Trigger.TIME_ELAPSED.label.lower()}) have {name}.",
                field=name,
            )
    if data.get("business_time"):
        raise DomainError("Only time rules count business time.", field="business_time")


def rule_validate(data: dict) -> dict:
    """The fields of a rule, checked and normalized (raises :class:`DomainError` on the
    first problem, naming its field). Used by the services, the admin form and the
    preview of unsaved fields."""
    data = dict(data)
    name = (data.get("name") or "").strip()
    if "name" in data and not name:
        raise DomainError("Give the rule a name.", field="name")
    if "name" in data:
        data["name"] = name
    _validate_timing(data)
    if data["trigger"] != Rule.Trigger.TIME_ELAPSED:
        data["since"], data["delay"], data["delay_unit"] = "", None, ""
        data["business_time"] = False
    data["conditions"] = _validate_conditions(data.get("conditions"))
    data["actions"] = _validate_actions(data.get("actions"))
    position = data.get("position")
    if position is not None and (not isinstance(position, int) or position < 0):
        raise DomainError("The position is a whole number, 0 or more.", field="position")
    return data


def _name_taken(name: str, *, exclude: int | None = None) -> bool:
    return Rule.objects.filter(name__iexact=name).exclude(pk=exclude).exists()


EXAMPLE = {
    "name": "Urgent invoices to Billing",
    "trigger": "ticket_created",
    "conditions": {
        "match": "all",
        "conditions": [
            {"field": "type", "operator": "is", "value": "billing"},
            {
                "match": "any",
                "conditions": [
                    {"field": "text", "operator": "contains", "value": "invoice"},
                    {"field": "text", "operator": "matches", "value": "refund|chargeback"},
                ],
            },
        ],
    },
    "actions": [
        {"type": "set_priority", "priority": "high"},
        {"type": "add_note", "body": "Routed by the billing rule."},
    ],
}
TIME_EXAMPLE = {
    "name": "Close after 3 days waiting",
    "trigger": "time_elapsed",
    "since": "status_entered",
    "delay": 3,
    "delay_unit": "days",
    "conditions": {
        "match": "all",
        "conditions": [{"field": "status", "operator": "is", "value": "awaiting_customer"}],
    },
    "actions": [{"type": "set_status", "status": "closed"}],
}


def rule_vocabulary() -> dict:
    """Triggers, condition fields (operators, choices) and action types (arguments) from
    the engine's registries, with examples: what the admin's help text and the API's
    ``fields/`` show."""
    from automation import actions, conditions

    return {
        "triggers": [
            {"value": value, "label": str(label), "timed": value == Rule.Trigger.TIME_ELAPSED}
            for value, label in Rule.Trigger.choices
        ],
        "since": [{"value": v, "label": str(label)} for v, label in Rule.Since.choices],
        "units": [{"value": v, "label": str(label)} for v, label in Rule.Unit.choices],
        "fields": [spec.describe() for spec in conditions.FIELDS.values()],
        "actions": [spec.describe() for spec in actions.ACTIONS.values()],
        "example": EXAMPLE,
        "time_example": TIME_EXAMPLE,
    }


# ======================================================================================
# Writes
# ======================================================================================


@transaction.atomic
def rule_create(*, actor, **fields) -> Rule:
    """A new rule, disabled unless ``is_enabled=True`` (preview it first)."""
    _require_manager(actor)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise DomainError(f"Unknown rule fields: {', '.join(sorted(unknown))}.")
    data = {
        "description": "",
        "is_enabled": False,
        "stop_processing": False,
        "since": "",
        "delay": None,
        "delay_unit": "",
        "business_time": False,
        "conditions": {},
        **fields,
    }
    data.setdefault("name", "")
    data = rule_validate(data)
    if _name_taken(data["name"]):
        raise DomainError("A rule with this name exists already.", field="name")
    if data.get("position") is None:
        last = Rule.objects.order_by("-position").values_list("position", flat=True).first()
        data["position"] = (last or 0) + 10
    try:
        with transaction.atomic():
            return Rule.objects.create(created_by=actor, **data)
    except IntegrityError as error:
        raise DomainError("A rule with this name exists already.", field="name") from error


@transaction.atomic
def rule_update(*, rule: Rule, actor, **fields) -> Rule:
    """Change some fields of a rule; the others stay as they are."""
    _require_manager(actor)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise DomainError(f"Unknown rule fields: {', '.join(sorted(unknown))}.")
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    data = {name: getattr(rule, name) for name in EDITABLE}
    changed_trigger = "trigger" in fields and fields["trigger"] != rule.trigger
    data.update(fields)
    if changed_trigger and fields["trigger"] != Rule.Trigger.TIME_ELAPSED:
        # Leaving a time rule: its timing goes unless given again.
        for name in TIMING:
            if name not in fields:
                data[name] = None if name == "delay" else ""
        data["business_time"] = fields.get("business_time", False)
    data = rule_validate(data)
    if _name_taken(data["name"], exclude=rule.pk):
        raise DomainError("A rule with this name exists already.", field="name")
    changed = [name for name in EDITABLE if getattr(rule, name) != data[name]]
    if not changed:
        return rule
    for name in changed:
        setattr(rule, name, data[name])
    rule.save(update_fields=[*changed, "updated_at"])
    return rule


def _set_enabled(rule: Rule, actor, enabled: bool) -> Rule:
    _require_manager(actor)
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    if rule.is_enabled == enabled:
        return rule
    if enabled:
        rule_validate({name: getattr(rule, name) for name in EDITABLE})
    rule.is_enabled = enabled
    rule.save(update_fields=["is_enabled", "updated_at"])
    return rule


@transaction.atomic
def rule_enable(*, rule: Rule, actor) -> Rule:
    """Turn a rule on (its conditions and actions are checked again: a team or a saved
    reply it names may have gone since it was written)."""
    return _set_enabled(rule, actor, True)


@transaction.atomic
def rule_disable(*, rule: Rule, actor) -> Rule:
    return _set_enabled(rule, actor, False)


@transaction.atomic
def rule_delete(*, rule: Rule, actor) -> None:
    """Delete a rule and its firings (the tickets keep their "rule applied" events)."""
    _require_manager(actor)
    Rule.objects.filter(pk=rule.pk).delete()


@transaction.atomic
def rule_reorder(*, rule_ids: list[int], actor, step: int = 10) -> list[Rule]:
    """Give the rules the positions of their order in ``rule_ids`` (10, 20, …); rules not
    listed keep their positions, after the listed ones."""
    _require_manager(actor)
    if len(set(rule_ids)) != len(rule_ids):
        raise DomainError("Each rule appears once in the order.", field="rule_ids")
    rules = {r.pk: r for r in Rule.objects.select_for_update().filter(pk__in=rule_ids)}
    missing = [pk for pk in rule_ids if pk not in rules]
    if missing:
        raise DomainError(f"No such rules: {', '.join(map(str, missing))}.", field="rule_ids")
    ordered = []
    for index, pk in enumerate(rule_ids, start=1):
        rule = rules[pk]
        rule.position = index * step
        ordered.append(rule)
    Rule.objects.bulk_update(ordered, ["position"])
    top = len(rule_ids) * step
    rest = Rule.objects.exclude(pk__in=rule_ids).filter(position__lte=top).order_by("position")
    shifted = []
    for offset, rule in enumerate(rest, start=1):
        rule.position = top + offset * step
        shifted.append(rule)
    Rule.objects.bulk_update(shifted, ["position"])
    return ordered


# ======================================================================================
# Preview
# ======================================================================================


@dataclass
class Preview:
    """What a rule would have done to the last tickets: ``matched`` of ``examined``,
    with up to ten ``examples`` as (reference, subject, why) and their ticket ids
    (``ticket_ids``, in the same order, for links)."""

    matched: int
    examined: int
    examples: list[tuple[str, str, str]] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)

    @property
    def sentence(self) -> str:
        return f"Would have matched {self.matched} of the last {self.examined:,} tickets."


#: Event triggers → the ticket event whose latest row the preview replays.
EVENT_KINDS = {
    "status_changed": "status_changed",
    "priority_changed": "priority_changed",
    "assignee_changed": "assigned",
    "escalated": "escalated",
}
#: Message triggers → the sender kind of the message the preview replays.
MESSAGE_SENDERS = {
    "customer_message": "customer",
    "agent_message": "agent",
    "ai_message": "ai",
}
SINCE_COLUMNS = {
    "created": "created_at",
    "status_entered": "status_changed_at",
    "resolved": "resolved_at",
}
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}


def _preview_fields(rule_or_fields) -> dict:
    if isinstance(rule_or_fields, Rule):
        return {name: getattr(rule_or_fields, name) for name in EDITABLE}
    return dict(rule_or_fields)


def _latest_per_ticket(queryset, ticket_ids) -> dict[int, Any]:
    """The latest row of ``queryset`` per ticket, in one query (DISTINCT ON)."""
    rows = (
        queryset.filter(ticket_id__in=ticket_ids)
        .order_by("ticket_id", "-created_at", "-id")
        .distinct("ticket_id")
    )
    return {row.ticket_id: row for row in rows}


def _leaves(node) -> list[dict]:
    if isinstance(node, dict) and "conditions" in node and "field" not in node:
        return [leaf for child in node.get("conditions") or () for leaf in _leaves(child)]
    return [node] if isinstance(node, dict) and node else []


def _describe(leaf: dict) -> str:
    from automation import conditions as registry

    spec = registry.FIELDS.get(leaf.get("field"))
    label = spec.label.lower() if spec else leaf.get("field")
    operator = registry.OPERATOR_LABELS.get(leaf.get("operator"), leaf.get("operator"))
    value = leaf.get("value")
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{label} {operator} {shown}"


def _why(conditions: dict, facts, matches) -> str:
    held = []
    for leaf in _leaves(conditions):
        if matches({"match": "all", "conditions": [leaf]}, facts):
            held.append(_describe(leaf))
    return "; ".join(held[:4]) or "no conditions (matches every ticket)"


def rule_preview(rule_or_fields, limit: int = PREVIEW_LIMIT, *, now=None) -> Preview:
    """Replay a rule's conditions on the last ``limit`` tickets, with the facts its trigger
    would have seen: for a message trigger the ticket's latest message of that sender,
    for a change trigger the latest event of that change (tickets without one are not
    matched: the trigger never happened), for a time rule also whether its delay has
    elapsed now (counted in plain time: ``business_time`` and calendar days are the
    sweep's refinement), for an SLA trigger whether the ticket is open past that instant.
    Queries: the tickets (one, with ``select_related``), at most one more for the
    messages or events and one for the tags when a condition reads them; nothing per
    ticket."""
    from automation import conditions as registry
    from support.models import Message, Ticket, TicketEvent

    data = _preview_fields(rule_or_fields)
    trigger = data.get("trigger")
    conditions = data.get("conditions") or {}
    if not isinstance(rule_or_fields, Rule):
        conditions = _validate_conditions(conditions)
    now = now or timezone.now()
    tickets = list(
        Ticket.objects.select_related("organization", "requester", "assignee", "team").order_by(
            "-created_at", "-id"
        )[:limit]
    )
    ids = [t.pk for t in tickets]
    if "tags" in registry.fields_used(conditions):
        prefetch_related_objects(tickets, "tags")  # one query, not one per ticket
    messages: dict[int, Any] = {}
    events: dict[int, Any] = {}
    if trigger in MESSAGE_SENDERS:
        messages = _latest_per_ticket(
            Message.objects.filter(sender_kind=MESSAGE_SENDERS[trigger]).select_related("author"),
            ids,
        )
    elif trigger in EVENT_KINDS:
        events = _latest_per_ticket(TicketEvent.objects.filter(kind=EVENT_KINDS[trigger]), ids)

    last_ai: dict[int, str] = {}
    uses_ai = "ai_decision" in registry.fields_used(conditions)
    if uses_ai and trigger != "ai_message":
        # The one fact that would cost a query per ticket: read for all of them at once.
        last_ai = {
            row["ticket_id"]: row["ai_decision"] or ""
            for row in Message.objects.filter(ticket_id__in=ids, sender_kind="ai")
            .order_by("ticket_id", "-created_at", "-id")
            .distinct("ticket_id")
            .values("ticket_id", "ai_decision")
        }

    delay = None
    if trigger == Rule.Trigger.TIME_ELAPSED and data.get("delay"):
        delay = timedelta(seconds=int(data["delay"]) * UNIT_SECONDS.get(data["delay_unit"], 0))
    since_column = SINCE_COLUMNS.get(data.get("since") or "")
    sla_column = sla_cutoff = None
    if trigger in {Rule.Trigger.SLA_AT_RISK, Rule.Trigger.SLA_BREACHED}:
        # As the sweep sees them: open tickets whose at-risk / due instant has passed.
        from automation import timed

        probe = Rule(trigger=trigger)
        sla_column, sla_cutoff = timed.anchor_column(probe), timed.cutoffs(probe, now)[0][0]

    preview = Preview(matched=0, examined=len(tickets))
    for ticket in tickets:
        message = messages.get(ticket.pk)
        event = events.get(ticket.pk)
        if trigger in MESSAGE_SENDERS and message is None:
            continue  # no such message: the trigger never happened
        if trigger in EVENT_KINDS and event is None:
            continue
        if sla_column is not None:
            anchor = getattr(ticket, sla_column, None)
            if not ticket.is_open or anchor is None or anchor > sla_cutoff:
                continue
        if delay is not None:
            since_at = getattr(ticket, since_column) if since_column else None
            if since_at is None or now - since_at < delay:
                continue
        facts = registry.facts_for(ticket, message=message, event=event, now=now)
        if uses_ai and (message is None or message.sender_kind != "ai"):
            facts._cache["ai_decision"] = last_ai.get(ticket.pk, "")
        if conditions and not registry.matches(conditions, facts):
            continue
        preview.matched += 1
        if len(preview.examples) < PREVIEW_EXAMPLES:
            preview.ticket_ids.append(ticket.pk)
            why = _why(conditions, facts, registry.matches)
            preview.examples.append((ticket.reference, ticket.subject, why))
    return preview
