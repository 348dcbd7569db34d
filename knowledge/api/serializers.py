from rest_framework import serializers

from config.serializers import StrictInputMixin
from core import limits
from knowledge.models import Article, Category


class CategorySerializer(StrictInputMixin, serializers.ModelSerializer):
    """Input shape and the model's unique slug; the rules (no cycle of parents, a free
    slug under a race) are checked by ``category_create``/``category_update``."""

    parent = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = Category
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "icon",
            "parent",
            "display_order",
            "is_visible",
        ]
        extra_kwargs = {
            "name": {"max_length": limits.CATEGORY_NAME},
            "description": {"max_length": limits.CATEGORY_DESCRIPTION},
        }


class ArticleSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Article
        fields = [
            "id",
            "slug",
            "title",
            "summary",
            "body",
            "body_html",
            "status",
            "is_beta",
            "category",
            "external_id",
            "published_at",
            "updated_at",
            "view_count",
            "helpful_count",
            "not_helpful_count",
            "url",
        ]
        read_only_fields = fields

    def get_url(self, article) -> str:
        return self.context["request"].build_absolute_uri(article.get_absolute_url())


class ArticleWriteSerializer(StrictInputMixin, serializers.Serializer):
    title = serializers.CharField(max_length=limits.TITLE)
    body = serializers.CharField(max_length=limits.ARTICLE_BODY, help_text="Markdown.")
    summary = serializers.CharField(
        max_length=limits.SUMMARY, required=False, allow_blank=True, default=""
    )
    category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all())
    is_beta = serializers.BooleanField(required=False, default=False)
    publish = serializers.BooleanField(
        required=False, default=False, help_text="Create only: publish right away."
    )


class ArticleUpdateSerializer(StrictInputMixin, serializers.Serializer):
    title = serializers.CharField(max_length=limits.TITLE, required=False)
    body = serializers.CharField(max_length=limits.ARTICLE_BODY, required=False)
    summary = serializers.CharField(max_length=limits.SUMMARY, required=False, allow_blank=True)
    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), required=False
    )
    is_beta = serializers.BooleanField(required=False)


class SearchQuerySerializer(StrictInputMixin, serializers.Serializer):
    q = serializers.CharField(max_length=limits.SEARCH_QUERY)
    category = serializers.SlugRelatedField(
        slug_field="slug",
        required=False,
        queryset=Category.objects.filter(is_visible=True),
        help_text="A category's slug: search only there.",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=50, default=10, help_text="How many results, at most."
    )


class SearchResultSerializer(serializers.Serializer):
    article = serializers.SerializerMethodField()
    score = serializers.FloatField(
        help_text="Fused relevance (similarity plus a keyword bonus), higher first."
    )
    similarity = serializers.FloatField(
        allow_null=True, help_text="Cosine similarity of the best passage."
    )
    snippet = serializers.CharField()
    snippet_html = serializers.CharField(help_text="The snippet, escaped, with <mark> hits.")
    sources = serializers.ListField(child=serializers.CharField())

    def get_article(self, result) -> dict:
        article = result.article
        return {
            "id": article.pk,
            "slug": article.slug,
            "title": article.title,
            "category": article.category.slug,
            "url": self.context["request"].build_absolute_uri(article.get_absolute_url()),
        }
