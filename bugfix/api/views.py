"""GitHub links over the API, for staff: the same review gate as the admin; and
"Send to GitHub" on a ticket (``POST /api/tickets/{reference}/github/``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from bugfix import automation, selectors, services
from bugfix.api import serializers as s
from core.permissions import IsAgent
from support.selectors import ticket_list


class GithubLinkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Bug tickets on GitHub: issue, AI-drafted PR, checks and review."""

    serializer_class = s.GithubLinkSerializer
    permission_classes = [IsAuthenticated, IsAgent]
    filterset_fields = ["status", "checks_state", "repository"]
    ordering_fields = ["created_at", "updated_at"]
    ordering = ["-updated_at"]

    def get_queryset(self):
        return selectors.github_link_list()

    def _review(self, request, approved: bool):
        data = s.ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = automation.review(
            self.get_object(),
            actor=request.user,
            approved=approved,
            note=data.validated_data.get("note", ""),
        )
        return Response(self.get_serializer(link).data)

    @extend_schema(request=s.ReviewSerializer, responses=s.GithubLinkSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Mark the draft pull request ready for review on GitHub."""
        return self._review(request, approved=True)

    @extend_schema(request=s.ReviewSerializer, responses=s.GithubLinkSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Close the pull request on GitHub; ``note`` (the reason) is required."""
        return self._review(request, approved=False)


class TicketSendToGithubView(generics.GenericAPIView):
    """Send a ticket to GitHub as a bug (agents only). The ticket is one the caller may
    see (support's ``ticket_list``), by reference; any other answers 404."""

    permission_classes = [IsAuthenticated, IsAgent]
    serializer_class = s.GithubLinkSerializer
    lookup_field = "reference"

    def get_queryset(self):
        return ticket_list(user=self.request.user)

    @extend_schema(
        request=None,
        responses={202: s.GithubLinkSerializer},
        description="Mark the ticket as a bug and send it to GitHub (issue, then a draft fix).",
    )
    def post(self, request, reference=None):
        link = services.ticket_send_to_github(ticket=self.get_object(), actor=request.user)
        return Response(self.get_serializer(link).data, status=status.HTTP_202_ACCEPTED)
