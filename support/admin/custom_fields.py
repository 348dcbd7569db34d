"""Custom fields: their definitions (agents read, managers change, through
``custom_field_save`` / ``custom_field_delete``) and the ticket page's "Fields" panel: one
input per active field by kind, posted to the ``custom_fields`` entry of
:data:`support.admin.tickets.TICKET_ACTIONS` (``ticket_set_custom_fields``), required
fields that have no value marked "missing" (the team's must be filled in before an agent
resolves), values of fields no longer active shown read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from core.roles import is_manager
from support import custom_fields as cf
from support import services
from support.admin.tickets import TICKET_ACTIONS, TICKET_PAGE_CONTEXT
from support.models import CustomField, TicketType

Kind = CustomField.Kind


class LinesField(forms.CharField):
    """A list of texts, one per line (blank lines dropped)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class CustomFieldForm(forms.ModelForm):
    choices = LinesField(
        required=False,
        help_text="Choice and multiple-choice fields: one option per line. Removing an "
        "option keeps the tickets that use it as they are.",
    )
    required_for_types = forms.MultipleChoiceField(
        choices=TicketType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Ticket types that must have a value: customers fill in the fields they "
        "may edit when they open a ticket; the team fills in the others before resolving.",
    )

    class Meta:
        model = CustomField
        fields = [
            "label",
            "key",
            "kind",
            "choices",
            "required_for_types",
            "customer_visible",
            "customer_editable",
            "help_text",
            "position",
            "is_active",
        ]

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            services.custom_field_check(field=self.instance)
        except DomainError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)


@admin.register(CustomField)
class CustomFieldAdmin(AgentAccessMixin, admin.ModelAdmin):
    form = CustomFieldForm
    list_display = (
        "label",
        "key",
        "kind",
        "choice_list",
        "required_types",
        "customer_visible",
        "customer_editable",
        "position",
        "is_active",
    )
    list_filter = ("kind", "is_active", "customer_visible", "customer_editable")
    search_fields = ("label", "key")
    ordering = ("position", "label")

    @admin.display(description="choices")
    def choice_list(self, field):
        return ", ".join(field.choices) or "—"

    @admin.display(description="required for")
    def required_types(self, field):
        labels = dict(TicketType.choices)
        return ", ".join(str(labels.get(t, t)) for t in field.required_for_types) or "—"

    def get_readonly_fields(self, request, obj=None):
        return ("key",) if obj is not None else ()

    # Agents read the definitions; managers change them.
    def has_add_permission(self, request):
        return is_manager(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return is_manager(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_manager(request.user) and self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        services.custom_field_save(field=obj, actor=request.user)

    def delete_model(self, request, obj):
        if not services.custom_field_delete(field=obj, actor=request.user):
            self.message_user(
                request,
                f"Tickets hold values of “{obj.label}”: it was deactivated instead, "
                "its values kept.",
                messages.WARNING,
            )

    def delete_queryset(self, request, queryset):
        for field in queryset:
            self.delete_model(request, field)


# ======================================================================================
# The ticket page's panel
# ======================================================================================


def _input_name(field: CustomField) -> str:
    return f"cf_{field.key}"


def _panel(ticket, request) -> dict:
    fields = cf.active_fields()
    values = ticket.custom_fields or {}
    missing = {f.key for f in cf.missing_required(ticket.type, values, fields)}
    rows = []
    for field in fields:
        value = values.get(field.key)
        options = list(field.choices)
        kept = value if isinstance(value, list) else [value]
        if field.kind in (Kind.CHOICE, Kind.MULTI_CHOICE):
            options += [v for v in kept if isinstance(v, str) and v not in field.choices]
        rows.append(
            {
                "field": field,
                "name": _input_name(field),
                "value": value,
                "text": "" if value is None else cf.display(field, value),
                "selected": kept,
                "options": options,
                "required": ticket.type in field.required_for_types,
                "missing": field.key in missing,
            }
        )
    known = {f.key for f in fields}
    others = [
        (key, cf.display(None, value)) for key, value in sorted(values.items()) if key not in known
    ]
    return {
        "custom_field_rows": rows,
        "custom_field_others": others,
        "custom_fields_missing": [row["field"].label for row in rows if row["missing"]],
    }


def _posted(field: CustomField, request):
    name = _input_name(field)
    if field.kind == Kind.MULTI_CHOICE:
        return request.POST.getlist(name)
    return request.POST.get(name, "")


def _same(field: CustomField, posted, stored) -> bool:
    """The form sent back what is stored (e.g. an option removed since): no change."""
    if stored is None:
        return cf.is_empty(posted)
    if field.kind == Kind.MULTI_CHOICE:
        return isinstance(stored, list) and set(posted) == set(stored)
    if field.kind == Kind.BOOLEAN:
        return posted == ("true" if stored else "false")
    return posted == cf.display(field, stored)


def _save(ticket, request) -> str:
    listed = set(request.POST.getlist("cf_fields"))
    stored = ticket.custom_fields or {}
    values = {}
    for field in cf.active_fields():
        if field.key not in listed:
            continue  # not on the page the agent saw (added since): left as it is
        posted = _posted(field, request)
        if not _same(field, posted, stored.get(field.key)):
            values[field.key] = posted
    if not values:
        return "No field changed."
    services.ticket_set_custom_fields(ticket=ticket, values=values, actor=request.user)
    return f"Saved {len(values)} field{'s' if len(values) != 1 else ''}."


TICKET_PAGE_CONTEXT.append(_panel)
TICKET_ACTIONS["custom_fields"] = _save
