"""The queue's bulk actions, its tags and custom-field columns and its filters by tag and
by custom field (used by ``support.admin.tickets.TicketAdmin``).

Each bulk action with a choice to make (assign, status, priority, tags, merge, saved
reply) first shows a form with the selected tickets (like Django's delete confirmation),
then runs :func:`support.bulk.run` (every ticket through its service, in its own
transaction) and shows a summary: what was done, and what was refused and why. The quick
actions (assign to me, resolve, close, urgent) skip the form and show the same summary.
"Export to CSV" streams the selection.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from core.errors import DomainError
from support import bulk, custom_fields
from support.models import SavedReply, Tag, TicketPriority

# ======================================================================================
# Custom field definitions: loaded once per request (the column and the filter share them)
# ======================================================================================


def field_definitions(request) -> list:
    """The active custom fields, read once per request."""
    if not hasattr(request, "_helpdesk_custom_fields"):
        request._helpdesk_custom_fields = list(custom_fields.active_fields())
    return request._helpdesk_custom_fields


# ======================================================================================
# Columns
# ======================================================================================


@admin.display(description="tags")
def tags_column(ticket) -> str:
    """The ticket's tags (prefetched by ``TicketAdmin.get_queryset``)."""
    return format_html_join(
        " ", '<span class="hd-badge hd-tag">{}</span>', ((tag.name,) for tag in ticket.tags.all())
    )


def fields_column_for(request):
    """The "fields" column for this request: active fields' values, "Label: value"."""
    definitions = field_definitions(request)

    @admin.display(description="fields")
    def fields_column(ticket) -> str:
        values = ticket.custom_fields or {}
        shown = [
            (field.label, custom_fields.display(field, values[field.key]))
            for field in definitions
            if values.get(field.key) not in (None, "", [])
        ]
        return format_html_join(mark_safe("<br>"), "{}: {}", shown)

    return fields_column


# ======================================================================================
# Filters
# ======================================================================================


class TagFilter(admin.SimpleListFilter):
    """``?tag=<name>``: tickets with that tag; the choices are the tags in use."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        names = (
            Tag.objects.filter(ticket_tags__isnull=False)
            .distinct()
            .order_by("name")
            .values_list("name", flat=True)
        )
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(tags__name=self.value().strip().lower())
        return queryset


class CustomFieldFilter(admin.SimpleListFilter):
    """``?cf=<key>:<value>``: tickets whose custom field has that value (for any kind of
    field; the choices list choice, multiple-choice and yes/no fields). A bad key or value
    is an error message and an empty list."""

    title = "custom field"
    parameter_name = "cf"

    def lookups(self, request, model_admin):
        options = []
        for field in field_definitions(request):
            if field.kind in ("choice", "multi_choice"):
                options += [(f"{field.key}:{c}", f"{field.label}: {c}") for c in field.choices]
            elif field.kind == "boolean":
                options += [
                    (f"{field.key}:true", f"{field.label}: yes"),
                    (f"{field.key}:false", f"{field.label}: no"),
                ]
        return options

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(
                custom_fields.parse_filter(self.value(), field_definitions(request))
            )
        except DomainError as error:
            messages.error(request, f"Custom field filter: {error.message}")
            return queryset.none()


# ======================================================================================
# The forms of the actions with a choice
# ======================================================================================


class AssignForm(forms.Form):
    assignee = forms.ChoiceField(label="Assign to")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        staff = get_user_model().objects.filter(is_staff=True, is_active=True)
        self.fields["assignee"].choices = [
            ("me", "Me"),
            ("none", "Nobody (unassign)"),
            *[(str(u.pk), u.get_full_name() or u.username) for u in staff.order_by("username")],
        ]


class StatusForm(forms.Form):
    status = forms.ChoiceField(label="New status", choices=list(bulk.STATUS_TARGETS.items()))


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=TicketPriority.choices)


class TagsForm(forms.Form):
    add_tags = forms.CharField(
        label="Add", required=False, help_text="Tag names, separated by commas."
    )
    remove_tags = forms.CharField(
        label="Remove", required=False, help_text="Tag names, separated by commas."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.HELPDESK_TAGS_FREE:  # curated: say which names may be used
            names = ", ".join(Tag.objects.order_by("name").values_list("name", flat=True))
            self.fields["add_tags"].help_text = f"Tags of the list only: {names or 'none yet'}."


class MergeForm(forms.Form):
    keep = forms.ChoiceField(
        label="Keep", widget=forms.RadioSelect, help_text="The others are merged into it."
    )
    other = forms.CharField(
        label="Other ticket",
        required=False,
        max_length=20,
        help_text="Its reference, when the ticket to keep is not in the selection.",
    )

    def __init__(self, *args, tickets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [
            *[(t.reference, f"{t.reference} — {t.subject}") for t in tickets],
            ("other", "Another ticket (its reference below)"),
        ]

    def clean(self):
        data = super().clean()
        if data.get("keep") == "other" and not data.get("other", "").strip():
            self.add_error("other", "Give the reference of the ticket to keep.")
        return data

    def params(self) -> dict:
        keep = self.cleaned_data["keep"]
        return {"merge_into": self.cleaned_data["other"].strip() if keep == "other" else keep}


class SavedReplyForm(forms.Form):
    saved_reply = forms.ModelChoiceField(queryset=SavedReply.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["saved_reply"].queryset = SavedReply.objects.filter(is_active=True).order_by(
            "title"
        )

    def params(self) -> dict:
        return {"saved_reply": self.cleaned_data["saved_reply"].pk}


# ======================================================================================
# Running and reporting
# ======================================================================================


def _summary(modeladmin, request, result: bulk.BulkResult) -> TemplateResponse:
    opts = modeladmin.model._meta
    return TemplateResponse(
        request,
        "admin/support/ticket/bulk_summary.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": f"{bulk.BULK_ACTIONS[result.action].label}: summary",
            "opts": opts,
            "result": result,
            "back": request.get_full_path(),
        },
    )


def _run(modeladmin, request, queryset, action: str, params: dict, form=None):
    """Run the action; a summary page, or (bad parameters) the form again / a message."""
    try:
        result = bulk.run(action, queryset, params, actor=request.user)
    except DomainError as error:
        if form is not None:
            name = error.field if error.field in form.fields else None
            if name is None and action == "merge":
                name = "other" if form.cleaned_data.get("keep") == "other" else "keep"
            form.add_error(name, error.message)
            return None
        modeladmin.message_user(request, error.message, messages.ERROR)
        return False
    return _summary(modeladmin, request, result)


def _with_form(modeladmin, request, queryset, *, action: str, admin_action: str, form_class):
    """The form page first; once it is filled in, the run and its summary."""
    tickets = list(queryset.order_by("pk")[: bulk.MAX_TICKETS + 1])
    if len(tickets) > bulk.MAX_TICKETS:
        modeladmin.message_user(
            request,
            f"Select at most {bulk.MAX_TICKETS} tickets at once ({queryset.count()} selected).",
            messages.ERROR,
        )
        return None
    data = request.POST if "apply" in request.POST else None
    form = form_class(data, tickets=tickets) if form_class is MergeForm else form_class(data)
    if form.is_valid():
        params = form.params() if hasattr(form, "params") else dict(form.cleaned_data)
        response = _run(modeladmin, request, queryset, action, params, form=form)
        if response is False:
            return None
        if response is not None:
            return response
    return TemplateResponse(
        request,
        "admin/support/ticket/bulk_confirm.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": bulk.BULK_ACTIONS[action].label,
            "opts": modeladmin.model._meta,
            "form": form,
            "tickets": tickets,
            "action": admin_action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        },
    )


def _quick(modeladmin, request, queryset, action: str, params: dict):
    response = _run(modeladmin, request, queryset, action, params)
    return None if response is False else response


# ======================================================================================
# The actions (listed in ``TicketAdmin.actions``)
# ======================================================================================


def _form_action(name: str, action: str, form_class, description: str):
    """A queue action that asks for its parameters on a form page first (``name`` is
    the admin action's name: the form page posts it back)."""

    def run(modeladmin, request, queryset):
        return _with_form(
            modeladmin,
            request,
            queryset,
            action=action,
            admin_action=name,
            form_class=form_class,
        )

    run.__name__ = run.__qualname__ = name
    return admin.action(description=description)(run)


def _quick_action(name: str, action: str, params: dict, description: str):
    """A queue action with fixed parameters: straight to the summary."""

    def run(modeladmin, request, queryset):
        return _quick(modeladmin, request, queryset, action, params)

    run.__name__ = run.__qualname__ = name
    return admin.action(description=description)(run)


assign_action = _form_action("assign_action", "assign", AssignForm, "Assign…")
status_action = _form_action("status_action", "status", StatusForm, "Change the status…")
priority_action = _form_action("priority_action", "priority", PriorityForm, "Change the priority…")
tags_action = _form_action("tags_action", "tags", TagsForm, "Add or remove tags…")
merge_action = _form_action("merge_action", "merge", MergeForm, "Merge into one ticket…")
saved_reply_action = _form_action(
    "saved_reply_action", "saved_reply", SavedReplyForm, "Send a saved reply…"
)
assign_to_me_action = _quick_action(
    "assign_to_me_action", "assign", {"assignee": "me"}, "Assign to me"
)
resolve_action = _quick_action("resolve_action", "status", {"status": "resolved"}, "Resolve")
close_action = _quick_action("close_action", "status", {"status": "closed"}, "Close")
mark_urgent_action = _quick_action(
    "mark_urgent_action", "priority", {"priority": "urgent"}, "Set priority to urgent"
)


@admin.action(description="Export to CSV")
def export_csv_action(modeladmin, request, queryset):
    from support.exports import tickets_csv_response

    return tickets_csv_response(queryset, filename="tickets.csv")


ACTIONS = (
    assign_to_me_action,
    resolve_action,
    close_action,
    mark_urgent_action,
    assign_action,
    status_action,
    priority_action,
    tags_action,
    merge_action,
    saved_reply_action,
    export_csv_action,
)
