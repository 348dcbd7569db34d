"""The AI's decision traces of a ticket: ``GET /api/tickets/{reference}/ai-traces/``.

Staff only (403 for customers, even on their own tickets: a trace holds the AI's internal
reasoning; 401 without credentials). Newest first, paginated like the other lists. Each
trace's ``steps`` are described in ``support.ai.trace``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated

from core.permissions import IsAgent
from support import selectors
from support.models import AnalysisTrace

STEP_NAMES = [
    "triage",
    "retrieval",
    "passages",
    "examples",
    "model",
    "confidence",
    "route",
    "error",
]


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"step": {"type": "string", "enum": STEP_NAMES}},
            "required": ["step"],
            "additionalProperties": True,
        },
        "description": "The analysis's steps in order (support.ai.trace): triage with its "
        "neighbours and policy rules, retrieval candidates with full-text and vector ranks "
        "and fused scores, passages sent, examples used, the model's structured output (or "
        "its error), confidence components, and the route with its reason.",
    }
)
class TraceStepsField(serializers.JSONField):
    pass


class AnalysisTraceSerializer(serializers.ModelSerializer):
    steps = TraceStepsField(read_only=True)

    class Meta:
        model = AnalysisTrace
        fields = [
            "id",
            "created_at",
            "outcome",
            "decision",
            "reason",
            "confidence",
            "provider",
            "ai_model",
            "duration_ms",
            "steps",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "outcome": {
                "help_text": "resolved, asked, escalated, superseded (a person acted "
                "meanwhile), drafted (an internal draft) or failed."
            },
            "decision": {"help_text": "resolve, ask or escalate (empty when it failed early)."},
        }


class TicketAiTraceList(generics.ListAPIView):
    """Why the AI did what it did on one ticket: its analyses, newest first (staff only)."""

    serializer_class = AnalysisTraceSerializer
    permission_classes = [IsAuthenticated, IsAgent]
    filter_backends: list = []  # newest first, nothing to filter or sort by

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AnalysisTrace.objects.none()
        ticket = selectors.ticket_get(user=self.request.user, reference=self.kwargs["reference"])
        return selectors.ai_trace_list(user=self.request.user, ticket=ticket)
