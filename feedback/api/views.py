"""Feedback API views: thin. Anyone reads public requests; signed-in people submit and
vote (rate-limited like the roadmap page); staff change status and merge."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from config.filters import DjangoFilterBackend, StrictBooleanFilter
from core.accounts import require_verified_email
from core.roles import is_agent
from feedback import selectors, services, throttling
from feedback.api import serializers as s
from feedback.models import FeatureRequest


class ReadOrSignedIn(BasePermission):
    message = "Sign in to submit or vote."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or bool(
            request.user and request.user.is_authenticated
        )


class FeatureRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=FeatureRequest.Status.choices)
    kind = django_filters.MultipleChoiceFilter(choices=FeatureRequest.Kind.choices)
    q = django_filters.CharFilter(method="filter_q", help_text="Full-text search.")
    mine = StrictBooleanFilter(method="filter_mine", help_text="Ones I voted on.")

    class Meta:
        model = FeatureRequest
        fields = []

    def filter_q(self, queryset, name, value):
        return selectors.request_search(queryset, q=value)

    def filter_mine(self, queryset, name, value):
        if not self.request.user.is_authenticated:
            return queryset.none() if value else queryset
        return queryset.filter(my_vote__isnull=not value)


class FeatureRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Feature requests on the roadmap (merged duplicates are left out of the list)."""

    serializer_class = s.FeatureRequestSerializer
    permission_classes = [ReadOrSignedIn]
    filterset_class = FeatureRequestFilter
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["weighted_score", "created_at", "upvotes", "vote_total", "status_changed_at"]
    ordering = ["-weighted_score", "-created_at"]

    def get_queryset(self):
        return selectors.request_list(user=self.request.user, include_merged=self.action != "list")

    def _input(self, serializer_class):
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _throttle(self, scope):
        allowed, wait = throttling.allow(self.request, scope)
        if not allowed:
            raise Throttled(wait=wait)

    def _out(self, feature, code=status.HTTP_200_OK):
        feature = self.get_queryset().get(pk=feature.pk)
        return Response(self.get_serializer(feature).data, status=code)

    def _staff_only(self):
        if not is_agent(self.request.user):
            raise PermissionDenied("Only the team can do this.")

    @extend_schema(
        request=s.FeatureRequestCreateSerializer, responses={201: s.FeatureRequestSerializer}
    )
    def create(self, request):
        require_verified_email(request.user)  # 403 email_unverified; staff are exempt
        data = self._input(s.FeatureRequestCreateSerializer)
        self._throttle(throttling.SUBMIT)
        feature = services.request_submit(author=request.user, **data)
        return self._out(feature, status.HTTP_201_CREATED)

    @extend_schema(
        methods=["POST"],
        request=s.VoteSerializer,
        responses=s.FeatureRequestSerializer,
        description="Cast your vote, or change it.",
    )
    @extend_schema(
        methods=["DELETE"],
        request=None,
        responses={200: s.FeatureRequestSerializer},
        description="Withdraw your vote (no vote: nothing changes).",
    )
    @action(detail=True, methods=["post", "delete"])
    def vote(self, request, pk=None):
        require_verified_email(request.user)
        feature = self.get_object()
        if request.method == "DELETE":
            self._throttle(throttling.VOTE)
            services.vote_withdraw(request=feature, user=request.user)
        else:
            data = self._input(s.VoteSerializer)
            self._throttle(throttling.VOTE)
            services.vote_cast(request=feature, user=request.user, value=data["value"])
        return self._out(feature)

    @extend_schema(request=s.StatusChangeSerializer, responses=s.FeatureRequestSerializer)
    @action(detail=True, methods=["post"], url_path="status")
    def change_status(self, request, pk=None):
        self._staff_only()
        feature = self.get_object()
        data = self._input(s.StatusChangeSerializer)
        services.request_change_status(
            request=feature, status=data["status"], actor=request.user, note=data.get("note", "")
        )
        return self._out(feature)

    @extend_schema(request=s.MergeSerializer, responses=s.FeatureRequestSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Merge this request (a duplicate) into another; answers the survivor."""
        self._staff_only()
        feature = self.get_object()
        data = self._input(s.MergeSerializer)
        survivor = services.request_merge(
            duplicate=feature, survivor=data["into"], actor=request.user
        )
        return self._out(survivor)

    @extend_schema(responses=s.FeatureRequestEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        feature = self.get_object()
        return Response(
            s.FeatureRequestEventSerializer(selectors.request_history(feature), many=True).data
        )
