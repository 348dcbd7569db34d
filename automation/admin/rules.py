"""Rules in Django admin: the list (with how often each fired in the last 7 days), the
editor (conditions and actions as JSON, with help generated from the engine's registries
and the validators' messages on the fields), the preview ("would have matched N of the
last 1,000 tickets", for the saved rule on its page and for unsaved edits on a page of
its own), enable/disable actions, and a read-only log of firings.

Agents see rules and their firings; managers create, change, enable, disable and delete
them (``automation.services.rules``). Every save and delete goes through those services;
when one refuses, the admin shows its message and does not claim success.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from automation.models import Rule, RuleFiring
from automation.services import rules as services
from core.errors import DomainError
from core.forms import DomainErrorFormMixin

# ======================================================================================
# Help generated from the registries
# ======================================================================================


def _example(document) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def conditions_help() -> str:
    vocabulary = services.rule_vocabulary()
    rows = format_html_join(
        "",
        "<li><code>{}</code> ({}): {}{}</li>",
        (
            (
                spec["name"],
                spec["label"],
                ", ".join(op["name"] for op in spec["operators"]),
                (
                    " — values: " + ", ".join(str(c["value"]) for c in spec["choices"])
                    if spec["choices"]
                    else (f" — value: a {spec['model'] or spec['kind']} id or “none”")
                    if spec["kind"] == "id"
                    else f" — value: {spec['kind']}"
                ),
            )
            for spec in vocabulary["fields"]
        ),
    )
    example = {"conditions": vocabulary["example"]["conditions"]}["conditions"]
    return format_html(
        'A group <code>{{"match": "all"|"any", "conditions": [...]}}</code> of '
        'conditions <code>{{"field", "operator", "value"}}</code> and nested groups; '
        "empty: every ticket. <code>in</code>/<code>not_in</code> take a list, "
        "<code>matches</code> a regular expression, <code>is_empty</code> true or false."
        '<details class="hd-rule-help"><summary>Fields and operators</summary><ul>{}</ul>'
        '</details><details class="hd-rule-help"><summary>Example</summary><pre>{}</pre>'
        "</details>",
        rows,
        _example(example),
    )


def actions_help() -> str:
    vocabulary = services.rule_vocabulary()
    rows = format_html_join(
        "",
        "<li><code>{}</code> ({}): {}</li>",
        (
            (
                spec["name"],
                spec["label"],
                ", ".join(
                    f"{arg['name']}"
                    + ("" if arg["required"] else " (optional)")
                    + (
                        " = " + "|".join(str(c["value"]) for c in arg["choices"])
                        if arg["choices"]
                        else f": {arg['model'] or arg['kind']}"
                        + (" id" if arg["kind"] == "id" else "")
                    )
                    for arg in spec["args"]
                )
                or "no parameters",
            )
            for spec in vocabulary["actions"]
        ),
    )
    return format_html(
        'A list of <code>{{"type": …, parameters}}</code>, run in order.'
        '<details class="hd-rule-help"><summary>Action types and parameters</summary>'
        '<ul>{}</ul></details><details class="hd-rule-help"><summary>Example</summary>'
        "<pre>{}</pre></details>",
        rows,
        _example(vocabulary["example"]["actions"]),
    )


# ======================================================================================
# The rule form
# ======================================================================================

FORM_FIELDS = (
    "name",
    "description",
    "trigger",
    "is_enabled",
    "position",
    "stop_processing",
    "since",
    "delay",
    "delay_unit",
    "business_time",
    "conditions",
    "actions",
)


class RuleForm(DomainErrorFormMixin, forms.ModelForm):
    class Meta:
        model = Rule
        fields = FORM_FIELDS
        widgets = {
            "conditions": forms.Textarea(attrs={"rows": 14, "class": "hd-json"}),
            "actions": forms.Textarea(attrs={"rows": 8, "class": "hd-json"}),
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "conditions" in self.fields:
            self.fields["conditions"].help_text = conditions_help()
        if "actions" in self.fields:
            self.fields["actions"].help_text = actions_help()

    def clean(self):
        data = super().clean()
        if self.errors or not data.get("trigger"):
            return data
        fields = {name: getattr(self.instance, name) for name in services.EDITABLE}
        fields.update({name: data[name] for name in services.EDITABLE if name in data})
        fields["delay"] = data.get("delay")
        try:
            checked = services.rule_validate(fields)
        except DomainError as error:
            self.add_domain_error(error)
            return data
        for name in ("conditions", "actions", "since", "delay", "delay_unit", "business_time"):
            if name in data:
                data[name] = checked[name]
        return data


# ======================================================================================
# Rule admin
# ======================================================================================


def _ticket_link(pk: int, text: str) -> str:
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:support_ticket_change", args=[pk]), text
    )


def render_preview(preview: services.Preview) -> str:
    items = format_html_join(
        "",
        '<li>{} {} <span class="hd-meta">({})</span></li>',
        (
            (_ticket_link(pk, reference), subject, why)
            for pk, (reference, subject, why) in zip(
                preview.ticket_ids, preview.examples, strict=True
            )
        ),
    )
    return format_html(
        '<div class="hd-rule-preview" id="preview"><p><strong>{}</strong></p>{}</div>',
        preview.sentence,
        format_html("<ul>{}</ul>", items) if preview.examples else "",
    )


class RuleAdminBase(admin.ModelAdmin):
    """Agents view; managers write (the service checks it again)."""

    def has_module_permission(self, request):
        return services.can_view(request.user)

    def has_view_permission(self, request, obj=None):
        return services.can_view(request.user)

    def has_add_permission(self, request):
        return services.can_manage(request.user)

    def has_change_permission(self, request, obj=None):
        return services.can_manage(request.user)

    def has_delete_permission(self, request, obj=None):
        return services.can_manage(request.user)


@admin.register(Rule)
class RuleAdmin(RuleAdminBase):
    form = RuleForm
    change_form_template = "admin/automation/rule/change_form.html"
    list_display = (
        "name",
        "trigger",
        "is_enabled",
        "position",
        "stop_processing",
        "firings_last_7_days",
        "is_default",
    )
    list_filter = ("is_enabled", "trigger", "stop_processing", "is_default")
    search_fields = ("name", "description")
    ordering = ("position", "id")
    readonly_fields = ("preview", "recent_firings", "is_default", "created_by", "created_at")
    actions = ("enable_rules", "disable_rules", "delete_selected")
    list_per_page = 100

    def get_queryset(self, request):
        week_ago = timezone.now() - timedelta(days=7)
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(
                firings_7d=Count("firings", filter=Q(firings__fired_at__gte=week_ago)),
            )
        )

    def get_fieldsets(self, request, obj=None):
        main = ["name", "description", "trigger", "position", "stop_processing"]
        if obj is not None:
            main.insert(3, "is_enabled")
        fieldsets = [
            (None, {"fields": main}),
            (
                "Timing (time rules only)",
                {
                    "fields": ("since", "delay", "delay_unit", "business_time"),
                    "description": "“Time elapsed since…” rules fire once per ticket when the "
                    "delay has passed; event rules leave these empty.",
                },
            ),
            ("If (conditions) … then (actions)", {"fields": ("conditions", "actions")}),
        ]
        if obj is None:
            fieldsets[0][1]["description"] = (
                "New rules are created disabled: save, look at the preview, then enable."
            )
            return fieldsets
        return [
            *fieldsets,
            ("Preview (as saved)", {"fields": ("preview",)}),
            ("Recent firings", {"fields": ("recent_firings",)}),
            ("About", {"fields": ("is_default", "created_by", "created_at")}),
        ]

    @admin.display(description="firings (7 days)", ordering="firings_7d")
    def firings_last_7_days(self, rule):
        count = getattr(rule, "firings_7d", 0)
        if not count:
            return 0
        url = reverse("admin:automation_rulefiring_changelist")
        return format_html('<a href="{}?rule__id__exact={}">{}</a>', url, rule.pk, count)

    @admin.display(description="preview")
    def preview(self, rule):
        if not rule.pk:
            return "Save the rule (it is created disabled) to see what it would have matched."
        return render_preview(services.rule_preview(rule))

    @admin.display(description="recent firings")
    def recent_firings(self, rule):
        if not rule.pk:
            return "—"
        firings = list(
            RuleFiring.objects.filter(rule=rule).select_related("ticket").order_by("-fired_at")[:10]
        )
        if not firings:
            return "Not fired yet."
        rows = format_html_join(
            "",
            "<li>{} · {} · {}</li>",
            (
                (
                    timezone.localtime(f.fired_at).strftime("%Y-%m-%d %H:%M"),
                    _ticket_link(f.ticket_id, f.ticket.reference),
                    outcome_text(f.outcome),
                )
                for f in firings
            ),
        )
        url = reverse("admin:automation_rulefiring_changelist")
        return format_html(
            '<ul>{}</ul><a href="{}?rule__id__exact={}">All firings</a>', rows, url, rule.pk
        )

    # ---- saving through the services ---------------------------------------------------

    def _refuse(self, request, error: DomainError) -> None:
        self.message_user(request, error.message, messages.ERROR)
        request._rule_refused = True

    @staticmethod
    def _refused(request) -> bool:
        return getattr(request, "_rule_refused", False)

    def save_model(self, request, obj, form, change):
        request._rule_refused = False
        data = {name: form.cleaned_data[name] for name in FORM_FIELDS if name in form.cleaned_data}
        try:
            if change:
                saved = services.rule_update(rule=obj, actor=request.user, **data)
            else:
                saved = services.rule_create(actor=request.user, **data)
        except DomainError as error:
            self._refuse(request, error)
            return
        obj.pk = saved.pk
        obj._state.adding, obj._state.db = False, saved._state.db

    def save_related(self, request, form, formsets, change):
        """No related objects to save (and nothing when the service refused)."""

    def log_addition(self, request, obj, message):
        if not self._refused(request):
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request, obj, message):
        if not self._refused(request):
            return super().log_change(request, obj, message)
        return None

    def response_add(self, request, obj, post_url_continue=None):
        if self._refused(request):
            return HttpResponseRedirect(request.get_full_path())
        if "_continue" not in request.POST and "_addanother" not in request.POST:
            # Straight to the rule's page: its preview is what to look at before enabling.
            self.message_user(
                request,
                f"The rule “{obj}” was added, disabled: check its preview, then enable it.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:automation_rule_change", args=[obj.pk]) + "#preview"
            )
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self._refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)

    def log_deletions(self, request, queryset):
        """Logged by :meth:`delete_model`, in one transaction with the service's delete."""

    def delete_model(self, request, obj):
        request._rule_refused = False
        try:
            with transaction.atomic():
                super().log_deletions(request, [obj])
                services.rule_delete(rule=obj, actor=request.user)
        except DomainError as error:
            self._refuse(request, error)
            return False
        return True

    def delete_queryset(self, request, queryset):
        return sum(bool(self.delete_model(request, obj)) for obj in queryset)

    def response_delete(self, request, obj_display, obj_id):
        if self._refused(request):
            return HttpResponseRedirect(reverse("admin:automation_rule_change", args=[obj_id]))
        return super().response_delete(request, obj_display, obj_id)

    @admin.action(description="Delete selected rules", permissions=["delete"])
    def delete_selected(self, request, queryset):
        if not request.POST.get("post"):
            return admin_actions.delete_selected(self, request, queryset)
        deleted = self.delete_queryset(request, queryset)
        if deleted:
            self.message_user(request, f"Deleted {deleted} rule(s).", messages.SUCCESS)
        return None

    def _switch(self, request, queryset, enable: bool) -> None:
        done, refused = 0, []
        for rule in queryset:
            try:
                if enable:
                    services.rule_enable(rule=rule, actor=request.user)
                else:
                    services.rule_disable(rule=rule, actor=request.user)
                done += 1
            except DomainError as error:
                refused.append(f"{rule.name}: {error.message}")
        if done:
            verb = "Enabled" if enable else "Disabled"
            self.message_user(request, f"{verb} {done} rule(s).", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Enable selected rules", permissions=["change"])
    def enable_rules(self, request, queryset):
        self._switch(request, queryset, True)

    @admin.action(description="Disable selected rules", permissions=["change"])
    def disable_rules(self, request, queryset):
        self._switch(request, queryset, False)

    # ---- the preview of unsaved edits ----------------------------------------------------

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="automation_rule_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """The change form's "Preview these conditions" button posts here (in a new tab):
        the preview of the fields as typed, nothing saved."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:automation_rule_changelist"))
        preview, error = None, None
        fields = {
            "trigger": request.POST.get("trigger", ""),
            "since": request.POST.get("since", ""),
            "delay_unit": request.POST.get("delay_unit", ""),
            "business_time": bool(request.POST.get("business_time")),
        }
        try:
            delay = request.POST.get("delay") or None
            fields["delay"] = int(delay) if delay is not None else None
            raw = (request.POST.get("conditions") or "").strip()
            fields["conditions"] = json.loads(raw) if raw else {}
        except ValueError:
            error = "The conditions are not valid JSON (or the delay is not a number)."
        if error is None:
            try:
                if fields["trigger"] not in Rule.Trigger.values:
                    raise DomainError("Choose a trigger.", field="trigger")
                preview = services.rule_preview(fields)
            except DomainError as refused:
                error = refused.message
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Preview of a rule",
            "preview_html": render_preview(preview) if preview else "",
            "error": error,
            "fields": fields,
            "conditions_json": _example(fields.get("conditions") or {}),
            "trigger_label": dict(Rule.Trigger.choices).get(fields["trigger"], "—"),
        }
        return TemplateResponse(request, "admin/automation/rule/preview.html", context)


def outcome_text(outcome) -> str:
    if not outcome:
        return "—"
    if isinstance(outcome, list):
        return ", ".join(
            f"{item.get('action', '?')}: {item.get('result', '?')}"
            if isinstance(item, dict)
            else str(item)
            for item in outcome
        )
    return str(outcome)


# ======================================================================================
# Firings: read-only log
# ======================================================================================


@admin.register(RuleFiring)
class RuleFiringAdmin(admin.ModelAdmin):
    list_display = ("fired_at", "rule", "ticket_link", "outcome_summary", "depth")
    list_select_related = ("rule", "ticket")
    list_filter = ("rule", "depth")
    search_fields = ("ticket__reference", "rule__name")
    date_hierarchy = "fired_at"
    fields = ("rule", "ticket_link", "key", "depth", "fired_at", "outcome_summary", "outcome")
    readonly_fields = fields
    list_per_page = 100

    def has_module_permission(self, request):
        return services.can_view(request.user)

    def has_view_permission(self, request, obj=None):
        return services.can_view(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rule", "ticket")

    @admin.display(description="ticket", ordering="ticket__reference")
    def ticket_link(self, firing):
        return _ticket_link(firing.ticket_id, firing.ticket.reference)

    @admin.display(description="outcome")
    def outcome_summary(self, firing):
        return outcome_text(firing.outcome)
