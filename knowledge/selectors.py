"""Reads of the knowledge base, scoped to what the reader may see."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from core.roles import is_agent
from knowledge.models import Article, Category
from knowledge.search import beta_visible_to


def article_list(*, user) -> QuerySet[Article]:
    """Published articles the reader may see (staff: every article)."""
    queryset = Article.objects.select_related("category", "author")
    if is_agent(user):
        return queryset
    queryset = queryset.filter(status=Article.Status.PUBLISHED, category__is_visible=True)
    return queryset if beta_visible_to(user) else queryset.filter(is_beta=False)


def article_get(*, user, slug: str) -> Article:
    try:
        return article_list(user=user).get(slug=slug)
    except Article.DoesNotExist:
        raise Http404("No such article.") from None


def category_tree(*, user) -> list[Category]:
    """Visible top-level categories with their visible children and article counts."""
    visible = article_list(user=user).filter(status=Article.Status.PUBLISHED)
    count = Count("articles", filter=Q(articles__in=visible.values("pk")), distinct=True)
    children = Category.objects.filter(is_visible=True).annotate(article_count=count)
    return list(
        Category.objects.filter(parent__isnull=True, is_visible=True)
        .annotate(article_count=count)
        .prefetch_related(Prefetch("children", queryset=children))
    )


def category_get(*, slug: str) -> Category:
    try:
        return Category.objects.select_related("parent").get(slug=slug, is_visible=True)
    except Category.DoesNotExist:
        raise Http404("No such category.") from None
