"""Serializers of the support API: output shapes, and input validation for each action.

Fields meant for staff (AI confidence, sentiment, internal metadata) are null for
customers; internal notes never reach them at all (the selectors filter them out).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer

from config.serializers import StrictInputMixin
from core import limits
from core.roles import is_agent
from support import custom_fields
from support.api.tags import TagNameField
from support.models import (
    Attachment,
    Escalation,
    Message,
    SavedReply,
    Ticket,
    TicketEvent,
    TicketPriority,
    TicketType,
    TrainingExample,
)
from support.services.tags import MAX_TAGS_PER_TICKET

User = get_user_model()

CUSTOM_FIELDS_HELP = (
    "Custom field values by key; keys, kinds and choices as listed by /api/custom-fields/ "
    "(text, number, ISO date YYYY-MM-DD, one choice, a list of choices, true/false)."
)


class TokenRequestSerializer(StrictInputMixin, AuthTokenSerializer):
    """Credentials for an API token; ``otp``: the current code of the user's
    authenticator app, required when they have one."""

    otp = serializers.CharField(required=False, max_length=12, trim_whitespace=True)


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_staff", "roles"]
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        roles = [] if is_agent(user) else ["customer"]
        names = {group.name for group in user.groups.all()}
        if settings.AGENTS_GROUP in names:
            roles.append("agent")
        if settings.MANAGERS_GROUP in names or user.is_superuser:
            roles.append("manager")
        if user.is_superuser:
            roles.append("admin")
        return roles


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.get_username()


class _StaffOnlyMixin:
    """Blanks the named fields for customers (so the schema marks them nullable)."""

    staff_only_fields: tuple[str, ...] = ()

    def get_extra_kwargs(self):
        extra_kwargs = super().get_extra_kwargs()
        for name in self.staff_only_fields:
            extra_kwargs[name] = {**extra_kwargs.get(name, {}), "allow_null": True}
        return extra_kwargs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not is_agent(self.context["request"].user):
            for name in self.staff_only_fields:
                data[name] = None
        return data


#: The references of a ticket's merge and split links, read with the ticket in one
#: query (``queryset.annotate(**TICKET_LINKS)``): a list needs no query per row.
TICKET_LINKS = {
    "merged_into_reference": F("merged_into__reference"),
    "split_from_reference": F("split_from__reference"),
}


def _linked_reference(ticket, name: str) -> str | None:
    if getattr(ticket, f"{name}_id") is None:
        return None
    annotated = getattr(ticket, f"{name}_reference", None)
    return annotated if annotated is not None else getattr(ticket, name).reference


class TicketSerializer(_StaffOnlyMixin, serializers.ModelSerializer):
    requester = PersonSerializer(read_only=True)
    assignee = PersonSerializer(read_only=True, allow_null=True)
    organization = serializers.StringRelatedField(read_only=True, allow_null=True)
    team = serializers.StringRelatedField(read_only=True, allow_null=True)
    sla_breached = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    custom_fields = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField(
        help_text="Staff only (null for customers): the ticket's tag names."
    )
    merged_into = serializers.SerializerMethodField(
        help_text="The reference of the ticket this duplicate was merged into, or null."
    )
    split_from = serializers.SerializerMethodField(
        help_text="The reference of the ticket this one was split off from, or null."
    )

    staff_only_fields = ("ai_confidence", "sentiment", "team", "tags")

    class Meta:
        model = Ticket
        fields = [
            "reference",
            "url",
            "subject",
            "description",
            "type",
            "status",
            "priority",
            "channel",
            "requester",
            "organization",
            "assignee",
            "team",
            "ai_confidence",
            "sentiment",
            "satisfaction_rating",
            "satisfaction_comment",
            "reopened_count",
            "created_at",
            "updated_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "sla_due_at",
            "sla_breached",
            "first_response_due_at",
            "next_response_due_at",
            "resolution_due_at",
            "sla_paused_at",
            "sla_at_risk_at",
            "sla_breached_at",
            "tags",
            "custom_fields",
            "merged_into",
            "split_from",
        ]
        read_only_fields = fields

    def get_merged_into(self, ticket) -> str | None:
        return _linked_reference(ticket, "merged_into")

    def get_split_from(self, ticket) -> str | None:
        return _linked_reference(ticket, "split_from")

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_tags(self, ticket):
        if not is_agent(self.context["request"].user):
            return None
        return sorted(tag.name for tag in ticket.tags.all())  # prefetched by the list

    @extend_schema_field(
        serializers.DictField(
            help_text=CUSTOM_FIELDS_HELP + " Customers see the fields shown to them only."
        )
    )
    def get_custom_fields(self, ticket):
        if is_agent(self.context["request"].user):
            return ticket.custom_fields or {}
        # One query for a whole list: the definitions are kept in the (shared) context.
        definitions = self.context.get("_custom_field_definitions")
        if definitions is None:
            definitions = custom_fields.active_fields()
            self.context["_custom_field_definitions"] = definitions
        return custom_fields.visible_values(ticket.custom_fields, definitions, for_customer=True)

    def get_sla_breached(self, ticket) -> bool:
        return ticket.sla_breached(timezone.now())

    def get_url(self, ticket) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("api-ticket-detail", kwargs={"reference": ticket.reference})
        )


class TicketCreateSerializer(StrictInputMixin, serializers.Serializer):
    subject = serializers.CharField(max_length=limits.SUBJECT)
    description = serializers.CharField(max_length=limits.TICKET_DESCRIPTION)
    type = serializers.ChoiceField(choices=TicketType.choices, default=TicketType.GENERAL)
    priority = serializers.ChoiceField(
        choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    requester = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="Staff only: open the ticket on behalf of this customer.",
    )
    attachments = serializers.ListField(child=serializers.FileField(), required=False, default=list)
    custom_fields = serializers.DictField(
        required=False,
        help_text=CUSTOM_FIELDS_HELP + " Customers fill in the fields marked "
        "customer_editable; those required for the ticket's type must be given.",
    )

    def validate_requester(self, requester):
        if not is_agent(self.context["request"].user):
            raise serializers.ValidationError("Only staff can open tickets for someone else.")
        return requester


class TicketUpdateSerializer(StrictInputMixin, serializers.Serializer):
    subject = serializers.CharField(max_length=limits.SUBJECT, required=False)
    type = serializers.ChoiceField(choices=TicketType.choices, required=False)
    priority = serializers.ChoiceField(choices=TicketPriority.choices, required=False)
    tags = serializers.ListField(
        child=TagNameField(),
        max_length=MAX_TAGS_PER_TICKET,
        required=False,
        help_text="Staff: replace the ticket's tags by these names (stored lower case, "
        "spaces as hyphens; new names are created unless the desk uses a curated list).",
    )
    custom_fields = serializers.DictField(
        required=False,
        help_text=CUSTOM_FIELDS_HELP + " Only the keys given change; null removes a value.",
    )


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "filename", "content_type", "size", "url"]

    def get_url(self, attachment) -> str:
        return self.context["request"].build_absolute_uri(
            reverse(
                "support:attachment",
                kwargs={"reference": attachment.message.ticket.reference, "pk": attachment.pk},
            )
        )


class MessageSerializer(_StaffOnlyMixin, serializers.ModelSerializer):
    author = PersonSerializer(read_only=True, allow_null=True)
    attachments = AttachmentSerializer(many=True, read_only=True)

    staff_only_fields = (
        "ai_model",
        "ai_confidence",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "article_ids",
        "example_ids",
        "delivery_status",
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "sender_kind",
            "author",
            "body",
            "is_internal",
            "created_at",
            "attachments",
            "ai_model",
            "ai_confidence",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "latency_ms",
            "article_ids",
            "example_ids",
            "delivery_status",  # what became of the mail it went out as (staff only)
        ]
        read_only_fields = fields
        extra_kwargs = {
            "delivery_status": {
                "help_text": "Staff only: what became of the mail this message went out as "
                "(null when it was not mailed)."
            }
        }

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("delivery_status") == "":
            data["delivery_status"] = None  # not mailed: null, not a value outside the enum
        return data


class MessageCreateSerializer(StrictInputMixin, serializers.Serializer):
    body = serializers.CharField(max_length=limits.MESSAGE_BODY)
    is_internal = serializers.BooleanField(
        default=False, help_text="Staff only: a note customers never see."
    )
    attachments = serializers.ListField(child=serializers.FileField(), required=False, default=list)
    seen_message_id = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=2**63 - 1,
        help_text=(
            "The newest message id the writer had read. When a public message from "
            "someone else is newer, the reply is refused with 409 (code stale_reply) "
            "unless confirm_send is true. Leave it out to send without the check."
        ),
    )
    confirm_send = serializers.BooleanField(
        default=False, help_text="Send even though a newer message arrived (seen_message_id)."
    )

    def validate_is_internal(self, value):
        if value and not is_agent(self.context["request"].user):
            raise serializers.ValidationError("Only staff can write internal notes.")
        return value


class TicketEventSerializer(_StaffOnlyMixin, serializers.ModelSerializer):
    actor = PersonSerializer(read_only=True, allow_null=True)
    description = serializers.CharField(read_only=True)

    staff_only_fields = ("metadata",)

    class Meta:
        model = TicketEvent
        fields = [
            "id",
            "kind",
            "actor",
            "actor_kind",
            "field",
            "old_value",
            "new_value",
            "description",
            "metadata",
            "created_at",
        ]
        read_only_fields = fields


class EscalateSerializer(StrictInputMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=limits.REASON)
    kind = serializers.ChoiceField(
        choices=Escalation.Kind.choices,
        required=False,
        help_text="Staff only; a customer's request is always customer_requested.",
    )
    topic = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.TOPIC
    )


class EscalationSerializer(serializers.ModelSerializer):
    team = serializers.StringRelatedField(allow_null=True)
    assignee = PersonSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Escalation
        fields = ["id", "kind", "reason", "topic", "team", "assignee", "is_resolved", "created_at"]
        read_only_fields = fields


class RateSerializer(StrictInputMixin, serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.COMMENT
    )


class AssignSerializer(StrictInputMixin, serializers.Serializer):
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True, is_staff=True),
        allow_null=True,
        required=False,
        help_text="Staff user id; null unassigns; omitted assigns to you.",
    )


class SavedReplySerializer(serializers.ModelSerializer):
    new_status = serializers.ChoiceField(
        choices=SavedReply._meta.get_field("new_status").choices,
        allow_blank=True,
        read_only=True,
        help_text="The status the ticket moves to; blank: it keeps its status.",
    )

    class Meta:
        model = SavedReply
        fields = ["id", "title", "body", "new_status"]
        read_only_fields = fields


class ApplySavedReplySerializer(StrictInputMixin, serializers.Serializer):
    saved_reply = serializers.PrimaryKeyRelatedField(queryset=SavedReply.objects.all())


class TrainingExampleSerializer(serializers.ModelSerializer):
    """A training example as staff see it over the API: the anonymized texts only (the
    originals stay in the admin review page)."""

    ticket = serializers.CharField(source="ticket.reference", read_only=True)
    ready_for_training = serializers.BooleanField(source="is_ready_for_training", read_only=True)

    class Meta:
        model = TrainingExample
        fields = [
            "id",
            "ticket",
            "ticket_type",
            "anonymized_question",
            "anonymized_answer",
            "pii_found",
            "pii_remaining",
            "outcome",
            "author_kind",
            "confidence",
            "satisfaction_rating",
            "quality_score",
            "status",
            "review_note",
            "reviewed_at",
            "ready_for_training",
            "used_in_training",
            "exported_at",
            "times_used_by_ai",
            "created_at",
        ]
        read_only_fields = fields


class TrainingExampleEditSerializer(StrictInputMixin, serializers.Serializer):
    anonymized_question = serializers.CharField(max_length=limits.TRAINING_TEXT)
    anonymized_answer = serializers.CharField(max_length=limits.TRAINING_TEXT)


class TrainingExampleApproveSerializer(StrictInputMixin, serializers.Serializer):
    quality_score = serializers.IntegerField(min_value=1, max_value=5)


class TrainingExampleRejectSerializer(StrictInputMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=limits.COMMENT)
