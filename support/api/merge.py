"""Merge and split over the API (staff only; customers get 403):

- ``POST /api/tickets/{reference}/merge/`` ``{"into": "HD-…"}``: the ticket (a duplicate)
  is merged into ``into``; answers the survivor;
- ``POST /api/tickets/{reference}/split/`` ``{"messages": [ids], "subject": "…"}``: the
  messages move to a new ticket; answers it (201).

Bad input answers 400 with the field's message; a ticket in the wrong state (already
merged, the AI answering it right now) 409.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.serializers import StrictInputMixin
from core import limits
from core.permissions import IsAgent
from support import selectors, services
from support.api import serializers as s
from support.models import Ticket

#: The most messages one split moves (a conversation longer than that is split twice).
MAX_SPLIT_MESSAGES = 500


class TicketMergeSerializer(StrictInputMixin, serializers.Serializer):
    into = serializers.CharField(
        max_length=30, help_text="The reference of the ticket that stays (HD-YYYYMMDD-NNNN)."
    )

    def validate_into(self, value: str) -> Ticket:
        reference = value.strip().upper()
        found = Ticket.objects.filter(reference=reference).first()
        if found is None:
            raise serializers.ValidationError(f"There is no ticket {reference or value!r}.")
        return found


class TicketSplitSerializer(StrictInputMixin, serializers.Serializer):
    messages = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=MAX_SPLIT_MESSAGES,
        help_text="Ids of the ticket's messages that move to the new ticket (at least one; "
        "at least one of the customer's messages must stay).",
    )
    subject = serializers.CharField(
        max_length=limits.SUBJECT,
        required=False,
        allow_blank=True,
        default="",
        help_text='The new ticket\'s subject; empty: "Split from HD-…: <subject>".',
    )


class _TicketActionView(APIView):
    permission_classes = [IsAuthenticated, IsAgent]
    parser_classes = [JSONParser]

    def _ticket(self, request, reference: str) -> Ticket:
        return selectors.ticket_get(user=request.user, reference=reference)

    def _input(self, serializer_class, request) -> dict:
        serializer = serializer_class(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _out(self, request, ticket: Ticket, code=status.HTTP_200_OK) -> Response:
        ticket = (
            selectors.ticket_list(user=request.user)
            .annotate(**s.TICKET_LINKS)
            .prefetch_related("tags")
            .get(pk=ticket.pk)
        )
        return Response(s.TicketSerializer(ticket, context={"request": request}).data, status=code)


class TicketMergeView(_TicketActionView):
    """Merge this ticket (a duplicate) into another: its messages, attachments,
    participants and tags move there, it is closed and points to the survivor, and the
    customer is told once, on the survivor."""

    @extend_schema(request=TicketMergeSerializer, responses=s.TicketSerializer, summary="Merge")
    def post(self, request, reference: str):
        ticket = self._ticket(request, reference)
        data = self._input(TicketMergeSerializer, request)
        survivor = services.ticket_merge(ticket=ticket, into=data["into"], actor=request.user)
        return self._out(request, survivor)


class TicketSplitView(_TicketActionView):
    """Split messages off this ticket into a new one of the same customer (linked by
    ``split_from``, assigned to you, not sent to the AI)."""

    @extend_schema(
        request=TicketSplitSerializer, responses={201: s.TicketSerializer}, summary="Split off"
    )
    def post(self, request, reference: str):
        ticket = self._ticket(request, reference)
        data = self._input(TicketSplitSerializer, request)
        new = services.ticket_split(
            ticket=ticket,
            message_ids=data["messages"],
            actor=request.user,
            subject=data["subject"],
        )
        return self._out(request, new, status.HTTP_201_CREATED)
