import django_filters
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from config.filters import StrictBooleanFilter
from core.roles import is_agent
from support import custom_fields, selectors
from support.models import (
    OPEN_STATUSES,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    TicketTag,
    TicketType,
)


class _AnyValues(django_filters.fields.MultipleChoiceField):
    """Repeated free-text values (``?x=a&x=b``), checked by the filter's method."""

    def valid_value(self, value):
        return True


@extend_schema_field(OpenApiTypes.STR)
class RepeatedTextFilter(django_filters.MultipleChoiceFilter):
    field_class = _AnyValues


class TicketFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=TicketStatus.choices)
    type = django_filters.MultipleChoiceFilter(choices=TicketType.choices)
    priority = django_filters.MultipleChoiceFilter(choices=TicketPriority.choices)
    channel = django_filters.ChoiceFilter(choices=TicketChannel.choices)
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    organization = django_filters.NumberFilter(field_name="organization_id")
    mine = StrictBooleanFilter(
        method="filter_mine", help_text="Assigned to me (staff) / opened by me."
    )
    unassigned = StrictBooleanFilter(field_name="assignee", lookup_expr="isnull")
    sla_breached = StrictBooleanFilter(method="filter_sla_breached")
    sla = django_filters.ChoiceFilter(
        choices=[
            ("at_risk", "At risk: little business time left"),
            ("breached", "Breached: a due time passed unmet"),
            ("paused", "Paused: the resolution clock awaits the customer"),
        ],
        method="filter_sla",
        help_text="SLA state: at_risk (open, less than HELPDESK_SLA_AT_RISK_HOURS business "
        "hours left), breached (a due time passed unmet), paused (awaiting the customer).",
    )
    custom_field = RepeatedTextFilter(
        method="filter_custom_field",
        help_text="key:value (order_number:A-1001, device:ios, vip:true); repeat it for "
        "tickets matching all. Keys and values as in /api/custom-fields/ (customers: the "
        "fields shown to them).",
    )
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    tag = django_filters.CharFilter(
        method="filter_tag",
        help_text="Staff only: tickets with any of these tags (comma-separated names, "
        "e.g. billing,vip).",
    )

    class Meta:
        model = Ticket
        fields = []

    def filter_mine(self, queryset, name, value):
        user = self.request.user
        field = "assignee" if is_agent(user) else "requester"
        return queryset.filter(**{field: user}) if value else queryset.exclude(**{field: user})

    def filter_custom_field(self, queryset, name, value):
        fields = custom_fields.active_fields()
        if not is_agent(self.request.user):
            fields = [f for f in fields if f.customer_visible or f.customer_editable]
        for raw in value:
            queryset = queryset.filter(custom_fields.parse_filter(raw, fields))
        return queryset

    def filter_sla(self, queryset, name, value):
        now = timezone.now()
        if value == "at_risk":
            return queryset.filter(selectors.sla_at_risk_filter(now))
        if value == "paused":
            return queryset.filter(status__in=sorted(OPEN_STATUSES), sla_paused_at__isnull=False)
        breached = Ticket.objects.sla_breached(now).values("pk")
        return queryset.filter(pk__in=breached)

    def filter_tag(self, queryset, name, value):
        if not is_agent(self.request.user):
            return queryset  # customers do not see tags, nor filter by them
        names = {part.strip().lower().replace(" ", "-") for part in value.split(",")}
        tagged = TicketTag.objects.filter(tag__name__in=names - {""}).values("ticket_id")
        return queryset.filter(pk__in=tagged)

    def filter_sla_breached(self, queryset, name, value):
        breached = Ticket.objects.sla_breached(timezone.now()).values("pk")
        return queryset.filter(pk__in=breached) if value else queryset.exclude(pk__in=breached)
