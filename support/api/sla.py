"""Staff API of the SLA setup: business calendars (with their weekly hours and holidays,
nested) and SLA policies (with their targets per priority, nested), under ``/api/sla/``.

Staff read; managers write (the services refuse others with 403). A write replaces the
nested lists it carries (a list left out stays as it is). Bad input is a 400 with field
messages: an unknown time zone, an interval ending before it starts, overlapping
intervals, two holidays on one date, two targets for one priority.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.response import Response

from config.serializers import StrictInputMixin
from core.permissions import IsAgent, IsManager
from support import services
from support.models import BusinessCalendar, BusinessHours, Holiday, SlaPolicy, SlaTarget

# ---- serializers ----------------------------------------------------------------------


class BusinessHoursSerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = BusinessHours
        fields = ["weekday", "start_time", "end_time"]
        extra_kwargs = {
            "weekday": {"help_text": "0 = Monday … 6 = Sunday."},
            "end_time": {"help_text": "Local time; 00:00 means midnight at the end of the day."},
        }


class HolidaySerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = Holiday
        fields = ["date", "name"]


class BusinessCalendarSerializer(StrictInputMixin, serializers.ModelSerializer):
    """A calendar with its weekly intervals (local time of ``time_zone``) and holidays."""

    hours = BusinessHoursSerializer(many=True, required=False)
    holidays = HolidaySerializer(many=True, required=False)

    class Meta:
        model = BusinessCalendar
        fields = ["id", "name", "time_zone", "is_default", "hours", "holidays", "updated_at"]
        read_only_fields = ["id", "updated_at"]
        extra_kwargs = {"time_zone": {"help_text": "IANA time zone, e.g. Europe/Berlin."}}


class SlaTargetSerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = SlaTarget
        fields = [
            "priority",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
        ]


class SlaPolicySerializer(StrictInputMixin, serializers.ModelSerializer):
    """A policy: its calendar (null: around the clock), the plan it serves by default,
    its targets per priority in business minutes (a priority without a target uses
    ``<priority>_hours`` for all three)."""

    targets = SlaTargetSerializer(many=True, required=False)

    class Meta:
        model = SlaPolicy
        fields = [
            "id",
            "name",
            "calendar",
            "plan",
            "is_default",
            "urgent_hours",
            "high_hours",
            "normal_hours",
            "low_hours",
            "targets",
        ]
        read_only_fields = ["id"]


# ---- views ------------------------------------------------------------------------------


class _SetupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, IsAgent]
    pagination_class = None
    nested: dict[str, type] = {}

    def get_permissions(self):
        """Staff read; managers write."""
        if self.request.method in SAFE_METHODS:
            return [IsAuthenticated(), IsAgent()]
        return [IsAuthenticated(), IsAgent(), IsManager()]

    def _input(self, *, partial: bool, instance=None) -> tuple[object, dict]:
        """The edited row (not saved) and its nested lists (None: left as they are)."""
        serializer = self.get_serializer(instance, data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        nested = {}
        for name, model in self.nested.items():
            rows = data.pop(name, None)
            nested[name] = None if rows is None else [model(**row) for row in rows]
        row = instance if instance is not None else self.get_queryset().model()
        for field, value in data.items():
            setattr(row, field, value)
        return row, nested

    def _out(self, row, code=status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=row.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def create(self, request):
        row, nested = self._input(partial=False)
        return self._out(self._save(row, nested), status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        row, nested = self._input(partial=False, instance=self.get_object())
        return self._out(self._save(row, nested))

    def partial_update(self, request, pk=None):
        row, nested = self._input(partial=True, instance=self.get_object())
        return self._out(self._save(row, nested))

    def destroy(self, request, pk=None):
        self._delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Business calendars"),
    create=extend_schema(summary="Create a business calendar (managers)"),
    update=extend_schema(summary="Replace a business calendar (managers)"),
    partial_update=extend_schema(summary="Change a business calendar (managers)"),
    destroy=extend_schema(summary="Delete a calendar no policy uses (managers)"),
)
class BusinessCalendarViewSet(_SetupViewSet):
    """Business calendars: when the team works (hours per weekday, holidays)."""

    serializer_class = BusinessCalendarSerializer
    nested = {"hours": BusinessHours, "holidays": Holiday}

    def get_queryset(self):
        return BusinessCalendar.objects.prefetch_related(
            Prefetch("hours", queryset=BusinessHours.objects.order_by("weekday", "start_time")),
            Prefetch("holidays", queryset=Holiday.objects.order_by("date")),
        ).order_by("name")

    def _save(self, row, nested):
        return services.business_calendar_save(
            calendar=row,
            actor=self.request.user,
            hours=nested["hours"],
            holidays=nested["holidays"],
        )

    def _delete(self, row):
        services.business_calendar_delete(calendar=row, actor=self.request.user)


@extend_schema_view(
    list=extend_schema(summary="SLA policies"),
    create=extend_schema(summary="Create an SLA policy (managers)"),
    update=extend_schema(summary="Replace an SLA policy (managers)"),
    partial_update=extend_schema(summary="Change an SLA policy (managers)"),
    destroy=extend_schema(summary="Delete a policy no organization uses (managers)"),
)
class SlaPolicyViewSet(_SetupViewSet):
    """SLA policies with their calendar, plan and targets per priority."""

    serializer_class = SlaPolicySerializer
    nested = {"targets": SlaTarget}

    def get_queryset(self):
        return SlaPolicy.objects.prefetch_related(
            Prefetch("targets", queryset=SlaTarget.objects.order_by("priority"))
        ).order_by("name")

    def _save(self, row, nested):
        return services.sla_policy_save(
            policy=row, actor=self.request.user, targets=nested["targets"]
        )

    def _delete(self, row):
        services.sla_policy_delete(policy=row, actor=self.request.user)


_ROUTES = {"get": "list", "post": "create"}
_DETAIL = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path(
        "calendars/",
        BusinessCalendarViewSet.as_view(_ROUTES),
        name="api-sla-calendar-list",
    ),
    path(
        "calendars/<int:pk>/",
        BusinessCalendarViewSet.as_view(_DETAIL),
        name="api-sla-calendar-detail",
    ),
    path("policies/", SlaPolicyViewSet.as_view(_ROUTES), name="api-sla-policy-list"),
    path(
        "policies/<int:pk>/",
        SlaPolicyViewSet.as_view(_DETAIL),
        name="api-sla-policy-detail",
    ),
]
