"""The time-rule sweep: rules that fire some time after something, not on a change.

Beat runs :func:`run_time_rules` every minute (task ``automation.tasks.run_time_rules``),
one run at a time (an advisory lock: a run that finds another still going skips its turn).
For each enabled rule with a time trigger:

- ``time_elapsed``: the tickets whose anchor (``since``: ``created_at``,
  ``status_changed_at`` or ``resolved_at``) is at or before the cut-off. The cut-off is
  ``now - delay`` for minutes and hours; for days it is counted in calendar days of the
  ticket's SLA calendar's time zone (the site's zone without a calendar), so "7 days"
  across a daylight-saving change is 7 local days; with ``business_time`` it is
  ``calendar.subtract(now, delay)``: only business hours count (holidays none). One
  cut-off per calendar in use (``support.sla.calendars_in_use``), each with its ``Q``.
- ``sla_at_risk`` / ``sla_breached``: open tickets whose ``sla_at_risk_at`` /
  ``sla_due_at`` has passed; the anchor is that instant.

The query does the heavy part: the rule's top-level "is" / "is one of" conditions on
ticket columns (status, priority, type, channel, organization, plan, team, assignee; when
the rule matches "all") are pushed into it, so the ``(status, status_changed_at)`` index
serves a status condition; tickets already fired for the same anchor are excluded in SQL
(an anti-join on ``RuleFiring.anchor_at``); rows come oldest anchor first in batches of
``HELPDESK_RULES_SWEEP_BATCH``, loaded in one query per batch. The other conditions are
checked in Python, and a run goes on where the previous one stopped (:func:`sweep_rule`).
A rule fires once per ticket and anchor: the key is the anchor instant and the unique
constraint (rule, ticket, key) keeps two concurrent sweeps from firing twice. A
ticket that re-enters the status has a new anchor, so the rule fires again.

Each ticket fires in its own transaction, with the ticket's row locked and re-checked
(it may have moved on since the query), as its own cascade: its actions may trigger
event rules (:mod:`automation.engine`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from automation import conditions, engine
from automation.models import Rule, RuleFiring

logger = logging.getLogger(__name__)

T = Rule.Trigger
TIME_TRIGGERS = (T.TIME_ELAPSED, T.SLA_AT_RISK, T.SLA_BREACHED)
ANCHORS = {
    Rule.Since.CREATED: "created_at",
    Rule.Since.STATUS_ENTERED: "status_changed_at",
    Rule.Since.RESOLVED: "resolved_at",
}
#: How many batches one rule may go through in one run (the rest waits a minute).
MAX_BATCHES = 10


def _batch_size() -> int:
    return int(getattr(settings, "HELPDESK_RULES_SWEEP_BATCH", 500))


#: The advisory lock held by the running sweep (``pg_try_advisory_lock(int, int)``).
_LOCK = (0x41_75_74_6F, 1)  # "Auto", the sweep


@contextmanager
def _only_sweep() -> Iterator[bool]:
    """A PostgreSQL advisory lock on the session while a sweep runs: a beat that comes
    while the last run still works through a backlog skips its turn instead of doing the
    same checks again (the row locks and the unique key would keep it correct anyway)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", list(_LOCK))
        mine = bool(cursor.fetchone()[0])
    try:
        yield mine
    finally:
        if mine:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", list(_LOCK))
            except Exception:  # the connection is gone, and the lock with it
                logger.warning("time-rule sweep: advisory lock not released")


def run_time_rules(*, now: datetime | None = None) -> dict[str, int]:
    """Fire the time rules that are due; returns how many fired, by rule name (nothing
    while another sweep is running)."""
    with _only_sweep() as mine:
        if not mine:
            logger.info("time-rule sweep: the previous run is still going; skipped")
            return {}
        return _run(now=now or timezone.now())


def _run(*, now: datetime) -> dict[str, int]:
    fired: dict[str, int] = {}
    rules = Rule.objects.filter(is_enabled=True, trigger__in=TIME_TRIGGERS).order_by(
        "position", "id"
    )
    for rule in rules:
        try:
            count = sweep_rule(rule, now=now)
        except Exception:  # one broken rule does not stop the others
            logger.exception("time rule %s (%s) failed", rule.pk, rule.name)
            continue
        if count:
            fired[rule.name] = count
    return fired


def anchor_column(rule: Rule) -> str:
    if rule.trigger == T.SLA_BREACHED:
        return "sla_due_at"
    if rule.trigger == T.SLA_AT_RISK:
        return "sla_at_risk_at"
    return ANCHORS[rule.since]


def delay_of(rule: Rule) -> timedelta:
    return timedelta(**{rule.delay_unit or Rule.Unit.MINUTES: rule.delay or 0})


def _local_days_before(now: datetime, days: int, time_zone: str) -> datetime:
    """``days`` calendar days before ``now`` in ``time_zone`` (same local wall time)."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    # Aware arithmetic keeps the wall clock: the offset is that of the earlier date.
    earlier = (local.replace(tzinfo=None) - timedelta(days=days)).replace(tzinfo=zone)
    return earlier.astimezone(UTC)


def cutoffs(rule: Rule, now: datetime) -> list[tuple[datetime, Q]]:
    """(cut-off, which tickets) pairs: tickets anchored at or before the cut-off are due."""
    if rule.trigger in (T.SLA_AT_RISK, T.SLA_BREACHED):
        return [(now, Q())]
    delay = delay_of(rule)
    if not rule.business_time and rule.delay_unit != Rule.Unit.DAYS:
        return [(now - delay, Q())]
    from support.sla import calendars_in_use

    result = []
    for calendar, which in calendars_in_use():
        if rule.business_time:
            cutoff = calendar.subtract(now, delay)
        else:
            zone = calendar.time_zone if calendar.key is not None else settings.TIME_ZONE
            cutoff = _local_days_before(now, rule.delay or 0, zone)
        result.append((cutoff, which))
    return result


#: Condition fields that are ticket columns: their "is" / "is one of" conditions are pushed
#: into the sweep's query (the Python check after it stays the judge).
COLUMNS = {
    "type": "type",
    "priority": "priority",
    "status": "status",
    "channel": "channel",
    "plan": "organization__plan",
    "organization": "organization_id",
    "team": "team_id",
    "assignee": "assignee_id",
}


def _column_filter(column: str, values: list) -> Q:
    none = [v for v in values if v in (conditions.NONE, None)]
    rest = [v for v in values if v not in (conditions.NONE, None)]
    if len(rest) == 1:
        q = Q(**{column: rest[0]})
    else:
        q = Q(**{f"{column}__in": rest}) if rest else Q(pk__in=[])
    if none:
        q |= Q(**{f"{column}__isnull": True})
    return q


def sql_filter(rule: Rule) -> Q:
    """The rule's top-level "is" / "is one of" conditions on ticket columns, as a filter:
    it selects every ticket whose conditions can hold (a superset: the rest of the
    conditions are checked in Python), so the indexes do the narrowing."""
    document = rule.conditions or {}
    if document.get("match", "all") != "all":
        return Q()
    q = Q()
    for item in document.get("conditions") or []:
        column = COLUMNS.get(item.get("field"))
        if column is None or "conditions" in item:
            continue
        if item.get("operator") == "is":
            q &= _column_filter(column, [item["value"]])
        elif item.get("operator") == "in":
            q &= _column_filter(column, list(item["value"]))
    return q


def due_tickets(rule: Rule, now: datetime):
    """The tickets the rule is due for, not fired yet for their anchor (a QuerySet)."""
    from support.models import OPEN_STATUSES, Ticket

    column = anchor_column(rule)
    by_calendar = Q(pk__in=[])
    for cutoff, which in cutoffs(rule, now):
        by_calendar |= which & Q(**{f"{column}__lte": cutoff})
    query = (
        Ticket.objects.filter(by_calendar)
        .filter(sql_filter(rule))
        .filter(**{f"{column}__isnull": False})
    )
    if rule.trigger in (T.SLA_AT_RISK, T.SLA_BREACHED):
        query = query.filter(status__in=sorted(OPEN_STATUSES))
    fired = RuleFiring.objects.filter(rule=rule, ticket=OuterRef("pk"), anchor_at=OuterRef(column))
    return query.filter(~Exists(fired)).order_by(column, "pk")


def _cursor_key(rule: Rule) -> str:
    return f"automation:sweep-cursor:{rule.pk}:{rule.updated_at.timestamp()}"


def sweep_rule(rule: Rule, *, now: datetime) -> int:
    """Fire ``rule`` on the tickets it is due for; returns how many it fired on.

    Each batch is one query for the due tickets and one for the tickets themselves; the
    conditions are checked in Python and only a ticket they hold for is locked, checked
    again and fired. A run looks at most ``MAX_BATCHES`` batches: where it stopped is kept
    (the cache) and the next run goes on from there, back to the start once through, so
    tickets whose conditions do not hold never keep the others waiting."""
    from django.core.cache import cache

    column = anchor_column(rule)
    size = _batch_size()
    fired = 0
    key = _cursor_key(rule)
    saved = cache.get(key)
    after: tuple[datetime, int] | None = (
        (datetime.fromisoformat(saved[0]), saved[1]) if saved else None
    )
    for _ in range(MAX_BATCHES):
        query = due_tickets(rule, now)
        if after is not None:  # keyset: past the tickets already looked at
            query = query.filter(
                Q(**{f"{column}__gt": after[0]}) | Q(**{column: after[0], "pk__gt": after[1]})
            )
        batch = list(query.values_list("pk", column)[:size])
        tickets = engine.tickets_by_id([pk for pk, _ in batch])
        for ticket_id, anchor in batch:
            ticket = tickets.get(ticket_id)
            if ticket is None or not conditions.matches(
                rule.conditions, conditions.facts_for(ticket, now=now)
            ):
                continue
            if _fire_one(rule, ticket_id, column, anchor, now):
                fired += 1
        if len(batch) < size:
            cache.delete(key)  # through to the end: the next run starts over
            break
        after = (batch[-1][1], batch[-1][0])
    else:
        cache.set(key, (after[0].isoformat(), after[1]), timeout=None)
    return fired


def _fire_one(rule: Rule, ticket_id: int, column: str, anchor: datetime, now: datetime) -> bool:
    from support.models import Ticket

    with transaction.atomic():
        locked = (
            Ticket.objects.select_for_update()
            .filter(pk=ticket_id)
            .values_list(column, flat=True)
            .first()
        )
        if locked != anchor:  # the ticket moved on since the query
            return False
        ticket = engine._load_ticket(ticket_id)
        with engine.cascade() as state:
            facts = conditions.facts_for(ticket, now=now)
            if not conditions.matches(rule.conditions, facts):
                return False
            return (
                engine.fire(rule, ticket, key=anchor.isoformat(), state=state, anchor_at=anchor)
                is not None
            )
