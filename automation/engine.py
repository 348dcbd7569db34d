"""The rules engine: which rules a ticket change triggers, and firing them.

Support announces every change to a ticket at the end of its service, inside its
transaction (``ticket_activity``, :mod:`automation.subscribers`), with the
:class:`~support.models.TicketEvent` rows it wrote. :func:`on_ticket_activity` maps those
events to triggers (:data:`TRIGGER_OF`), takes the enabled rules for them in position order
(kept per process and reloaded when a small version query says they changed; nothing at
all when the change triggers nothing), loads the ticket once, checks each rule's conditions
against the ticket (:mod:`automation.conditions`) and fires the ones that hold: a
:class:`~automation.models.RuleFiring` row (key: the event id) and the actions
(:mod:`automation.actions`), each through a support service. A rule with
``stop_processing`` that fired ends the run for that event.

An action's service announces its own change, which may trigger more rules: a *cascade*.
Loop protection, per cascade (a context variable, so per thread and per task): a rule
fires at most once on a ticket in one cascade, and the cascade goes at most
``HELPDESK_RULES_MAX_DEPTH`` (default 5) levels deep.

Nothing runs while the demo writes its history (``core.outbox.writing_history``): the
past happened without these rules.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q, Sum

from automation import actions, conditions
from automation.models import Rule, RuleFiring

logger = logging.getLogger(__name__)

T = Rule.Trigger

#: TicketEvent kind -> trigger (messages: by who wrote them, :data:`MESSAGE_TRIGGERS`).
TRIGGER_OF = {
    "created": T.TICKET_CREATED,
    "status_changed": T.STATUS_CHANGED,
    "priority_changed": T.PRIORITY_CHANGED,
    "assigned": T.ASSIGNEE_CHANGED,
    "escalated": T.ESCALATED,
}
MESSAGE_TRIGGERS = {
    "customer": T.CUSTOMER_MESSAGE,
    "agent": T.AGENT_MESSAGE,
    "ai": T.AI_MESSAGE,
}
#: Triggers that come from the events of a change (the others come from the sweep).
EVENT_TRIGGERS = frozenset({*TRIGGER_OF.values(), *MESSAGE_TRIGGERS.values()})


@dataclass
class Cascade:
    """One person's change (or one sweep item) and what rules did because of it."""

    depth: int = 0
    fired: set[tuple[int, int]] = field(default_factory=set)
    stopped_at_depth: int = 0  # how many announcements the depth limit cut off


_cascade: contextvars.ContextVar[Cascade | None] = contextvars.ContextVar(
    "automation_cascade", default=None
)


def max_depth() -> int:
    return int(getattr(settings, "HELPDESK_RULES_MAX_DEPTH", 5))


def writing_history() -> bool:
    """Whether the changes being written happened in the past (the demo's history)."""
    from core import outbox

    return outbox.is_writing_history()


def trigger_for(event) -> str | None:
    """The trigger a ticket event is (None: it triggers no rule)."""
    kind = event.kind
    if kind == "message_added":
        return MESSAGE_TRIGGERS.get((event.metadata or {}).get("sender_kind", ""))
    return TRIGGER_OF.get(kind)


# The enabled event rules, kept per process: (version, rules in run order). The version
# (how many rules, how many enabled, the last id, the last change, the order) costs one
# small aggregate query; the rules and their JSON are loaded again only when it moves.
_loaded: tuple[tuple, list[Rule]] | None = None


def _version() -> tuple:
    return tuple(
        Rule.objects.aggregate(
            n=Count("id"),
            enabled=Count("id", filter=Q(is_enabled=True)),
            last_id=Max("id"),
            changed=Max("updated_at"),
            # A reorder (bulk update of positions) moves no updated_at.
            order=Sum(F("id") * F("position")),
        ).values()
    )


def enabled_rules(triggers) -> list[Rule]:
    """The enabled rules for ``triggers``, in the order they run.

    Rules change through their services (``save`` bumps ``updated_at``); a bulk
    ``update()`` of conditions or actions is seen once the version moves otherwise."""
    global _loaded
    version = _version()
    if _loaded is None or _loaded[0] != version:
        rules = list(
            Rule.objects.filter(is_enabled=True, trigger__in=sorted(EVENT_TRIGGERS))
            .only("id", "name", "trigger", "conditions", "actions", "stop_processing", "position")
            .order_by("position", "id")
        )
        _loaded = (version, rules)
    wanted = set(triggers)
    return [rule for rule in _loaded[1] if rule.trigger in wanted]


def _load_ticket(ticket_id: int):
    """The ticket as rules see it (its organization and team joined; the requester is
    read only by the rules that test it)."""
    from support.models import Ticket

    try:
        return Ticket.objects.select_related("organization", "team").get(pk=ticket_id)
    except Ticket.DoesNotExist:
        return None


def _just_opened(ticket_id: int, kind: str, events: list):
    """The ticket that ``ticket_open`` just wrote, as its created event holds it: nothing
    has changed it since (its organization is loaded, a new ticket has no team)."""
    from support.models import TicketEvent

    if kind != "ticket_opened" or len(events) != 1:
        return None
    event = events[0]
    if not TicketEvent.ticket.is_cached(event) or event.ticket_id != ticket_id:
        return None
    ticket = event.ticket
    return ticket if ticket.team_id is None else None


def tickets_by_id(ids) -> dict:
    """Tickets as rules see them, by id, in two queries (with their tags: the time-rule
    sweep's batches)."""
    from support.models import Ticket

    if not ids:
        return {}
    return (
        Ticket.objects.select_related("organization", "team").prefetch_related("tags").in_bulk(ids)
    )


def on_ticket_activity(*, ticket_id: int, kind: str, events: list) -> None:
    """Run the rules that the announced ``events`` trigger on the ticket."""
    triggered = [(trigger_for(e), e) for e in events]
    triggered = [(t, e) for t, e in triggered if t is not None]
    if not triggered or writing_history():
        return
    with cascade() as state:
        if state.depth >= max_depth():
            state.stopped_at_depth += 1
            logger.warning(
                "rules: cascade on ticket %s stopped at depth %s", ticket_id, state.depth
            )
            return
        rules = enabled_rules(t for t, _ in triggered)
        if not rules:
            return
        ticket = _just_opened(ticket_id, kind, events) or _load_ticket(ticket_id)
        if ticket is None:
            return
        messages = _messages_for([e for t, e in triggered if t in MESSAGE_TRIGGERS.values()])
        for trigger, event in triggered:
            message = messages.get((event.metadata or {}).get("message_id"))
            facts = conditions.facts_for(ticket, message=message, event=event)
            for rule in rules:
                if rule.trigger != trigger:
                    continue
                fired = evaluate_and_fire(rule, ticket, key=str(event.pk), facts=facts, state=state)
                if fired is not None:
                    ticket = _load_ticket(ticket_id) or ticket  # the actions changed it
                    facts = conditions.facts_for(ticket, message=message, event=event)
                    if rule.stop_processing:
                        break


def _messages_for(events) -> dict:
    ids = [(e.metadata or {}).get("message_id") for e in events]
    ids = [i for i in ids if i]
    if not ids:
        return {}
    from support.models import Message

    return {m.pk: m for m in Message.objects.filter(pk__in=ids)}


@contextmanager
def cascade() -> Iterator[Cascade]:
    """The current cascade, started here when none is running."""
    state = _cascade.get()
    if state is not None:
        yield state
        return
    state = Cascade()
    token = _cascade.set(state)
    try:
        yield state
    finally:
        _cascade.reset(token)
        # The rule_applied events written after the last announcement are in the table;
        # they are not announced later with some unrelated change.
        from support.events import take_unannounced

        for ticket_id in {ticket_id for _, ticket_id in state.fired}:
            take_unannounced(ticket_id)


def evaluate_and_fire(
    rule: Rule,
    ticket,
    *,
    key: str,
    facts: conditions.Facts,
    state: Cascade,
    anchor_at: datetime | None = None,
) -> RuleFiring | None:
    """Fire ``rule`` on ``ticket`` if its conditions hold and loop protection allows."""
    if (rule.pk, ticket.pk) in state.fired:
        return None
    try:
        holds = conditions.matches(rule.conditions, facts)
    except Exception:  # a rule saved around the validator: skipped, never fatal
        logger.exception("rule %s: conditions could not be evaluated", rule.pk)
        return None
    if not holds:
        return None
    return fire(rule, ticket, key=key, state=state, anchor_at=anchor_at)


def fire(
    rule: Rule, ticket, *, key: str, state: Cascade, anchor_at: datetime | None = None
) -> RuleFiring | None:
    """Record the firing (once per rule, ticket and key) and do the actions."""
    try:
        with transaction.atomic():
            firing = RuleFiring.objects.create(
                rule_id=rule.pk,
                ticket_id=ticket.pk,
                key=key[:64],
                depth=state.depth,
                anchor_at=anchor_at,
            )
    except IntegrityError:  # fired for this key already (another sweep, a re-run)
        return None
    state.fired.add((rule.pk, ticket.pk))
    state.depth += 1
    try:
        outcome = actions.run(rule.actions, ticket=ticket, rule=rule)
    finally:
        state.depth -= 1
    firing.outcome = outcome
    firing.save(update_fields=["outcome"])
    return firing
