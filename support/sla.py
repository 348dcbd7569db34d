"""Business time: when a support team is at work, and SLA clocks counted in that time.

A :class:`BusinessTime` object answers four questions for one calendar (a time zone,
weekly opening intervals in local wall-clock time, holidays):

- ``is_open(at)``: is the team at work at that instant?
- ``add(start, delta)``: the instant when ``delta`` of business time has elapsed since
  ``start`` (a due time);
- ``subtract(end, delta)``: the latest start such that ``add(start, delta) == end`` (a
  cut-off: tickets that started at or before it have used ``delta`` by ``end``);
- ``between(a, b)``: the business time elapsed from ``a`` to ``b`` (negative if ``b < a``).

Intervals are local wall-clock hours of the calendar's zone, so a day on which daylight
saving time starts or ends has its real length (an interval 00:00-12:00 lasts 11 hours on
the last Sunday of March in Europe/Berlin). An interval ending at 00:00 ends at midnight.
:data:`AROUND_THE_CLOCK` is the 24/7 object used when a policy has no calendar.

The objects are pure (no database); :func:`calendar_for_ticket`,
:func:`calendar_for_organization` and :func:`calendars_in_use` build them from the
``BusinessCalendar``/``SlaPolicy`` rows; a loaded calendar is kept per process, keyed by
its id and ``updated_at`` (which the services bump on every change to it, its hours or
its holidays), so no query is made for the math once it is loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import CharField, OuterRef, Q, Subquery, Value

from support.models import OPEN_STATUSES, SlaPolicy, SlaTarget, TicketStatus, valid_time_zone

__all__ = [
    "AROUND_THE_CLOCK",
    "CLOCK_FIELDS",
    "DEFAULT_SLA_HOURS",
    "AroundTheClock",
    "BusinessTime",
    "Clock",
    "Targets",
    "calendar_for_organization",
    "calendar_for_policy",
    "calendar_for_ticket",
    "calendars_in_use",
    "forget_calendars",
    "hours_for_calendar",
    "policy_for_organization",
    "targets_for",
    "valid_time_zone",
]

ZERO = timedelta(0)
#: How far ahead (or back) ``add``/``subtract`` look for opening hours before giving up.
MAX_DAYS = 3 * 366


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("business time needs aware datetimes")
    return at.astimezone(UTC)


class AroundTheClock:
    """Business time when a policy has no calendar: every instant counts."""

    key = None
    name = "Around the clock"
    time_zone = "UTC"

    def __repr__(self) -> str:
        return "<AroundTheClock>"

    def is_open(self, at: datetime) -> bool:
        return True

    def add(self, start: datetime, delta: timedelta) -> datetime:
        return start + delta

    def subtract(self, end: datetime, delta: timedelta) -> datetime:
        return end - delta

    def between(self, a: datetime, b: datetime) -> timedelta:
        return b - a


AROUND_THE_CLOCK = AroundTheClock()

Interval = tuple[time, time]


@dataclass(eq=False)
class BusinessTime:
    """Opening hours of one calendar.

    ``week`` maps a weekday (0 = Monday … 6 = Sunday) to its local intervals
    ``(start, end)``, ``end`` after ``start`` or 00:00 for midnight; ``holidays`` are
    local dates with no opening at all.
    """

    time_zone: str
    week: Mapping[int, Iterable[Interval]]
    holidays: frozenset[date] = frozenset()
    key: int | None = None
    name: str = ""
    _tz: ZoneInfo = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._tz = ZoneInfo(self.time_zone)
        self.week = {
            day: tuple(sorted((s, e) for s, e in self.week.get(day, ()))) for day in range(7)
        }
        self.holidays = frozenset(self.holidays)
        self._has_hours = any(self.week[d] for d in range(7))
        self._day_cache: dict[date, tuple[tuple[datetime, datetime], ...]] = {}

    def __repr__(self) -> str:
        return f"<BusinessTime {self.name or self.key} {self.time_zone}>"

    # -- one local day --------------------------------------------------------------

    def intervals_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The opening intervals of a local date, as UTC instants (empty on holidays)."""
        cached = self._day_cache.get(day)
        if cached is not None:
            return cached
        result: list[tuple[datetime, datetime]] = []
        if day not in self.holidays:
            for start, end in self.week[day.weekday()]:
                begin = datetime.combine(day, start, tzinfo=self._tz).astimezone(UTC)
                if end == time(0):
                    finish_local = datetime.combine(day + timedelta(days=1), time(0))
                else:
                    finish_local = datetime.combine(day, end)
                finish = finish_local.replace(tzinfo=self._tz).astimezone(UTC)
                if finish > begin:
                    result.append((begin, finish))
        value = tuple(result)
        if len(self._day_cache) > 4096:
            self._day_cache.clear()
        self._day_cache[day] = value
        return value

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self._tz).date()

    # -- the four questions ---------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        at = _utc(at)
        day = self._local_date(at)
        return any(begin <= at < end for begin, end in self.intervals_on(day))

    def add(self, start: datetime, delta: timedelta) -> datetime:
        start = _utc(start)
        if delta < ZERO:
            return self.subtract(start, -delta)
        if delta == ZERO:
            return start
        self._require_hours()
        left = delta
        day = self._local_date(start) - timedelta(days=1)
        for _ in range(MAX_DAYS):
            for begin, end in self.intervals_on(day):
                if end <= start:
                    continue
                begin = max(begin, start)
                available = end - begin
                if available >= left:
                    return begin + left
                left -= available
            day += timedelta(days=1)
        raise ValueError(f"{self!r}: no opening hours within {MAX_DAYS} days")

    def subtract(self, end: datetime, delta: timedelta) -> datetime:
        end = _utc(end)
        if delta < ZERO:
            return self.add(end, -delta)
        if delta == ZERO:
            return end
        self._require_hours()
        left = delta
        day = self._local_date(end) + timedelta(days=1)
        for _ in range(MAX_DAYS):
            for begin, finish in reversed(self.intervals_on(day)):
                if begin >= end:
                    continue
                finish = min(finish, end)
                available = finish - begin
                if available >= left:
                    return finish - left
                left -= available
            day -= timedelta(days=1)
        raise ValueError(f"{self!r}: no opening hours within {MAX_DAYS} days")

    def between(self, a: datetime, b: datetime) -> timedelta:
        a, b = _utc(a), _utc(b)
        if b < a:
            return -self.between(b, a)
        total = ZERO
        day = self._local_date(a) - timedelta(days=1)
        last = self._local_date(b) + timedelta(days=1)
        while day <= last:
            for begin, end in self.intervals_on(day):
                lo, hi = max(begin, a), min(end, b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def _require_hours(self) -> None:
        if not self._has_hours:
            raise ValueError(f"{self!r} has no opening hours")


# ======================================================================================
# From the database: which calendar a ticket's clocks run on
# ======================================================================================

_lock = threading.Lock()
#: (calendar id, its updated_at) -> its hours; a change to a calendar (its hours, its
#: holidays) bumps ``updated_at`` through the services, so a stale copy is never used.
_loaded: dict[tuple[int, datetime], BusinessTime] = {}


def forget_calendars() -> None:
    """Drop this process's loaded calendars (they reload on next use)."""
    with _lock:
        _loaded.clear()


def hours_for_calendar(calendar) -> BusinessTime | AroundTheClock:
    """The business hours of a ``BusinessCalendar`` row (None: around the clock), loaded
    once per process and version; a calendar without any hours counts as 24/7."""
    if calendar is None:
        return AROUND_THE_CLOCK
    key = (calendar.pk, calendar.updated_at)
    hours = _loaded.get(key)
    if hours is None:
        week: dict[int, list[Interval]] = {}
        for weekday, start, end in calendar.hours.values_list("weekday", "start_time", "end_time"):
            week.setdefault(weekday, []).append((start, end))
        hours = BusinessTime(
            time_zone=calendar.time_zone,
            week=week,
            holidays=frozenset(calendar.holidays.values_list("date", flat=True)),
            key=calendar.pk,
            name=calendar.name,
        )
        with _lock:
            if len(_loaded) > 256:
                _loaded.clear()
            _loaded[key] = hours
    if not hours._has_hours:
        return AROUND_THE_CLOCK
    return hours


def policy_for_organization(organization, *, priority: str | None = None):
    """The ``SlaPolicy`` that applies to an organization's tickets: its own policy, else
    the policy of its plan, else the default policy (None: the built-in hours).

    With ``priority``, the policy's target row for it comes in the same query, and
    :func:`targets_for` that priority reads no more (every ticket opened asks both)."""
    policies = SlaPolicy.objects.select_related("calendar")
    if priority is not None:
        target = SlaTarget.objects.filter(policy=OuterRef("pk"), priority=priority)
        policies = policies.annotate(
            **{
                f"_target_{name}": Subquery(target.values(f"{name}_minutes")[:1])
                for name in TARGET_NAMES
            },
            _target_found=Subquery(target.values("priority")[:1]),
            _target_priority=Value(priority, output_field=CharField()),
        )
    if organization is not None:
        if organization.sla_policy_id is not None:
            return policies.get(pk=organization.sla_policy_id)
        if organization.plan:
            # One policy per plan and one default at most: both in one query (every
            # ticket opened reads this).
            found = policies.filter(Q(plan=organization.plan) | Q(is_default=True))
            return min(found, key=lambda policy: policy.plan != organization.plan, default=None)
        by_plan = policies.filter(plan=organization.plan).first()
        if by_plan is not None:
            return by_plan
    return policies.filter(is_default=True).first()


#: The three targets, as ``SlaTarget`` names them (``<name>_minutes``), in ``Targets`` order.
TARGET_NAMES = ("first_response", "next_response", "resolution")

#: Hours per priority when no policy applies at all.
DEFAULT_SLA_HOURS = {"low": 72, "normal": 24, "high": 8, "urgent": 4}


@dataclass(frozen=True)
class Targets:
    """How much business time the team has, for one policy and priority."""

    first_response: timedelta
    next_response: timedelta
    resolution: timedelta


def targets_for(policy, priority: str) -> Targets:
    """The policy's targets for a priority: its ``SlaTarget`` row, else its hours for
    all three; without a policy, :data:`DEFAULT_SLA_HOURS`."""
    if policy is None:
        hours = timedelta(hours=DEFAULT_SLA_HOURS[priority])
        return Targets(hours, hours, hours)
    # Read with the policy for this priority (policy_for_organization)?
    if getattr(policy, "_target_priority", None) == priority:
        if policy._target_found == priority:
            minutes = [getattr(policy, f"_target_{name}") for name in TARGET_NAMES]
            return Targets(*(timedelta(minutes=m) for m in minutes))
        if policy._target_found is None:
            hours = timedelta(hours=policy.hours_for(priority))
            return Targets(hours, hours, hours)
    target = policy.targets.filter(priority=priority).first()
    if target is None:
        hours = timedelta(hours=policy.hours_for(priority))
        return Targets(hours, hours, hours)
    return Targets(
        timedelta(minutes=target.first_response_minutes),
        timedelta(minutes=target.next_response_minutes),
        timedelta(minutes=target.resolution_minutes),
    )


def calendar_for_policy(policy) -> BusinessTime | AroundTheClock:
    if policy is None or policy.calendar_id is None:
        return AROUND_THE_CLOCK
    return hours_for_calendar(policy.calendar)


def calendar_for_organization(organization) -> BusinessTime | AroundTheClock:
    """The business hours of an organization's tickets (24/7 without a calendar)."""
    return calendar_for_policy(policy_for_organization(organization))


def calendar_for_ticket(ticket) -> BusinessTime | AroundTheClock:
    """The business hours a ticket's SLA clocks run on."""
    return calendar_for_organization(ticket.organization if ticket.organization_id else None)


def calendars_in_use() -> list[tuple[BusinessTime | AroundTheClock, Q]]:
    """Each calendar some ticket may use (and the 24/7 one), with a ``Q`` on ``Ticket``
    selecting exactly the tickets that use it.

    The ``Q``s are disjoint and together cover every ticket; they only join
    ``organization`` (policy ids and plans are written out). Time rules compute one
    cut-off per calendar (``hours.subtract(now, delay)``) and filter each ``Q`` with it.
    """
    policies = list(SlaPolicy.objects.select_related("calendar").order_by("pk"))
    hours_by_key: dict[int | None, BusinessTime | AroundTheClock] = {None: AROUND_THE_CLOCK}

    def key_of(policy) -> int | None:
        hours = calendar_for_policy(policy)
        hours_by_key[hours.key] = hours
        return hours.key

    own: dict[int | None, list[int]] = {}
    by_plan: dict[int | None, list[str]] = {}
    default_key = None
    for policy in policies:
        key = key_of(policy)
        own.setdefault(key, []).append(policy.pk)
        if policy.plan:
            by_plan.setdefault(key, []).append(policy.plan)
        if policy.is_default:
            default_key = key
    plans_with_policy = sorted(p.plan for p in policies if p.plan)

    result = []
    for key in sorted(hours_by_key, key=lambda k: (k is not None, k or 0)):
        parts = []
        if own.get(key):
            parts.append(Q(organization__sla_policy_id__in=own[key]))
        if by_plan.get(key):
            parts.append(
                Q(organization__sla_policy__isnull=True, organization__plan__in=by_plan[key])
            )
        if key == default_key:
            parts.append(Q(organization__isnull=True))
            no_policy = Q(organization__isnull=False, organization__sla_policy__isnull=True)
            if plans_with_policy:
                no_policy &= ~Q(organization__plan__in=plans_with_policy)
            parts.append(no_policy)
        q = Q(pk__in=[])
        for part in parts:
            q |= part
        result.append((hours_by_key[key], q))
    return result


# ======================================================================================
# A ticket's clocks (pure: the services, and the bench's bulk writer, apply them)
# ======================================================================================

#: The ticket fields the clocks write.
CLOCK_FIELDS = [
    "sla_due_at",
    "first_response_due_at",
    "next_response_due_at",
    "resolution_due_at",
    "sla_business_seconds",
    "sla_resumed_at",
    "sla_paused_at",
    "sla_at_risk_at",
    "sla_breached_at",
]
_AWAITING = TicketStatus.AWAITING_CUSTOMER


@dataclass(frozen=True)
class Clock:
    """The SLA clocks of one ticket's policy: its business hours, its targets for the
    ticket's priority, and the at-risk window (business time before a due time).

    Each method updates the clock fields of ``ticket`` (any object with them and a
    ``status``) for one thing that happened; ``status`` is already the new one:

    - first response: runs from opening until the first public reply (AI or agent);
    - next response: runs from a customer's message while no response is owed until
      the next public reply;
    - resolution: runs from opening until resolution, paused while the ticket awaits the
      customer (``sla_business_seconds`` banks the time used, ``sla_resumed_at`` when it
      last restarted, ``sla_paused_at`` since when it waits); after a pause or a
      reopening it runs for what is left of the target.

    ``sla_due_at`` is the nearest running due time (after resolution: the resolution due
    time it had), ``sla_at_risk_at`` the instant ``window`` before it, and
    ``sla_breached_at`` the first due time that passed unmet.
    """

    hours: BusinessTime | AroundTheClock
    targets: Targets
    window: timedelta

    # -- which events touch the clocks (callers skip loading the rules otherwise) ---------

    @staticmethod
    def status_matters(old: str, new: str) -> bool:
        old_open, new_open = old in OPEN_STATUSES, new in OPEN_STATUSES
        if not old_open and not new_open:
            return False  # resolved -> closed: already stopped
        return not (old_open and new_open and _AWAITING not in (old, new))

    @staticmethod
    def message_matters(ticket, *, public_reply: bool, from_customer: bool) -> bool:
        if public_reply:
            return (
                ticket.first_response_due_at is not None or ticket.next_response_due_at is not None
            )
        return (
            from_customer
            and ticket.status in OPEN_STATUSES
            and ticket.first_response_due_at is None
            and ticket.next_response_due_at is None
        )

    # -- what happened ------------------------------------------------------------------

    def start(self, ticket, now: datetime) -> None:
        """A new ticket: the first response and resolution clocks start."""
        ticket.first_response_due_at = self.hours.add(now, self.targets.first_response)
        ticket.next_response_due_at = None
        ticket.sla_business_seconds = 0
        ticket.sla_resumed_at = now
        ticket.sla_paused_at = None
        ticket.sla_breached_at = None
        ticket.resolution_due_at = self.hours.add(now, self.targets.resolution)
        self._summarize(ticket)

    def status_changed(self, ticket, old: str, new: str, now: datetime) -> None:
        """Pause while awaiting the customer, resume after, stop on resolution or
        closing, run again on reopening (for what is left)."""
        if not self.status_matters(old, new):
            return
        old_open, new_open = old in OPEN_STATUSES, new in OPEN_STATUSES
        if old_open and ticket.sla_resumed_at is not None and (not new_open or new == _AWAITING):
            # Running, and it pauses or stops: bank the business time used.
            self._missed(ticket, ticket.resolution_due_at, now)
            used = self._used(ticket, now)
            ticket.sla_business_seconds = int(used.total_seconds())
            ticket.sla_resumed_at = None
            if new == _AWAITING:
                ticket.sla_paused_at = now
                ticket.resolution_due_at = None
        if not new_open:
            self._missed(ticket, ticket.first_response_due_at, now)
            self._missed(ticket, ticket.next_response_due_at, now)
            ticket.first_response_due_at = ticket.next_response_due_at = None
            ticket.sla_paused_at = None
        elif (
            ticket.sla_resumed_at is None
            and (not old_open or ticket.sla_paused_at is not None)
            and new != _AWAITING
        ):
            used = timedelta(seconds=ticket.sla_business_seconds)
            ticket.sla_resumed_at = now
            ticket.sla_paused_at = None
            left = max(self.targets.resolution - used, ZERO)
            ticket.resolution_due_at = self.hours.add(now, left)
        self._summarize(ticket)

    def message_added(
        self, ticket, at: datetime, *, public_reply: bool, from_customer: bool
    ) -> None:
        """A public reply meets the response clocks; a customer's message while no
        response is owed starts the next-response clock (later ones do not move it)."""
        if not self.message_matters(ticket, public_reply=public_reply, from_customer=from_customer):
            return
        if public_reply:
            self._missed(ticket, ticket.first_response_due_at, at)
            self._missed(ticket, ticket.next_response_due_at, at)
            ticket.first_response_due_at = ticket.next_response_due_at = None
        else:
            ticket.next_response_due_at = self.hours.add(at, self.targets.next_response)
        self._summarize(ticket)

    def reprioritized(self, ticket, old_targets: Targets) -> None:
        """The running clocks count against the new priority's targets (``self``)."""
        hours, targets = self.hours, self.targets
        if ticket.first_response_due_at is not None:
            ticket.first_response_due_at = hours.add(ticket.created_at, targets.first_response)
        if ticket.next_response_due_at is not None:
            started = hours.subtract(ticket.next_response_due_at, old_targets.next_response)
            ticket.next_response_due_at = hours.add(started, targets.next_response)
        if ticket.sla_resumed_at is not None:
            left = targets.resolution - timedelta(seconds=ticket.sla_business_seconds)
            ticket.resolution_due_at = hours.add(ticket.sla_resumed_at, max(left, ZERO))
        self._summarize(ticket)

    # -- helpers ------------------------------------------------------------------------

    def _used(self, ticket, now: datetime) -> timedelta:
        used = timedelta(seconds=ticket.sla_business_seconds)
        if ticket.sla_resumed_at is not None:
            used += max(self.hours.between(ticket.sla_resumed_at, now), ZERO)
        return used

    @staticmethod
    def _missed(ticket, due, at) -> None:
        """Stamp the breach when ``due`` passed before ``at`` (the earliest counts)."""
        if (
            due is not None
            and at > due
            and (ticket.sla_breached_at is None or due < ticket.sla_breached_at)
        ):
            ticket.sla_breached_at = due

    def _summarize(self, ticket) -> None:
        done = ticket.status not in OPEN_STATUSES
        if done:
            # Stopped: the resolution due time it had stays, for "resolved late".
            dues = [ticket.resolution_due_at]
        else:
            dues = [
                ticket.first_response_due_at,
                ticket.next_response_due_at,
                ticket.resolution_due_at if ticket.sla_resumed_at is not None else None,
            ]
        dues = [due for due in dues if due is not None]
        ticket.sla_due_at = min(dues) if dues else None
        if ticket.sla_due_at is None or done:
            ticket.sla_at_risk_at = None
        else:
            ticket.sla_at_risk_at = self.hours.subtract(ticket.sla_due_at, self.window)
