"""Hybrid search over published articles: the one function the help center, the API and
the AI agent use.

Two candidate lists, each bounded so that no query shape is slow:

- **keyword**: Postgres full-text (``search_vector @@ websearch_to_tsquery``, title
  weighted above summary above body). All query words must match; when that finds too
  few, any word may. At most ``MATCH_CAP`` matches are ranked with ``ts_rank_cd``, since
  ranking every match of a common word is what costs (≈300 ms at 100k texts), while the
  GIN match itself is cheap.
- **semantic**: the query's embedding against article chunks through the HNSW cosine
  index (iterative scan, so filters still return enough rows). An article is embedded as
  its title alone plus its passages (:func:`knowledge.text.embedding_chunks`); its
  similarity is the best of them, its snippet the best passage.

They are fused by score: the cosine similarity plus a small bonus for strong keyword
evidence (``KEYWORD_WEIGHT``), one result per article. Without embeddings (provider
down, article not embedded yet) keyword search alone still answers. When a learned
ranker is configured (``settings.HELPDESK_RANKER``, :mod:`knowledge.ranking`) it
re-orders the first ``RERANK_DEPTH`` fused candidates; a missing or broken one is
skipped with a warning.

Figures on the StackFAQ dev set (879 questions, 125 articles; ``manage.py
evaluate_search``): recall@1 0.940 for passages alone, 0.972 with titles embedded; the
keyword bonus is the largest that costs no question there (0.03 costs one: full-text
rank has no IDF and natural questions share few words with the title).
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connections, transaction
from django.db.models import Q

from config import metrics
from config.db_router import read_alias, replica_reads
from core.roles import is_agent
from knowledge.models import SEARCH_CONFIG, Article, ArticleChunk, Category
from knowledge.text import plain_text

logger = logging.getLogger(__name__)

#: Below this cosine similarity a passage is not an answer, only the nearest thing there
#: is; dropping it lets a search with no good result say so.
MIN_SIMILARITY = 0.25
#: The same for a title alone: a few words are nearer to anything (a gibberish query
#: comes within 0.25 of short titles); answering titles on StackFAQ are above 0.41 for
#: 99% of questions.
MIN_TITLE_SIMILARITY = 0.35
KEYWORD_PASSES_WITH_SEMANTIC = ("title",)
#: Added to the cosine similarity of the best keyword match (scaled by ts_rank_cd for
#: the others). Full-text ranking has no IDF (unlike BM25) and is the weaker signal on
#: natural questions; it breaks near-ties towards exact titles and error codes, and
#: alone it ranks articles that are not embedded yet.
KEYWORD_WEIGHT = 0.02
#: How many fused candidates a learned ranker re-orders.
RERANK_DEPTH = 20
MATCH_CAP = 1000
KEYWORD_CANDIDATES = 40
SEMANTIC_CANDIDATES = 40
HNSW_EF_SEARCH = 200  # recall@10 0.995 at 100k chunks (0.986 at 100)


@dataclass
class SearchResult:
    article: Article
    score: float
    similarity: float | None = None  # cosine of the best chunk (title or passage), 0..1
    keyword_rank: float | None = None  # ts_rank_cd of the full-text match (a score)
    # 1-based places in the full-text and semantic lists before fusion (``score``: the
    # similarity plus the keyword bonus; a learned ranker re-orders without changing it):
    # what the AI's decision trace shows of each candidate.
    keyword_position: int | None = None
    semantic_position: int | None = None
    chunk: ArticleChunk | None = None
    snippet: str = ""
    snippet_html: str = ""
    sources: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    """What search knows of one article before ordering: what the fusion and a learned
    ranker read (:mod:`knowledge.ranking`). Similarities are cosine, 0..1; ``None`` when
    that part of the article was not among the semantic candidates."""

    article_id: int
    similarity: float | None = None  # the best of title and passages
    title_similarity: float | None = None
    passage_similarity: float | None = None
    chunk_id: int | None = None  # the best passage (never the title alone)
    passages: int = 0  # the article's passages among the semantic candidates
    keyword_rank: float | None = None
    keyword_position: int | None = None
    semantic_position: int | None = None
    score: float = 0.0


@dataclass(frozen=True)
class Scope:
    """What a searcher may see: published articles, beta ones only when allowed."""

    include_beta: bool = False
    category_ids: tuple[int, ...] | None = None
    #: Articles left out whatever else holds (``evaluate_agent --unanswerable``: the
    #: answer is not in the help center).
    exclude_article_ids: tuple[int, ...] = ()

    @classmethod
    def for_user(cls, user, *, category: Category | None = None) -> Scope:
        return cls(
            include_beta=beta_visible_to(user),
            category_ids=tuple(category_subtree_ids(category)) if category else None,
        )

    def sql(self, alias: str) -> tuple[str, list]:
        clauses, params = [f"{alias}.status = 'published'"], []
        if not self.include_beta:
            clauses.append(f"NOT {alias}.is_beta")
        if self.category_ids is not None:
            clauses.append(f"{alias}.category_id = ANY(%s)")
            params.append(list(self.category_ids))
        if self.exclude_article_ids:
            clauses.append(f"NOT ({alias}.id = ANY(%s))")
            params.append(list(self.exclude_article_ids))
        return " AND ".join(clauses), params


def beta_visible_to(user) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if is_agent(user):
        return True
    profile = getattr(user, "customer_profile", None)
    return bool(profile and profile.organization and profile.organization.beta_opt_in)


def category_subtree_ids(category: Category) -> list[int]:
    ids, frontier = [category.pk], [category.pk]
    while frontier:
        frontier = list(
            Category.objects.filter(parent_id__in=frontier).values_list("pk", flat=True)
        )
        ids += frontier
    return ids


# ======================================================================================
# Candidates
# ======================================================================================


_EVERY_WORD = "websearch_to_tsquery(%s, %s)"
# The same lexemes joined with OR instead of AND.
_ANY_WORD = "NULLIF(replace(websearch_to_tsquery(%s, %s)::text, ' & ', ' | '), '')::tsquery"
#: pass name: (tsvector column, tsquery); each column has its own GIN index.
PASSES = {
    "title": ("title_vector", _EVERY_WORD),  # every query word in the title
    "every": ("search_vector", _EVERY_WORD),  # every word anywhere
    "any": ("search_vector", _ANY_WORD),  # any word
}


def keyword_candidates(
    query: str,
    scope: Scope,
    limit: int = KEYWORD_CANDIDATES,
    *,
    passes: Sequence[str] = ("every", "any"),
) -> list[tuple[int, float]]:
    """(article id, ts_rank_cd) best first. Each pass (see ``PASSES``) fills up what the
    one before left, until ``limit``."""
    where, scope_params = scope.sql("a")
    found: dict[int, float] = {}
    for name in passes:
        if len(found) >= limit:
            break
        column, tsquery = PASSES[name]
        sql = f"""
            WITH matches AS (
                SELECT a.id, a.{column} AS vector FROM knowledge_article a
                WHERE a.{column} @@ {tsquery} AND {where}
                LIMIT {MATCH_CAP}
            )
            SELECT id, ts_rank_cd(vector, {tsquery}, 1) AS rank
            FROM matches ORDER BY rank DESC, id LIMIT {int(limit)}
        """  # noqa: S608 (only constants and placeholders are interpolated)
        with connections[read_alias()].cursor() as cursor:
            cursor.execute(sql, [SEARCH_CONFIG, query, *scope_params, SEARCH_CONFIG, query])
            for article_id, rank in cursor.fetchall():
                found.setdefault(article_id, float(rank))
    return sorted(found.items(), key=lambda item: -item[1])[:limit]


def semantic_candidates(
    vector: Sequence[float], scope: Scope, limit: int = SEMANTIC_CANDIDATES
) -> list[tuple[int, int, float]]:
    """(chunk id, article id, cosine distance) nearest first, through the HNSW index."""
    return [row[:3] for row in _semantic_rows(vector, scope, limit)]


def _semantic_rows(
    vector: Sequence[float], scope: Scope, limit: int = SEMANTIC_CANDIDATES
) -> list[tuple[int, int, float, bool]]:
    """``semantic_candidates`` with a fourth value: the chunk is the title alone."""
    where, params = scope.sql("a")
    literal = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
    alias = read_alias()  # chosen before the block: inside it, "default" is in a transaction
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}")
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            f"""SELECT c.id, c.article_id, c.embedding <=> %s::vector AS distance,
                       c.text = a.title AS is_title
                FROM knowledge_articlechunk c JOIN knowledge_article a ON a.id = c.article_id
                WHERE c.embedding IS NOT NULL AND {where}
                ORDER BY c.embedding <=> %s::vector LIMIT {int(limit)}""",  # noqa: S608
            [literal, *params, literal],
        )
        rows = cursor.fetchall()
    return sorted(((c, a, float(d), t) for c, a, d, t in rows), key=lambda row: row[2])


# ======================================================================================
# The search
# ======================================================================================


# Read from the replica when there is one (config.db_router): an article published a
# moment ago may be missing for that moment. The caller's search log goes to default.
@replica_reads()
def search(
    query: str,
    *,
    user=None,
    scope: Scope | None = None,
    limit: int = 10,
    category: Category | None = None,
    query_vector: Sequence[float] | None = None,
    provider=None,
    semantic: bool = True,
    keyword: bool = True,
    kind: str = "other",
) -> list[SearchResult]:
    """Best articles for ``query`` that ``user`` may see (or within ``scope``).
    ``kind`` names the caller in ``/metrics`` (api, portal, agent)."""
    query = (query or "").strip()[:500]
    if not query:
        return []
    started = time.perf_counter()
    scope = scope or Scope.for_user(user, category=category)
    if semantic and query_vector is None:
        try:
            from integrations.embeddings import get_provider

            query_vector = (provider or get_provider()).embed_query(query)
        except Exception:  # embeddings unavailable: keyword search still answers
            logger.warning("semantic search unavailable", exc_info=True)
    candidates = gather(
        query, scope, query_vector=query_vector if semantic else None, keyword=keyword
    )
    ordered = rank(candidates)[:limit]

    ids = [c.article_id for c in ordered]
    articles = Article.objects.select_related("category").in_bulk(ids)
    # An article found by its title alone shows its first passage (ordinal 1; 0 is the title).
    title_only = [c.article_id for c in ordered if c.chunk_id is None and c.similarity]
    best_passages = {c.chunk_id for c in ordered if c.chunk_id}
    chunks, first_passages = {}, {}
    for chunk in ArticleChunk.objects.filter(
        Q(pk__in=best_passages) | Q(article_id__in=title_only, ordinal=1)
    ):
        if chunk.pk in best_passages:
            chunks[chunk.pk] = chunk
        else:
            first_passages[chunk.article_id] = chunk
    results = []
    for candidate in ordered:
        article = articles.get(candidate.article_id)
        if article is None:
            continue
        chunk = chunks.get(candidate.chunk_id) or first_passages.get(candidate.article_id)
        snippet = _snippet(query, article, chunk)
        results.append(
            SearchResult(
                article=article,
                score=candidate.score,
                similarity=candidate.similarity,
                keyword_rank=candidate.keyword_rank,
                keyword_position=candidate.keyword_position,
                semantic_position=candidate.semantic_position,
                chunk=chunk,
                snippet=snippet,
                snippet_html=highlight(snippet, query),
                sources=[
                    name
                    for name, position in (
                        ("keyword", candidate.keyword_position),
                        ("semantic", candidate.semantic_position),
                    )
                    if position is not None
                ],
            )
        )
    metrics.observe_search(kind, time.perf_counter() - started)
    return results


def gather(
    query: str,
    scope: Scope,
    *,
    query_vector: Sequence[float] | None = None,
    keyword: bool = True,
) -> list[Candidate]:
    """Both candidate lists merged per article (two queries), in no particular order."""
    semantic_rows: list[tuple[int, int, float, bool]] = []
    if query_vector is not None:
        try:
            semantic_rows = _semantic_rows(query_vector, scope)
        except Exception:  # pgvector unavailable: keyword search still answers
            logger.warning("semantic search unavailable", exc_info=True)
    found: dict[int, Candidate] = {}
    for chunk_id, article_id, distance, is_title in semantic_rows:  # nearest first
        similarity = 1.0 - distance
        if is_title and similarity < MIN_TITLE_SIMILARITY:
            continue
        candidate = found.setdefault(article_id, Candidate(article_id))
        if candidate.similarity is None:
            candidate.similarity = similarity
        if is_title:
            candidate.title_similarity = candidate.title_similarity or similarity
        else:
            candidate.passages += 1
            if candidate.chunk_id is None:
                candidate.chunk_id, candidate.passage_similarity = chunk_id, similarity
    found = {a: c for a, c in found.items() if c.similarity >= MIN_SIMILARITY}
    for position, candidate in enumerate(found.values(), start=1):
        candidate.semantic_position = position
    # With meaning to rank by, only strong keyword evidence joins (every query word in
    # the title: a title typed out, an error code named in one); weaker matches are
    # noise beside it. Without embeddings, keyword search takes every pass.
    passes = KEYWORD_PASSES_WITH_SEMANTIC if found else ("every", "any")
    keyword_hits = keyword_candidates(query, scope, passes=passes) if keyword else []
    for position, (article_id, keyword_rank) in enumerate(keyword_hits, start=1):
        candidate = found.setdefault(article_id, Candidate(article_id))
        candidate.keyword_rank, candidate.keyword_position = keyword_rank, position
    return list(found.values())


def fuse(candidates: list[Candidate]) -> list[Candidate]:
    """Best first by similarity plus the keyword bonus (see ``KEYWORD_WEIGHT``); sets
    ``score``."""
    top_rank = max((c.keyword_rank or 0.0 for c in candidates), default=0.0) or 1.0
    for c in candidates:
        c.score = (c.similarity or 0.0) + KEYWORD_WEIGHT * (c.keyword_rank or 0.0) / top_rank
    return sorted(candidates, key=lambda c: (-c.score, c.keyword_position or 0, c.article_id))


def rank(candidates: list[Candidate], *, ranker=None) -> list[Candidate]:
    """Fused, then re-ordered in its first ``RERANK_DEPTH`` by the configured learned
    ranker (``ranker`` given: that one; ``False``: none)."""
    from knowledge import ranking

    fused = fuse(candidates)
    ranker = ranking.active() if ranker is None else ranker
    if not ranker or len(fused) < 2:
        return fused
    head, tail = fused[:RERANK_DEPTH], fused[RERANK_DEPTH:]
    return ranker.rerank(head) + tail


def related_articles(article: Article, *, user=None, limit: int = 4) -> list[Article]:
    """Nearest published articles by meaning (by category when not embedded)."""
    first = article.chunks.exclude(embedding=None).order_by("ordinal").first()
    scope = Scope.for_user(user)
    if first is not None:
        hits = semantic_candidates(list(first.embedding), scope, limit=limit * 6)
        ids = list(dict.fromkeys(a for _, a, _ in hits if a != article.pk))[:limit]
        found = Article.objects.in_bulk(ids)
        return [found[i] for i in ids if i in found]
    queryset = Article.objects.filter(category=article.category, status="published").exclude(
        pk=article.pk
    )
    if not scope.include_beta:
        queryset = queryset.filter(is_beta=False)
    return list(queryset.order_by("-view_count")[:limit])


# ======================================================================================
# Snippets
# ======================================================================================

_STOP = {
    "a",
    "an",
    "the",
    "i",
    "my",
    "me",
    "to",
    "of",
    "in",
    "on",
    "for",
    "is",
    "it",
    "and",
    "or",
    "do",
    "how",
    "can",
    "what",
    "why",
    "when",
    "with",
    "be",
    "are",
    "this",
    "that",
    "you",
    "your",
    "we",
    "our",
    "not",
    "no",
    "at",
    "as",
    "by",
    "from",
    "does",
    "did",
}


def _terms(query: str) -> list[str]:
    words = re.findall(r"[\w']+", query.lower())
    return [w[:5] if len(w) > 5 else w for w in words if w not in _STOP and len(w) > 1]


def _snippet(query: str, article: Article, chunk: ArticleChunk | None, size: int = 280) -> str:
    if chunk is not None:
        body = chunk.text.split("\n\n", 1)[-1]  # without the "title › heading" line
        return _window(plain_text(body), query, size)
    paragraphs = [plain_text(p) for p in article.body.split("\n\n") if p.strip()]
    terms = _terms(query)
    best = max(
        paragraphs or [article.summary],
        key=lambda p: sum(p.lower().count(t) for t in terms),
        default="",
    )
    return _window(best or article.summary, query, size)


def _window(text: str, query: str, size: int) -> str:
    if len(text) <= size:
        return text
    lowered = text.lower()
    hits = [lowered.find(t) for t in _terms(query) if lowered.find(t) >= 0]
    start = max(0, min(hits) - 60) if hits else 0
    piece = text[start : start + size]
    return ("…" if start else "") + piece.strip() + ("…" if start + size < len(text) else "")


def highlight(text: str, query: str) -> str:
    """HTML-escaped ``text`` with the query's words (by their first letters) in <mark>."""
    escaped = html.escape(text)
    terms = sorted({re.escape(html.escape(t)) for t in _terms(query)}, key=len, reverse=True)
    if not terms:
        return escaped
    pattern = re.compile(r"\b(" + "|".join(terms) + r")[\w']*", re.IGNORECASE)
    return pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", escaped)
