"""Serializers of the feedback API. Voters are never listed publicly; ``admin_notes`` is
null for everyone but staff."""

from __future__ import annotations

from rest_framework import serializers

from config.serializers import StrictInputMixin
from core import limits
from core.roles import is_agent
from feedback.models import FeatureRequest, FeatureRequestEvent, Vote


class FeatureRequestSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    description_html = serializers.CharField(read_only=True)
    weighted_score = serializers.DecimalField(max_digits=14, decimal_places=4, read_only=True)
    my_vote = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Your vote: 1 up, -1 down, null none."
    )
    related_article = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    admin_notes = serializers.SerializerMethodField()

    class Meta:
        model = FeatureRequest
        fields = [
            "id",
            "url",
            "title",
            "description",
            "description_html",
            "kind",
            "status",
            "author",
            "related_article",
            "is_public",
            "merged_into",
            "upvotes",
            "downvotes",
            "weighted_score",
            "my_vote",
            "admin_notes",
            "created_at",
            "updated_at",
            "status_changed_at",
        ]
        read_only_fields = fields

    def get_url(self, feature) -> str:
        request = self.context.get("request")
        path = feature.get_absolute_url()
        return request.build_absolute_uri(path) if request else path

    def get_author(self, feature) -> str | None:
        author = feature.author
        return (author.get_short_name() or author.get_username()) if author else None

    def get_admin_notes(self, feature) -> str | None:
        request = self.context.get("request")
        return feature.admin_notes if request and is_agent(request.user) else None


class FeatureRequestCreateSerializer(StrictInputMixin, serializers.Serializer):
    title = serializers.CharField(min_length=5, max_length=limits.TITLE)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=limits.FEATURE_DESCRIPTION
    )
    kind = serializers.ChoiceField(
        choices=FeatureRequest.Kind.choices, default=FeatureRequest.Kind.FEATURE_REQUEST
    )
    related_article = serializers.SlugRelatedField(
        slug_field="slug",
        required=False,
        allow_null=True,
        queryset=FeatureRequest._meta.get_field("related_article").related_model.objects.filter(
            status="published"
        ),
    )


class VoteSerializer(StrictInputMixin, serializers.Serializer):
    value = serializers.ChoiceField(choices=["up", "down"], help_text="up or down")

    def validate_value(self, value) -> int:
        return Vote.Value.UP if value == "up" else Vote.Value.DOWN


class StatusChangeSerializer(StrictInputMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=FeatureRequest.Status.choices)
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=limits.NOTE, help_text="Emailed to the voters."
    )


class MergeSerializer(StrictInputMixin, serializers.Serializer):
    into = serializers.PrimaryKeyRelatedField(
        queryset=FeatureRequest.objects.filter(merged_into__isnull=True),
        help_text="Id of the request that survives.",
    )


class FeatureRequestEventSerializer(serializers.ModelSerializer):
    # Blank when the event is not a status change.
    old_status = serializers.ChoiceField(
        choices=FeatureRequest.Status.choices, allow_blank=True, read_only=True
    )
    new_status = serializers.ChoiceField(
        choices=FeatureRequest.Status.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = FeatureRequestEvent
        fields = ["kind", "old_status", "new_status", "note", "other", "created_at"]
        read_only_fields = fields
