"""Runs of HTTP actions over the API (``support.services.actions``):

- ``GET /api/tickets/{reference}/actions/``: the runs of a ticket, newest first (anyone
  who may see the ticket; the answer, error and approver are staff only);
- ``POST /api/tickets/{reference}/actions/{id}/confirm/`` and ``…/decline/``: the
  ticket's requester (or their organization's admin) confirms or declines what the AI
  asked to do; staff get 403, others 404 as for tickets they cannot see;
- ``POST /api/action-runs/{id}/approve/`` and ``…/reject/`` ``{"reason": "…"}``: an agent
  approves a confirmed run (it runs now) or rejects it (customers get 403).

Bad input answers 400 with the field's message; a run in the wrong state (already
confirmed, not confirmed yet, done) 409.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.serializers import StrictInputMixin
from core import limits
from core.permissions import IsAgent
from support import selectors, services
from support.api.serializers import PersonSerializer, _StaffOnlyMixin
from support.models import ActionRun, HttpAction


class HttpActionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = HttpAction
        fields = ["name", "title", "description", "method", "changes_data", "requires_approval"]
        read_only_fields = fields


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "The arguments the AI gave, as the action's parameters schema says.",
    }
)
class ArgumentsField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "nullable": True,
        "description": "The answer (staff only): its JSON, or its text cut at 4,000 "
        "characters; null before the call.",
    }
)
class AnswerField(serializers.JSONField):
    pass


class ActionRunSerializer(_StaffOnlyMixin, serializers.ModelSerializer):
    """What the AI asked to do on a ticket with an HTTP action, and what became of it."""

    ticket = serializers.CharField(source="ticket.reference", read_only=True)
    action = HttpActionSummarySerializer(read_only=True)
    arguments = ArgumentsField(read_only=True)
    response_body = AnswerField(read_only=True, allow_null=True)
    approved_by = PersonSerializer(read_only=True, allow_null=True)

    staff_only_fields = ("response_status", "response_body", "error", "approved_by")

    class Meta:
        model = ActionRun
        fields = [
            "id",
            "ticket",
            "action",
            "arguments",
            "status",
            "response_status",
            "response_body",
            "error",
            "confirmed_at",
            "approved_by",
            "decided_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "status": {
                "help_text": "awaiting_confirmation (the customer confirms or declines), "
                "awaiting_approval (an agent approves or rejects), queued, succeeded, failed, "
                "declined or rejected."
            },
            "error": {"help_text": "Why the call failed (staff only)."},
        }


class ActionRunRejectSerializer(StrictInputMixin, serializers.Serializer):
    reason = serializers.CharField(
        max_length=limits.REASON, help_text="For the team (an internal note)."
    )


def _out(request, run: ActionRun) -> Response:
    run = services.action_runs_of(ticket=run.ticket).get(pk=run.pk)
    return Response(ActionRunSerializer(run, context={"request": request}).data)


class TicketActionRunList(APIView):
    """The runs of HTTP actions on one ticket, newest first."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ActionRunSerializer(many=True), summary="Actions of a ticket")
    def get(self, request, reference: str):
        ticket = selectors.ticket_get(user=request.user, reference=reference)
        runs = services.action_runs_of(ticket=ticket)
        return Response(ActionRunSerializer(runs, many=True, context={"request": request}).data)


class _CustomerDecision(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    def _run(self, request, reference: str, pk: int) -> ActionRun:
        ticket = selectors.ticket_get(user=request.user, reference=reference)
        return get_object_or_404(services.action_runs_of(ticket=ticket), pk=pk)


class ActionRunConfirmView(_CustomerDecision):
    """The customer confirms what the AI asked to do: it runs (or waits for an agent's
    approval, when the action requires one)."""

    @extend_schema(request=None, responses=ActionRunSerializer, summary="Confirm an action")
    def post(self, request, reference: str, pk: int):
        run = self._run(request, reference, pk)
        return _out(request, services.action_run_confirm(run=run, actor=request.user))


class ActionRunDeclineView(_CustomerDecision):
    """The customer declines what the AI asked to do: nothing runs."""

    @extend_schema(request=None, responses=ActionRunSerializer, summary="Decline an action")
    def post(self, request, reference: str, pk: int):
        run = self._run(request, reference, pk)
        return _out(request, services.action_run_decline(run=run, actor=request.user))


class _AgentDecision(APIView):
    permission_classes = [IsAuthenticated, IsAgent]
    parser_classes = [JSONParser]

    def _run(self, pk: int) -> ActionRun:
        return get_object_or_404(ActionRun.objects.select_related("ticket"), pk=pk)


class ActionRunApproveView(_AgentDecision):
    """Approve a run the customer confirmed (staff): it runs now."""

    @extend_schema(request=None, responses=ActionRunSerializer, summary="Approve an action")
    def post(self, request, pk: int):
        run = services.action_run_approve(run=self._run(pk), actor=request.user)
        return _out(request, run)


class ActionRunRejectView(_AgentDecision):
    """Reject a run (staff): it does not run; the customer is told, the reason becomes
    an internal note."""

    @extend_schema(
        request=ActionRunRejectSerializer, responses=ActionRunSerializer, summary="Reject an action"
    )
    def post(self, request, pk: int):
        run = self._run(pk)
        serializer = ActionRunRejectSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        run = services.action_run_reject(
            run=run, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return _out(request, run)
