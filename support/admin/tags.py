"""Tags: the curated list (agents read it, managers change it, through ``tag_save`` /
``tag_delete``) and the ticket page's tags panel: the ticket's tags (each removable), an
add box offering the list (only the list when tags are curated), and the AI's suggested
tags with a one-click "add". The panel's buttons are entries of
:data:`support.admin.tickets.TICKET_ACTIONS`, each calling ``ticket_tag``."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from core.roles import is_manager
from support import services
from support.admin.tickets import TICKET_ACTIONS, TICKET_PAGE_CONTEXT
from support.models import Tag


@admin.register(Tag)
class TagAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("name", "description", "keyword_list", "ticket_count")
    search_fields = ("name", "description", "keywords")
    fields = ("name", "description", "keywords")
    ordering = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(ticket_total=Count("ticket_tags"))

    @admin.display(description="tickets", ordering="ticket_total")
    def ticket_count(self, tag):
        return tag.ticket_total

    @admin.display(description="keywords")
    def keyword_list(self, tag):
        return ", ".join(tag.keywords.splitlines()) or "—"

    # Agents read the list; managers change it.
    def has_add_permission(self, request):
        return is_manager(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return is_manager(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_manager(request.user) and self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        services.tag_save(tag=obj, actor=request.user)

    def delete_model(self, request, obj):
        services.tag_delete(tag=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for tag in queryset:
            services.tag_delete(tag=tag, actor=request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return _with_service_check(form, request)


def _with_service_check(form_class, request):
    """The form reports what ``tag_save`` would refuse (a bad or taken name) on its
    field, instead of failing on save."""

    class TagForm(form_class):
        def clean_name(self):
            name = self.cleaned_data.get("name", "")
            try:
                normal = services.tag_normalize(name)
            except DomainError as error:
                raise ValidationError(error.message) from None
            taken = Tag.objects.filter(name=normal).exclude(pk=self.instance.pk)
            if taken.exists():
                raise ValidationError(f"The tag “{normal}” exists already.")
            return normal

    return TagForm


# ======================================================================================
# The ticket page's panel
# ======================================================================================


def _panel(ticket, request) -> dict:
    links = ticket.ticket_tags.select_related("tag", "added_by").order_by("tag__name")
    return {
        "tag_links": list(links),
        "tag_choices": list(Tag.objects.order_by("name").values_list("name", flat=True)),
        "tags_free": settings.HELPDESK_TAGS_FREE,
        "suggested_tags": list(ticket.suggested_tags),
    }


def _names(request) -> list[str]:
    raw = request.POST.get("tag", "")
    names = [part for part in raw.split(",") if part.strip()]
    if not names:
        raise DomainError("Type a tag to add.")
    return names


def _tag_add(ticket, request) -> str:
    names = _names(request)
    services.ticket_tag(ticket=ticket, add=names, actor=request.user)
    return f"Tagged {', '.join(services.tag_normalize(n) for n in names)}."


def _tag_remove(ticket, request) -> str:
    name = request.POST.get("tag", "")
    services.ticket_tag(ticket=ticket, remove=[name], actor=request.user)
    return f"Tag {name} removed."


def _tag_accept(ticket, request) -> str:
    name = request.POST.get("tag", "")
    if name not in ticket.suggested_tags:
        raise DomainError(f"“{name}” is not a suggested tag of this ticket.")
    services.ticket_tag(ticket=ticket, add=[name], actor=request.user)
    return f"Tagged {name} (suggested by the AI)."


def _tag_dismiss(ticket, request) -> str:
    name = request.POST.get("tag", "")
    services.ticket_dismiss_suggested_tag(ticket=ticket, name=name, actor=request.user)
    return f"Suggestion {name} dismissed."


TICKET_PAGE_CONTEXT.append(_panel)
TICKET_ACTIONS.update(
    {
        "tag_add": _tag_add,
        "tag_remove": _tag_remove,
        "tag_accept": _tag_accept,
        "tag_dismiss": _tag_dismiss,
    }
)
