"""Outbound webhooks in admin: endpoints (events, secret, rotate, ping, enable) and the
read-only delivery log (payload, responses, redeliver). Every change goes through
:mod:`automation.services.webhooks`."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from automation.models import WebhookDelivery, WebhookEndpoint
from automation.services import webhooks as services
from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="Where to POST.")
    events = forms.MultipleChoiceField(
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What this endpoint receives. (A rule's \u201ccall webhook\u201d action and "
        "test pings reach it whatever is chosen here.)",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "events", "include_internal", "is_active")

    def clean(self):
        cleaned = super().clean()
        try:
            services.endpoint_check(
                name=cleaned.get("name"),
                url=cleaned.get("url"),
                events=cleaned.get("events"),
                exclude_pk=self.instance.pk,
            )
        except DomainError as error:
            field = error.field if error.field in self.fields else None
            self.add_error(field, error.message)
        return cleaned


#: The admin's existing badge colours (static/css/admin.css) for delivery statuses.
_BADGE = {
    "pending": "hd-status-new",
    "retrying": "hd-status-awaiting_customer",
    "succeeded": "hd-status-resolved",
    "failed": "hd-status-escalated",
}


def _status_badge(status: str | None) -> str:
    if not status:
        return "\u2013"
    label = dict(WebhookDelivery.Status.choices).get(status, status)
    return format_html('<span class="hd-badge {}">{}</span>', _BADGE.get(status, ""), label)


def _post_only(view):
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return view(request, *args, **kwargs)

    return wrapped


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AgentAccessMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = (
        "name",
        "url",
        "event_list",
        "is_active",
        "consecutive_failures",
        "last_delivery",
        "last_delivery_at",
    )
    list_filter = ("is_active",)
    search_fields = ("name", "url")
    list_select_related = ("created_by",)
    actions = ("ping_action", "rotate_secret_action", "enable_action", "disable_action")
    readonly_fields = (
        "secret_reveal",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
        "created_by",
        "created_at",
        "updated_at",
        "recent_deliveries",
    )

    def get_fields(self, request, obj=None):
        editable = ["name", "url", "events", "include_internal", "is_active"]
        if obj is None:
            return editable
        return [*editable, *self.readonly_fields]

    def get_queryset(self, request):
        last = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by(
            "-created_at", "-id"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_status=Subquery(last.values("status")[:1]),
                last_at=Subquery(last.values("created_at")[:1]),
            )
        )

    @admin.display(description="events")
    def event_list(self, obj):
        return ", ".join(obj.events) or "–"

    @admin.display(description="last delivery")
    def last_delivery(self, obj):
        return _status_badge(getattr(obj, "last_status", None))

    @admin.display(description="last delivery at", ordering="last_at")
    def last_delivery_at(self, obj):
        return getattr(obj, "last_at", None)

    @admin.display(description="signing secret")
    def secret_reveal(self, obj):
        if not obj.pk:
            return "–"
        return format_html(
            "<details><summary>Reveal</summary><code>{}</code></details>"
            "<p class='help'>Receivers verify X-Helpdesk-Signature with it; "
            "\u201cRotate secret\u201d replaces it.</p>",
            obj.secret,
        )

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, obj):
        rows = WebhookDelivery.objects.filter(endpoint=obj).order_by("-created_at", "-id")[:10]
        if not rows:
            return "None yet."
        items = format_html_join(
            "",
            "<li><a href='/admin/automation/webhookdelivery/{}/change/'>{} {}</a>"
            " \u2013 {} ({} attempts)</li>",
            (
                (
                    d.pk,
                    f"{d.created_at:%Y-%m-%d %H:%M}",
                    d.event,
                    _status_badge(d.status),
                    d.attempts,
                )
                for d in rows
            ),
        )
        return format_html("<ul>{}</ul>", items)

    # ---- buttons on the endpoint's page (POST) -------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/ping/",
                view(_post_only(self.ping_view)),
                name="automation_webhookendpoint_ping",
            ),
            path(
                "<int:pk>/rotate-secret/",
                view(_post_only(self.rotate_secret_view)),
                name="automation_webhookendpoint_rotate_secret",
            ),
            *super().get_urls(),
        ]

    def _button(self, request, pk, call, done: str):
        endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
        if not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        try:
            call(endpoint)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:automation_webhookendpoint_change", args=[endpoint.pk])
        )

    def ping_view(self, request, pk):
        return self._button(
            request,
            pk,
            lambda e: services.endpoint_ping(endpoint=e, actor=request.user),
            "Test ping queued: its outcome appears under \u201crecent deliveries\u201d.",
        )

    def rotate_secret_view(self, request, pk):
        return self._button(
            request,
            pk,
            lambda e: services.endpoint_rotate_secret(endpoint=e, actor=request.user),
            "New signing secret: reveal it below and give it to the receiver.",
        )

    # ---- staff notices -------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            for name, when, reason in WebhookEndpoint.objects.filter(
                is_active=False, disabled_at__isnull=False
            ).values_list("name", "disabled_at", "disabled_reason"):
                self.message_user(
                    request,
                    f"Endpoint \u201c{name}\u201d is disabled since "
                    f"{when:%Y-%m-%d %H:%M}: {reason} Enable it to resume deliveries.",
                    messages.WARNING,
                )
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            endpoint = WebhookEndpoint.objects.filter(pk=object_id).first()
            if endpoint and not endpoint.is_active and endpoint.disabled_at:
                self.message_user(
                    request,
                    f"Disabled since {endpoint.disabled_at:%Y-%m-%d %H:%M}: "
                    f"{endpoint.disabled_reason} Tick \u201cactive\u201d and save (or use "
                    "\u201cEnable\u201d) to resume: the failure count starts again at 0.",
                    messages.WARNING,
                )
        return super().change_view(request, object_id, form_url, extra_context)

    # ---- writes through the services ----------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {
            "name": data["name"],
            "url": data["url"],
            "events": data["events"],
            "include_internal": data["include_internal"],
            "is_active": data["is_active"],
        }
        if change:
            saved = services.endpoint_update(endpoint=obj, actor=request.user, **fields)
        else:
            saved = services.endpoint_create(actor=request.user, **fields)
            obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.endpoint_delete(endpoint=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_delete(endpoint=endpoint, actor=request.user)

    def _each(self, request, queryset, verb, call):
        done = 0
        for endpoint in queryset:
            try:
                call(endpoint)
            except DomainError as error:
                self.message_user(request, f"{endpoint}: {error.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb}: {done} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Send test ping")
    def ping_action(self, request, queryset):
        self._each(
            request,
            queryset,
            "Ping queued",
            lambda e: services.endpoint_ping(endpoint=e, actor=request.user),
        )

    @admin.action(description="Rotate secret")
    def rotate_secret_action(self, request, queryset):
        self._each(
            request,
            queryset,
            "New secret (see the endpoint's page)",
            lambda e: services.endpoint_rotate_secret(endpoint=e, actor=request.user),
        )

    @admin.action(description="Enable (resets the failure count)")
    def enable_action(self, request, queryset):
        self._each(
            request,
            queryset,
            "Enabled",
            lambda e: services.endpoint_enable(endpoint=e, actor=request.user),
        )

    @admin.action(description="Disable")
    def disable_action(self, request, queryset):
        self._each(
            request,
            queryset,
            "Disabled",
            lambda e: services.endpoint_disable(
                endpoint=e, actor=request.user, reason="Disabled by staff."
            ),
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AgentAccessMixin, admin.ModelAdmin):
    """The delivery log: read-only; "Redeliver" sends a finished delivery again."""

    list_display = (
        "created_at",
        "event",
        "endpoint",
        "status_badge",
        "attempts",
        "response_status",
        "response_ms",
        "next_attempt_at",
    )
    list_filter = ("status", "event", "endpoint")
    search_fields = ("event_id", "endpoint__name")
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ("redeliver_action",)
    fields = (
        "endpoint",
        "event",
        "event_id",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "response_status",
        "response_ms",
        "error",
        "response_body",
        "payload_json",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<int:pk>/redeliver/",
                self.admin_site.admin_view(_post_only(self.redeliver_view)),
                name="automation_webhookdelivery_redeliver",
            ),
            *super().get_urls(),
        ]

    def redeliver_view(self, request, pk):
        delivery = get_object_or_404(WebhookDelivery, pk=pk)
        if not self.has_view_permission(request, delivery):
            raise PermissionDenied
        try:
            services.delivery_redeliver(delivery=delivery, actor=request.user)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, "Queued again.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:automation_webhookdelivery_change", args=[delivery.pk])
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return _status_badge(obj.status)

    @admin.display(description="request payload")
    def payload_json(self, obj):
        return format_html(
            '<pre class="hd-pre-wrap">{}</pre>',
            json.dumps(obj.payload, indent=2, ensure_ascii=False),
        )

    @admin.action(description="Redeliver")
    def redeliver_action(self, request, queryset):
        done = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.delivery_redeliver(delivery=delivery, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"#{delivery.pk}: {error.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"Queued again: {done} delivery(ies).", messages.SUCCESS)
