"""Admin access by role, for every app's ModelAdmin (roles from :mod:`core.roles`)."""

from __future__ import annotations

from core import roles


class AgentAccessMixin:
    """Staff can view and work; only superusers delete."""

    def has_module_permission(self, request):
        return roles.is_agent(request.user)

    def has_view_permission(self, request, obj=None):
        return roles.is_agent(request.user)

    def has_change_permission(self, request, obj=None):
        return roles.is_agent(request.user)

    def has_add_permission(self, request):
        return roles.is_agent(request.user)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


class RevenueForManagersMixin:
    """Revenue (an organization's MRR) is the managers' business: for anyone else the
    ``revenue_fields`` leave the changelist, the form, the filters and the URL lookups
    (``?mrr__gte=`` would tell the figure by bisection)."""

    revenue_fields: tuple[str, ...] = ()

    def _hide_revenue(self, request) -> bool:
        return not roles.is_manager(request.user)

    def _without_revenue(self, request, names):
        if not self._hide_revenue(request):
            return names
        return [name for name in names if name not in self.revenue_fields]

    def get_list_display(self, request):
        return self._without_revenue(request, super().get_list_display(request))

    def get_list_filter(self, request):
        return self._without_revenue(request, super().get_list_filter(request))

    def get_fields(self, request, obj=None):
        return self._without_revenue(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return self._without_revenue(request, super().get_readonly_fields(request, obj))

    def get_exclude(self, request, obj=None):
        if not self._hide_revenue(request):
            return super().get_exclude(request, obj)
        return [*(super().get_exclude(request, obj) or ()), *self.revenue_fields]

    def lookup_allowed(self, lookup, value, request):
        if self._hide_revenue(request) and any(
            part in {"mrr", *self.revenue_fields} for part in lookup.split("__")
        ):
            return False
        return super().lookup_allowed(lookup, value, request)
