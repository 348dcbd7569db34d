"""Views of the analytics API: the dashboards' figures for managers, over a date range."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors
from analytics.api import serializers as s
from config.db_router import replica_reads
from core.permissions import IsManager


class _RangeView(APIView):
    """Each ``get`` reads the rollups from the read replica when there is one (sign-in and
    permissions before it stay on default): config.db_router."""

    permission_classes = [IsAuthenticated, IsManager]
    range_serializer = s.RangeSerializer

    def _range(self, request):
        params = self.range_serializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return params.validated_data


class OverviewView(_RangeView):
    """The desk day by day over the range, and the range's totals."""

    @extend_schema(parameters=[s.RangeSerializer], responses=s.OverviewSerializer)
    @replica_reads()
    def get(self, request):
        r = self._range(request)
        data = {
            **r,
            "totals": selectors.overview_totals(r["start"], r["end"]),
            "days": selectors.overview_days(r["start"], r["end"]),
            "tags": selectors.top_tags(r["start"], r["end"]),
        }
        return Response(s.OverviewSerializer(data).data)


class ModelsView(_RangeView):
    """AI models side by side over the range, with their calibration."""

    @extend_schema(parameters=[s.RangeSerializer], responses=s.ModelsSerializer)
    @replica_reads()
    def get(self, request):
        r = self._range(request)
        data = {
            **r,
            "models": selectors.model_comparison(r["start"], r["end"]),
            "calibration": selectors.calibration(r["start"], r["end"]),
        }
        return Response(s.ModelsSerializer(data).data)


class AgentsView(_RangeView):
    """The agents' leaderboard over the range; with ``agent``, that agent's days."""

    range_serializer = s.AgentRangeSerializer

    @extend_schema(parameters=[s.AgentRangeSerializer], responses=s.AgentsSerializer)
    @replica_reads()
    def get(self, request):
        r = self._range(request)
        days = (
            selectors.agent_days(r["agent"], r["start"], r["end"]) if r["agent"] is not None else []
        )
        data = {
            "start": r["start"],
            "end": r["end"],
            "agents": selectors.agent_leaderboard(r["start"], r["end"]),
            "agent_days": days,
        }
        return Response(s.AgentsSerializer(data).data)


class KnowledgeView(_RangeView):
    """Top articles, articles the AI cites that customers rate unhelpful, content gaps."""

    @extend_schema(parameters=[s.RangeSerializer], responses=s.KnowledgeSerializer)
    @replica_reads()
    def get(self, request):
        r = self._range(request)
        totals = selectors.overview_totals(r["start"], r["end"])
        data = {
            **r,
            "search_deflection_rate": totals["search_deflection_rate"],
            "ai_answer_deflection_rate": totals["ai_answer_deflection_rate"],
            "top_articles": selectors.top_articles(r["start"], r["end"]),
            "unhelpful_cited_articles": selectors.unhelpful_cited_articles(r["start"], r["end"]),
            "content_gaps": selectors.content_gaps(r["start"], r["end"]),
        }
        return Response(s.KnowledgeSerializer(data).data)
