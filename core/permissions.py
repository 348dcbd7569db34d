"""DRF permission classes for the roles of :mod:`core.roles`, one definition each."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core import roles


class IsAgent(BasePermission):
    """Active staff (agents, managers who are staff, superusers)."""

    message = "Only support staff can do this."

    def has_permission(self, request, view):
        return roles.is_agent(request.user)


class IsManager(BasePermission):
    """The Managers group and superusers."""

    message = "Only managers can do this."

    def has_permission(self, request, view):
        return roles.is_manager(request.user)


class AgentWritesOthersRead(BasePermission):
    """Anyone reads (the view narrows what); only agents write."""

    message = "Only support staff can do this."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or roles.is_agent(request.user)
