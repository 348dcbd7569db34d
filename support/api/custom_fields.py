"""The API of custom field definitions, ``/api/custom-fields/``.

Everyone signed in reads: customers the active fields shown to them (what they may see
and fill in on their tickets), staff every field. Managers create, change and delete
(``custom_field_save`` / ``custom_field_delete``): the key never changes; deleting a field
that tickets use deactivates it instead (200 with the field; 204 when it was deleted).
Values are read and written on the tickets (``custom_fields`` of ``/api/tickets/``).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.response import Response

from config.serializers import StrictInputMixin
from core.permissions import IsAgent, IsManager
from core.roles import is_agent
from support import services
from support.models import CustomField


class CustomFieldSerializer(StrictInputMixin, serializers.ModelSerializer):
    """A custom field: its key (the name of its values on tickets and in filters), its
    kind, its choices, the ticket types that require it, and what customers see and
    fill in."""

    class Meta:
        model = CustomField
        fields = [
            "id",
            "key",
            "label",
            "kind",
            "choices",
            "required_for_types",
            "customer_visible",
            "customer_editable",
            "help_text",
            "position",
            "is_active",
        ]
        read_only_fields = ["id"]
        extra_kwargs = {
            "key": {"help_text": "Letters, digits, - and _; cannot change once created."},
            "choices": {"help_text": "The options of a choice or multi_choice field."},
            "customer_editable": {
                "help_text": "The customer fills it in on the portal and the API (implies "
                "customer_visible)."
            },
        }


@extend_schema_view(
    list=extend_schema(summary="Custom fields (customers: the ones shown to them)"),
    retrieve=extend_schema(summary="A custom field"),
    create=extend_schema(summary="Create a custom field (managers)"),
    update=extend_schema(summary="Replace a custom field (managers; the key stays)"),
    partial_update=extend_schema(summary="Change a custom field (managers; the key stays)"),
    destroy=extend_schema(
        summary="Delete a custom field (managers)",
        description="A field no ticket uses is deleted (204); one that tickets use is "
        "deactivated instead, its values kept (200 with the field).",
        responses={200: CustomFieldSerializer, 204: None},
    ),
)
class CustomFieldViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CustomFieldSerializer
    pagination_class = None

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsAuthenticated()]
        return [IsAuthenticated(), IsAgent(), IsManager()]

    def get_queryset(self):
        queryset = CustomField.objects.order_by("position", "label", "pk")
        if getattr(self, "swagger_fake_view", False) or is_agent(self.request.user):
            return queryset
        return queryset.filter(is_active=True, customer_visible=True)

    def _save(self, *, partial: bool, instance=None, code=status.HTTP_200_OK) -> Response:
        serializer = self.get_serializer(instance, data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        row = instance if instance is not None else CustomField()
        for name, value in serializer.validated_data.items():
            setattr(row, name, value)
        row = services.custom_field_save(field=row, actor=self.request.user)
        return Response(self.get_serializer(row).data, status=code)

    def create(self, request):
        return self._save(partial=False, code=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        return self._save(partial=False, instance=self.get_object())

    def partial_update(self, request, pk=None):
        return self._save(partial=True, instance=self.get_object())

    def destroy(self, request, pk=None):
        field = self.get_object()
        if services.custom_field_delete(field=field, actor=request.user):
            return Response(status=status.HTTP_204_NO_CONTENT)
        field.refresh_from_db()
        return Response(self.get_serializer(field).data)


urlpatterns = [
    path(
        "",
        CustomFieldViewSet.as_view({"get": "list", "post": "create"}),
        name="api-custom-field-list",
    ),
    path(
        "<int:pk>/",
        CustomFieldViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="api-custom-field-detail",
    ),
]
