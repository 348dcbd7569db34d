from rest_framework import serializers

from integrations.models import GithubLink


class GithubLinkSerializer(serializers.ModelSerializer):
    ticket = serializers.CharField(source="ticket.reference", read_only=True)
    ready_for_review = serializers.BooleanField(read_only=True)

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


class ReviewSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
