"""Who a user is to the helpdesk: an agent (active staff) or a manager (the group, or a
superuser). Every role check in the apps goes through these two functions."""

from __future__ import annotations

from django.conf import settings


def is_agent(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def is_manager(user) -> bool:
    """Managers (the group) and superusers: dashboards, analytics, plans and MRR."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if not hasattr(user, "_helpdesk_is_manager"):  # asked many times per request: cached
        user._helpdesk_is_manager = (
            user.is_superuser or user.groups.filter(name=settings.MANAGERS_GROUP).exists()
        )
    return user._helpdesk_is_manager
