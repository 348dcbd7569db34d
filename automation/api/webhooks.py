"""Staff API of outbound webhooks (mounted under ``/api/automation/``).

``webhooks/`` endpoints CRUD (the signing secret is returned on create and on
``rotate-secret/`` only), ``webhooks/{id}/deliveries/`` the delivery log,
``webhooks/{id}/ping/`` a test delivery, ``deliveries/{id}/`` one delivery and
``deliveries/{id}/redeliver/``. Thin: serializers validate, services write
(:mod:`automation.services.webhooks`); payloads and signatures: :mod:`automation.webhooks`.
"""

from __future__ import annotations

import django_filters
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from automation.models import WebhookDelivery, WebhookEndpoint
from automation.services import webhooks as services
from config.serializers import StrictInputMixin
from core.permissions import IsAgent

# --------------------------------------------------------------------------------------
# Serializers
# --------------------------------------------------------------------------------------


class WebhookEndpointSerializer(StrictInputMixin, serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEndpoint.Event.choices),
        allow_empty=True,
        help_text="Events this endpoint receives.",
    )
    url = serializers.URLField(max_length=500, help_text="Where deliveries are POSTed.")

    class Meta:
        model = WebhookEndpoint
        fields = (
            "id",
            "name",
            "url",
            "events",
            "include_internal",
            "is_active",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        )
        read_only_fields = (
            "id",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        )
        # Uniqueness is the service's to check (case-insensitively, as a field message).
        extra_kwargs = {"name": {"validators": []}}


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret. Shown on create and rotate only: keep it.",
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = (*WebhookEndpointSerializer.Meta.fields, "secret")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "endpoint",
            "event",
            "event_id",
            "status",
            "attempts",
            "next_attempt_at",
            "response_status",
            "response_body",
            "response_ms",
            "error",
            "created_at",
            "delivered_at",
            "payload",
        )
        read_only_fields = fields


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=WebhookDelivery.Status.choices)
    event = django_filters.CharFilter()

    class Meta:
        model = WebhookDelivery
        fields = []


# --------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------


class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Outbound webhook endpoints (staff only)."""

    permission_classes = [IsAgent]
    serializer_class = WebhookEndpointSerializer
    filter_backends: list = []
    queryset = WebhookEndpoint.objects.order_by("name")

    def _input(self, *, partial: bool = False) -> dict:
        serializer = WebhookEndpointSerializer(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses={201: WebhookEndpointWithSecretSerializer},
        summary="Create an endpoint (its secret is in this answer only)",
    )
    def create(self, request):
        data = self._input()
        endpoint = services.endpoint_create(actor=request.user, **data)
        return Response(
            WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=WebhookEndpointSerializer, responses=WebhookEndpointSerializer)
    def update(self, request, pk=None, partial: bool = False):
        endpoint = self.get_object()
        data = self._input(partial=partial)
        endpoint = services.endpoint_update(endpoint=endpoint, actor=request.user, **data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(request=WebhookEndpointSerializer, responses=WebhookEndpointSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.endpoint_delete(endpoint=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses=WebhookEndpointWithSecretSerializer,
        summary="Replace the signing secret (the new one is in this answer only)",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = services.endpoint_rotate_secret(endpoint=self.get_object(), actor=request.user)
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Queue a test ping delivery",
    )
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        delivery = services.endpoint_ping(endpoint=self.get_object(), actor=request.user)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses=WebhookDeliverySerializer(many=True),
        summary="The endpoint's delivery log, newest first",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                many=True,
                enum=WebhookDelivery.Status.values,
                description="Only deliveries in these statuses.",
            ),
            OpenApiParameter("event", str, description="Only this event (e.g. ticket.updated)."),
        ],
    )
    @action(detail=True, methods=["get"], serializer_class=WebhookDeliverySerializer)
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        rows = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id")
        filtered = DeliveryFilter(request.query_params, queryset=rows, request=request)
        if not filtered.is_valid():
            raise serializers.ValidationError(filtered.errors)
        page = self.paginate_queryset(filtered.qs)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One webhook delivery (staff only)."""

    permission_classes = [IsAgent]
    serializer_class = WebhookDeliverySerializer
    filter_backends: list = []
    queryset = WebhookDelivery.objects.select_related("endpoint")

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Send a finished delivery again",
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = services.delivery_redeliver(delivery=self.get_object(), actor=request.user)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


endpoints = WebhookEndpointViewSet
deliveries = WebhookDeliveryViewSet

urlpatterns = [
    path(
        "webhooks/",
        endpoints.as_view({"get": "list", "post": "create"}),
        name="automation-webhook-list",
    ),
    path(
        "webhooks/<int:pk>/",
        endpoints.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="automation-webhook-detail",
    ),
    path(
        "webhooks/<int:pk>/deliveries/",
        endpoints.as_view({"get": "deliveries"}),
        name="automation-webhook-deliveries",
    ),
    path(
        "webhooks/<int:pk>/rotate-secret/",
        endpoints.as_view({"post": "rotate_secret"}),
        name="automation-webhook-rotate-secret",
    ),
    path(
        "webhooks/<int:pk>/ping/",
        endpoints.as_view({"post": "ping"}),
        name="automation-webhook-ping",
    ),
    path(
        "deliveries/<int:pk>/",
        deliveries.as_view({"get": "retrieve"}),
        name="automation-delivery-detail",
    ),
    path(
        "deliveries/<int:pk>/redeliver/",
        deliveries.as_view({"post": "redeliver"}),
        name="automation-delivery-redeliver",
    ),
]
