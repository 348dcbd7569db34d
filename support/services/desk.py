"""How the desk is set up: saved replies (agents), teams with their members and SLA
policies (managers). Each function takes the record as edited (the admin form's
instance), checks who may change it and that it is valid, and saves it."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from core.errors import NotPermitted
from core.roles import is_agent, is_manager
from support.models import SavedReply, SlaPolicy, Team, TeamMembership
from support.services._validation import full_clean

__all__ = ["saved_reply_save", "sla_policy_save", "team_members_save", "team_save"]


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
def sla_policy_save(*, policy: SlaPolicy, actor) -> SlaPolicy:
    """Create or change an SLA policy. Tickets keep the due time they were given."""
    _managers_only(actor, "SLA policies")
    full_clean(policy)
    policy.save()
    return policy
