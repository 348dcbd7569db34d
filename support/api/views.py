"""Support API views: thin. Validate with a serializer, call one service or selector,
answer with an output serializer. Domain errors become 400/403/409 in one handler."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from config.throttling import ScopedRateThrottle
from core.accounts import require_verified_email
from core.permissions import IsAgent
from support import budget, exports, presence, selectors, services
from support.adapters import lockout_response, second_factor_error
from support.api import serializers as s
from support.api.filters import TicketFilter
from support.api.tags import CsvRenderer
from support.models import Escalation, Message, TicketChannel, TicketEvent, TrainingExample


class ApiRootView(APIView):
    """Entry point of the API: links to the schema, the docs and the resources."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {
                name: serializers.URLField()
                for name in ("schema", "docs", "me", "token", "tickets", "saved_replies")
            },
        )
    )
    def get(self, request):
        return Response(
            {
                "schema": reverse("api-schema", request=request),
                "docs": reverse("api-docs", request=request),
                "me": reverse("api-me", request=request),
                "token": reverse("api-token", request=request),
                "tickets": reverse("api-ticket-list", request=request),
                "saved_replies": reverse("api-saved-reply-list", request=request),
            }
        )


class MeView(APIView):
    """The signed-in user and their roles (customer, agent, manager, admin)."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        return Response(s.MeSerializer(request.user).data)


class TokenView(ObtainAuthToken):
    """Exchange a username and password (and, for a user with an authenticator app, its
    current code as ``otp``) for an API token (``Authorization: Token …``)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "anon"
    serializer_class = s.TokenRequestSerializer

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except ValidationError:
            # Wrong passwords count towards the same lockout as the sign-in page (axes);
            # while locked out even the right one is refused: 429 with Retry-After.
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request)
            raise
        user = serializer.validated_data["user"]
        refusal = second_factor_error(user, serializer.validated_data.get("otp"))
        if refusal:
            raise ValidationError({"otp": [refusal]})
        return Response({"token": services.api_token_issue(user=user)})


class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tickets the caller may see: their own (or their organization's, for its admin),
    every ticket for staff. Other tickets answer 404."""

    lookup_field = "reference"
    serializer_class = s.TicketSerializer
    filterset_class = TicketFilter
    search_fields = ["reference", "subject", "requester__email"]
    ordering_fields = ["created_at", "updated_at", "sla_due_at", "priority", "status"]
    ordering = ["-created_at"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        queryset = selectors.ticket_list(user=self.request.user).annotate(**s.TICKET_LINKS)
        if selectors.is_agent(self.request.user):
            queryset = queryset.prefetch_related("tags")  # staff see the tags
        return queryset

    def get_permissions(self):
        if self.action in {
            "export",
            "partial_update",
            "close",
            "reopen",
            "assign",
            "apply_saved_reply",
        }:
            return [IsAuthenticated(), IsAgent()]
        return [IsAuthenticated()]

    def get_throttles(self):
        if self.action == "create":
            self.throttle_scope = "ticket_create"
            return [*super().get_throttles(), ScopedRateThrottle()]
        return super().get_throttles()

    def _out(self, ticket, code=status.HTTP_200_OK):
        ticket = self.get_queryset().get(pk=ticket.pk)
        return Response(self.get_serializer(ticket).data, status=code)

    def _input(self, serializer_class):
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=s.TicketCreateSerializer, responses={201: s.TicketSerializer})
    def create(self, request):
        require_verified_email(request.user)  # 403 email_unverified; staff are exempt
        data = self._input(s.TicketCreateSerializer)
        try:
            budget.ticket_budget_take(user=request.user, address=budget.client_address(request))
        except budget.TicketBudgetSpent as spent:
            # The API's one 429 shape: {"detail", "code": "throttled"} with Retry-After.
            raise Throttled(wait=spent.retry_after, detail=spent.message) from spent
        ticket = services.ticket_open(
            requester=data.get("requester") or request.user,
            subject=data["subject"],
            description=data["description"],
            type=data["type"],
            priority=data["priority"],
            channel=TicketChannel.API,
            attachments=data["attachments"],
            custom_fields=data.get("custom_fields", {}),
            opened_by=request.user,
        )
        # The service's ticket already holds its requester and organization: no re-read.
        return Response(self.get_serializer(ticket).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TicketUpdateSerializer, responses=s.TicketSerializer)
    def partial_update(self, request, reference=None):
        ticket = self.get_object()
        data = self._input(s.TicketUpdateSerializer)
        ticket = services.ticket_edit(
            ticket=ticket,
            actor=request.user,
            subject=data.get("subject"),
            type=data.get("type"),
            priority=data.get("priority"),
            custom_fields=data.get("custom_fields"),
            tags=data.get("tags"),
        )
        return self._out(ticket)

    @extend_schema(
        summary="Export tickets as CSV (staff)",
        description="The tickets the list's filters select, as CSV: reference, subject, "
        "status, priority, type, channel, requester, organization, assignee, team, times, "
        "tags (;-separated), then one column per active custom field.",
        filters=True,
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer, CsvRenderer])
    def export(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return exports.tickets_csv_response(queryset, filename=f"tickets-{stamp}.csv")

    @extend_schema(request=s.EscalateSerializer, responses={201: s.EscalationSerializer})
    @action(detail=True, methods=["post"])
    def escalate(self, request, reference=None):
        """Hand the ticket to people. A customer asking here is "customer_requested"."""
        ticket = self.get_object()
        data = self._input(s.EscalateSerializer)
        agent = selectors.is_agent(request.user)
        escalation = services.ticket_escalate(
            ticket=ticket,
            kind=data.get("kind", Escalation.Kind.COMPLEX)
            if agent
            else Escalation.Kind.CUSTOMER_REQUESTED,
            reason=data["reason"],
            topic=data["topic"] if agent else "",
            actor=request.user,
        )
        return Response(s.EscalationSerializer(escalation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, reference=None):
        """Staff, or the requester (when their problem is solved)."""
        ticket = self.get_object()
        if not selectors.is_agent(request.user) and ticket.requester_id != request.user.pk:
            self.permission_denied(request, message="Only the requester or staff can resolve.")
        return self._out(services.ticket_resolve(ticket=ticket, actor=request.user))

    @extend_schema(request=None, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, reference=None):
        return self._out(services.ticket_close(ticket=self.get_object(), actor=request.user))

    @extend_schema(request=None, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, reference=None):
        return self._out(services.ticket_reopen(ticket=self.get_object(), actor=request.user))

    @extend_schema(request=s.RateSerializer, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def rate(self, request, reference=None):
        """The requester rates the outcome (1–5) once the ticket is resolved."""
        ticket = self.get_object()
        data = self._input(s.RateSerializer)
        return self._out(
            services.ticket_rate(
                ticket=ticket, actor=request.user, rating=data["rating"], comment=data["comment"]
            )
        )

    @extend_schema(request=s.AssignSerializer, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, reference=None):
        ticket = self.get_object()
        data = self._input(s.AssignSerializer)
        assignee = data.get("assignee", request.user)
        return self._out(
            services.ticket_assign(ticket=ticket, assignee=assignee, actor=request.user)
        )

    @extend_schema(request=s.ApplySavedReplySerializer, responses={201: s.MessageSerializer})
    @action(detail=True, methods=["post"], url_path="saved-reply")
    def apply_saved_reply(self, request, reference=None):
        """Send a saved reply (placeholders filled in) and apply its status change."""
        ticket = self.get_object()
        data = self._input(s.ApplySavedReplySerializer)
        message = services.saved_reply_apply(
            ticket=ticket, saved_reply=data["saved_reply"], agent=request.user
        )
        return Response(
            s.MessageSerializer(message, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )


class TicketMessageViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The conversation of one ticket; customers never see internal notes."""

    serializer_class = s.MessageSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    pagination_class = None

    def get_ticket(self):
        return selectors.ticket_get(user=self.request.user, reference=self.kwargs["reference"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Message.objects.none()
        return selectors.message_list(user=self.request.user, ticket=self.get_ticket())

    @extend_schema(request=s.MessageCreateSerializer, responses={201: s.MessageSerializer})
    def create(self, request, reference=None):
        ticket = self.get_ticket()
        serializer = s.MessageCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not data["is_internal"]:  # 409 when a newer message arrived (support.presence)
            presence.reply_check(
                ticket=ticket,
                agent=request.user,
                seen_message_id=data.get("seen_message_id"),
                confirmed=data["confirm_send"],
            )
        message = services.message_add(
            ticket=ticket,
            author=request.user,
            body=data["body"],
            is_internal=data["is_internal"],
            attachments=data["attachments"],
        )
        # A reply to a merged duplicate went on to its survivor: read it from there.
        message = selectors.message_list(user=request.user, ticket=message.ticket).get(
            pk=message.pk
        )
        return Response(self.get_serializer(message).data, status=status.HTTP_201_CREATED)


class TicketEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The audit log of one ticket, oldest first (read-only)."""

    serializer_class = s.TicketEventSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return TicketEvent.objects.none()
        ticket = selectors.ticket_get(user=self.request.user, reference=self.kwargs["reference"])
        return selectors.event_list(user=self.request.user, ticket=ticket)


class SavedReplyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Canned responses agents can send with the ticket's ``saved-reply`` action."""

    serializer_class = s.SavedReplySerializer
    permission_classes = [IsAuthenticated, IsAgent]
    pagination_class = None

    def get_queryset(self):
        return selectors.saved_reply_list()


class TrainingExampleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The training examples' review queue, for staff only (customers get 403)."""

    serializer_class = s.TrainingExampleSerializer
    permission_classes = [IsAuthenticated, IsAgent]
    filterset_fields = ["status", "outcome", "author_kind", "ticket_type", "used_in_training"]
    ordering_fields = ["created_at", "reviewed_at", "quality_score"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return TrainingExample.objects.select_related("ticket")

    def _input(self, serializer_class, **kwargs):
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _out(self, example):
        return Response(self.get_serializer(self.get_queryset().get(pk=example.pk)).data)

    @extend_schema(request=s.TrainingExampleEditSerializer, responses=s.TrainingExampleSerializer)
    def partial_update(self, request, pk=None):
        """Edit the anonymized texts (scanned again for personal data); a text left out
        stays as it is."""
        example = self.get_object()
        data = {
            "anonymized_question": example.anonymized_question,
            "anonymized_answer": example.anonymized_answer,
            **self._input(s.TrainingExampleEditSerializer, partial=True),
        }
        return self._out(
            services.training_example_edit(example=example, actor=request.user, **data)
        )

    @extend_schema(
        request=s.TrainingExampleApproveSerializer, responses=s.TrainingExampleSerializer
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        data = self._input(s.TrainingExampleApproveSerializer)
        return self._out(
            services.training_example_approve(
                example=self.get_object(), actor=request.user, quality_score=data["quality_score"]
            )
        )

    @extend_schema(request=s.TrainingExampleRejectSerializer, responses=s.TrainingExampleSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        data = self._input(s.TrainingExampleRejectSerializer)
        return self._out(
            services.training_example_reject(
                example=self.get_object(), actor=request.user, reason=data["reason"]
            )
        )
