"""Staff API of automation rules, mounted under ``/api/automation/``:

- ``rules/`` list (``?trigger=``, ``?is_enabled=``), create; ``rules/{id}/`` read, change
  (PATCH/PUT), delete; ``rules/reorder/`` (POST the ids in their new order);
- ``rules/{id}/preview/`` (POST) and ``rules/preview/`` (POST unsaved fields): what the rule
  would have matched among the last 1,000 tickets;
- ``rules/{id}/firings/``: when the rule fired, on which ticket, with what outcome;
- ``fields/``: the condition fields (with their operators and choices) and the action types
  (with their parameters) a client needs to build a rule.

Agents read and preview; managers create, change, enable/disable, reorder and delete
(``automation.services.rules``). Customers get 403, anonymous callers 401.
"""

from __future__ import annotations

from django.db.models import Count, Q
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from automation.models import Rule, RuleFiring
from automation.services import rules as services
from config.serializers import StrictInputMixin
from core.permissions import IsAgent

# ======================================================================================
# Permissions
# ======================================================================================


class ManagerWritesAgentsRead(BasePermission):
    """Agents read and preview rules; only managers change them."""

    message = "Only managers can change automation rules."

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS or getattr(view, "action", None) in {
            "preview",
            "preview_fields",
        }:
            return services.can_view(request.user)
        return services.can_manage(request.user)


# ======================================================================================
# Serializers
# ======================================================================================


class RuleSerializer(serializers.ModelSerializer):
    firings_last_7_days = serializers.IntegerField(read_only=True, default=0)
    created_by = serializers.SlugRelatedField(
        read_only=True, slug_field="username", allow_null=True
    )
    # Blank on event rules: the schema says so ("" is one of the values).
    since = serializers.ChoiceField(choices=Rule.Since.choices, allow_blank=True, read_only=True)
    delay_unit = serializers.ChoiceField(
        choices=Rule.Unit.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "description",
            "is_enabled",
            "position",
            "stop_processing",
            "trigger",
            "since",
            "delay",
            "delay_unit",
            "business_time",
            "conditions",
            "actions",
            "is_default",
            "created_by",
            "created_at",
            "updated_at",
            "firings_last_7_days",
        ]
        read_only_fields = fields


class RuleInputSerializer(StrictInputMixin, serializers.Serializer):
    """A rule's fields; the conditions and actions are checked by the engine's validators
    (a bad field, operator, pattern or a team that does not exist answers 400 on
    ``conditions`` or ``actions``)."""

    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True)
    is_enabled = serializers.BooleanField(
        required=False, help_text="New rules are disabled unless true: preview them first."
    )
    position = serializers.IntegerField(required=False, min_value=0)
    stop_processing = serializers.BooleanField(required=False)
    trigger = serializers.ChoiceField(choices=Rule.Trigger.choices)
    since = serializers.ChoiceField(
        choices=Rule.Since.choices, required=False, allow_blank=True, help_text="Time rules only."
    )
    delay = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Time rules only."
    )
    delay_unit = serializers.ChoiceField(
        choices=Rule.Unit.choices, required=False, allow_blank=True, help_text="Time rules only."
    )
    business_time = serializers.BooleanField(required=False, help_text="Time rules only.")
    conditions = serializers.JSONField(
        required=False,
        help_text='{"match": "all"|"any", "conditions": [{"field", "operator", "value"}, …]}'
        " (see fields/).",
    )
    actions = serializers.JSONField(
        help_text='[{"type": <action type>, …parameters}, …] (see fields/).'
    )


class PreviewInputSerializer(RuleInputSerializer):
    name = serializers.CharField(max_length=120, required=False)
    actions = serializers.JSONField(required=False)


class PreviewExampleSerializer(serializers.Serializer):
    reference = serializers.CharField()
    subject = serializers.CharField()
    why = serializers.CharField(help_text="The conditions that held for this ticket.")


class PreviewSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    examined = serializers.IntegerField()
    summary = serializers.CharField()
    examples = PreviewExampleSerializer(many=True)


class RuleFiringSerializer(serializers.ModelSerializer):
    ticket = serializers.CharField(source="ticket.reference", read_only=True)

    class Meta:
        model = RuleFiring
        fields = ["id", "ticket", "key", "depth", "outcome", "fired_at"]
        read_only_fields = fields


class ReorderSerializer(StrictInputMixin, serializers.Serializer):
    rule_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)


def _preview_payload(preview: services.Preview) -> dict:
    return {
        "matched": preview.matched,
        "examined": preview.examined,
        "summary": preview.sentence,
        "examples": [
            {"reference": reference, "subject": subject, "why": why}
            for reference, subject, why in preview.examples
        ],
    }


# ======================================================================================
# Views
# ======================================================================================


class RuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Automation rules: *when* (trigger) … *if* (conditions) … *then* (actions)."""

    serializer_class = RuleSerializer
    permission_classes = [IsAuthenticated, ManagerWritesAgentsRead]
    filterset_fields = ["trigger", "is_enabled"]
    ordering_fields = ["position", "name", "created_at"]
    ordering = ["position", "id"]
    search_fields = ["name", "description"]

    def get_queryset(self):
        week_ago = timezone.now() - timezone.timedelta(days=7)
        return Rule.objects.select_related("created_by").annotate(
            firings_last_7_days=Count("firings", filter=Q(firings__fired_at__gte=week_ago))
        )

    def _input(self, serializer_class, **kwargs):
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _out(self, rule, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data, code)

    @extend_schema(request=RuleInputSerializer, responses={201: RuleSerializer})
    def create(self, request):
        """Create a rule (disabled unless ``is_enabled`` is true). Managers only."""
        data = self._input(RuleInputSerializer)
        return self._out(services.rule_create(actor=request.user, **data), status.HTTP_201_CREATED)

    @extend_schema(request=RuleInputSerializer, responses=RuleSerializer)
    def update(self, request, pk=None):
        """Replace a rule's fields. Managers only."""
        rule = self.get_object()
        data = self._input(RuleInputSerializer)
        return self._out(services.rule_update(rule=rule, actor=request.user, **data))

    @extend_schema(request=RuleInputSerializer, responses=RuleSerializer)
    def partial_update(self, request, pk=None):
        """Change some of a rule's fields (``{"is_enabled": true}`` enables it). Managers only."""
        rule = self.get_object()
        data = self._input(RuleInputSerializer, partial=True)
        return self._out(services.rule_update(rule=rule, actor=request.user, **data))

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, pk=None):
        """Delete a rule with its firings. Managers only."""
        services.rule_delete(rule=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=PreviewSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def preview(self, request, pk=None):
        """What this rule would have matched among the last 1,000 tickets."""
        return Response(_preview_payload(services.rule_preview(self.get_object())))

    @extend_schema(
        request=PreviewInputSerializer,
        responses=PreviewSerializer,
        operation_id="automation_rules_preview_unsaved",
    )
    @action(detail=False, methods=["post"], url_path="preview")
    def preview_fields(self, request):
        """The preview of a rule not saved yet (its trigger, timing and conditions)."""
        data = self._input(PreviewInputSerializer)
        return Response(_preview_payload(services.rule_preview(data)))

    @extend_schema(responses=RuleFiringSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def firings(self, request, pk=None):
        """When this rule fired, on which ticket, and what each action did (newest first)."""
        rule = self.get_object()
        queryset = RuleFiring.objects.filter(rule=rule).select_related("ticket")
        page = self.paginate_queryset(queryset)
        serializer = RuleFiringSerializer(page if page is not None else queryset, many=True)
        if page is not None:
            return self.get_paginated_response(serializer.data)
        return Response(serializer.data)

    @extend_schema(request=ReorderSerializer, responses=RuleSerializer(many=True))
    @action(detail=False, methods=["post"])
    def reorder(self, request):
        """Give the listed rules the positions of their order (10, 20, …). Managers only."""
        data = self._input(ReorderSerializer)
        services.rule_reorder(rule_ids=data["rule_ids"], actor=request.user)
        queryset = self.get_queryset().filter(pk__in=data["rule_ids"])
        return Response(self.get_serializer(queryset, many=True).data)

    def get_serializer_class(self):
        if self.action == "firings":
            return RuleFiringSerializer
        return super().get_serializer_class()

    def filter_queryset(self, queryset):
        if self.action in {"firings", "reorder"}:
            return queryset
        return super().filter_queryset(queryset)


_described = inline_serializer(
    "AutomationFields",
    fields={
        "triggers": serializers.ListField(child=serializers.DictField()),
        "since": serializers.ListField(child=serializers.DictField()),
        "units": serializers.ListField(child=serializers.DictField()),
        "fields": serializers.ListField(child=serializers.DictField()),
        "actions": serializers.ListField(child=serializers.DictField()),
        "example": serializers.DictField(),
        "time_example": serializers.DictField(),
    },
)


class RuleFieldsView(APIView):
    """What a rule can test and do: triggers, condition fields (operators, choices) and
    action types (parameters), with an example rule."""

    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(responses=_described)
    def get(self, request):
        return Response(services.rule_vocabulary())


router = SimpleRouter()
router.register("rules", RuleViewSet, basename="automation-rule")

urlpatterns = [
    path("fields/", RuleFieldsView.as_view(), name="automation-fields"),
    path("", include(router.urls)),
]
