"""Models of support: customers' organizations, tickets and their conversations, the audit
log, escalations, queues (teams) and saved replies.

State changes never happen here: ``support.services`` owns every write (one function per
action, checked against :data:`ALLOWED_TRANSITIONS`, with its :class:`TicketEvent`).
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

# ======================================================================================
# Customers
# ======================================================================================


class Plan(models.TextChoices):
    """An organization's subscription plan."""

    FREE = "free", "Free"
    STARTER = "starter", "Starter"
    BUSINESS = "business", "Business"
    ENTERPRISE = "enterprise", "Enterprise"


def valid_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone known to zoneinfo."""
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class BusinessCalendar(models.Model):
    """When the support team is at work: weekly :class:`BusinessHours` in a time zone, and
    :class:`Holiday` dates with no work at all.

    An SLA policy with a calendar counts its targets in business time (``support.sla``):
    a ticket opened on Friday at 16:00 against an 8-hour target on Mon–Fri 09:00–17:00 is
    due on Monday at 16:00. Hours are local wall-clock times of ``time_zone``, so a day
    on which daylight saving time changes has its real length. ``is_default`` marks the
    calendar offered for new policies. ``updated_at`` moves on every change to the
    calendar, its hours or its holidays (processes reload their copy on it).
    """

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin."
    )
    is_default = models.BooleanField(default=False, help_text="Offered for new SLA policies.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_calendar"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.time_zone})"

    def clean(self) -> None:
        if not valid_time_zone(self.time_zone):
            raise ValidationError(
                {"time_zone": f"“{self.time_zone}” is not a known time zone (e.g. Europe/Berlin)."}
            )


class BusinessHours(models.Model):
    """One opening interval of a calendar on a weekday (local time); a weekday may have
    several (09:00–12:00 and 13:00–17:00), never overlapping. An end of 00:00 means
    midnight at the end of the day."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="00:00 means midnight at the end of the day.")

    class Meta:
        verbose_name = "business hours"
        verbose_name_plural = "business hours"
        ordering = ["calendar", "weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="business_hours_weekday"
            ),
            models.CheckConstraint(
                condition=Q(start_time__lt=models.F("end_time")) | Q(end_time=time(0)),
                name="business_hours_start_before_end",
            ),
        ]

    def __str__(self) -> str:
        def hhmm(value) -> str:
            return value.strftime("%H:%M") if value is not None else "?"

        return f"{self.get_weekday_display()} {hhmm(self.start_time)}–{hhmm(self.end_time)}"

    @property
    def end_minutes(self) -> int:
        """The end as minutes after midnight (00:00 is 1440)."""
        if self.end_time == time(0):
            return 24 * 60
        return self.end_time.hour * 60 + self.end_time.minute

    @property
    def start_minutes(self) -> int:
        return self.start_time.hour * 60 + self.start_time.minute

    def clean(self) -> None:
        if (
            self.start_time is not None
            and self.end_time is not None
            and self.start_minutes >= self.end_minutes
        ):
            raise ValidationError({"end_time": "The end must be after the start."})


class Holiday(models.Model):
    """A date (local to the calendar) on which the team does not work."""

    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["calendar", "date"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="one_holiday_per_date")
        ]

    def __str__(self) -> str:
        return f"{self.date or '?'} {self.name}".strip()


class SlaPolicy(models.Model):
    """Service level: how soon the team answers and resolves a ticket, by priority.

    Targets per priority (:class:`SlaTarget`): the first response (from opening), the
    next response (from a customer's message after the team's last public reply) and
    the resolution (paused while the ticket awaits the customer). They are counted in
    business time of ``calendar`` (none: around the clock). A priority without a target
    row uses ``<priority>_hours`` for all three.

    Which policy applies to a ticket: its organization's own policy, else the policy of
    the organization's ``plan``, else the default policy, else the built-in hours
    (``support.services.tickets.DEFAULT_SLA_HOURS``). See ``Ticket`` for the clocks.
    """

    name = models.CharField(max_length=100, unique=True)
    calendar = models.ForeignKey(
        BusinessCalendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policies",
        help_text="Business hours the targets count in (empty: around the clock).",
    )
    plan = models.CharField(
        max_length=20,
        choices=Plan.choices,
        blank=True,
        help_text="Applies to organizations of this plan that have no policy of their own.",
    )
    low_hours = models.PositiveIntegerField(default=72)
    normal_hours = models.PositiveIntegerField(default=24)
    high_hours = models.PositiveIntegerField(default=8)
    urgent_hours = models.PositiveIntegerField(default=4)
    is_default = models.BooleanField(
        default=False, help_text="Used for customers whose organization has no policy."
    )

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_sla"
            ),
            models.UniqueConstraint(
                fields=["plan"], condition=~Q(plan=""), name="one_sla_per_plan"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def hours_for(self, priority: str) -> int:
        return getattr(self, f"{priority}_hours")


class SlaTarget(models.Model):
    """A policy's targets for one priority, in business minutes."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(
        max_length=10,
        choices=[("low", "Low"), ("normal", "Normal"), ("high", "High"), ("urgent", "Urgent")],
    )
    first_response_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    next_response_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    resolution_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        verbose_name = "SLA target"
        ordering = ["policy", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "priority"], name="one_target_per_priority")
        ]

    def __str__(self) -> str:
        return f"{self.priority} targets"


class Organization(models.Model):
    """A customer account: a company whose people open tickets.

    Its monthly recurring revenue weighs its feature votes; its SLA policy sets how soon
    its tickets are due.
    """

    Plan = Plan

    name = models.CharField(max_length=200, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    mrr = models.DecimalField(
        "monthly recurring revenue (USD)",
        max_digits=12,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
    )
    sla_policy = models.ForeignKey(
        SlaPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="organizations"
    )
    beta_opt_in = models.BooleanField(
        "beta features", default=False, help_text="Its people see help articles about betas."
    )
    github_repository = models.CharField(
        max_length=200,
        blank=True,
        validators=[RegexValidator(r"^[\w.-]+/[\w.-]+$", "Write the repository as owner/name.")],
        help_text="owner/name where its bug reports go (empty: GITHUB_REPOSITORY).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(mrr__gte=0), name="org_mrr_positive")]

    def __str__(self) -> str:
        return self.name


class CustomerProfile(models.Model):
    """Links a customer (a user who is not staff) to one organization.

    An organization admin sees all of the organization's tickets, not only their own.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_profile"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    is_org_admin = models.BooleanField("organization admin", default=False)

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization or 'no organization'}"


# ======================================================================================
# Queues
# ======================================================================================


class Team(models.Model):
    """A queue of human agents. Escalations route to the team that handles the ticket's
    type (or the escalation's topic, e.g. security); the default team takes the rest.
    With round-robin on, each new escalation goes to the available member who was
    assigned least recently."""

    name = models.CharField(max_length=100, unique=True)
    handles = ArrayField(
        models.CharField(max_length=30),
        default=list,
        blank=True,
        help_text="Ticket types and escalation topics routed here, e.g. billing, security.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMembership", related_name="teams", blank=True
    )
    escalation_contact = models.EmailField(
        blank=True, help_text="Notified of every escalation; members are when empty."
    )
    is_default = models.BooleanField(
        "general queue", default=False, help_text="Takes what no other team handles."
    )
    round_robin = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_team"
            )
        ]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    """An agent in a team; ``is_available`` and ``last_assigned_at`` drive round-robin."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    is_available = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


# ======================================================================================
# Tickets
# ======================================================================================


class TicketType(models.TextChoices):
    BUG = "bug", "Bug"
    FEATURE = "feature", "Feature request"
    BILLING = "billing", "Billing"
    ACCOUNT = "account", "Account"
    CANCELLATION = "cancellation", "Cancellation"
    GENERAL = "general", "General question"


class TicketStatus(models.TextChoices):
    NEW = "new", "New"
    ANALYZING = "analyzing", "Analyzing"
    AI_RESPONDING = "ai_responding", "AI responding"
    AWAITING_CUSTOMER = "awaiting_customer", "Awaiting customer"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class TicketChannel(models.TextChoices):
    WEB = "web", "Web portal"
    API = "api", "API"
    CHAT = "chat", "Live chat"
    EMAIL = "email", "Email"


S = TicketStatus
#: The one table of allowed status changes; services refuse anything else.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.ANALYZING, S.AWAITING_CUSTOMER, S.ESCALATED, S.RESOLVED, S.CLOSED}),
    S.ANALYZING: frozenset({S.NEW, S.AI_RESPONDING, S.AWAITING_CUSTOMER, S.ESCALATED, S.RESOLVED}),
    S.AI_RESPONDING: frozenset({S.AWAITING_CUSTOMER, S.ESCALATED, S.RESOLVED}),
    S.AWAITING_CUSTOMER: frozenset({S.NEW, S.ANALYZING, S.ESCALATED, S.RESOLVED, S.CLOSED}),
    S.ESCALATED: frozenset({S.AWAITING_CUSTOMER, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.NEW, S.ESCALATED, S.CLOSED}),
    S.CLOSED: frozenset({S.NEW, S.ESCALATED}),
}
#: Statuses in which someone still owes the customer something.
OPEN_STATUSES = frozenset({S.NEW, S.ANALYZING, S.AI_RESPONDING, S.AWAITING_CUSTOMER, S.ESCALATED})
DONE_STATUSES = frozenset({S.RESOLVED, S.CLOSED})


class Tag(models.Model):
    """A label agents, rules and the AI put on tickets ("refund", "vip", "ios").

    ``HELPDESK_TAGS_FREE`` decides who may create tags: with it on (the default), any
    agent creates a tag by using a new name; with it off, only tags in this curated list
    (managed by managers in admin) may be used. Names are stored normalized (lower case,
    spaces to hyphens). AI triage suggests tags of this list whose ``keywords`` occur
    in a ticket.
    """

    name = models.CharField(
        max_length=50,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9][a-z0-9_.:-]*$",
                "Use lower-case letters, digits, and . _ : - (spaces become hyphens).",
            )
        ],
    )
    description = models.CharField(max_length=200, blank=True)
    keywords = models.TextField(
        blank=True,
        help_text="Words or phrases, one per line: AI triage suggests the tag when the "
        "ticket mentions one of them.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CustomField(models.Model):
    """A fact a team records on tickets, defined in admin ("Order number", "Plan tier").

    Values live in ``Ticket.custom_fields`` (JSONB, keyed by :attr:`key`, with a GIN
    index so ``custom_fields__contains`` filters use it): text and date as strings (dates
    ISO ``YYYY-MM-DD``), numbers as JSON numbers, booleans as JSON booleans, a choice as
    one of :attr:`choices`, a multi-choice as a list of them. ``support.custom_fields``
    validates values against this definition; ``required_for_types`` lists the ticket
    types that must have a value; ``customer_visible`` / ``customer_editable`` say whether
    the portal shows the field and lets the customer fill it in.
    """

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date"
        CHOICE = "choice", "Choice"
        MULTI_CHOICE = "multi_choice", "Multiple choice"
        BOOLEAN = "boolean", "Yes / no"

    key = models.SlugField(
        max_length=50,
        unique=True,
        help_text="The name in the API and in filters (order_number); never changes.",
    )
    label = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    choices = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="The options of a choice or multiple-choice field.",
    )
    required_for_types = ArrayField(
        models.CharField(max_length=20, choices=TicketType.choices),
        default=list,
        blank=True,
        help_text="Ticket types that must have a value.",
    )
    customer_visible = models.BooleanField(default=False, help_text="Shown on the portal.")
    customer_editable = models.BooleanField(
        default=False, help_text="The customer fills it in on the portal (implies shown)."
    )
    help_text = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "label"]

    def __str__(self) -> str:
        return self.label


class TicketQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def sla_breached(self, now):
        """A due time passed unmet: stamped, open past their due time, or resolved after it."""
        return self.filter(
            Q(sla_breached_at__isnull=False)
            | Q(status__in=OPEN_STATUSES, sla_due_at__lt=now)
            | Q(resolved_at__isnull=False, sla_due_at__lt=models.F("resolved_at"))
        )

    def sla_at_risk(self, now):
        """Open, with little business time left (or none)."""
        return self.filter(status__in=OPEN_STATUSES, sla_at_risk_at__lte=now)

    def sla_paused(self):
        """Open, the resolution clock waiting for the customer."""
        return self.filter(status__in=OPEN_STATUSES, sla_paused_at__isnull=False)


class Ticket(models.Model):
    """A customer's request for help, from the first message to closure.

    Identified to people by ``reference`` (``HD-YYYYMMDD-NNNN``, numbered per day).
    ``first_response_at`` is set once, by the first public reply of the AI or an agent;
    ``resolved_at`` is the latest resolution (cleared when the ticket is reopened).

    SLA clocks (``support.services.tickets``, business time of the policy's calendar):
    ``first_response_due_at`` runs from opening until the first public reply;
    ``next_response_due_at`` from a customer's message after the team's last public
    reply until the next one; ``resolution_due_at`` until resolution, paused while the
    ticket awaits the customer (``sla_paused_at``; ``sla_business_seconds`` used so far,
    ``sla_resumed_at`` when it last restarted). ``sla_due_at`` is the nearest of the
    three (None while paused with no response owed), ``sla_at_risk_at`` the instant
    ``HELPDESK_SLA_AT_RISK_HOURS`` business hours before it, and ``sla_breached_at``
    when a due time first passed unmet.
    """

    reference = models.CharField(max_length=20, unique=True, editable=False)
    subject = models.CharField(max_length=200)
    description = models.TextField()
    type = models.CharField(max_length=20, choices=TicketType.choices, default=TicketType.GENERAL)
    status = models.CharField(max_length=20, choices=TicketStatus.choices, default=S.NEW)
    priority = models.CharField(
        max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    channel = models.CharField(
        max_length=10, choices=TicketChannel.choices, default=TicketChannel.WEB
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    ai_confidence = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    sentiment = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-1), MaxValueValidator(1)],
        help_text="-1 (angry) to 1 (delighted), from triage.",
    )
    satisfaction_rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    satisfaction_comment = models.TextField(blank=True)
    reopened_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(
        null=True, blank=True, help_text="The nearest running SLA due time (None while paused)."
    )
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    next_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_business_seconds = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Business time the resolution clock had used when it last stopped.",
    )
    sla_resumed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the resolution clock last (re)started."
    )
    sla_paused_at = models.DateTimeField(
        null=True, blank=True, help_text="Since when the resolution clock waits for the customer."
    )
    sla_at_risk_at = models.DateTimeField(
        null=True, blank=True, help_text="When the remaining business time gets short."
    )
    sla_breached_at = models.DateTimeField(
        null=True, blank=True, help_text="When a due time first passed unmet."
    )
    status_changed_at = models.DateTimeField(
        default=timezone.now, help_text="When the ticket entered its current status."
    )
    follow_up_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
        help_text="The closed ticket this one continues (a reply by email after closing).",
    )
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_tickets",
        help_text="The ticket this duplicate was merged into (it is closed).",
    )
    split_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="split_tickets",
        help_text="The ticket whose messages this one was split off from.",
    )
    tags = models.ManyToManyField(Tag, through="TicketTag", related_name="tickets", blank=True)
    suggested_tags = ArrayField(
        models.CharField(max_length=50),
        default=list,
        blank=True,
        help_text="Tags of the curated list AI triage suggests (not applied until accepted).",
    )
    custom_fields = models.JSONField(
        default=dict, blank=True, help_text="Values of the custom fields, by key."
    )

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="ticket_queue_idx"),
            models.Index(fields=["requester", "-created_at"], name="ticket_requester_idx"),
            models.Index(fields=["organization", "-created_at"], name="ticket_org_idx"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_idx"),
            models.Index(
                fields=["sla_due_at"],
                name="ticket_open_sla_idx",
                condition=Q(status__in=sorted(OPEN_STATUSES)),
            ),
            models.Index(
                fields=["sla_at_risk_at"],
                name="ticket_open_sla_risk_idx",
                condition=Q(status__in=sorted(OPEN_STATUSES)),
            ),
            # Daily rollups: the deadlines and first responses of one day.
            models.Index(fields=["sla_due_at"], name="ticket_sla_due_idx"),
            models.Index(fields=["first_response_at"], name="ticket_first_response_idx"),
            models.Index(fields=["sla_breached_at"], name="ticket_sla_breached_idx"),
            # Time rules: "3 days awaiting the customer", "7 days after resolution".
            models.Index(fields=["status", "status_changed_at"], name="ticket_status_since_idx"),
            # Queue filters on custom fields: custom_fields__contains={"key": value}.
            GinIndex(
                fields=["custom_fields"],
                name="ticket_custom_fields_idx",
                opclasses=["jsonb_path_ops"],
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction_rating__isnull=True)
                | Q(satisfaction_rating__gte=1, satisfaction_rating__lte=5),
                name="ticket_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(ai_confidence__isnull=True)
                | Q(ai_confidence__gte=0, ai_confidence__lte=1),
                name="ticket_confidence_0_to_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    def get_absolute_url(self) -> str:
        return reverse("support:ticket-detail", kwargs={"reference": self.reference})

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def can_transition_to(self, status: str) -> bool:
        return status in ALLOWED_TRANSITIONS[self.status]

    def sla_breached(self, now) -> bool:
        if self.sla_breached_at is not None:
            return True
        if self.sla_due_at is None:
            return False
        if self.resolved_at is not None:
            return self.resolved_at > self.sla_due_at
        return self.is_open and now > self.sla_due_at

    @property
    def sla_paused(self) -> bool:
        return self.sla_paused_at is not None and self.is_open

    def age(self, now) -> timedelta:
        return now - self.created_at


class TicketSequence(models.Model):
    """The last reference number used on a day. Incremented with one atomic upsert, so
    concurrent openings never share a number."""

    day = models.DateField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day}: {self.last_number}"


class TicketTag(models.Model):
    """A tag on a ticket, and who put it there (an agent, a rule, the AI, the customer)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="ticket_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="ticket_tags")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_by_kind = models.CharField(max_length=10, default="agent")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket", "tag"], name="one_tag_per_ticket")]
        # Filtering the queue by tag: from the tag to its tickets.
        indexes = [models.Index(fields=["tag", "ticket"], name="tickettag_tag_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.tag_id}"


class Message(models.Model):
    """One entry in a ticket's conversation.

    Internal notes (``is_internal``) are between staff and never shown to customers.
    AI messages carry what it cost and what it was based on.
    """

    class SenderKind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        AI = "ai", "AI agent"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    sender_kind = models.CharField(max_length=10, choices=SenderKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="support_messages",
    )
    body = models.TextField()
    is_internal = models.BooleanField("internal note", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # AI metadata (sender_kind == "ai")
    ai_model = models.CharField(max_length=100, blank=True)
    ai_confidence = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    article_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    example_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    ai_reasoning = models.TextField(blank=True, help_text="The AI's summary for the team.")
    ai_decision = models.CharField(
        max_length=10,
        blank=True,
        choices=[
            ("resolve", "Resolved"),
            ("ask", "Asked the customer"),
            ("escalate", "Escalated"),
            ("draft", "Draft for people"),
        ],
        help_text="What the analysis that wrote this AI message decided.",
    )
    # Email: the Message-ID of the mail this message came in as or went out as, so that
    # a reply's In-Reply-To / References finds its ticket; and what the provider said.
    email_message_id = models.CharField(max_length=998, blank=True, db_index=True)
    delivery_status = models.CharField(
        max_length=12,
        blank=True,
        choices=[
            ("sent", "Sent"),
            ("delivered", "Delivered"),
            ("deferred", "Deferred"),
            ("bounced", "Bounced"),
            ("complained", "Marked as spam"),
            ("failed", "Failed"),
        ],
    )
    delivery_events = models.JSONField(default=list, blank=True)
    moved_from = models.ForeignKey(
        Ticket,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The ticket this message was written on before a merge or split moved it.",
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="message_ticket_time_idx"),
            # Daily rollups scan one day of AI / agent messages.
            models.Index(fields=["sender_kind", "created_at"], name="message_sender_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(sender_kind="customer", is_internal=True),
                name="customers_write_no_internal_notes",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_sender_kind_display()} on {self.ticket_id}: {self.body[:40]}"

    @property
    def is_public_reply(self) -> bool:
        """A reply the customer sees from the AI or an agent (counts as a response)."""
        return not self.is_internal and self.sender_kind in {
            self.SenderKind.AI,
            self.SenderKind.AGENT,
        }


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"attachments/{instance.message.ticket.reference}/{filename}"


class Attachment(models.Model):
    """A file sent with a message; size and type are checked before it is stored."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=300)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class TicketEvent(models.Model):
    """Append-only audit log of a ticket: who changed what, from which value to which.

    Rows are only ever inserted (by ``support.events``); a database trigger refuses
    updates, and no screen or endpoint offers to change or delete them.
    """

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        STATUS_CHANGED = "status_changed", "Status changed"
        ASSIGNED = "assigned", "Assigned"
        PRIORITY_CHANGED = "priority_changed", "Priority changed"
        FIELD_CHANGED = "field_changed", "Field changed"
        ESCALATED = "escalated", "Escalated"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"
        REOPENED = "reopened", "Reopened"
        MESSAGE_ADDED = "message_added", "Message added"
        RATED = "rated", "Rated"
        GITHUB_ISSUE_CREATED = "github_issue_created", "GitHub issue created"
        GITHUB_PR_DRAFTED = "github_pr_drafted", "GitHub fix drafted"
        GITHUB_PR_REVIEWED = "github_pr_reviewed", "GitHub fix reviewed"
        GITHUB_PR_MERGED = "github_pr_merged", "GitHub fix merged"
        GITHUB_PR_REJECTED = "github_pr_rejected", "GitHub fix rejected"
        GITHUB_ISSUE_CLOSED = "github_issue_closed", "GitHub issue closed"
        GITHUB_FAILED = "github_failed", "GitHub failed"
        NOTIFICATION_FAILED = "notification_failed", "Email not sent"
        RULE_APPLIED = "rule_applied", "Automation rule applied"
        TAGS_CHANGED = "tags_changed", "Tags changed"
        MERGED = "merged", "Duplicate merged in"
        MERGED_INTO = "merged_into", "Merged into another ticket"
        SPLIT = "split", "Messages split off"
        SPLIT_FROM = "split_from", "Split off from another ticket"
        ACTION_REQUESTED = "action_requested", "Action requested"
        ACTION_CONFIRMED = "action_confirmed", "Action confirmed by the customer"
        ACTION_DECLINED = "action_declined", "Action declined by the customer"
        ACTION_APPROVED = "action_approved", "Action approved"
        ACTION_REJECTED = "action_rejected", "Action rejected"
        ACTION_SUCCEEDED = "action_succeeded", "Action done"
        ACTION_FAILED = "action_failed", "Action failed"

    class ActorKind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        AGENT = "agent", "Agent"
        AI = "ai", "AI agent"
        SYSTEM = "system", "System"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ticket_events",
    )
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    field = models.CharField(max_length=50, blank=True)
    old_value = models.CharField(max_length=200, blank=True)
    new_value = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    is_internal = models.BooleanField(
        default=False, help_text="Concerns an internal note: hidden from customers."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="event_ticket_time_idx"),
            # Daily rollups read one day of one kind (resolutions, reopenings…).
            models.Index(fields=["kind", "created_at"], name="event_kind_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"

    @property
    def description(self) -> str:
        """How the change reads to an agent: 'status changed from New to Escalated'."""
        label = self.get_kind_display()
        linked = {
            self.Kind.MERGED: "duplicate {} merged in",
            self.Kind.MERGED_INTO: "merged into {}",
            self.Kind.SPLIT: "messages split off into {}",
            self.Kind.SPLIT_FROM: "split off from {}",
        }
        if self.kind in linked and self.new_value:
            return linked[self.kind].format(self.new_value)
        if self.field and (self.old_value or self.new_value):
            return (
                f"{self.field.replace('_', ' ')} changed from "
                f"{self.old_value or '—'} to {self.new_value or '—'}"
            )
        return label


class Escalation(models.Model):
    """A hand-over of a ticket to people, with why and what the AI already tried."""

    class Kind(models.TextChoices):
        AI_LOW_CONFIDENCE = "ai_low_confidence", "AI not confident"
        CUSTOMER_REQUESTED = "customer_requested", "Customer asked for a human"
        POLICY = "policy", "Policy (always handled by people)"
        COMPLEX = "complex", "Complex or long conversation"
        AI_UNAVAILABLE = "ai_unavailable", "AI unavailable"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    reason = models.TextField()
    topic = models.CharField(
        max_length=30, blank=True, help_text="Routing topic, e.g. security; else the type."
    )
    ai_attempt = models.TextField(blank=True, help_text="What the AI tried before.")
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="escalations"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="escalations",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    is_resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["is_resolved", "created_at"], name="escalation_open_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.get_kind_display()}"


class SavedReply(models.Model):
    """A canned response. ``{{ customer.first_name }}``-style placeholders are filled in
    from the ticket; applying it may also move the ticket to ``new_status``."""

    title = models.CharField(max_length=100, unique=True)
    body = models.TextField()
    new_status = models.CharField(
        max_length=20,
        blank=True,
        choices=[
            (S.AWAITING_CUSTOMER, S.AWAITING_CUSTOMER.label),
            (S.RESOLVED, S.RESOLVED.label),
            (S.CLOSED, S.CLOSED.label),
        ],
        help_text="Optionally change the status when this reply is sent.",
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "saved replies"

    def __str__(self) -> str:
        return self.title


class TrainingExampleQuerySet(models.QuerySet):
    def ready_for_training(self):
        """Approved by a person, with no personal data left in the anonymized texts."""
        return self.filter(status=TrainingExample.Status.APPROVED, pii_remaining=[])

    def awaiting_review(self):
        return self.filter(status=TrainingExample.Status.PENDING)


class TrainingExample(models.Model):
    """A good resolution kept to teach the AI agent: the customer's question and the answer
    that solved it, from a ticket resolved and rated 4 or 5.

    ``question``/``answer`` are the originals (staff only, never exported); the
    ``anonymized_*`` texts have personal data replaced by typed placeholders (``[EMAIL]``…)
    and are the only texts the agent reuses or that leave the system. ``pii_found`` lists
    the kinds removed at harvest; ``pii_remaining`` the kinds still detected in the
    anonymized texts (after a reviewer's edit), which must be empty for training.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    class Outcome(models.TextChoices):
        SUCCESSFUL = "successful", "Successful"  # the answer resolved it, no hand-over
        ESCALATED = "escalated", "Escalated"  # handed to a person who resolved it
        FAILED = "failed", "Failed first"  # an earlier resolution was reopened

    class AuthorKind(models.TextChoices):
        AI = "ai", "AI agent"
        HUMAN = "human", "Human agent"

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="training_example")
    source_message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="training_examples"
    )
    ticket_type = models.CharField(max_length=20, choices=TicketType.choices)
    question = models.TextField(help_text="Original: subject, description, clarifications.")
    answer = models.TextField(help_text="Original final answer.")
    anonymized_question = models.TextField()
    anonymized_answer = models.TextField()
    pii_found = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    pii_remaining = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    author_kind = models.CharField(max_length=6, choices=AuthorKind.choices)
    confidence = models.FloatField(null=True, blank=True)
    satisfaction_rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    quality_score = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="1–5, set by the reviewer.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    embedding = VectorField(dimensions=settings.HELPDESK_EMBEDDING_DIMENSIONS, null=True)
    embedding_model = models.CharField(max_length=100, blank=True)
    used_in_training = models.BooleanField(default=False)
    exported_at = models.DateTimeField(null=True, blank=True)
    times_used_by_ai = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TrainingExampleQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="training_status_idx"),
            HnswIndex(
                name="training_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(quality_score__isnull=False),
                name="training_approved_has_quality",
            ),
        ]

    def __str__(self) -> str:
        return f"Example from {self.ticket_id}: {self.anonymized_question[:50]}"

    @property
    def is_ready_for_training(self) -> bool:
        return self.status == self.Status.APPROVED and not self.pii_remaining


# ======================================================================================
# Email channel (support/email/)
# ======================================================================================


class SupportAddress(models.Model):
    """An address customers write to (``support@acme.example``): mail to it, or to its
    plus-addresses (``support+<ticket token>@…``, the Reply-To of our mail), reaches the
    desk through any door (the SMTP receiver, an IMAP mailbox, a provider's webhook)."""

    email = models.EmailField(unique=True, help_text="Lower-case; plus-addresses are implied.")
    name = models.CharField(
        max_length=100, blank=True, help_text="Shown as the sender of replies, e.g. Acme Support."
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="support_addresses",
        help_text="Tickets from this address go to this team when escalated (else by type).",
    )
    is_default = models.BooleanField(
        default=False, help_text="Replies to tickets opened elsewhere come from this address."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        verbose_name_plural = "support addresses"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_address"
            )
        ]

    def __str__(self) -> str:
        return self.email


class OrganizationDomain(models.Model):
    """A mail domain of an organization. Unknown senders from a verified domain join the
    organization when their first mail arrives."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="email_domains"
    )
    domain = models.CharField(max_length=253, unique=True, help_text="e.g. acme.example")
    is_verified = models.BooleanField(
        default=False, help_text="Only verified domains place new senders in the organization."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class TicketParticipant(models.Model):
    """Someone copied on an email ticket (Cc): they receive its public replies."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="participants")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="participations",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "email"], name="participant_once_per_ticket")
        ]

    def __str__(self) -> str:
        return f"{self.email} on {self.ticket_id}"


def raw_email_path(instance: InboundEmail, filename: str) -> str:
    return f"email/{timezone.now():%Y/%m/%d}/{filename}"


class InboundEmail(models.Model):
    """One mail that reached a door, kept as received (``raw``, downloadable by agents),
    with what became of it. ``email_message_id`` is unique: the same mail arriving twice (two
    doors, a retry) is recorded once and makes one message."""

    class Door(models.TextChoices):
        SMTP = "smtp", "SMTP receiver"
        IMAP = "imap", "IMAP mailbox"
        WEBHOOK = "webhook", "Provider webhook"

    class Outcome(models.TextChoices):
        RECEIVED = "received", "Received (being processed)"
        CREATED = "created", "Opened a ticket"
        APPENDED = "appended", "Added to a ticket"
        FOLLOW_UP = "follow_up", "Opened a follow-up of a closed ticket"
        IGNORED = "ignored", "Ignored (auto-reply, bounce, bulk, loop)"
        SPAM = "spam", "Spam"
        REFUSED = "refused", "Refused (a limit)"

    email_message_id = models.CharField("Message-ID", max_length=998, unique=True)
    door = models.CharField(max_length=10, choices=Door.choices)
    outcome = models.CharField(
        max_length=10, choices=Outcome.choices, default=Outcome.RECEIVED, db_index=True
    )
    reason = models.CharField(max_length=500, blank=True)
    from_address = models.EmailField(max_length=320, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    recipients = ArrayField(models.CharField(max_length=320), default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    raw = models.FileField(upload_to=raw_email_path, max_length=300)
    size = models.PositiveIntegerField()
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_emails"
    )
    message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_email"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["from_address", "-received_at"], name="inbound_sender_time_idx")
        ]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.subject[:60]}"


class Mailbox(models.Model):
    """An IMAP mailbox the desk reads (a beat task): mail found there goes through the
    same door as any other. ``last_uid`` (with ``uidvalidity``) is the watermark: each
    mail is read once; processed mail is flagged or moved. The password comes from the
    environment variable named in ``password_env``, never from the database."""

    class Security(models.TextChoices):
        SSL = "ssl", "SSL/TLS (usually port 993)"
        STARTTLS = "starttls", "STARTTLS (usually port 143)"
        NONE = "none", "None (local test servers only)"

    class AfterProcessing(models.TextChoices):
        FLAG = "flag", "Mark as seen and flagged"
        MOVE = "move", "Move to another folder"

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=993)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    username = models.CharField(max_length=320)
    password_env = models.CharField(
        "password environment variable",
        max_length=100,
        help_text="Name of the environment variable that holds the password.",
    )
    folder = models.CharField(max_length=200, default="INBOX")
    after_processing = models.CharField(
        max_length=10, choices=AfterProcessing.choices, default=AfterProcessing.FLAG
    )
    move_to = models.CharField(max_length=200, blank=True, default="Processed")
    address = models.ForeignKey(
        SupportAddress,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mailboxes",
        help_text="The support address this mailbox receives (when a mail does not name it).",
    )
    is_active = models.BooleanField(default=True)
    uidvalidity = models.BigIntegerField(null=True, blank=True, editable=False)
    last_uid = models.BigIntegerField(default=0, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return f"{self.name} ({self.username}@{self.host})"


class CopilotCall(models.Model):
    """One use of the agent's copilot on a ticket page (summarize, suggest a reply,
    rewrite a draft, translate), with what it cost. The AI dashboards count these beside
    the analyses (``analytics``); nothing here reaches the customer by itself."""

    class Kind(models.TextChoices):
        SUMMARIZE = "summarize", "Summarize"
        SUGGEST = "suggest", "Suggest a reply"
        REWRITE = "rewrite", "Rewrite a draft"
        TRANSLATE = "translate", "Translate"

    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="copilot_calls"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    provider = models.CharField(max_length=20)
    ai_model = models.CharField(max_length=100)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="copilot_call_time_idx")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.ticket_id} ({self.ai_model})"


class AnalysisTrace(models.Model):
    """Why the AI did what it did on a ticket: one row per analysis, its steps in order.

    ``steps`` is a list of ``{"step": name, ...}`` dicts written by the pipeline from the
    plan (``support.ai.trace``): triage (neighbours with their similarities, the policy
    rule that fired), retrieval (candidates with full-text and vector ranks and fused
    scores), the passages sent, the model's structured output, the confidence components
    and the routing decision with its reason. Shown to staff on the admin ticket page and
    in the API; rows older than ``HELPDESK_AI_TRACE_RETENTION_DAYS`` are deleted nightly.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="ai_traces")
    provider = models.CharField(max_length=20, blank=True)
    ai_model = models.CharField(max_length=100, blank=True)
    decision = models.CharField(max_length=20, blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    steps = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["ticket", "-created_at"], name="ai_trace_ticket_idx"),
            models.Index(fields=["created_at"], name="ai_trace_time_idx"),
        ]

    def __str__(self) -> str:
        return f"AI trace of {self.ticket_id}: {self.decision or self.outcome}"


# ======================================================================================
# HTTP actions the AI agent may call (support.services.actions)
# ======================================================================================

#: ``{name}`` in an action's URL template: the name of a parameter.
URL_PLACEHOLDER = r"\{([A-Za-z_][A-Za-z0-9_]*)\}"


def empty_parameters_schema() -> dict:
    """The schema of an action that takes no arguments (a new action starts from it)."""
    return {"type": "object", "properties": {}, "required": []}


class HttpAction(models.Model):
    """An HTTP call staff allow the AI agent to make on a ticket ("order status",
    "refund an order"), offered to the model as the tool ``action_<name>`` (``-`` → ``_``)
    with ``description`` and ``parameters_schema`` (a JSON Schema object).

    An action that ``changes_data`` never runs when the AI asks: the customer confirms it
    first and, when it ``requires_approval``, an agent then approves it (an
    :class:`ActionRun` records each request). A read-only action runs at once and its
    answer goes back to the model. ``url_template`` placeholders (``{order_id}``) are
    required parameters, filled in URL-quoted; the other arguments go in the query string
    (GET, DELETE) or a JSON body. The key is sent as ``Authorization: Bearer …`` from the
    environment variable ``secret_env_var``: only its name is stored.
    """

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    name = models.SlugField(
        max_length=50,
        unique=True,
        help_text="The AI sees the tool as action_<name> (hyphens become underscores).",
    )
    title = models.CharField(max_length=100, help_text="Shown to customers: “Refund an order”.")
    description = models.TextField(
        help_text="What the AI reads to decide when to call it and what it does."
    )
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.GET)
    url_template = models.CharField(
        "URL template",
        max_length=500,
        help_text="e.g. https://shop.example.com/api/orders/{order_id}/refund; each {name} "
        "is a required parameter, filled in URL-quoted.",
    )
    parameters_schema = models.JSONField(
        default=empty_parameters_schema,
        blank=True,
        help_text='JSON Schema of the arguments: {"type": "object", "properties": {…}, '
        '"required": […]}.',
    )
    secret_env_var = models.CharField(
        "key environment variable",
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z_][A-Za-z0-9_]*$", "Write the name of an environment variable."
            )
        ],
        help_text="Name of the environment variable whose value is sent as "
        "“Authorization: Bearer …” (empty: none). The value is never stored.",
    )
    ticket_types = ArrayField(
        models.CharField(max_length=20, choices=TicketType.choices),
        default=list,
        blank=True,
        help_text="Ticket types it is offered on (none: every type).",
    )
    changes_data = models.BooleanField(
        default=False,
        help_text="It changes something (a refund, a cancellation): the customer confirms "
        "before it runs.",
    )
    requires_approval = models.BooleanField(
        default=False, help_text="After the customer confirmed, an agent approves it."
    )
    is_active = models.BooleanField(default=True)
    timeout_seconds = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "HTTP action"

    def __str__(self) -> str:
        return self.title or self.name

    @property
    def tool_name(self) -> str:
        """The tool's name as the model sees it: ``action_refund_order``."""
        return f"action_{self.name.replace('-', '_')}"

    def clean(self) -> None:
        """The schema is a JSON Schema object, and every URL placeholder one of its
        required parameters (``support.services.actions.http_action_check`` also checks
        the schema itself and the URL)."""
        schema = self.parameters_schema
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise ValidationError(
                {"parameters_schema": 'Write a JSON Schema object: {"type": "object", …}.'}
            )
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            raise ValidationError(
                {
                    "parameters_schema": "Name the parameters in “properties”, each with its "
                    "schema ({} when there are none)."
                }
            )
        required = schema.get("required", [])
        if not isinstance(required, list):
            raise ValidationError({"parameters_schema": "“required” must list parameter names."})
        for name in re.findall(URL_PLACEHOLDER, self.url_template or ""):
            if name not in properties or name not in required:
                raise ValidationError(
                    {
                        "url_template": f"{{{name}}} must be a required parameter "
                        "(in “properties” and “required” of the schema)."
                    }
                )


class ActionRun(models.Model):
    """One request of the AI to run an :class:`HttpAction` that changes data, on a
    ticket, and what became of it.

    ``awaiting_confirmation`` (the customer confirms or declines) → ``awaiting_approval``
    when the action requires it (an agent approves or rejects) → ``queued`` (a task owed
    through the outbox) → ``succeeded`` or ``failed``, with the answer's status and body
    (bounded) or the error. :data:`ACTION_RUN_TRANSITIONS` lists the allowed moves.
    """

    class Status(models.TextChoices):
        AWAITING_CONFIRMATION = "awaiting_confirmation", "Awaiting the customer's confirmation"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting an agent's approval"
        QUEUED = "queued", "Queued"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        DECLINED = "declined", "Declined by the customer"
        REJECTED = "rejected", "Rejected by an agent"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="action_runs")
    action = models.ForeignKey(HttpAction, on_delete=models.PROTECT, related_name="runs")
    arguments = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=24, choices=Status.choices, default=Status.AWAITING_CONFIRMATION
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(
        null=True, blank=True, help_text="The answer: JSON, or text cut at 4,000 characters."
    )
    error = models.TextField(blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was approved, rejected or declined."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The admin's queue: runs awaiting approval (or in any status), oldest first.
            models.Index(fields=["status", "created_at"], name="action_run_status_idx"),
            models.Index(fields=["ticket", "-created_at"], name="action_run_ticket_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action_id} on {self.ticket_id}: {self.status}"

    @property
    def is_pending(self) -> bool:
        """Someone (the customer, an agent, a worker) still owes it a step."""
        return self.status in PENDING_ACTION_RUN_STATUSES


_R = ActionRun.Status
#: The allowed moves of a run; services refuse the others (409 in the API).
ACTION_RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    _R.AWAITING_CONFIRMATION: frozenset(
        {_R.AWAITING_APPROVAL, _R.QUEUED, _R.DECLINED, _R.REJECTED}
    ),
    _R.AWAITING_APPROVAL: frozenset({_R.QUEUED, _R.REJECTED}),
    _R.QUEUED: frozenset({_R.SUCCEEDED, _R.FAILED}),
    _R.SUCCEEDED: frozenset(),
    _R.FAILED: frozenset(),
    _R.DECLINED: frozenset(),
    _R.REJECTED: frozenset(),
}
PENDING_ACTION_RUN_STATUSES = frozenset({_R.AWAITING_CONFIRMATION, _R.AWAITING_APPROVAL, _R.QUEUED})
