from rest_framework import serializers

from bugfix.models import GithubLink
from config.serializers import StrictInputMixin
from core import limits


class GithubLinkSerializer(serializers.ModelSerializer):
    ticket = serializers.CharField(source="ticket.reference", read_only=True)
    ready_for_review = serializers.BooleanField(read_only=True)
    # URLs, blank until GitHub has them (so not "format: uri", which "" would break).
    issue_url = serializers.CharField(read_only=True)
    pr_url = serializers.CharField(read_only=True)
    checks_state = serializers.ChoiceField(
        choices=GithubLink.Checks.choices, allow_blank=True, read_only=True
    )
    review_decision = serializers.ChoiceField(
        choices=GithubLink._meta.get_field("review_decision").choices,
        allow_blank=True,
        read_only=True,
        help_text="Blank until a person reviews the pull request.",
    )

    class Meta:
        model = GithubLink
        fields = [
            "id",
            "ticket",
            "repository",
            "status",
            "issue_number",
            "issue_url",
            "branch_name",
            "pr_number",
            "pr_url",
            "suggested_files",
            "fix_explanation",
            "fix_confidence",
            "checks_state",
            "ready_for_review",
            "review_decision",
            "review_note",
            "reviewed_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ReviewSerializer(StrictInputMixin, serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=limits.COMMENT)
