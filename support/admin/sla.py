"""SLA setup (managers): business calendars with their weekly hours and holidays, and SLA
policies with their calendar, plan and targets per priority. Every save goes through
support's services (``business_calendar_save``, ``sla_policy_save``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from support import selectors, services
from support.models import BusinessCalendar, BusinessHours, Holiday, SlaPolicy, SlaTarget


def _rows(formset) -> list:
    """The rows as edited: kept and new ones (their instances carry the form's values),
    without the deleted forms and the untouched empty extras. (``save(commit=False)``
    writes nothing; it notes what changed, for the admin's history message.)"""
    formset.save(commit=False)
    rows = []
    for form in formset.forms:
        if not hasattr(form, "cleaned_data") or form in formset.deleted_forms:
            continue
        if form.instance.pk is None and not form.has_changed():
            continue
        rows.append(form.instance)
    return rows


class BusinessHoursFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        try:
            services.business_hours_check(_rows(self))
        except DomainError as error:
            raise ValidationError(error.message) from None


class BusinessHoursInline(admin.TabularInline):
    model = BusinessHours
    formset = BusinessHoursFormSet
    extra = 0
    fields = ("weekday", "start_time", "end_time")


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0
    fields = ("date", "name")


class _ManagersChange:
    def has_change_permission(self, request, obj=None):
        return selectors.is_manager(request.user)

    def has_add_permission(self, request):
        return selectors.is_manager(request.user)


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(_ManagersChange, AgentAccessMixin, admin.ModelAdmin):
    list_display = ("name", "time_zone", "is_default", "interval_count", "holiday_count")
    search_fields = ("name",)
    fields = ("name", "time_zone", "is_default")
    inlines = [BusinessHoursInline, HolidayInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                interval_total=Count("hours", distinct=True),
                holiday_total=Count("holidays", distinct=True),
            )
        )

    @admin.display(description="intervals", ordering="interval_total")
    def interval_count(self, calendar):
        return calendar.interval_total

    @admin.display(description="holidays", ordering="holiday_total")
    def holiday_count(self, calendar):
        return calendar.holiday_total

    def save_model(self, request, obj, form, change):
        """Saved with its hours and holidays in ``save_related`` (one service call)."""

    def save_related(self, request, form, formsets, change):
        by_model = {formset.model: formset for formset in formsets}
        services.business_calendar_save(
            calendar=form.instance,
            actor=request.user,
            hours=_rows(by_model[BusinessHours]) if BusinessHours in by_model else None,
            holidays=_rows(by_model[Holiday]) if Holiday in by_model else None,
        )


class SlaTargetInline(admin.TabularInline):
    model = SlaTarget
    extra = 0
    fields = ("priority", "first_response_minutes", "next_response_minutes", "resolution_minutes")


@admin.register(SlaPolicy)
class SlaPolicyAdmin(_ManagersChange, AgentAccessMixin, admin.ModelAdmin):
    list_display = ("name", "calendar", "plan", "is_default", "target_count")
    list_select_related = ("calendar",)
    list_filter = ("plan", "is_default")
    fields = (
        "name",
        "calendar",
        "plan",
        "is_default",
        ("urgent_hours", "high_hours", "normal_hours", "low_hours"),
    )
    inlines = [SlaTargetInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(target_total=Count("targets"))

    @admin.display(description="targets", ordering="target_total")
    def target_count(self, policy):
        return policy.target_total

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        default = BusinessCalendar.objects.filter(is_default=True).first()
        if default is not None:
            initial.setdefault("calendar", default.pk)
        return initial

    def save_model(self, request, obj, form, change):
        """Saved with its targets in ``save_related`` (one service call)."""

    def save_related(self, request, form, formsets, change):
        targets = next((f for f in formsets if f.model is SlaTarget), None)
        services.sla_policy_save(
            policy=form.instance,
            actor=request.user,
            targets=_rows(targets) if targets is not None else None,
        )
