"""Hybrid search latency and HNSW recall at 100,000 article chunks.

Loads (once) 100,000 chunks in 20,000 published articles of a ``bench`` category into a
database of its own, then reports p50/p95 latency of ``knowledge.search.search`` (with
and without query embedding), per query shape, and HNSW recall@10 against exact search.
From the project folder:

    HELPDESK_SERVICES_DIR=.data/bench DEBUG=true LOG_LEVEL=WARNING \\
        .venv/bin/python bench/search_latency.py
    .venv/bin/python -m config.embedded stop --dir .data/bench

The first command starts (or reuses) an embedded PostgreSQL + Valkey in ``.data/bench``;
the second stops them (the data stays, so the next run skips the load). ``--rebuild``
drops and reloads the rows, ``--json`` prints machine-readable figures only.

The vectors have the structure of real embeddings (uniformly random vectors are HNSW's
worst case and not representative). A few thousand real passages (StackFAQ answers and
the demo help center, split into sentences and paragraphs) are embedded once with the
local model and cached in ``.data/bench/base_vectors.npy``; each chunk is a real passage
whose vector is the passage's, mixed a little with another passage's and perturbed:
``normalize((1 - t) * v_i + t * v_j + noise)``. Articles group passages that are near
each other, as sections of one article are. Queries are real questions (StackFAQ dev
set), embedded with the same model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np

BASE_DIR = Path(__file__).resolve().parent.parent
SHARED_DATA = BASE_DIR.parent / "shared" / "data"
CORPUS = SHARED_DATA / "retrieval_stackfaq_corpus.jsonl"
DEV_QUESTIONS = SHARED_DATA / "retrieval_stackfaq_dev.jsonl"

# Never load the benchmark into the dev database by accident.
if not os.environ.get("DATABASE_URL"):
    os.environ.setdefault("HELPDESK_SERVICES_DIR", str(BASE_DIR / ".data" / "bench"))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
sys.path.insert(0, str(BASE_DIR))

import django  # noqa: E402

from bench.common import log, summary  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from pgvector import Vector  # noqa: E402
from pgvector.psycopg.vector import register_vector_info  # noqa: E402
from psycopg.types import TypeInfo  # noqa: E402

from config.embedded import default_services_dir  # noqa: E402
from integrations.embeddings import get_provider  # noqa: E402
from knowledge import search as search_module  # noqa: E402
from knowledge.demo import demo_articles  # noqa: E402
from knowledge.models import SEARCH_CONFIG, ArticleChunk, Category  # noqa: E402
from knowledge.search import Scope, keyword_candidates, search, semantic_candidates  # noqa: E402
from knowledge.text import plain_text  # noqa: E402

CATEGORY_SLUG = "bench"
CHUNKS_PER_ARTICLE = 5
HNSW_INDEX = "chunk_embedding_hnsw_idx"
SEED = 20251122
#: Mixing weight of the partner passage, drawn from U(0, T_MAX) per chunk.
T_MAX = 0.3
#: Standard deviation of the Gaussian noise per dimension (norm ≈ σ·√384 ≈ 0.39).
NOISE_SIGMA = 0.02
#: An article's sections are drawn from its first passage's nearest passages.
ARTICLE_NEIGHBOURS = 30
WARMUP_QUERIES = 30
SHAPE_REPEATS = 20
SQL_EXACT_CHECKS = 10

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[a-z]+")


def timed_ms(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# ======================================================================================
# Base passages and their real embeddings (computed once, cached)
# ======================================================================================


def sentences(text: str, min_words: int = 5) -> list[str]:
    parts = (" ".join(s.split()) for s in _SENTENCE_END.split(text))
    return [s for s in parts if len(s.split()) >= min_words]


def real_passages() -> list[str]:
    """Distinct real passages: StackFAQ titles, answers and their sentences; the demo
    help center's titles, summaries, paragraphs and their sentences."""
    found: list[str] = []
    for row in read_jsonl(CORPUS):
        found.append(row["title"])
        for answer in row["answers"]:
            answer = " ".join(answer.split())
            if len(answer.split()) <= 150:
                found.append(answer)
            found += sentences(answer)
    for article in demo_articles():
        found += [article["title"], article["summary"]]
        for paragraph in re.split(r"\n\s*\n", article["body"]):
            text = plain_text(paragraph)
            if len(text.split()) >= 5:
                found.append(text)
                found += sentences(text)
    unique = dict.fromkeys(p[:1200].strip() for p in found if p.strip())
    return list(unique)


def base_embeddings(cache_dir: Path) -> tuple[list[str], np.ndarray]:
    vectors_file = cache_dir / "base_vectors.npy"
    texts_file = cache_dir / "base_texts.json"
    texts = real_passages()
    if vectors_file.exists() and texts_file.exists():
        cached = json.loads(texts_file.read_text(encoding="utf-8"))
        if cached == texts:
            return texts, np.load(vectors_file)
    log(f"embedding {len(texts):,} real passages once (cached in {vectors_file}) …")
    started = time.perf_counter()
    vectors = np.asarray(get_provider().embed_documents(texts), dtype=np.float32)
    log(f"  {time.perf_counter() - started:.0f} s")
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(vectors_file, vectors)
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    return texts, vectors


# ======================================================================================
# The fixture: synthetic articles whose chunks are real passages with perturbed vectors
# ======================================================================================


def generate(texts: list[str], base: np.ndarray, n_chunks: int, stats: dict):
    """Yield (article number, title, [(chunk text, vector)]); when done, ``stats`` holds
    the mean cosine similarity of the chunk vectors to their source passages."""
    rng = np.random.default_rng(SEED)
    n_base = len(texts)
    similarities = base @ base.T
    np.fill_diagonal(similarities, -1.0)
    neighbours = np.argpartition(-similarities, ARTICLE_NEIGHBOURS, axis=1)[:, :ARTICLE_NEIGHBOURS]
    del similarities
    n_articles = -(-n_chunks // CHUNKS_PER_ARTICLE)
    anchors = np.resize(rng.permutation(n_base), n_articles)
    cosines: list[np.ndarray] = []
    remaining = n_chunks
    for number, anchor in enumerate(anchors):
        size = min(CHUNKS_PER_ARTICLE, remaining)
        remaining -= size
        sources = np.concatenate(
            [[anchor], neighbours[anchor, rng.integers(0, ARTICLE_NEIGHBOURS, size - 1)]]
        )
        partners = rng.integers(0, n_base, size)
        t = rng.uniform(0.0, T_MAX, size)[:, None].astype(np.float32)
        noise = rng.normal(0.0, NOISE_SIGMA, (size, base.shape[1])).astype(np.float32)
        vectors = (1 - t) * base[sources] + t * base[partners] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        cosines.append(np.einsum("ij,ij->i", vectors, base[sources]))
        chunks = []
        for k in range(size):
            text = texts[sources[k]]
            if t[k, 0] > T_MAX / 2:  # mixed in more: the partner's text joins the chunk
                text = f"{text} {texts[partners[k]]}"
            chunks.append((text, vectors[k]))
        words = texts[anchor].split()
        title = " ".join(words[:8])[:200]
        if len(words) > 8:
            title = title.rstrip(".,:;!?")
        yield number, title, chunks
    stats["mean_cos_to_source"] = round(float(np.concatenate(cosines).mean()), 4)


def hnsw_index():
    return next(i for i in ArticleChunk._meta.indexes if i.name == HNSW_INDEX)


def build_hnsw_index() -> float:
    """(Re)create the HNSW index with enough memory to build it in RAM; seconds taken."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
    started = time.perf_counter()
    with connection.schema_editor() as editor:
        editor.add_index(ArticleChunk, hnsw_index())
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET max_parallel_maintenance_workers")
    return seconds


def delete_bench_rows(category_id: int) -> int:
    """Raw deletes (the ORM's cascade would fetch 100,000 rows first); articles deleted."""
    statements = [
        "DELETE FROM knowledge_articlechunk WHERE article_id IN"
        " (SELECT id FROM knowledge_article WHERE category_id = %s)",
        "DELETE FROM knowledge_articlevote WHERE article_id IN"
        " (SELECT id FROM knowledge_article WHERE category_id = %s)",
        "DELETE FROM knowledge_knowledgebasemetric WHERE article_id IN"
        " (SELECT id FROM knowledge_article WHERE category_id = %s)",
        "UPDATE knowledge_searchlog SET top_article_id = NULL WHERE top_article_id IN"
        " (SELECT id FROM knowledge_article WHERE category_id = %s)",
        "DELETE FROM knowledge_article WHERE category_id = %s",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, [category_id])
        return cursor.rowcount


def load(category_id: int, texts: list[str], base: np.ndarray, n_chunks: int) -> dict:
    """Replace the bench rows: articles by COPY, then chunks by binary COPY with the
    HNSW index dropped, then the index rebuilt and the tables vacuumed and analyzed."""
    started = time.perf_counter()
    model = get_provider().model_name
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
    if delete_bench_rows(category_id):
        with connection.cursor() as cursor:
            # Committed and vacuumed first, so the new rows reuse the old rows' space.
            cursor.execute("VACUUM knowledge_article, knowledge_articlechunk")
    with transaction.atomic():
        raw = connection.connection
        articles: list[tuple[str, str, list[tuple[str, np.ndarray]]]] = []
        stats: dict = {}
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY knowledge_article (title, slug, summary, body, body_html, status,"
                " is_beta, category_id, published_at, created_at, updated_at, view_count,"
                " helpful_count, not_helpful_count, content_hash, embedded_hash,"
                " embedding_model, embedded_at) FROM STDIN"
            ) as copy:
                for number, title, chunks in generate(texts, base, n_chunks, stats):
                    slug = f"bench-{number:06d}"
                    body = "\n\n".join(text for text, _ in chunks)
                    digest = hashlib.sha256("\x1f".join([title, "", body]).encode()).hexdigest()
                    copy.write_row(
                        (title, slug, "", body, "", "published", False, category_id, now, now,
                         now, 0, 0, 0, digest, digest, model, now)
                    )  # fmt: skip
                    articles.append((slug, title, chunks))
            log(f"  {len(articles):,} articles copied ({time.perf_counter() - started:.0f} s)")
            cursor.execute(
                "SELECT slug, id FROM knowledge_article WHERE category_id = %s", [category_id]
            )
            ids = dict(cursor.fetchall())
            # pgvector's binary adapter on this cursor only: Django's own reads still get
            # the text form its VectorField expects.
            register_vector_info(cursor, TypeInfo.fetch(cursor.connection, "vector"))
            with cursor.copy(
                "COPY knowledge_articlechunk (article_id, ordinal, heading, text, embedding,"
                " embedding_model) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int4", "text", "text", "vector", "text"])
                for slug, title, chunks in articles:
                    for ordinal, (text, vector) in enumerate(chunks):
                        copy.write_row(
                            (ids[slug], ordinal, "", f"{title}\n\n{text}", Vector(vector), model)
                        )
    copied = time.perf_counter() - started
    log(f"  {n_chunks:,} chunks copied ({copied:.0f} s); building the HNSW index …")
    build_seconds = build_hnsw_index()
    log(f"  HNSW index built in {build_seconds:.1f} s; VACUUM ANALYZE …")
    with connection.cursor() as cursor:
        # VACUUM too: it also flushes the GIN pending list and sets hint bits.
        cursor.execute("VACUUM (ANALYZE) knowledge_article, knowledge_articlechunk")
    return {
        "loaded_at": now.isoformat(),
        "chunks": n_chunks,
        "articles": len(articles),
        "base_passages": len(texts),
        "noise_sigma": NOISE_SIGMA,
        "t_max": T_MAX,
        "seed": SEED,
        "copy_s": round(copied, 1),
        "hnsw_build_s": round(build_seconds, 1),
        "load_total_s": round(time.perf_counter() - started, 1),
        **stats,
    }


def ensure_data(n_chunks: int, rebuild: bool, cache_dir: Path) -> tuple[int, dict, bool]:
    """The bench category's id, the load facts, and whether this run loaded."""
    call_command("migrate", verbosity=0)
    category, _ = Category.objects.get_or_create(
        slug=CATEGORY_SLUG, defaults={"name": "Bench", "is_visible": False}
    )
    facts_file = cache_dir / "load.json"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM knowledge_articlechunk c JOIN knowledge_article a"
            " ON a.id = c.article_id WHERE a.category_id = %s",
            [category.pk],
        )
        present = cursor.fetchone()[0]
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [HNSW_INDEX])
        indexed = cursor.fetchone() is not None
    if present == n_chunks and not rebuild:
        facts = json.loads(facts_file.read_text()) if facts_file.exists() else {}
        if not indexed:  # an earlier load stopped between dropping and rebuilding it
            log("HNSW index missing: rebuilding it …")
            facts["hnsw_build_s"] = round(build_hnsw_index(), 1)
            facts_file.write_text(json.dumps(facts, indent=2))
        log(f"reusing the {present:,} bench chunks loaded before ({facts.get('loaded_at')})")
        return category.pk, facts, False
    texts, base = base_embeddings(cache_dir)
    log(f"loading {n_chunks:,} chunks from {len(texts):,} real passages …")
    facts = load(category.pk, texts, base, n_chunks)
    facts_file.write_text(json.dumps(facts, indent=2))
    return category.pk, facts, True


# ======================================================================================
# Measurements
# ======================================================================================


def database_facts() -> dict:
    with connection.cursor() as cursor:
        facts = {}
        for name in ("server_version", "shared_buffers", "work_mem", "jit"):
            cursor.execute(f"SHOW {name}")
            facts[name] = cursor.fetchone()[0]
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        facts["pgvector"] = cursor.fetchone()[0]
        for key, relation in (
            ("hnsw_index_mb", HNSW_INDEX),
            ("gin_index_mb", "article_search_idx"),
            ("chunk_table_mb", "knowledge_articlechunk"),
        ):
            cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [relation])
            facts[key] = round(cursor.fetchone()[0] / 2**20)
    return facts


def count_matches(query: str, scope: Scope) -> int:
    where, params = scope.sql("a")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM knowledge_article a"  # noqa: S608
            f" WHERE a.search_vector @@ websearch_to_tsquery(%s, %s) AND {where}",
            [SEARCH_CONFIG, query, *params],
        )
        return cursor.fetchone()[0]


def query_shapes(scope: Scope, category_id: int, questions: list[str]) -> list[tuple[str, str]]:
    """(shape, query): the keyword side's easy and hard cases, picked from the data."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT body, title FROM knowledge_article WHERE category_id = %s ORDER BY id"
            " LIMIT 2000",
            [category_id],
        )
        rows = cursor.fetchall()
        words: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for body, _ in rows:
            tokens = _WORD.findall(body.lower())
            words.update(t for t in tokens if len(t) > 2)
            pairs.update(pairwise(tokens))
        frequent = [w for w, _ in words.most_common(300)]
        cursor.execute(
            "SELECT w FROM unnest(%s::text[]) w WHERE websearch_to_tsquery(%s, w)::text = ''",
            [frequent, SEARCH_CONFIG],
        )
        stop_words = {w for (w,) in cursor.fetchall()}
    content_words = [w for w in frequent if w not in stop_words][:25]
    counts = {w: count_matches(w, scope) for w in content_words}
    common = max(content_words, key=lambda w: counts[w])
    phrase = next(
        f'"{a} {b}"'
        for (a, b), _ in pairs.most_common()
        if len(a) > 2 and len(b) > 2 and a in words and b in words
        and a not in stop_words and b not in stop_words and a != b
    )  # fmt: skip
    # A title that is a whole question (a StackFAQ title, say) if there is one.
    titles = [t for _, t in rows if t.endswith("?") and len(t.split()) >= 4]
    title = titles[len(titles) // 2] if titles else rows[len(rows) // 2][1]
    longest = max(questions, key=len)
    return [
        ("common word", common),
        ("exact title", title),
        ("long question", longest),
        ("two-word phrase", phrase),
        ("no match", "zxqvbwpfk"),
    ]


def exact_neighbours(category_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Every bench chunk's id and stored vector (unit length), for exact search."""
    ids, vectors = [], []
    with connection.connection.cursor() as cursor:
        register_vector_info(cursor, TypeInfo.fetch(cursor.connection, "vector"))
        with cursor.copy(
            "COPY (SELECT c.id, c.embedding FROM knowledge_articlechunk c JOIN"  # noqa: S608
            " knowledge_article a ON a.id = c.article_id WHERE a.category_id ="
            f" {int(category_id)} AND a.status = 'published' AND c.embedding IS NOT NULL)"
            " TO STDOUT (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "vector"])
            for chunk_id, vector in copy.rows():
                ids.append(chunk_id)
                vectors.append(vector.to_numpy())
    matrix = np.vstack(vectors).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(ids), matrix


def sql_exact_top(vector: list[float], scope: Scope, limit: int) -> list[int]:
    """The same query as ``semantic_candidates`` with index scans off: a sequential scan."""
    where, params = scope.sql("a")
    literal = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(
            f"""SELECT c.id FROM knowledge_articlechunk c
                JOIN knowledge_article a ON a.id = c.article_id
                WHERE c.embedding IS NOT NULL AND {where}
                ORDER BY c.embedding <=> %s::vector LIMIT {int(limit)}""",  # noqa: S608
            [*params, literal],
        )
        return [row[0] for row in cursor.fetchall()]


def explain_semantic(vector: list[float], scope: Scope) -> list[str]:
    where, params = scope.sql("a")
    literal = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {search_module.HNSW_EF_SEARCH}")
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SHOW hnsw.ef_search")
        ef_search = cursor.fetchone()[0]
        cursor.execute(
            f"""EXPLAIN (ANALYZE, BUFFERS)
                SELECT c.id, c.article_id, c.embedding <=> %s::vector AS distance
                FROM knowledge_articlechunk c JOIN knowledge_article a ON a.id = c.article_id
                WHERE c.embedding IS NOT NULL AND {where}
                ORDER BY c.embedding <=> %s::vector
                LIMIT {search_module.SEMANTIC_CANDIDATES}""",  # noqa: S608
            [literal, *params, literal],
        )
        plan = [re.sub(r"'\[[^\]]*\]'", "'[…]'", row[0]) for row in cursor.fetchall()]
    return [f"(hnsw.ef_search = {ef_search} in the query's transaction)", *plan]


def measure(category_id: int, n_queries: int) -> dict:
    scope = Scope(include_beta=True, category_ids=(category_id,))
    provider = get_provider()
    dev = [row["query"] for row in read_jsonl(DEV_QUESTIONS)]
    order = np.random.default_rng(SEED).permutation(len(dev))
    questions = [dev[i] for i in order[:n_queries]]
    warmup = [dev[i] for i in order[n_queries : n_queries + WARMUP_QUERIES]]

    log(f"embedding {len(questions) + len(warmup)} questions …")
    # Warm up the model and the caches with questions that are not measured.
    for question in warmup:
        search(question, scope=scope, query_vector=provider.embed_query(question))
    embed_ms, vectors = [], []
    for question in questions:
        elapsed, vector = timed_ms(provider.embed_query, question)
        embed_ms.append(elapsed)
        vectors.append(vector)

    log("hybrid search …")
    excluding = [
        timed_ms(search, q, scope=scope, query_vector=v)[0]
        for q, v in zip(questions, vectors, strict=True)
    ]
    including = [timed_ms(search, q, scope=scope)[0] for q in questions]
    semantic_ms = [timed_ms(semantic_candidates, v, scope)[0] for v in vectors]
    title_pass_ms = [
        timed_ms(keyword_candidates, q, scope, passes=("title",))[0] for q in questions
    ]
    keyword_ms = [timed_ms(keyword_candidates, q, scope)[0] for q in questions]

    log("query shapes …")
    shapes = []
    for shape, query in query_shapes(scope, category_id, dev):
        vector = provider.embed_query(query)
        search(query, scope=scope, query_vector=vector)
        keyword_candidates(query, scope)
        shapes.append(
            {
                "shape": shape,
                "query": query,
                "matches": count_matches(query, scope),
                "search_ms": summary(
                    [
                        timed_ms(search, query, scope=scope, query_vector=vector)[0]
                        for _ in range(SHAPE_REPEATS)
                    ]
                ),
                "keyword_candidates_ms": summary(
                    [timed_ms(keyword_candidates, query, scope)[0] for _ in range(SHAPE_REPEATS)]
                ),
            }
        )

    log("recall against exact search …")
    chunk_ids, matrix = exact_neighbours(category_id)
    recalls, recalls_in_40, sql_agreement = [], [], []
    for number, vector in enumerate(vectors):
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        exact = set(chunk_ids[np.argpartition(-scores, 10)[:10]].tolist())
        hnsw = {c for c, _, _ in semantic_candidates(vector, scope, limit=10)}
        recalls.append(len(hnsw & exact) / 10)
        in_40 = semantic_candidates(vector, scope, limit=search_module.SEMANTIC_CANDIDATES)
        recalls_in_40.append(len({c for c, _, _ in in_40[:10]} & exact) / 10)
        if number < SQL_EXACT_CHECKS:
            sql_agreement.append(len(set(sql_exact_top(vector, scope, 10)) & exact) / 10)

    return {
        "queries": len(questions),
        "warmup_queries": len(warmup),
        "hybrid_excluding_embedding_ms": summary(excluding),
        "hybrid_including_embedding_ms": summary(including),
        "embed_query_ms": summary(embed_ms),
        "components_ms": {
            "semantic_candidates": summary(semantic_ms),
            "keyword_candidates_title_pass": summary(title_pass_ms),
            "keyword_candidates_every_any": summary(keyword_ms),
        },
        "shapes": shapes,
        "recall": {
            "at_10": round(statistics.fmean(recalls), 4),
            "at_10_min": min(recalls),
            "queries_below_0_9": sum(r < 0.9 for r in recalls),
            "at_10_within_search_candidates": round(statistics.fmean(recalls_in_40), 4),
            "ef_search": search_module.HNSW_EF_SEARCH,
            "exact": f"NumPy over all {len(chunk_ids):,} stored vectors",
            "sql_exact_agreement": round(statistics.fmean(sql_agreement), 4),
            "sql_exact_checked": len(sql_agreement),
        },
        "explain": explain_semantic(vectors[0], scope),
    }


# ======================================================================================
# Report
# ======================================================================================


def row(label: str, figures: dict, target: float | None = None) -> str:
    line = f"  {label:<34}{figures['p50']:>8.1f}{figures['p95']:>8.1f}{figures['max']:>8.1f}"
    if target is not None:
        verdict = "met" if figures["p95"] < target else "MISSED"
        line += f"   p95 target < {target:g} ms: {verdict}"
    return line


def report(result: dict) -> str:
    data, db, m = result["data"], result["database"], result["measurements"]
    recall = m["recall"]
    lines = [
        f"Hybrid search at {data['chunks_present']:,} chunks in {data['articles_present']:,}"
        f" articles — {result['machine']['cpu_count']} CPUs,"
        f" PostgreSQL {db['server_version']}, pgvector {db['pgvector']},"
        f" shared_buffers {db['shared_buffers']}, jit {db['jit']}",
        f"  data: {data.get('base_passages', 0):,} real passages, mean cosine of a chunk to"
        f" its source {data.get('mean_cos_to_source', '?')};"
        f" {'loaded this run' if data['loaded_this_run'] else 'loaded ' + data.get('loaded_at', '?')}"  # noqa: E501
        f" (COPY {data.get('copy_s', '?')} s)",
        f"  HNSW build (m=16, ef_construction=64, 1 parallel worker): {data.get('hnsw_build_s')} s;"
        f" index {db['hnsw_index_mb']} MB, chunk table {db['chunk_table_mb']} MB,"
        f" GIN {db['gin_index_mb']} MB",
        "",
        f"Latency over {m['queries']} StackFAQ questions, ms"
        f" (after {m['warmup_queries']} warm-up queries)      p50     p95     max",
        row("hybrid, query vector given", m["hybrid_excluding_embedding_ms"], 50),
        row("hybrid, embedding the query", m["hybrid_including_embedding_ms"], 80),
        row("embed_query alone", m["embed_query_ms"]),
        row("semantic_candidates (40)", m["components_ms"]["semantic_candidates"]),
        row("keyword_candidates, title pass", m["components_ms"]["keyword_candidates_title_pass"]),
        row("keyword_candidates, every+any", m["components_ms"]["keyword_candidates_every_any"]),
        "",
        f"Query shapes ({SHAPE_REPEATS} repeats), ms         matches"
        "   search p50/p95   keyword_candidates p50/p95",
    ]
    for shape in m["shapes"]:
        query = shape["query"] if len(shape["query"]) <= 40 else shape["query"][:37] + "…"
        s, k = shape["search_ms"], shape["keyword_candidates_ms"]
        lines.append(
            f"  {shape['shape']:<16}{query!r:<44}{shape['matches']:>7,}"
            f"   {s['p50']:>6.1f} /{s['p95']:>6.1f}   {k['p50']:>6.1f} /{k['p95']:>6.1f}"
        )
    verdict = "met" if recall["at_10"] >= 0.95 else "MISSED"
    lines += [
        "",
        f"HNSW recall@10: {recall['at_10']:.4f} (target ≥ 0.95: {verdict}); min"
        f" {recall['at_10_min']:.1f}, {recall['queries_below_0_9']} queries below 0.9;"
        f" ef_search {recall['ef_search']}",
        f"  top 10 of search()'s {search_module.SEMANTIC_CANDIDATES} semantic candidates:"
        f" {recall['at_10_within_search_candidates']:.4f}; exact = {recall['exact']}"
        f" (SQL sequential scan agrees {recall['sql_exact_agreement']:.2f}"
        f" on {recall['sql_exact_checked']} queries)",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of one semantic query:",
        *("  " + line for line in m["explain"][:12]),
        *("  " + line for line in m["explain"][12:] if "Time:" in line),
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--rebuild", action="store_true", help="drop and reload the rows")
    args = parser.parse_args(argv)

    cache_dir = default_services_dir()
    category_id, facts, loaded = ensure_data(args.chunks, args.rebuild, cache_dir)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT a.id), count(c.id) FROM knowledge_article a"
            " LEFT JOIN knowledge_articlechunk c ON c.article_id = a.id"
            " WHERE a.category_id = %s",
            [category_id],
        )
        articles_present, chunks_present = cursor.fetchone()
    result = {
        "machine": {"cpu_count": os.cpu_count()},
        "database": database_facts(),
        "data": {
            **facts,
            "loaded_this_run": loaded,
            "articles_present": articles_present,
            "chunks_present": chunks_present,
        },
        "measurements": measure(category_id, args.queries),
    }
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
