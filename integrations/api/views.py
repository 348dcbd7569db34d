"""GitHub links over the API, for staff: the same review gate as the admin."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from integrations.api import serializers as s
from integrations.github import automation
from integrations.models import GithubLink
from support.api.views import IsAgent


class GithubLinkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Bug tickets on GitHub: issue, AI-drafted PR, checks and review."""

    serializer_class = s.GithubLinkSerializer
    permission_classes = [IsAuthenticated, IsAgent]
    filterset_fields = ["status", "checks_state", "repository"]
    ordering_fields = ["created_at", "updated_at"]
    ordering = ["-updated_at"]

    def get_queryset(self):
        return GithubLink.objects.select_related("ticket")

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
