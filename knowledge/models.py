"""Models of the knowledge base: the help center's categories and articles, the chunks
their text is embedded in, helpful votes, and the daily metrics analytics rolls up.

Writes go through ``knowledge.services`` (Markdown rendering, publishing, embedding
schedules, counters); search reads through ``knowledge.search``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384
#: The text search configuration of every tsvector and tsquery (stemming, stop words).
SEARCH_CONFIG = "english"


class Category(models.Model):
    """A shelf of the help center; categories nest (parent → children)."""

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    icon = models.CharField(max_length=16, blank=True, help_text="An emoji or icon name.")
    display_order = models.PositiveIntegerField(default=0)
    is_visible = models.BooleanField("visible", default=True)

    class Meta:
        ordering = ["display_order", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("knowledge:category", kwargs={"slug": self.slug})

    def ancestors(self) -> list[Category]:
        """From the root down to the parent (breadcrumbs)."""
        chain, node = [], self.parent
        while node is not None and len(chain) < 10:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))


class Article(models.Model):
    """A help article written in Markdown.

    ``body_html`` is the sanitized rendering shown to readers. Only published articles
    are searchable; beta articles show only to organizations that opted in (and staff).
    ``content_hash`` changes with the text; when it differs from ``embedded_hash`` (or
    the embedding model changed) the article's chunks are due to be re-embedded.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    summary = models.CharField(max_length=300, blank=True)
    body = models.TextField(help_text="Markdown.")
    body_html = models.TextField(editable=False, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    is_beta = models.BooleanField("beta", default=False)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="articles")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="articles",
    )
    external_id = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="Identifier in the source it was imported from.",
    )
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    view_count = models.PositiveIntegerField(default=0)
    helpful_count = models.PositiveIntegerField(default=0)
    not_helpful_count = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    embedded_hash = models.CharField(max_length=64, blank=True, editable=False)
    embedding_model = models.CharField(max_length=100, blank=True, editable=False)
    embedded_at = models.DateTimeField(null=True, blank=True, editable=False)
    search_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector(Coalesce("summary", models.Value("")), weight="B", config=SEARCH_CONFIG)
        + SearchVector("body", weight="C", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # The title alone, so "every query word in the title" is answered by its own GIN index
    # rather than by checking weights row by row.
    title_vector = models.GeneratedField(
        expression=SearchVector("title", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["title"]
        indexes = [
            GinIndex(fields=["search_vector"], name="article_search_idx"),
            GinIndex(fields=["title_vector"], name="article_title_search_idx"),
            models.Index(fields=["status", "category"], name="article_status_cat_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("knowledge:article", kwargs={"slug": self.slug})

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def helpful_ratio(self) -> float | None:
        votes = self.helpful_count + self.not_helpful_count
        return self.helpful_count / votes if votes else None

    def embedding_state(self, model_name: str) -> str:
        """ "embedded", "stale" (text or model changed since) or "missing"."""
        if not self.embedded_hash:
            return "missing"
        if self.embedded_hash != self.content_hash or self.embedding_model != model_name:
            return "stale"
        return "embedded"


class ArticleChunk(models.Model):
    """A passage of a published article (a heading and its text, title prefixed) with
    its embedding; what semantic search ranks and what the AI agent quotes."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    heading = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True)
    embedding_model = models.CharField(max_length=100)

    class Meta:
        ordering = ["article", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["article", "ordinal"], name="one_chunk_per_ordinal")
        ]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw_idx",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.article_id}#{self.ordinal}"


class ArticleVote(models.Model):
    """One "Was this helpful?" answer per signed-in user, or per browser session."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="article_votes",
    )
    session_key = models.CharField(max_length=64, blank=True)
    helpful = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["article", "user"],
                condition=Q(user__isnull=False),
                name="one_article_vote_per_user",
            ),
            models.UniqueConstraint(
                fields=["article", "session_key"],
                condition=Q(user__isnull=True),
                name="one_article_vote_per_session",
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(session_key=""), name="article_vote_has_voter"
            ),
        ]

    def __str__(self) -> str:
        return f"{'👍' if self.helpful else '👎'} {self.article_id}"


class KnowledgeBaseMetric(models.Model):
    """Per article and day: how often it was read, shown in search, cited by the AI,
    and voted helpful or not. Incremented with atomic upserts; analytics rolls it up."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="metrics")
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)
    search_impressions = models.PositiveIntegerField(default=0)
    ai_references = models.PositiveIntegerField(default=0)
    helpful_votes = models.PositiveIntegerField(default=0)
    not_helpful_votes = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["article", "day"], name="one_metric_row_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.article_id} {self.day}"


class SearchLog(models.Model):
    """A search someone ran, with how good the best result was: searches with no good
    result show the content gaps of the help center."""

    class Source(models.TextChoices):
        HELP_CENTER = "help_center", "Help center"
        API = "api", "API"
        AI = "ai", "AI agent"

    query = models.CharField(max_length=300)
    source = models.CharField(max_length=20, choices=Source.choices)
    result_count = models.PositiveIntegerField()
    best_similarity = models.FloatField(null=True, blank=True)
    top_article = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who searched, when signed in (deflection: did a ticket follow?).",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.query
