from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from support.api.serializers import MeSerializer


class ApiRootView(APIView):
    """Entry point of the API: links to the schema, the docs and the resources."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {
                "schema": serializers.URLField(),
                "docs": serializers.URLField(),
                "me": serializers.URLField(),
            },
        )
    )
    def get(self, request):
        return Response(
            {
                "schema": reverse("api-schema", request=request),
                "docs": reverse("api-docs", request=request),
                "me": reverse("api-me", request=request),
            }
        )


class MeView(APIView):
    """The signed-in user and their roles (customer, agent, manager, admin)."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)
