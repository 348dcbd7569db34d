"""The condition language of rules: *if* part of "when … if … then …".

A rule's ``conditions`` is a JSON group::

    {"match": "all" | "any", "conditions": [<condition or group>, …]}

and a condition is ``{"field": <field>, "operator": <operator>, "value": <value>}``. A group
may hold groups (at most :data:`MAX_DEPTH` deep, :data:`MAX_CONDITIONS` conditions in all).
An empty document (``{}``, or a group without conditions) always holds.

Fields (:data:`FIELDS`; each says its label, operators, value kind and choices):

==================  =====================================  ======================================
field               operators                              value
==================  =====================================  ======================================
type                is, is_not, in, not_in                 a ticket type (``in``: a list)
priority            is, is_not, in, not_in,                a priority; ``changed_from`` /
                    changed_from, changed_to               ``changed_to`` hold when the event
                                                           that triggered the rule changed it
status              same as priority                       a status
channel             is, is_not, in, not_in                 web, api, chat, email
plan                is, is_not, in, not_in                 the organization's plan
organization        is, is_not, in, not_in                 an organization id, or "none"
team                is, is_not, in, not_in                 a team id, or "none"
assignee            is, is_not, in, not_in                 a user id, or "none"
requester_email     is, is_not, contains, not_contains,    text (case-insensitive)
                    matches, not_matches
requester_domain    is, is_not, in, not_in                 a domain such as ``example.com``
subject             contains, not_contains, matches,       text
                    not_matches, is, is_not
text                contains, not_contains, matches,       subject + description + the
                    not_matches                            triggering message's body
message             contains, not_contains, matches,       the triggering message's body
                    not_matches                            alone (empty without one)
sender_kind         is, is_not, in, not_in                 customer, agent, ai, system (the
                                                           triggering message's author)
sentiment           lt, lte, gt, gte, eq, is_empty         -1 … 1 (triage's reading)
ai_confidence       lt, lte, gt, gte, eq, is_empty         0 … 1
ai_decision         is, is_not, in, not_in                 resolve, ask, escalate, draft (the
                                                           triggering AI message, else the
                                                           ticket's last AI message)
business_hours      is                                     "in" or "out" (the ticket's SLA
                                                           calendar, at the moment of the check)
tags                contains, not_contains, in, not_in     a tag name (``in`` / ``not_in``: a
                                                           list: the ticket has any / none)
custom_field        is, is_not, in, not_in                 ``key=value`` of a choice, multiple
                                                           choice or yes/no custom field
                                                           (``plan_tier=enterprise``,
                                                           ``device=ios``, ``vip=true``); a
                                                           multiple choice holds each option
==================  =====================================  ======================================

``matches`` / ``not_matches`` take a regular expression (Python syntax, searched
case-insensitively, at most :data:`MAX_PATTERN` characters); ``contains`` is
case-insensitive too. ``is_empty`` takes ``true`` or ``false``.

API: :func:`validate` (returns the document normalised, raises
:class:`core.errors.DomainError` with ``field="conditions"``), :func:`facts_for` (what is
known about a ticket at the moment a rule is checked), :func:`matches`.

Adding a field (tags, custom fields) is one :class:`Field` entry in :data:`FIELDS`: its
operators come from its kind, its value from a function of :class:`Facts`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from core.errors import DomainError

MAX_DEPTH = 4
MAX_CONDITIONS = 50
MAX_PATTERN = 1000
MAX_TEXT = 1000
NONE = "none"


# --------------------------------------------------------------------------------------
# Operators, by value kind
# --------------------------------------------------------------------------------------

CHOICE_OPS = ("is", "is_not", "in", "not_in")
CHANGE_OPS = ("changed_from", "changed_to")
TEXT_OPS = ("contains", "not_contains", "matches", "not_matches", "is", "is_not")
NUMBER_OPS = ("lt", "lte", "gt", "gte", "eq", "is_empty")

OPERATOR_LABELS = {
    "is": "is",
    "is_not": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "changed_from": "changed from",
    "changed_to": "changed to",
    "contains": "contains",
    "not_contains": "does not contain",
    "matches": "matches the pattern",
    "not_matches": "does not match the pattern",
    "lt": "is less than",
    "lte": "is at most",
    "gt": "is greater than",
    "gte": "is at least",
    "eq": "equals",
    "is_empty": "is empty",
}


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str) -> re.Pattern:
    """A rule's pattern, compiled once per process (rules run inside every ticket write)."""
    return re.compile(pattern, re.IGNORECASE)


# --------------------------------------------------------------------------------------
# Facts: what a rule sees of a ticket
# --------------------------------------------------------------------------------------


@dataclass
class Facts:
    """A ticket at the moment a rule is checked, with the event and message that
    triggered it. Costly facts (the last AI message, the business-hours calendar) are
    computed on first use, so rules that do not ask for them cost nothing."""

    ticket: Any
    message: Any = None
    event: Any = None
    now: datetime = field(default_factory=timezone.now)
    _cache: dict = field(default_factory=dict, repr=False)

    def _memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def text(self) -> str:
        def compute():
            parts = [self.ticket.subject or "", self.ticket.description or ""]
            if self.message is not None and self.message.body:
                parts.append(self.message.body)
            return "\n".join(parts)

        return self._memo("text", compute)

    @property
    def requester_email(self) -> str:
        requester = self.ticket.requester
        return (getattr(requester, "email", "") or "").lower()

    @property
    def requester_domain(self) -> str:
        email = self.requester_email
        return email.rsplit("@", 1)[1] if "@" in email else ""

    @property
    def sender_kind(self) -> str:
        if self.message is not None:
            return self.message.sender_kind
        metadata = getattr(self.event, "metadata", None) or {}
        return metadata.get("sender_kind", "")

    @property
    def ai_decision(self) -> str:
        def compute():
            if self.message is not None and self.message.sender_kind == "ai":
                return self.message.ai_decision or ""
            from support.models import Message

            last = (
                Message.objects.filter(ticket_id=self.ticket.pk, sender_kind="ai")
                .order_by("-created_at", "-id")
                .values_list("ai_decision", flat=True)
                .first()
            )
            return last or ""

        return self._memo("ai_decision", compute)

    @property
    def business_hours(self) -> str:
        def compute():
            try:
                from support.sla import calendar_for_ticket
            except ImportError:  # no calendars: always open
                return "in"
            calendar = calendar_for_ticket(self.ticket)
            if calendar is None:
                return "in"
            return "in" if calendar.is_open(self.now) else "out"

        return self._memo("business_hours", compute)

    @property
    def tags(self) -> frozenset[str]:
        def compute():
            from support.models import TicketTag

            if "tags" in getattr(self.ticket, "_prefetched_objects_cache", {}):
                return frozenset(tag.name for tag in self.ticket.tags.all())  # a batch's
            names = TicketTag.objects.filter(ticket_id=self.ticket.pk).values_list(
                "tag__name", flat=True
            )
            return frozenset(names)

        return self._memo("tags", compute)

    def change(self, name: str) -> tuple[str, str] | None:
        """(old, new) when the triggering event changed ``name`` (status, priority)."""
        event = self.event
        if event is None or getattr(event, "field", "") != name:
            return None
        return event.old_value, event.new_value


def facts_for(ticket, *, message=None, event=None, now: datetime | None = None) -> Facts:
    """What rules see of ``ticket``. Load it with ``select_related("organization",
    "team")``: the rules that test the requester's email cost one query more (or add
    ``"requester"`` when many do, e.g. a preview over many tickets)."""
    return Facts(ticket=ticket, message=message, event=event, now=now or timezone.now())


# --------------------------------------------------------------------------------------
# The field registry
# --------------------------------------------------------------------------------------


def choices_of(dotted: str) -> Callable[[], list[tuple[str, str]]]:
    def load():
        from support import models

        target = models
        for part in dotted.split("."):
            target = getattr(target, part)
        return list(target.choices)

    return load


@dataclass(frozen=True)
class Field:
    """One thing a condition can test.

    ``kind``: ``choice`` (one of ``choices``), ``id`` (a row id or "none"), ``text``,
    ``domain`` (lower-cased text compared whole), ``number``, ``tags`` (the ticket's set
    of tag names; a value is one name).
    """

    name: str
    label: str
    kind: str
    get: Callable[[Facts], Any]
    operators: tuple[str, ...]
    choices: Callable[[], list[tuple[str, str]]] | None = None
    model: str = ""  # for id fields: "support.Team", "auth.User" …

    def choice_list(self) -> list[tuple[str, str]]:
        return list(self.choices()) if self.choices else []

    def describe(self) -> dict:
        """The field for a form or an API client."""
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "operators": [{"name": op, "label": OPERATOR_LABELS[op]} for op in self.operators],
            "choices": [{"value": v, "label": str(label)} for v, label in self.choice_list()],
            "model": self.model,
        }


def _fk(name: str) -> Callable[[Facts], Any]:
    return lambda facts: getattr(facts.ticket, f"{name}_id")


def _custom_field_pairs(facts: Facts) -> frozenset[str]:
    """The ticket's custom field values as ``key=value`` (one per option chosen)."""
    pairs = set()
    for key, value in (facts.ticket.custom_fields or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.add(f"{key}={item}")
    return frozenset(pairs)


def _custom_field_choices() -> list[tuple[str, str]]:
    from support.models import CustomField

    kinds = (CustomField.Kind.CHOICE, CustomField.Kind.MULTI_CHOICE, CustomField.Kind.BOOLEAN)
    result = []
    for defined in CustomField.objects.filter(is_active=True, kind__in=kinds):
        if defined.kind == CustomField.Kind.BOOLEAN:
            options = [("true", "yes"), ("false", "no")]
        else:
            options = [(choice, choice) for choice in defined.choices]
        result += [(f"{defined.key}={v}", f"{defined.label}: {label}") for v, label in options]
    return result


def _plan(facts: Facts) -> str:
    organization = facts.ticket.organization if facts.ticket.organization_id else None
    return organization.plan if organization is not None else ""


FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        Field(
            "type",
            "Type",
            "choice",
            lambda f: f.ticket.type,
            CHOICE_OPS,
            choices_of("TicketType"),
        ),
        Field(
            "priority",
            "Priority",
            "choice",
            lambda f: f.ticket.priority,
            CHOICE_OPS + CHANGE_OPS,
            choices_of("TicketPriority"),
        ),
        Field(
            "status",
            "Status",
            "choice",
            lambda f: f.ticket.status,
            CHOICE_OPS + CHANGE_OPS,
            choices_of("TicketStatus"),
        ),
        Field(
            "channel",
            "Channel",
            "choice",
            lambda f: f.ticket.channel,
            CHOICE_OPS,
            choices_of("TicketChannel"),
        ),
        Field(
            "plan",
            "Organization plan",
            "choice",
            _plan,
            CHOICE_OPS,
            choices_of("Organization.Plan"),
        ),
        Field(
            "organization",
            "Organization",
            "id",
            _fk("organization"),
            CHOICE_OPS,
            model="support.Organization",
        ),
        Field("team", "Team", "id", _fk("team"), CHOICE_OPS, model="support.Team"),
        Field("assignee", "Assignee", "id", _fk("assignee"), CHOICE_OPS, model="auth.User"),
        Field(
            "requester_email",
            "Requester email",
            "text",
            lambda f: f.requester_email,
            ("is", "is_not", "contains", "not_contains", "matches", "not_matches"),
        ),
        Field(
            "requester_domain",
            "Requester email domain",
            "domain",
            lambda f: f.requester_domain,
            CHOICE_OPS,
        ),
        Field("subject", "Subject", "text", lambda f: f.ticket.subject, TEXT_OPS),
        Field(
            "text",
            "Subject, description or message",
            "text",
            lambda f: f.text,
            ("contains", "not_contains", "matches", "not_matches"),
        ),
        Field(
            "message",
            "The triggering message",
            "text",
            lambda f: f.message.body if f.message is not None else "",
            ("contains", "not_contains", "matches", "not_matches"),
        ),
        Field(
            "sender_kind",
            "Message written by",
            "choice",
            lambda f: f.sender_kind,
            CHOICE_OPS,
            choices_of("Message.SenderKind"),
        ),
        Field(
            "sentiment", "Sentiment (-1 … 1)", "number", lambda f: f.ticket.sentiment, NUMBER_OPS
        ),
        Field(
            "ai_confidence",
            "AI confidence (0 … 1)",
            "number",
            lambda f: f.ticket.ai_confidence,
            NUMBER_OPS,
        ),
        Field(
            "ai_decision",
            "AI decision",
            "choice",
            lambda f: f.ai_decision,
            CHOICE_OPS,
            lambda: [
                ("resolve", "Resolved"),
                ("ask", "Asked the customer"),
                ("escalate", "Escalated"),
                ("draft", "Draft for people"),
            ],
        ),
        Field(
            "business_hours",
            "Business hours",
            "choice",
            lambda f: f.business_hours,
            ("is",),
            lambda: [("in", "In business hours"), ("out", "Out of business hours")],
        ),
        Field(
            "tags",
            "Tags",
            "tags",
            lambda f: f.tags,
            ("contains", "not_contains", "in", "not_in"),
        ),
        Field(
            "custom_field",
            "Custom field",
            "choice",
            _custom_field_pairs,
            CHOICE_OPS,
            _custom_field_choices,
        ),
    ]
}


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _fail(message: str) -> None:
    raise DomainError(message, field="conditions")


def _check_scalar(spec: Field, value: Any, where: str) -> Any:
    if spec.kind == "choice":
        allowed = [v for v, _ in spec.choice_list()]
        if value not in allowed:
            _fail(f"{where}: “{value}” is not one of: {', '.join(allowed)}.")
        return value
    if spec.kind == "id":
        if value == NONE or value is None:
            return NONE
        if isinstance(value, bool):
            _fail(f"{where}: give an id (a whole number) or “none”.")
        try:
            number = int(value)
        except (TypeError, ValueError):
            _fail(f"{where}: give an id (a whole number) or “none”, not “{value}”.")
        if number <= 0:
            _fail(f"{where}: an id is a positive whole number.")
        return number
    if spec.kind == "domain":
        if not isinstance(value, str) or not value.strip():
            _fail(f"{where}: give an email domain such as example.com.")
        domain = value.strip().lower().lstrip("@")
        if "@" in domain or " " in domain or "." not in domain:
            _fail(f"{where}: “{value}” is not an email domain such as example.com.")
        return domain
    if spec.kind == "text":
        if not isinstance(value, str) or not value.strip():
            _fail(f"{where}: give some text.")
        if len(value) > MAX_TEXT:
            _fail(f"{where}: at most {MAX_TEXT} characters.")
        return value
    if spec.kind == "tags":
        if not isinstance(value, str) or not value.strip():
            _fail(f"{where}: give a tag name.")
        return re.sub(r"\s+", "-", value.strip().lower())[:50]
    if spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                _fail(f"{where}: give a number, not “{value}”.")
        return float(value)
    raise AssertionError(spec.kind)  # pragma: no cover


def _check_condition(item: dict, where: str) -> dict:
    unknown = set(item) - {"field", "operator", "value"}
    if unknown:
        _fail(f"{where}: unknown key(s) {', '.join(sorted(unknown))}.")
    name = item.get("field")
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        _fail(f"{where}: unknown field “{name}”; use one of: {', '.join(FIELDS)}.")
    operator = item.get("operator")
    if operator not in spec.operators:
        _fail(
            f"{where}: {spec.label.lower()} cannot use “{operator}”; "
            f"use one of: {', '.join(spec.operators)}."
        )
    where = f"{where} ({spec.label.lower()} {OPERATOR_LABELS[operator]})"
    value = item.get("value")
    if operator == "is_empty":
        if not isinstance(value, bool):
            _fail(f"{where}: give true or false.")
    elif operator in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            _fail(f"{where}: give a non-empty list of values.")
        if len(value) > 100:
            _fail(f"{where}: at most 100 values.")
        value = [_check_scalar(spec, v, where) for v in value]
    elif operator in ("matches", "not_matches"):
        if not isinstance(value, str) or not value:
            _fail(f"{where}: give a regular expression.")
        if len(value) > MAX_PATTERN:
            _fail(f"{where}: a pattern has at most {MAX_PATTERN} characters.")
        try:
            compiled(value)
        except re.error as error:
            _fail(f"{where}: not a valid regular expression ({error}).")
    else:
        value = _check_scalar(spec, value, where)
    return {"field": name, "operator": operator, "value": value}


def _check_group(group: Any, where: str, depth: int, counter: list[int]) -> dict:
    if not isinstance(group, dict):
        _fail(f"{where}: expected an object with “match” and “conditions”.")
    unknown = set(group) - {"match", "conditions"}
    if unknown:
        _fail(f"{where}: unknown key(s) {', '.join(sorted(unknown))}.")
    match = group.get("match", "all")
    if match not in ("all", "any"):
        _fail(f"{where}: “match” is “all” or “any”, not “{match}”.")
    items = group.get("conditions", [])
    if not isinstance(items, list):
        _fail(f"{where}: “conditions” must be a list.")
    checked = []
    for index, item in enumerate(items, 1):
        here = f"{where} › condition {index}" if where != "Conditions" else f"Condition {index}"
        if isinstance(item, dict) and "conditions" in item:
            if depth >= MAX_DEPTH:
                _fail(f"{here}: groups nest at most {MAX_DEPTH} deep.")
            checked.append(_check_group(item, here, depth + 1, counter))
            continue
        if not isinstance(item, dict):
            _fail(f"{here}: expected an object with field, operator and value.")
        counter[0] += 1
        if counter[0] > MAX_CONDITIONS:
            _fail(f"A rule has at most {MAX_CONDITIONS} conditions.")
        checked.append(_check_condition(item, here))
    return {"match": match, "conditions": checked}


def validate(conditions: Any) -> dict:
    """The conditions, checked and normalised (ids as numbers, domains lower-case);
    raises :class:`DomainError` (``field="conditions"``) naming the faulty condition."""
    if conditions in (None, {}, []):
        return {"match": "all", "conditions": []}
    return _check_group(conditions, "Conditions", 1, [0])


def fields_used(conditions: dict) -> set[str]:
    """The fields a (validated) document tests."""
    used: set[str] = set()
    for item in (conditions or {}).get("conditions", []):
        if "conditions" in item:
            used |= fields_used(item)
        else:
            used.add(item["field"])
    return used


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def _normal(spec: Field, value: Any) -> Any:
    if spec.kind == "id":
        return NONE if value is None else value
    if spec.kind == "domain":
        return (value or "").lower()
    return value


def _holds(item: dict, facts: Facts) -> bool:
    spec = FIELDS[item["field"]]
    operator, expected = item["operator"], item["value"]
    if operator in CHANGE_OPS:
        change = facts.change(spec.name)
        if change is None:
            return False
        return (change[0] if operator == "changed_from" else change[1]) == expected
    actual = _normal(spec, spec.get(facts))
    if spec.kind == "tags":  # a set: has the tag / has any of the tags
        wanted = set(expected) if isinstance(expected, list) else {expected}
        has = bool(actual & wanted)
        return has if operator in ("contains", "in") else not has
    if isinstance(actual, frozenset):  # custom fields: a ticket holds many key=value pairs
        wanted = set(expected) if isinstance(expected, list) else {expected}
        return bool(actual & wanted) == (operator in ("is", "in"))
    if spec.kind == "id":
        expected = [_id(v) for v in expected] if isinstance(expected, list) else _id(expected)
    if operator == "is":
        if spec.kind == "text":
            return (actual or "").lower() == expected.lower()
        return actual == expected
    if operator == "is_not":
        if spec.kind == "text":
            return (actual or "").lower() != expected.lower()
        return actual != expected
    if operator == "in":
        return actual in expected
    if operator == "not_in":
        return actual not in expected
    if operator == "contains":
        return expected.lower() in (actual or "").lower()
    if operator == "not_contains":
        return expected.lower() not in (actual or "").lower()
    if operator == "matches":
        return compiled(expected).search(actual or "") is not None
    if operator == "not_matches":
        return compiled(expected).search(actual or "") is None
    if operator == "is_empty":
        return (actual is None) == expected
    if actual is None:  # an unknown number satisfies no comparison
        return False
    expected = float(expected)
    return {
        "lt": actual < expected,
        "lte": actual <= expected,
        "gt": actual > expected,
        "gte": actual >= expected,
        "eq": actual == expected,
    }[operator]


def _id(value: Any) -> Any:
    if value == NONE or value is None:
        return NONE
    return int(value)


def matches(conditions: dict | None, facts: Facts) -> bool:
    """Whether ``facts`` satisfy the (validated) ``conditions``; empty: always."""
    if not conditions:
        return True
    items = conditions.get("conditions") or []
    if not items:
        return True
    results = (
        matches(item, facts) if "conditions" in item else _holds(item, facts) for item in items
    )
    if conditions.get("match", "all") == "any":
        return any(results)
    return all(results)
