"""Knowledge base admin: categories, the article editor with a rendered preview and
embedding status, publish/archive/re-embed actions, an "Import articles" page, daily
metrics and the search log (what people looked for, and how well we answered).

Every save and delete goes through :mod:`knowledge.services`; when a service refuses, the
admin shows its message, logs nothing and does not claim success."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from core.admin_mixins import AgentAccessMixin
from core.errors import DomainError
from core.forms import DomainErrorFormMixin
from knowledge import services
from knowledge.forms import ArticleImportForm
from knowledge.models import Article, Category, KnowledgeBaseMetric, SearchLog


class ServiceWritesMixin:
    """``save_model`` and ``delete_model`` of a ModelAdmin that writes through services:
    subclasses give ``_save(request, obj, form, change)`` (returns the saved object, which
    has a slug) and ``_delete(obj)``. A :class:`DomainError` becomes an error message; the
    change is then neither logged nor announced as done."""

    def _refuse(self, request, error: DomainError) -> None:
        self.message_user(request, error.message, messages.ERROR)
        request._knowledge_refused = True

    @staticmethod
    def _refused(request) -> bool:
        return getattr(request, "_knowledge_refused", False)

    def save_model(self, request, obj, form, change):
        request._knowledge_refused = False  # per object: list_editable saves several
        try:
            saved = self._save(request, obj, form, change)
        except DomainError as error:
            self._refuse(request, error)
            return
        obj.pk, obj.slug = saved.pk, saved.slug
        obj._state.adding, obj._state.db = False, saved._state.db

    def log_addition(self, request, obj, message):
        if not self._refused(request):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not self._refused(request):
            return super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if self._refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self._refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)

    def log_deletions(self, request, queryset):
        """Logged by :meth:`delete_model`, in one transaction with the service's delete."""

    def delete_model(self, request, obj):
        request._knowledge_refused = False
        try:
            with transaction.atomic():
                super().log_deletions(request, [obj])
                self._delete(obj)
        except DomainError as error:
            self._refuse(request, error)
            return False
        return True

    def delete_queryset(self, request, queryset):
        return sum(bool(self.delete_model(request, obj)) for obj in queryset)

    def response_delete(self, request, obj_display, obj_id):
        if self._refused(request):
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj_id])
            )
        return super().response_delete(request, obj_display, obj_id)

    @admin.action(description="Delete selected %(verbose_name_plural)s", permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's action with its confirmation page, but deleting through the service
        and counting only what it deleted."""
        if not request.POST.get("post"):
            return admin_actions.delete_selected(self, request, queryset)
        deleted = self.delete_queryset(request, queryset)
        if deleted:
            self.message_user(
                request,
                f"Deleted {deleted} {model_ngettext(self.opts, deleted)}.",
                messages.SUCCESS,
            )
        return None


CATEGORY_FIELDS = ("name", "slug", "description", "icon", "parent", "display_order", "is_visible")


class CategoryForm(DomainErrorFormMixin, forms.ModelForm):
    class Meta:
        model = Category
        fields = CATEGORY_FIELDS

    def clean(self):
        data = super().clean()
        if self.instance.pk and data.get("parent") is not None:
            try:
                services.category_validate_parent(category=self.instance, parent=data["parent"])
            except DomainError as error:
                self.add_domain_error(error)
        return data


@admin.register(Category)
class CategoryAdmin(ServiceWritesMixin, AgentAccessMixin, admin.ModelAdmin):
    form = CategoryForm
    list_display = ("name", "parent", "slug", "display_order", "is_visible")
    list_editable = ("display_order", "is_visible")
    list_select_related = ("parent",)
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name",)
    actions = ("delete_selected",)

    def _save(self, request, obj, form, change):
        data = {
            name: form.cleaned_data[name] for name in CATEGORY_FIELDS if name in form.cleaned_data
        }
        if change:
            return services.category_update(category=obj, **data)
        return services.category_create(**data)

    def _delete(self, obj):
        services.category_delete(category=obj)


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
class ArticleAdmin(ServiceWritesMixin, AgentAccessMixin, admin.ModelAdmin):
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
    actions = (
        "publish_action",
        "archive_action",
        "unpublish_action",
        "reembed_action",
        "delete_selected",
    )

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

    def _save(self, request, obj, form, change):
        data = {
            name: form.cleaned_data[name]
            for name in ("title", "summary", "category", "is_beta", "body")
        }
        if change:
            return services.article_update(article=obj, **data)
        return services.article_create(author=request.user, **data)

    def _delete(self, obj):
        services.article_delete(article=obj)

    def save_formset(self, request, form, formset, change):
        """The daily metrics inline is read-only: nothing to save (counters are services')."""

    # ---- import page --------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="knowledge_article_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a .jsonl file or .md files, choose the category and whether to publish;
        :func:`knowledge.services.article_import` does the rest (all or nothing)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ArticleImportForm(
            request.POST if request.method == "POST" else None,
            request.FILES if request.method == "POST" else None,
        )
        if form.is_valid():
            try:
                result = services.article_import(
                    records=form.cleaned_data["files"],
                    category=form.cleaned_data["category"],
                    publish=form.cleaned_data["publish"],
                    author=request.user,
                )
            except DomainError as error:
                form.add_domain_error(error)
            else:
                self.message_user(request, f"Imported: {result}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:knowledge_article_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import articles",
            "opts": self.opts,
            "form": form,
            "max_bytes": settings.HELPDESK_ATTACHMENT_MAX_BYTES,
        }
        return TemplateResponse(request, "admin/knowledge/article/import.html", context)

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
class SearchLogAdmin(ServiceWritesMixin, AgentAccessMixin, admin.ModelAdmin):
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
    actions = ("delete_selected",)

    def _delete(self, obj):
        services.search_log_delete(search_log=obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
