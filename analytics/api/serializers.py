"""Serializers of the analytics API: the range asked for, and the rollups' figures."""

from __future__ import annotations

from rest_framework import serializers

from analytics import selectors, services
from analytics.models import AgentPerformance, DailyOverview
from config.serializers import StrictInputMixin


class RangeSerializer(StrictInputMixin, serializers.Serializer):
    start = serializers.DateField(
        required=False, help_text="First day (default: 29 days before end)."
    )
    end = serializers.DateField(required=False, help_text="Last day, included (default: today).")

    def validate(self, data):
        start, end, error = selectors.date_range(
            data.get("start"), data.get("end"), today=services.local_today()
        )
        if error:
            raise serializers.ValidationError({"start": [error]})
        return {"start": start, "end": end}


class AgentRangeSerializer(RangeSerializer):
    agent = serializers.IntegerField(
        required=False, help_text="An agent's id: add their day-by-day figures."
    )

    def validate(self, data):
        return {**super().validate(data), "agent": data.get("agent")}


class OverviewTotalsSerializer(serializers.Serializer):
    days = serializers.IntegerField(help_text="Days rolled up in the range.")
    tickets_opened = serializers.IntegerField()
    opened_web = serializers.IntegerField(help_text="Opened on the portal.")
    opened_email = serializers.IntegerField(help_text="Opened by email.")
    opened_chat = serializers.IntegerField(help_text="Opened in the live chat.")
    opened_api = serializers.IntegerField(help_text="Opened through the API.")
    tickets_resolved = serializers.IntegerField()
    tickets_escalated = serializers.IntegerField()
    tickets_reopened = serializers.IntegerField()
    ai_resolved = serializers.IntegerField()
    ai_resolution_rate = serializers.FloatField(allow_null=True)
    ai_resolution_goal = serializers.FloatField()
    median_first_response_seconds = serializers.FloatField(
        allow_null=True, help_text="Daily medians weighted by each day's first responses."
    )
    csat_count = serializers.IntegerField()
    csat_average = serializers.FloatField(allow_null=True)
    ai_requests = serializers.IntegerField()
    ai_cost_usd = serializers.DecimalField(
        max_digits=14, decimal_places=6, allow_null=True, help_text="Analyses and copilot calls."
    )
    copilot_requests = serializers.IntegerField(help_text="Agents' copilot calls.")
    copilot_cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6, allow_null=True)
    cost_per_resolved_usd = serializers.FloatField(allow_null=True)
    sla_breaches = serializers.IntegerField()
    search_deflection_rate = serializers.FloatField(allow_null=True)
    ai_answer_deflection_rate = serializers.FloatField(allow_null=True)
    backlog = serializers.IntegerField(allow_null=True, help_text="Open at the end of the range.")


class DailyOverviewSerializer(serializers.ModelSerializer):
    ai_resolution_rate = serializers.FloatField(allow_null=True)
    cost_per_resolved_usd = serializers.FloatField(allow_null=True)

    class Meta:
        model = DailyOverview
        exclude = ["id", "computed_at"]


class TagRowSerializer(serializers.Serializer):
    tag = serializers.CharField(source="tag_name")
    tickets_opened = serializers.IntegerField(help_text="Tickets opened with the tag.")
    tickets_resolved = serializers.IntegerField(help_text="Tickets with the tag resolved.")


class OverviewSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    totals = OverviewTotalsSerializer()
    days = DailyOverviewSerializer(many=True)
    tags = TagRowSerializer(many=True, help_text="The most used tags over the range.")


class ModelRowSerializer(serializers.Serializer):
    ai_model = serializers.CharField()
    requests = serializers.IntegerField()
    resolutions = serializers.IntegerField()
    successful_resolutions = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    escalations = serializers.IntegerField()
    questions = serializers.IntegerField()
    avg_confidence = serializers.FloatField(allow_null=True)
    high_confidence = serializers.IntegerField()
    low_confidence = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    cost_per_request_usd = serializers.FloatField(allow_null=True)
    copilot_requests = serializers.IntegerField(help_text="Agents' copilot calls.")
    copilot_cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    satisfaction_count = serializers.IntegerField()
    satisfaction_average = serializers.FloatField(allow_null=True)
    positive_ratings = serializers.IntegerField()
    negative_ratings = serializers.IntegerField()


class CalibrationSerializer(serializers.Serializer):
    ai_model = serializers.CharField()
    bucket = serializers.IntegerField(help_text="0 = confidence 0.0–0.1 … 9 = 0.9–1.0")
    confidence_from = serializers.FloatField()
    confidence_to = serializers.FloatField()
    count = serializers.IntegerField()
    successful = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)


class ModelsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    models = ModelRowSerializer(many=True)
    calibration = CalibrationSerializer(many=True)


class AgentRowSerializer(serializers.Serializer):
    agent = serializers.IntegerField()
    username = serializers.CharField(source="agent__username")
    tickets_handled = serializers.IntegerField()
    tickets_resolved = serializers.IntegerField()
    resolutions_kept = serializers.IntegerField()
    escalated_further = serializers.IntegerField()
    first_responses = serializers.IntegerField()
    avg_first_response_seconds = serializers.FloatField(allow_null=True)
    median_first_response_seconds = serializers.FloatField(allow_null=True)
    avg_resolution_seconds = serializers.FloatField(allow_null=True)
    csat_count = serializers.IntegerField()
    csat_average = serializers.FloatField(allow_null=True)
    training_examples_created = serializers.IntegerField()
    quality_score = serializers.FloatField(allow_null=True)


class AgentDaySerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentPerformance
        exclude = ["id", "computed_at", "agent"]


class AgentsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    agents = AgentRowSerializer(many=True)
    agent_days = AgentDaySerializer(many=True, help_text="The chosen agent's days, if any.")


class ArticleRowSerializer(serializers.Serializer):
    article = serializers.IntegerField()
    title = serializers.CharField(source="article__title")
    slug = serializers.CharField(source="article__slug")
    views = serializers.IntegerField()
    search_impressions = serializers.IntegerField()
    ai_references = serializers.IntegerField()
    helpful_votes = serializers.IntegerField()
    not_helpful_votes = serializers.IntegerField()
    helpful_ratio = serializers.FloatField(allow_null=True)
    cited_rated = serializers.IntegerField()
    cited_rated_low = serializers.IntegerField()


class GapSerializer(serializers.Serializer):
    query = serializers.CharField()
    searches = serializers.IntegerField()
    best_similarity = serializers.FloatField(allow_null=True)


class KnowledgeSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    search_deflection_rate = serializers.FloatField(allow_null=True)
    ai_answer_deflection_rate = serializers.FloatField(allow_null=True)
    top_articles = ArticleRowSerializer(many=True)
    unhelpful_cited_articles = ArticleRowSerializer(many=True)
    content_gaps = GapSerializer(many=True)
