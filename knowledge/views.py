"""Help center pages (server-rendered, thin)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import DomainError
from knowledge import search as kb_search
from knowledge import selectors, services
from knowledge.forms import SearchForm
from knowledge.models import Article, SearchLog


def index(request):
    return render(
        request,
        "knowledge/index.html",
        {
            "categories": selectors.category_tree(user=request.user),
            "popular": selectors.article_list(user=request.user)
            .filter(status=Article.Status.PUBLISHED)
            .order_by("-view_count", "title")[:6],
        },
    )


def category(request, slug):
    current = selectors.category_get(slug=slug)
    return render(
        request,
        "knowledge/category.html",
        {
            "category": current,
            "children": current.children.filter(is_visible=True),
            "articles": selectors.article_list(user=request.user).filter(
                category=current, status=Article.Status.PUBLISHED
            ),
        },
    )


def article(request, slug):
    current = selectors.article_get(user=request.user, slug=slug)
    if current.is_published:
        services.article_view(article=current)
    voted = request.session.get("article_votes", {}).get(str(current.pk))
    return render(
        request,
        "knowledge/article.html",
        {
            "article": current,
            "breadcrumbs": [*current.category.ancestors(), current.category],
            "related": kb_search.related_articles(current, user=request.user),
            "voted": voted,
        },
    )


@require_POST
def vote(request, slug):
    current = selectors.article_get(user=request.user, slug=slug)
    helpful = request.POST.get("helpful") == "yes"
    if not request.session.session_key:
        request.session.save()
    try:
        services.article_vote(
            article=current,
            helpful=helpful,
            user=request.user if request.user.is_authenticated else None,
            session_key=request.session.session_key,
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        votes = request.session.get("article_votes", {})
        votes[str(current.pk)] = "yes" if helpful else "no"
        request.session["article_votes"] = votes
        messages.success(request, "Thanks for your feedback!")
    return redirect(f"{current.get_absolute_url()}#feedback")


def search(request):
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    for error in form.errors.get("q", []):
        messages.error(request, f"Search: {error}")
    results = kb_search.search(query, user=request.user, limit=20, kind="portal") if query else []
    if query:
        services.search_record(
            query=query,
            results=results,
            source=SearchLog.Source.HELP_CENTER,
            user=request.user,
        )
    return render(request, "knowledge/search.html", {"query": query, "results": results})
