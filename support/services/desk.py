"""How the desk is set up: saved replies (agents), teams with their members and SLA
policies (managers). Each function takes the record as edited (the admin form's
instance), checks who may change it and that it is valid, and saves it."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError, NotPermitted
from core.roles import is_agent, is_manager
from support import sla
from support.models import (
    BusinessCalendar,
    BusinessHours,
    Holiday,
    SavedReply,
    SlaPolicy,
    SlaTarget,
    Team,
    TeamMembership,
)
from support.services._validation import full_clean

__all__ = [
    "business_calendar_delete",
    "business_calendar_save",
    "business_hours_check",
    "saved_reply_save",
    "sla_policy_delete",
    "sla_policy_save",
    "team_members_save",
    "team_save",
]


def _managers_only(actor, what: str) -> None:
    if not is_manager(actor):
        raise NotPermitted(f"Only managers can change {what}.")


@transaction.atomic
def saved_reply_save(*, saved_reply: SavedReply, actor) -> SavedReply:
    """Create or change a saved reply (any agent); a new one records its author."""
    if not is_agent(actor):
        raise NotPermitted("Only staff can write saved replies.")
    if saved_reply.pk is None:
        saved_reply.created_by = actor
    full_clean(saved_reply)
    saved_reply.save()
    return saved_reply


@transaction.atomic
def team_save(*, team: Team, actor) -> Team:
    """Create or change a team: its name, what it handles, round-robin, the default."""
    _managers_only(actor, "teams")
    full_clean(team)
    team.save()
    return team


@transaction.atomic
def team_members_save(
    *,
    team: Team,
    actor,
    memberships: Iterable[TeamMembership] = (),
    removed: Iterable[TeamMembership] = (),
) -> None:
    """Add or change a team's members (availability for round-robin), and take the
    ``removed`` ones out of the team."""
    _managers_only(actor, "teams")
    for membership in removed:
        if membership.team_id == team.pk:
            membership.delete()
    for membership in memberships:
        membership.team = team
        full_clean(membership)
        membership.save()


@transaction.atomic
def sla_policy_save(
    *, policy: SlaPolicy, actor, targets: Iterable[SlaTarget] | None = None
) -> SlaPolicy:
    """Create or change an SLA policy and, with ``targets``, replace its targets by
    those (one per priority at most; a priority left out uses the policy's hours).
    Tickets keep the due times they were given; new clocks use the new targets."""
    _managers_only(actor, "SLA policies")
    full_clean(policy)
    targets = None if targets is None else list(targets)
    if targets is not None:
        seen = set()
        for target in targets:
            if target.priority in seen:
                raise DomainError(
                    f"Two targets for the priority “{target.priority}”.", field="targets"
                )
            seen.add(target.priority)
            _clean_row(target, field="targets", exclude=["policy"])
    policy.save()
    if targets is not None:
        policy.targets.exclude(priority__in=[t.priority for t in targets]).delete()
        for target in targets:
            existing = policy.targets.filter(priority=target.priority).first()
            target.pk = existing.pk if existing else None
            target.policy = policy
            target.save()
    return policy


@transaction.atomic
def sla_policy_delete(*, policy: SlaPolicy, actor) -> None:
    """Delete a policy no organization uses (the default policy stays)."""
    _managers_only(actor, "SLA policies")
    if policy.is_default:
        raise DomainError("The default policy cannot be deleted.", code="sla_default")
    if policy.organizations.exists():
        raise DomainError(
            "Organizations use this policy; give them another one first.", code="sla_in_use"
        )
    policy.delete()


def _clean_row(row, *, field: str, exclude=("calendar",)) -> None:
    """A nested row's validation, reported on the list it belongs to."""
    try:
        full_clean(row, exclude=list(exclude))
    except DomainError as error:
        what = f"{error.field.replace('_', ' ')}: " if error.field else ""
        raise DomainError(f"{row}: {what}{error.message}", field=field) from None


def business_hours_check(hours: list[BusinessHours]) -> None:
    """Each interval ends after it starts; intervals of one weekday never overlap."""
    by_day: dict[int, list[BusinessHours]] = {}
    for row in hours:
        _clean_row(row, field="hours")
        by_day.setdefault(row.weekday, []).append(row)
    for day, rows in by_day.items():
        rows.sort(key=lambda r: r.start_minutes)
        for before, after in itertools.pairwise(rows):
            if after.start_minutes < before.end_minutes:
                raise DomainError(
                    f"{BusinessHours.Weekday(day).label}: {before.start_time:%H:%M}–"
                    f"{before.end_time:%H:%M} overlaps {after.start_time:%H:%M}–"
                    f"{after.end_time:%H:%M}.",
                    field="hours",
                )


def _check_holidays(holidays: list[Holiday]) -> None:
    seen = set()
    for holiday in holidays:
        _clean_row(holiday, field="holidays")
        if holiday.date in seen:
            raise DomainError(f"{holiday.date:%Y-%m-%d} is listed twice.", field="holidays")
        seen.add(holiday.date)


@transaction.atomic
def business_calendar_save(
    *,
    calendar: BusinessCalendar,
    actor,
    hours: Iterable[BusinessHours] | None = None,
    holidays: Iterable[Holiday] | None = None,
) -> BusinessCalendar:
    """Create or change a business calendar; ``hours`` and ``holidays`` (when given)
    replace its intervals and holidays. Checked: a known time zone, each interval ending
    after it starts, no overlapping intervals on a weekday, one holiday per date.
    Running SLA clocks keep their due times; new ones count in the new hours."""
    _managers_only(actor, "business calendars")
    calendar.updated_at = timezone.now()  # processes reload their copy (support.sla)
    full_clean(calendar)
    hours = None if hours is None else list(hours)
    holidays = None if holidays is None else list(holidays)
    if hours is not None:
        business_hours_check(hours)
    if holidays is not None:
        _check_holidays(holidays)
    calendar.save()
    if hours is not None:
        calendar.hours.all().delete()
        for row in hours:
            row.pk, row.calendar = None, calendar
        BusinessHours.objects.bulk_create(hours)
    if holidays is not None:
        calendar.holidays.all().delete()
        for holiday in holidays:
            holiday.pk, holiday.calendar = None, calendar
        Holiday.objects.bulk_create(holidays)
    sla.forget_calendars()
    return calendar


@transaction.atomic
def business_calendar_delete(*, calendar: BusinessCalendar, actor) -> None:
    """Delete a calendar no SLA policy uses."""
    _managers_only(actor, "business calendars")
    if calendar.policies.exists():
        raise DomainError(
            "SLA policies use this calendar; change them first.", code="calendar_in_use"
        )
    calendar.delete()
    sla.forget_calendars()
