"""Knowledge base admin: categories, the article editor with a rendered preview and
embedding status, publish/archive/re-embed actions (through services), daily metrics
and the search log (what people looked for, and how well we answered)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from config.errors import DomainError
from knowledge import services
from knowledge.models import Article, Category, KnowledgeBaseMetric, SearchLog
from support.admin import AgentAccessMixin


@admin.register(Category)
class CategoryAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = ("name", "parent", "slug", "display_order", "is_visible")
    list_editable = ("display_order", "is_visible")
    list_select_related = ("parent",)
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name",)


class MetricInline(admin.TabularInline):
    model = KnowledgeBaseMetric
    extra = 0
    max_num = 0
    can_delete = False
    fields = (
        "day",
        "views",
        "search_impressions",
        "ai_references",
        "helpful_votes",
        "not_helpful_votes",
    )
    readonly_fields = fields
    ordering = ("-day",)
    verbose_name_plural = "daily metrics"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-day")


class ArticleForm(forms.ModelForm):
    class Meta:
        model = Article
        fields = ("title", "summary", "category", "is_beta", "body")
        widgets = {"body": forms.Textarea(attrs={"rows": 24, "class": "hd-markdown-source"})}


@admin.register(Article)
class ArticleAdmin(AgentAccessMixin, admin.ModelAdmin):
    form = ArticleForm
    list_display = ("title", "category", "status", "is_beta", "embedding", "view_count", "helpful")
    list_filter = ("status", "is_beta", "category")
    list_select_related = ("category",)
    search_fields = ("title", "summary", "external_id")
    readonly_fields = (
        "slug",
        "status",
        "published_at",
        "external_id",
        "embedding",
        "view_count",
        "helpful_count",
        "not_helpful_count",
        "preview",
    )
    fieldsets = (
        (None, {"fields": ("title", "slug", "summary", "category", "is_beta", "body")}),
        ("Preview (as saved)", {"fields": ("preview",)}),
        (
            "Status",
            {
                "fields": (
                    "status",
                    "published_at",
                    "embedding",
                    "external_id",
                    "view_count",
                    "helpful_count",
                    "not_helpful_count",
                )
            },
        ),
    )
    inlines = [MetricInline]
    actions = ("publish_action", "archive_action", "unpublish_action", "reembed_action")

    @admin.display(description="embedding")
    def embedding(self, article):
        from integrations.embeddings import get_provider

        try:
            model = get_provider().model_name
        except Exception:
            model = article.embedding_model
        state = article.embedding_state(model) if article.is_published else "—"
        return format_html('<span title="{}">{}</span>', article.embedding_model or "", state)

    @admin.display(description="helpful")
    def helpful(self, article):
        ratio = article.helpful_ratio
        return (
            "—"
            if ratio is None
            else f"{ratio:.0%} of {article.helpful_count + article.not_helpful_count}"
        )

    @admin.display(description="preview")
    def preview(self, article):
        if not article.pk:
            return "Save to see the rendered article."
        # body_html is sanitized (nh3) when the article is saved.
        return mark_safe(f'<div class="hd-article-preview">{article.body_html}</div>')  # noqa: S308

    def save_model(self, request, obj, form, change):
        data = {
            name: form.cleaned_data[name]
            for name in ("title", "summary", "category", "is_beta", "body")
        }
        try:
            if change:
                saved = services.article_update(article=obj, **data)
            else:
                saved = services.article_create(author=request.user, **data)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        obj.pk, obj.slug = saved.pk, saved.slug

    def _each(self, request, queryset, label, fn):
        done = 0
        for article in queryset:
            try:
                fn(article)
                done += 1
            except DomainError as error:
                self.message_user(request, f"{article}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{label}: {done} article(s).", messages.SUCCESS)

    @admin.action(description="Publish")
    def publish_action(self, request, queryset):
        self._each(request, queryset, "Published", lambda a: services.article_publish(article=a))

    @admin.action(description="Archive")
    def archive_action(self, request, queryset):
        self._each(request, queryset, "Archived", lambda a: services.article_archive(article=a))

    @admin.action(description="Back to draft")
    def unpublish_action(self, request, queryset):
        self._each(
            request, queryset, "Unpublished", lambda a: services.article_unpublish(article=a)
        )

    @admin.action(description="Re-embed now")
    def reembed_action(self, request, queryset):
        self._each(
            request,
            queryset,
            "Re-embedded",
            lambda a: services.article_embed(article_id=a.pk, force=True),
        )


@admin.register(SearchLog)
class SearchLogAdmin(AgentAccessMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "query",
        "source",
        "result_count",
        "best_similarity",
        "top_article",
    )
    list_filter = ("source",)
    list_select_related = ("top_article",)
    search_fields = ("query",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
