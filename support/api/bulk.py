"""``POST /api/tickets/bulk/``: one action on many tickets, for staff (customers get 403).

The body names the tickets by reference, the action and that action's parameter; each
ticket goes through its service on its own (``support.bulk.run``) and the answer lists
what was done and what was refused, with the reason. A bad parameter (an unknown agent,
status, priority or saved reply, a bad tag name, a merge target that does not exist, more
than ``support.bulk.MAX_TICKETS`` tickets) is a 400 naming the field, and nothing changed.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.serializers import StrictInputMixin
from core.permissions import IsAgent
from support import bulk
from support.models import TicketPriority

# ---- serializers ----------------------------------------------------------------------


class StrictTextList(serializers.ListField):
    """A list of texts that refuses other JSON types inside it (DRF would turn ``1`` into
    ``"1"``) and measures each text as sent."""

    def to_internal_value(self, data):
        if isinstance(data, list):
            limit = self.child.max_length
            for item in data:
                if not isinstance(item, str):
                    raise serializers.ValidationError("Each item must be a string.")
                if limit and len(item) > limit:
                    raise serializers.ValidationError(f"Each item has at most {limit} characters.")
        return super().to_internal_value(data)


class BulkRequestSerializer(StrictInputMixin, serializers.Serializer):
    """The tickets (by reference), the action, and that action's parameter: ``assignee``
    (assign), ``status``, ``priority``, ``add_tags`` / ``remove_tags`` (tags),
    ``merge_into`` (merge), ``saved_reply``; parameters of other actions are ignored."""

    tickets = StrictTextList(
        child=serializers.CharField(max_length=20, trim_whitespace=False),
        min_length=1,
        max_length=bulk.MAX_TICKETS,
        help_text="References of the tickets (at most 500); an unknown one is refused.",
    )
    action = serializers.ChoiceField(choices=list(bulk.BULK_ACTIONS))
    assignee = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="assign: an agent's id; null unassigns; left out: yourself.",
    )
    status = serializers.ChoiceField(
        choices=list(bulk.STATUS_TARGETS),
        required=False,
        help_text="status (required there): awaiting_customer, resolved, closed or reopen.",
    )
    priority = serializers.ChoiceField(
        choices=TicketPriority.choices, required=False, help_text="priority (required there)."
    )
    add_tags = StrictTextList(
        child=serializers.CharField(max_length=50, trim_whitespace=False),
        required=False,
        max_length=20,
        help_text="tags: names to add (a new name creates the tag when tags are free).",
    )
    remove_tags = StrictTextList(
        child=serializers.CharField(max_length=50, trim_whitespace=False),
        required=False,
        max_length=20,
        help_text="tags: names to remove.",
    )
    merge_into = serializers.CharField(
        required=False,
        max_length=20,
        help_text="merge (required there): the reference of the ticket to keep, one of "
        "the selection or another; the others are merged into it.",
    )
    saved_reply = serializers.IntegerField(
        required=False, help_text="saved_reply (required there): the saved reply's id."
    )


class BulkDoneSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="The ticket's reference.")
    note = serializers.CharField(help_text="What was done.")


class BulkRefusedSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="The ticket's reference (as sent).")
    reason = serializers.CharField(help_text="Why nothing was done to it.")


class BulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    done = BulkDoneSerializer(many=True)
    refused = BulkRefusedSerializer(many=True)


# ---- the view -------------------------------------------------------------------------


class TicketBulkView(APIView):
    """Run one action on many tickets, each through its own service call. Staff only."""

    permission_classes = [IsAuthenticated, IsAgent]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="tickets_bulk",
        request=BulkRequestSerializer,
        responses=BulkResultSerializer,
        examples=[
            OpenApiExample(
                "Resolve two tickets",
                value={
                    "tickets": ["HD-20260101-0001", "HD-20260101-0002"],
                    "action": "status",
                    "status": "resolved",
                },
                request_only=True,
            ),
            OpenApiExample(
                "One done, one refused",
                value={
                    "action": "status",
                    "done": [{"ticket": "HD-20260101-0001", "note": "resolved"}],
                    "refused": [
                        {"ticket": "HD-20260101-0002", "reason": "This ticket is already resolved."}
                    ],
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request):
        serializer = BulkRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tickets = data.pop("tickets")
        action = data.pop("action")
        if action == "assign" and "assignee" not in data:
            data["assignee"] = "me"
        result = bulk.run(action, tickets, data, actor=request.user)
        return Response(
            BulkResultSerializer(
                {
                    "action": result.action,
                    "done": [{"ticket": ref, "note": note} for ref, note in result.done],
                    "refused": [
                        {"ticket": ref, "reason": reason} for ref, reason in result.refused
                    ],
                }
            ).data
        )


urlpatterns = [path("", TicketBulkView.as_view(), name="api-ticket-bulk")]
