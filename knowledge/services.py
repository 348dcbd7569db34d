"""Every write of the knowledge base: articles (create, edit, publish, archive), their
embeddings, helpful votes, and the daily metric counters.

Embedding is slow and external, so it runs in ``knowledge.tasks.embed_article`` after
commit; :func:`article_embed` computes vectors outside any transaction and then swaps the
article's chunks in one short transaction, only if the text has not changed meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from config.errors import Conflict, DomainError
from core.outbox import schedule_after_commit
from knowledge import text
from knowledge.models import Article, ArticleChunk, ArticleVote, Category, KnowledgeBaseMetric

logger = logging.getLogger(__name__)


def _unique_slug(title: str, *, exclude_pk: int | None = None) -> str:
    base = slugify(title)[:200] or "article"
    slug, n = base, 2
    while Article.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _schedule_embedding(article: Article) -> None:
    schedule_after_commit("knowledge.tasks.embed_article", article.pk)


def _apply_text(article: Article, *, title: str, summary: str, body: str) -> None:
    title, body = (title or "").strip(), body or ""
    if not title:
        raise DomainError("An article needs a title.", field="title")
    if not body.strip():
        raise DomainError("An article needs a body.", field="body")
    article.title = title[:200]
    article.summary = (summary or "").strip()[:300]
    article.body = body
    article.body_html = text.render_markdown(body)
    article.content_hash = text.content_hash(
        title=article.title, summary=article.summary, body=body
    )


@transaction.atomic
def article_create(
    *,
    title: str,
    body: str,
    category: Category,
    author=None,
    summary: str = "",
    is_beta: bool = False,
    external_id: str | None = None,
    publish: bool = False,
) -> Article:
    article = Article(
        category=category, author=author, is_beta=is_beta, external_id=external_id or None
    )
    _apply_text(article, title=title, summary=summary, body=body)
    article.slug = _unique_slug(article.title)
    if publish:
        article.status = Article.Status.PUBLISHED
        article.published_at = timezone.now()
    article.save()
    if publish:
        _schedule_embedding(article)
    return article


@transaction.atomic
def article_update(
    *,
    article: Article,
    title: str | None = None,
    body: str | None = None,
    summary: str | None = None,
    category: Category | None = None,
    is_beta: bool | None = None,
) -> Article:
    """Edit an article; its slug stays (links keep working). A published article whose
    text changed is re-embedded."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    before = article.content_hash
    _apply_text(
        article,
        title=article.title if title is None else title,
        summary=article.summary if summary is None else summary,
        body=article.body if body is None else body,
    )
    if category is not None:
        article.category = category
    if is_beta is not None:
        article.is_beta = is_beta
    article.save()
    if article.is_published and article.content_hash != before:
        _schedule_embedding(article)
    return article


@transaction.atomic
def article_publish(*, article: Article) -> Article:
    article = Article.objects.select_for_update().get(pk=article.pk)
    if article.is_published:
        return article
    article.status = Article.Status.PUBLISHED
    article.published_at = article.published_at or timezone.now()
    article.save(update_fields=["status", "published_at", "updated_at"])
    _schedule_embedding(article)
    return article


@transaction.atomic
def article_archive(*, article: Article) -> Article:
    """Take an article out of the help center and out of search (its chunks go)."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    if article.status == Article.Status.ARCHIVED:
        raise Conflict("This article is already archived.")
    article.status = Article.Status.ARCHIVED
    article.save(update_fields=["status", "updated_at"])
    article.chunks.all().delete()
    Article.objects.filter(pk=article.pk).update(embedded_hash="", embedded_at=None)
    return article


@transaction.atomic
def article_unpublish(*, article: Article) -> Article:
    article = Article.objects.select_for_update().get(pk=article.pk)
    article.status = Article.Status.DRAFT
    article.save(update_fields=["status", "updated_at"])
    article.chunks.all().delete()
    Article.objects.filter(pk=article.pk).update(embedded_hash="", embedded_at=None)
    return article


def article_embed(*, article_id: int, force: bool = False, provider=None) -> str:
    """Chunk and embed a published article; idempotent.

    Returns "embedded", "unchanged" (same text and model as last time), "skipped" (not
    published or gone) or "changed" (edited while embedding: the newer task will do it).
    """
    from integrations.embeddings import get_provider

    provider = provider or get_provider()
    article = Article.objects.filter(pk=article_id).first()
    if article is None or not article.is_published:
        return "skipped"
    if (
        not force
        and article.embedded_hash == article.content_hash
        and article.embedding_model == provider.model_name
    ):
        return "unchanged"
    chunks = text.chunk_article(title=article.title, summary=article.summary, body=article.body)
    vectors = provider.embed_documents([c.text for c in chunks])  # slow: outside transactions

    with transaction.atomic():
        current = Article.objects.select_for_update().get(pk=article.pk)
        if current.content_hash != article.content_hash or not current.is_published:
            return "changed"
        current.chunks.all().delete()
        ArticleChunk.objects.bulk_create(
            [
                ArticleChunk(
                    article=current,
                    ordinal=i,
                    heading=c.heading[:200],
                    text=c.text,
                    embedding=v,
                    embedding_model=provider.model_name,
                )
                for i, (c, v) in enumerate(zip(chunks, vectors, strict=True))
            ]
        )
        Article.objects.filter(pk=current.pk).update(
            embedded_hash=current.content_hash,
            embedding_model=provider.model_name,
            embedded_at=timezone.now(),
        )
    return "embedded"


# ======================================================================================
# Helpful votes and metrics
# ======================================================================================


def metric_increment(article_ids: Iterable[int], *, day=None, **counters: int) -> None:
    """Add to today's counters of each article in one atomic upsert per call."""
    ids = sorted(set(article_ids))
    if not ids or not counters:
        return
    allowed = {"views", "search_impressions", "ai_references", "helpful_votes", "not_helpful_votes"}
    if not set(counters) <= allowed:
        raise ValueError(f"unknown counters {set(counters) - allowed}")
    day = day or timezone.localdate()
    table = KnowledgeBaseMetric._meta.db_table
    zeroes = {name: 0 for name in allowed}
    values = {**zeroes, **counters}
    updates = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in counters)
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(ids))
    params = []
    for article_id in ids:
        params += [
            article_id,
            day,
            values["views"],
            values["search_impressions"],
            values["ai_references"],
            values["helpful_votes"],
            values["not_helpful_votes"],
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (article_id, day, views, search_impressions, ai_references,
                                     helpful_votes, not_helpful_votes)
                VALUES {rows}
                ON CONFLICT (article_id, day) DO UPDATE SET {updates}""",  # noqa: S608
            params,
        )


@transaction.atomic
def article_view(*, article: Article) -> None:
    Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)
    metric_increment([article.pk], views=1)


@transaction.atomic
def article_vote(*, article: Article, helpful: bool, user=None, session_key: str = "") -> bool:
    """Record "Was this helpful?"; one answer per user (or session). Changing one's mind
    moves the vote. Returns False when the same answer was already given."""
    if user is None and not session_key:
        raise DomainError("Voting needs a session.")
    voter = {"user": user} if user is not None else {"user": None, "session_key": session_key}
    existing = ArticleVote.objects.select_for_update().filter(article=article, **voter).first()
    if existing is not None and existing.helpful == helpful:
        return False
    if existing is None:
        try:
            with transaction.atomic():
                ArticleVote.objects.create(article=article, helpful=helpful, **voter)
        except IntegrityError:  # a concurrent click of the same voter won
            return False
        delta = {"helpful_count" if helpful else "not_helpful_count": 1}
    else:
        existing.helpful = helpful
        existing.save(update_fields=["helpful"])
        delta = (
            {"helpful_count": 1, "not_helpful_count": -1}
            if helpful
            else {"helpful_count": -1, "not_helpful_count": 1}
        )
    Article.objects.filter(pk=article.pk).update(
        **{field: F(field) + change for field, change in delta.items()}
    )
    metric_increment([article.pk], **{"helpful_votes" if helpful else "not_helpful_votes": 1})
    return True


def search_record(*, query: str, results, source: str, user=None) -> None:
    """Log a search and count an impression for each article it showed."""
    from knowledge.models import SearchLog

    query = (query or "").strip()[:300]
    if not query:
        return
    top = results[0] if results else None
    SearchLog.objects.create(
        query=query,
        source=source,
        result_count=len(results),
        best_similarity=top.similarity if top else None,
        top_article=top.article if top else None,
        user=user if user is not None and user.is_authenticated else None,
    )
    metric_increment([r.article.pk for r in results], search_impressions=1)


def ai_references_record(article_ids: Iterable[int]) -> None:
    """The AI agent cited these articles in an answer (one count each, today)."""
    metric_increment(article_ids, ai_references=1)
