"""Staff API of the list of tags, under ``/api/tags/``: staff read it (with how many
tickets carry each tag), managers create, change and delete tags (the services refuse
others with 403). A name is stored normalized (``Billing Issue`` → ``billing-issue``);
a bad or taken name is a 400 on ``name``.

Also the CSV renderer of ``GET /api/tickets/export/`` (``support.exports``)."""

from __future__ import annotations

import json

from django.db.models import Count
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from config.serializers import StrictInputMixin
from core.permissions import IsAgent, IsManager
from support import services
from support.models import Tag


class CsvRenderer(BaseRenderer):
    """``text/csv`` for the export (its body is streamed by the view); an error answer
    (403, 400) reaching a client that asked for CSV is its JSON text."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if isinstance(data, str | bytes):
            return data
        return json.dumps(data, default=str)


class TagNameField(serializers.RegexField):
    """A tag name as typed (``Billing Issue``): the service stores it normalized. Not
    trimmed, so the schema's maxLength counts the spaces the service strips; a line
    break is refused (Python's ``$`` would let one through, JSON Schema's does not), and
    so is a number."""

    def __init__(self, **kwargs):
        super().__init__(services.TAG_INPUT_PATTERN, max_length=50, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):  # a number is not a name (CharField would take it)
            self.fail("invalid")
        value = super().to_internal_value(data)
        if "\n" in value:
            self.fail("invalid")
        return value


class TagSerializer(StrictInputMixin, serializers.ModelSerializer):
    # Checked (normalized, unique) by the service: "Billing Issue" is fine input.
    name = TagNameField(
        help_text="Stored lower case, spaces as hyphens (Billing Issue → billing-issue).",
    )
    ticket_count = serializers.IntegerField(read_only=True, help_text="Tickets with this tag.")

    class Meta:
        model = Tag
        fields = ["id", "name", "description", "keywords", "ticket_count", "created_at"]
        read_only_fields = ["id", "ticket_count", "created_at"]
        extra_kwargs = {
            "keywords": {
                "help_text": "Words or phrases, one per line: AI triage suggests the tag "
                "when a ticket mentions one of them."
            },
        }


@extend_schema_view(
    list=extend_schema(summary="Tags, with how many tickets carry each (staff)"),
    retrieve=extend_schema(summary="One tag (staff)"),
    create=extend_schema(summary="Add a tag to the list (managers)"),
    update=extend_schema(summary="Replace a tag (managers)"),
    partial_update=extend_schema(summary="Change a tag (managers)"),
    destroy=extend_schema(summary="Delete a tag; it leaves every ticket (managers)"),
)
class TagViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The list of tags agents, rules and the AI put on tickets."""

    serializer_class = TagSerializer
    pagination_class = None

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsAuthenticated(), IsAgent()]
        return [IsAuthenticated(), IsAgent(), IsManager()]

    def get_queryset(self):
        return Tag.objects.annotate(ticket_count=Count("ticket_tags")).order_by("name")

    def _save(self, *, partial: bool, instance=None, code=status.HTTP_200_OK) -> Response:
        serializer = self.get_serializer(instance, data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        tag = instance if instance is not None else Tag()
        for field, value in serializer.validated_data.items():
            setattr(tag, field, value)
        tag = services.tag_save(tag=tag, actor=self.request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=tag.pk)).data, status=code)

    def create(self, request):
        return self._save(partial=False, code=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        return self._save(partial=False, instance=self.get_object())

    def partial_update(self, request, pk=None):
        return self._save(partial=True, instance=self.get_object())

    def destroy(self, request, pk=None):
        services.tag_delete(tag=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path(
        "",
        TagViewSet.as_view({"get": "list", "post": "create"}),
        name="api-tag-list",
    ),
    path(
        "<int:pk>/",
        TagViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="api-tag-detail",
    ),
]
