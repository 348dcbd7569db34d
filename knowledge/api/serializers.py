from rest_framework import serializers

from knowledge.models import Article, Category


class CategorySerializer(serializers.ModelSerializer):
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


class ArticleWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(help_text="Markdown.")
    summary = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all())
    is_beta = serializers.BooleanField(required=False, default=False)
    publish = serializers.BooleanField(
        required=False, default=False, help_text="Create only: publish right away."
    )


class ArticleUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(required=False)
    summary = serializers.CharField(max_length=300, required=False, allow_blank=True)
    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), required=False
    )
    is_beta = serializers.BooleanField(required=False)


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=500)
    category = serializers.SlugRelatedField(
        slug_field="slug", required=False, queryset=Category.objects.filter(is_visible=True)
    )
    limit = serializers.IntegerField(min_value=1, max_value=50, default=10)


class SearchResultSerializer(serializers.Serializer):
    article = serializers.SerializerMethodField()
    score = serializers.FloatField(help_text="Fused relevance (reciprocal rank), higher first.")
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
