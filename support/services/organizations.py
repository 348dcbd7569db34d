"""Organizations (the customer accounts) and their people.

An organization's revenue (``mrr``) is the managers' business: only a manager may set or
change it. When it changes, ``organization_revenue_changed`` is announced
(:mod:`core.events`) in the same transaction; feedback listens and reweighs the
organization's feature-request votes after commit (support does not import feedback).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from core import events
from core.errors import DomainError, NotPermitted
from core.roles import is_agent, is_manager
from support.models import CustomerProfile, Organization
from support.services._validation import full_clean

__all__ = [
    "ORGANIZATION_FIELDS",
    "organization_create",
    "organization_members_save",
    "organization_update",
]

#: What a person may set on an organization: its editable fields (name, plan, mrr, …).
ORGANIZATION_FIELDS = frozenset(
    field.name
    for field in Organization._meta.concrete_fields
    if field.editable and not field.primary_key
)


def _check(actor, fields: dict) -> None:
    unknown = set(fields) - ORGANIZATION_FIELDS
    if unknown:
        raise DomainError(f"An organization has no field {', '.join(sorted(unknown))}.")
    if not (is_agent(actor) or is_manager(actor)):
        raise NotPermitted("Only staff can change organizations.")


def _refuse_revenue(actor) -> None:
    if not is_manager(actor):
        raise NotPermitted("Only managers can set an organization's revenue (MRR).")


@transaction.atomic
def organization_create(*, actor, **fields) -> Organization:
    """A new organization from ``fields`` (see ``ORGANIZATION_FIELDS``); a revenue other
    than 0 needs a manager. Nothing is announced: a new organization has no votes yet."""
    _check(actor, fields)
    organization = Organization(**fields)
    full_clean(organization)
    if organization.mrr and not is_manager(actor):
        _refuse_revenue(actor)
    organization.save()
    return organization


@transaction.atomic
def organization_update(*, organization: Organization, actor, **fields) -> Organization:
    """Change the given ``fields`` of an organization; returns it as saved.

    A revenue change needs a manager and announces ``organization_revenue_changed``.
    Nothing changes (and nothing is announced) when every value is the one it has.
    """
    _check(actor, fields)
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    old_mrr = organization.mrr
    before = {name: getattr(organization, name) for name in fields}
    for name, value in fields.items():
        setattr(organization, name, value)
    full_clean(organization)  # also normalizes the values (an int MRR becomes a Decimal)
    changed = [name for name in fields if getattr(organization, name) != before[name]]
    if not changed:
        return organization
    if "mrr" in changed:
        _refuse_revenue(actor)
    organization.save(update_fields=changed)
    if organization.mrr != old_mrr:
        events.announce("organization_revenue_changed", organization_id=organization.pk)
    return organization


@transaction.atomic
def organization_members_save(
    *,
    organization: Organization,
    actor,
    profiles: Iterable[CustomerProfile] = (),
    removed: Iterable[CustomerProfile] = (),
) -> None:
    """Add or change the customer profiles of an organization's people (``profiles``,
    as edited on the organization's page) and delete the ``removed`` ones."""
    _check(actor, {})
    for profile in removed:
        if profile.organization_id != organization.pk:
            raise DomainError(f"{profile} is not a member of {organization}.")
        profile.delete()
    for profile in profiles:
        profile.organization = organization
        full_clean(profile)
        profile.save()
