"""The agent's copilot over the API: ``POST /api/tickets/{reference}/copilot/``.

Staff only. Runs one action of ``support.ai.copilot`` and answers its result; nothing is
sent to the customer. 400 with field messages for bad input, 429 with ``Retry-After``
beyond ``HELPDESK_COPILOT_PER_HOUR``, 503 with a clear body when the provider is
unavailable.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.serializers import StrictInputMixin
from core.permissions import IsAgent
from support import selectors
from support.ai import copilot

#: How long a client should wait before asking again after a 503.
RETRY_AFTER_SECONDS = 10


class CopilotRequestSerializer(StrictInputMixin, serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["summarize", "suggest", "rewrite", "translate"],
        help_text="summarize the conversation, suggest a reply, rewrite or translate `text`.",
    )
    text = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=copilot.MAX_TEXT,
        trim_whitespace=True,
        help_text="The draft to rewrite or translate.",
    )
    tone = serializers.ChoiceField(
        choices=list(copilot.TONES), required=False, help_text="For rewrite."
    )
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
        required=False,
        help_text="For translate: an ISO 639-1 code (de, fr, pt-br); absent: the "
        "customer's language, detected from their messages.",
        error_messages={"invalid": "Use a language code such as de, fr or pt-br."},
    )

    def validate(self, data):
        action = data["action"]
        if action in ("rewrite", "translate") and not data.get("text"):
            raise serializers.ValidationError(
                {"text": [f"Give the text to {action} (the reply box's draft)."]}
            )
        if action == "rewrite" and not data.get("tone"):
            raise serializers.ValidationError(
                {"tone": [f"Choose one of: {', '.join(copilot.TONES)}."]}
            )
        return data


class CopilotSourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["article", "ticket"])
    id = serializers.IntegerField(required=False, help_text="The article's id.")
    title = serializers.CharField(required=False)
    url = serializers.CharField(required=False)
    reference = serializers.CharField(required=False, help_text="A similar resolved ticket.")


class CopilotResultSerializer(serializers.Serializer):
    text = serializers.CharField(
        allow_blank=True, help_text="The result; empty when nothing in the knowledge base fits."
    )
    sources = CopilotSourceSerializer(many=True)
    model = serializers.CharField()
    cost_usd = serializers.DecimalField(max_digits=10, decimal_places=6)
    language = serializers.CharField(
        allow_blank=True,
        help_text="The translation's language; otherwise the customer's (empty: unknown).",
    )


class CopilotErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class TicketCopilotView(APIView):
    """Summarize, suggest a reply, rewrite or translate on one ticket (staff only)."""

    permission_classes = [IsAuthenticated, IsAgent]
    parser_classes = [JSONParser]

    @extend_schema(
        request=CopilotRequestSerializer,
        responses={
            200: CopilotResultSerializer,
            429: OpenApiResponse(CopilotErrorSerializer, description="Over the hourly limit."),
            503: OpenApiResponse(
                CopilotErrorSerializer, description="The AI provider is unavailable."
            ),
        },
    )
    def post(self, request, reference=None):
        ticket = get_object_or_404(selectors.ticket_list(user=request.user), reference=reference)
        data = CopilotRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = copilot.run(ticket=ticket, user=request.user, **data.validated_data)
        except copilot.CopilotRateLimited as limited:
            raise Throttled(wait=limited.retry_after, detail=limited.message) from limited
        except copilot.CopilotUnavailable as down:
            return Response(
                down.as_dict(),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return Response(
            CopilotResultSerializer(
                {
                    "text": result.text,
                    "sources": result.sources,
                    "model": result.model,
                    "cost_usd": result.cost_usd,
                    "language": result.language,
                }
            ).data
        )
