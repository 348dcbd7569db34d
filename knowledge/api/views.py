"""Knowledge API: read for everyone (like the help center), write for staff, every write
through :mod:`knowledge.services` (their domain errors answer 400/409 via
``config.errors``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import AgentWritesOthersRead
from core.roles import is_agent
from knowledge import search as kb_search
from knowledge import selectors, services
from knowledge.api import serializers as s
from knowledge.models import Category, SearchLog


class CategoryViewSet(viewsets.ModelViewSet):
    """Help-center categories (a tree through ``parent``). Deleting one that still holds
    articles or subcategories answers 409."""

    serializer_class = s.CategorySerializer
    permission_classes = [AgentWritesOthersRead]
    lookup_field = "slug"
    pagination_class = None

    def get_queryset(self):
        queryset = Category.objects.select_related("parent")
        return queryset if is_agent(self.request.user) else queryset.filter(is_visible=True)

    def perform_create(self, serializer):
        serializer.instance = services.category_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.category_update(
            category=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.category_delete(category=instance)


class ArticleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Published articles (staff also see drafts and archived ones, and write)."""

    serializer_class = s.ArticleSerializer
    permission_classes = [AgentWritesOthersRead]
    lookup_field = "slug"
    filterset_fields = {"category__slug": ["exact"], "status": ["exact"], "is_beta": ["exact"]}
    search_fields = ["title", "summary"]
    ordering_fields = ["title", "updated_at", "view_count", "helpful_count"]
    ordering = ["title"]

    def get_queryset(self):
        return selectors.article_list(user=self.request.user)

    def _input(self, serializer_class, **kwargs):
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=s.ArticleWriteSerializer, responses={201: s.ArticleSerializer})
    def create(self, request):
        data = self._input(s.ArticleWriteSerializer)
        article = services.article_create(author=request.user, **data)
        return Response(self.get_serializer(article).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ArticleUpdateSerializer, responses=s.ArticleSerializer)
    def partial_update(self, request, slug=None):
        data = self._input(s.ArticleUpdateSerializer)
        article = services.article_update(article=self.get_object(), **data)
        return Response(self.get_serializer(article).data)

    @extend_schema(request=None, responses=s.ArticleSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request, slug=None):
        return Response(
            self.get_serializer(services.article_publish(article=self.get_object())).data
        )

    @extend_schema(request=None, responses=s.ArticleSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, slug=None):
        return Response(
            self.get_serializer(services.article_archive(article=self.get_object())).data
        )


class SearchView(APIView):
    """Hybrid search (full-text + semantic) over the articles the caller may see."""

    permission_classes = []

    @extend_schema(
        parameters=[s.SearchQuerySerializer], responses=s.SearchResultSerializer(many=True)
    )
    def get(self, request):
        params = s.SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        results = kb_search.search(
            data["q"],
            user=request.user,
            limit=data["limit"],
            category=data.get("category"),
            kind="api",
        )
        services.search_record(
            query=data["q"], results=results, source=SearchLog.Source.API, user=request.user
        )
        return Response(
            s.SearchResultSerializer(results, many=True, context={"request": request}).data
        )
