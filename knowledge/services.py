"""Every write of the knowledge base: categories (create, edit, delete), articles
(create, edit, publish, archive, import), their embeddings, helpful votes, and the daily
metric counters.

Embedding is slow and external, so it runs in ``knowledge.tasks.embed_article`` after
commit; :func:`article_embed` computes vectors outside any transaction and then swaps the
article's chunks in one short transaction, only if the text has not changed meanwhile.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.validators import slug_re
from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from core.errors import Conflict, DomainError
from core.markdown import render_markdown
from core.outbox import schedule_after_commit
from knowledge import text
from knowledge.importing import ArticleRecord
from knowledge.models import (
    Article,
    ArticleChunk,
    ArticleVote,
    Category,
    KnowledgeBaseMetric,
    SearchLog,
)

logger = logging.getLogger(__name__)

#: "Leave as it is" for an argument whose ``None`` means something (a root category).
KEEP: Any = object()


# ======================================================================================
# Categories
# ======================================================================================


def _category_fields(
    *, category: Category, name: str, slug: str, icon: str, display_order: int
) -> None:
    """Check and set what every category needs (the model's limits, a free slug)."""
    name = (name or "").strip()
    if not name:
        raise DomainError("A category needs a name.", field="name")
    if len(name) > Category._meta.get_field("name").max_length:
        raise DomainError("The name is too long (at most 100 characters).", field="name")
    slug = (slug or "").strip()
    if slug != category.slug and (
        not slug_re.match(slug) or len(slug) > Category._meta.get_field("slug").max_length
    ):
        raise DomainError(
            "Enter a slug of letters, digits, hyphens or underscores (at most 100).",
            field="slug",
        )
    if Category.objects.filter(slug=slug).exclude(pk=category.pk).exists():
        raise DomainError("A category with this slug already exists.", field="slug")
    if len(icon or "") > Category._meta.get_field("icon").max_length:
        raise DomainError("The icon is too long (at most 16 characters).", field="icon")
    if display_order is None or display_order < 0:
        raise DomainError("The display order is a number from 0.", field="display_order")
    category.name, category.slug, category.icon = name, slug, icon or ""
    category.display_order = display_order


def _lock_category_tree() -> None:
    """Serialize changes of parents, so two moves cannot make a cycle between them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(b"knowledge.category")])


def category_validate_parent(*, category: Category, parent: Category | None) -> None:
    """A category cannot sit inside itself, nor inside one of its own subcategories (the
    tree would become a cycle). Raises :class:`DomainError` on the ``parent`` field."""
    if parent is None or category.pk is None:
        return
    if parent.pk == category.pk:
        raise DomainError("A category cannot sit inside itself.", field="parent")
    parents = dict(Category.objects.values_list("pk", "parent_id"))  # the tree is small
    node, seen = parent.pk, set()
    while node is not None and node not in seen:
        if node == category.pk:
            raise DomainError(
                "A category cannot sit inside one of its own subcategories.", field="parent"
            )
        seen.add(node)
        node = parents.get(node)


@transaction.atomic
def category_create(
    *,
    name: str,
    slug: str = "",
    description: str = "",
    icon: str = "",
    parent: Category | None = None,
    display_order: int = 0,
    is_visible: bool = True,
) -> Category:
    """A new category; the slug defaults to the name's and must be free."""
    category = Category(description=description or "", parent=parent, is_visible=is_visible)
    _category_fields(
        category=category,
        name=name,
        slug=slug or slugify(name)[:100],
        icon=icon,
        display_order=display_order,
    )
    try:
        with transaction.atomic():
            category.save()
    except IntegrityError:  # the same slug, created at the same moment
        raise DomainError("A category with this slug already exists.", field="slug") from None
    return category


@transaction.atomic
def category_update(
    *,
    category: Category,
    name: str | None = None,
    slug: str | None = None,
    description: str | None = None,
    icon: str | None = None,
    parent: Category | None = KEEP,
    display_order: int | None = None,
    is_visible: bool | None = None,
) -> Category:
    """Change what is given (``None`` keeps a value; ``parent=None`` makes it a top-level
    category). A parent that would make a cycle is refused; nothing changed, nothing saved."""
    category = Category.objects.select_for_update().get(pk=category.pk)
    before = {f.attname: getattr(category, f.attname) for f in Category._meta.concrete_fields}
    if parent is not KEEP and parent != category.parent:
        _lock_category_tree()
        category_validate_parent(category=category, parent=parent)
        category.parent = parent
    if description is not None:
        category.description = description
    if is_visible is not None:
        category.is_visible = is_visible
    _category_fields(
        category=category,
        name=category.name if name is None else name,
        slug=category.slug if slug is None else slug,
        icon=category.icon if icon is None else icon,
        display_order=category.display_order if display_order is None else display_order,
    )
    changed = [
        f.name
        for f in Category._meta.concrete_fields
        if getattr(category, f.attname) != before[f.attname]
    ]
    if not changed:
        return category
    try:
        with transaction.atomic():
            category.save(update_fields=changed)
    except IntegrityError:
        raise DomainError("A category with this slug already exists.", field="slug") from None
    return category


@transaction.atomic
def category_delete(*, category: Category) -> None:
    """Delete a category that holds nothing. One that still holds articles (whatever their
    status) or subcategories is refused with :class:`Conflict` (code ``protected``): both
    point to it with ``on_delete=PROTECT``."""
    locked = Category.objects.select_for_update().filter(pk=category.pk).first()
    if locked is None:
        return
    articles = locked.articles.count()
    if articles:
        raise Conflict(
            f"“{locked}” still holds {articles} article{'s' if articles != 1 else ''}; "
            "move them to another category first.",
            code="protected",
        )
    children = locked.children.count()
    if children:
        raise Conflict(
            f"“{locked}” still holds {children} "
            f"subcategor{'ies' if children != 1 else 'y'}; move or delete them first.",
            code="protected",
        )
    try:
        with transaction.atomic():
            locked.delete()
    except ProtectedError:
        raise Conflict(
            f"“{locked}” is still in use; remove what refers to it first.", code="protected"
        ) from None


# ======================================================================================
# Articles
# ======================================================================================


def _unique_slug(title: str, *, exclude_pk: int | None = None) -> str:
    base = slugify(title)[:200] or "article"
    slug, n = base, 2
    while Article.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _schedule_embedding(article: Article) -> None:
    schedule_after_commit("knowledge.tasks.embed_article", article.pk)


def _clean_text(*, title: str, summary: str, body: str) -> tuple[str, str, str]:
    """An article's title, summary and body as stored (or a :class:`DomainError`)."""
    title, body = (title or "").strip(), body or ""
    if not title:
        raise DomainError("An article needs a title.", field="title")
    if not body.strip():
        raise DomainError("An article needs a body.", field="body")
    return title[:200], (summary or "").strip()[:300], body


def _apply_text(article: Article, *, title: str, summary: str, body: str) -> None:
    article.title, article.summary, article.body = _clean_text(
        title=title, summary=summary, body=body
    )
    article.body_html = render_markdown(article.body)
    article.content_hash = text.content_hash(
        title=article.title, summary=article.summary, body=article.body
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
    slug: str | None = None,
    publish: bool = False,
) -> Article:
    """A new article, a draft unless ``publish``. The slug comes from the title (made
    unique) unless one is given, which must be free."""
    article = Article(
        category=category, author=author, is_beta=is_beta, external_id=external_id or None
    )
    _apply_text(article, title=title, summary=summary, body=body)
    if slug:
        if not slug_re.match(slug) or len(slug) > 200:
            raise DomainError(
                "Enter a slug of letters, digits, hyphens or underscores (at most 200).",
                field="slug",
            )
        if Article.objects.filter(slug=slug).exists():
            raise DomainError(f"An article with the slug “{slug}” already exists.", field="slug")
        article.slug = slug
    else:
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


@transaction.atomic
def article_delete(*, article: Article) -> None:
    """Delete an article with its chunks, votes and metrics (searches that showed it first
    keep their log row, without the article)."""
    Article.objects.filter(pk=article.pk).delete()


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
    chunks = text.embedding_chunks(title=article.title, summary=article.summary, body=article.body)
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
# Import
# ======================================================================================


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    article_ids: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def _import_category(slug: str, cache: dict[str, Category]) -> Category:
    """The category of this slug, created (named after the slug) when missing."""
    if slug not in cache:
        cache[slug] = Category.objects.filter(slug=slug).first() or category_create(
            name=slug.replace("-", " ").replace("_", " ").title(), slug=slug
        )
    return cache[slug]


def _import_one(
    record: ArticleRecord,
    *,
    existing: Article | None,
    category: Category,
    publish: bool,
    author,
) -> str:
    """Create or update one article; "created", "updated" or "unchanged"."""
    if existing is None:
        article_create(
            title=record.title,
            body=record.body,
            summary=record.summary or "",
            category=category,
            author=author,
            is_beta=bool(record.is_beta),
            external_id=record.external_id,
            slug=record.slug,
            publish=publish,
        )
        return "created"
    title, summary, body = _clean_text(
        title=record.title,
        summary=existing.summary if record.summary is None else record.summary,
        body=record.body,
    )
    moves = record.category is not None and category.pk != existing.category_id
    beta = record.is_beta is not None and record.is_beta != existing.is_beta
    text_changed = (title, summary, body) != (existing.title, existing.summary, existing.body)
    publishes = publish and not existing.is_published
    if not (text_changed or moves or beta or publishes):
        return "unchanged"
    if text_changed or moves or beta:
        existing = article_update(
            article=existing,
            title=title,
            summary=summary,
            body=body,
            category=category if moves else None,
            is_beta=record.is_beta if beta else None,
        )
    if publishes:
        article_publish(article=existing)
    return "updated"


def article_import(
    *,
    records: Iterable[ArticleRecord],
    category: Category | str,
    publish: bool = False,
    embed_now: bool = False,
    author=None,
    provider=None,
    progress: Callable[[Iterable, str], Iterable] | None = None,
) -> ImportResult:
    """Create or update articles from a source (see :mod:`knowledge.importing`), all or
    nothing, in one transaction; idempotent by external id.

    A new article goes to the record's category, else to ``category`` (either is created,
    named after its slug, when missing); it is published when the record says so, else when
    ``publish``. An existing article (same external id) takes the record's title, summary
    and body, and its category and beta flag when the record names them; it keeps its slug
    and is published when asked, never unpublished. Tags are read but not stored (articles
    have none). An article that would not change is not saved: it counts as unchanged.

    Published articles are queued for embedding after commit, as ever; ``embed_now`` also
    embeds them in this process once the import has committed. ``progress`` wraps the
    loops (a progress bar). A record that breaks a rule raises :class:`DomainError` naming
    its source (file and line); then nothing is imported.
    """
    records = list(records)
    if not records:
        raise DomainError("There is no article to import.", field="files")
    seen: dict[str, str] = {}
    for record in records:
        if record.external_id in seen:
            raise DomainError(
                f"{record.source}: the external id “{record.external_id}” is also the one of "
                f"{seen[record.external_id]}.",
                field="files",
            )
        seen[record.external_id] = record.source or record.external_id
    wrap = progress or (lambda iterable, _label: iterable)
    result = ImportResult()
    try:
        with transaction.atomic():
            categories: dict[str, Category] = {}
            if isinstance(category, Category):
                categories[category.slug] = category
                default = category
            else:
                try:
                    default = _import_category(category, categories)
                except DomainError as error:
                    raise DomainError(f"Category “{category}”: {error.message}") from error
            existing = {
                article.external_id: article
                for article in Article.objects.select_for_update().filter(
                    external_id__in=list(seen)
                )
            }
            for record in wrap(records, "importing"):
                try:
                    outcome = _import_one(
                        record,
                        existing=existing.get(record.external_id),
                        category=_import_category(record.category, categories)
                        if record.category
                        else default,
                        publish=publish if record.publish is None else record.publish,
                        author=author,
                    )
                except DomainError as error:
                    raise type(error)(
                        f"{record.source or record.external_id}: {error.message}",
                        field="files",
                        code=error.code,
                    ) from error
                setattr(result, outcome, getattr(result, outcome) + 1)
            result.article_ids = list(
                Article.objects.filter(external_id__in=list(seen))
                .order_by("pk")
                .values_list("pk", flat=True)
            )
    except IntegrityError:
        raise Conflict(
            "Another change wrote the same articles or slugs meanwhile; nothing was "
            "imported. Run the import again."
        ) from None
    if embed_now:
        for article_id in wrap(result.article_ids, "embedding"):
            article_embed(article_id=article_id, provider=provider)
    return result


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


@transaction.atomic
def search_log_delete(*, search_log: SearchLog) -> None:
    SearchLog.objects.filter(pk=search_log.pk).delete()


def ai_references_record(article_ids: Iterable[int]) -> None:
    """The AI agent cited these articles in an answer (one count each, today)."""
    metric_increment(article_ids, ai_references=1)
