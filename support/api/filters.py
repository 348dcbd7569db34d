import django_filters
from django.utils import timezone

from config.filters import StrictBooleanFilter
from core.roles import is_agent
from support import selectors
from support.models import (
    OPEN_STATUSES,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    TicketType,
)


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
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Ticket
        fields = []

    def filter_mine(self, queryset, name, value):
        user = self.request.user
        field = "assignee" if is_agent(user) else "requester"
        return queryset.filter(**{field: user}) if value else queryset.exclude(**{field: user})

    def filter_sla(self, queryset, name, value):
        now = timezone.now()
        if value == "at_risk":
            return queryset.filter(selectors.sla_at_risk_filter(now))
        if value == "paused":
            return queryset.filter(status__in=sorted(OPEN_STATUSES), sla_paused_at__isnull=False)
        breached = Ticket.objects.sla_breached(now).values("pk")
        return queryset.filter(pk__in=breached)

    def filter_sla_breached(self, queryset, name, value):
        breached = Ticket.objects.sla_breached(timezone.now()).values("pk")
        return queryset.filter(pk__in=breached) if value else queryset.exclude(pk__in=breached)
