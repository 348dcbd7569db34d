"""A learned ranker: re-orders the fused search candidates with a linear model trained on
questions whose answer is known (approved training examples, a labelled file).

The model is a weighted sum of a few signals search already has for each candidate
(:class:`knowledge.search.Candidate`: cosine of the title, of the best passage, how many
passages matched, the full-text rank…), each made relative to the other candidates of the
same question. It is trained listwise (softmax over a question's candidates, the known
article the target), regularised towards the fusion's own weights, so that little data
leaves it close to the fusion rather than anywhere else.

A trained ranker is a folder ``<version>/`` with ``weights.json`` and ``manifest.json``
(version, created, training counts, features, figures) under
``settings.HELPDESK_RANKER_DIR``; ``default`` is the one committed beside this module.
``settings.HELPDESK_RANKER`` names the one search uses ("" for none). A missing or broken
one is logged once and search keeps the fusion's order: it never fails a search.

Figures are honest only on questions about articles the ranker has never seen trained
on: :func:`cross_validate` holds out whole articles (all their questions), which is what
an unseen help center or a new article looks like.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

#: Where the committed default lives (``HELPDESK_RANKER=default``).
BUILTIN_DIR = Path(__file__).resolve().parent / "rankers"
FEATURES = (
    "similarity",  # the best of title and passages
    "title_similarity",
    "passage_similarity",
    "similarity_gap",  # below the question's best candidate
    "passages",  # log(1 + passages among the semantic candidates)
    "keyword_match",  # every query word in the title
    "keyword_rank",  # ts_rank_cd over the question's best
)
#: The fusion expressed in these features: where training starts and what the
#: regularisation pulls towards (``knowledge.search.fuse``: similarity + 0.02 × rank).
PRIOR = {"similarity": 50.0, "keyword_rank": 1.0}
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RankerError(Exception):
    """A ranker that cannot be loaded or trained (message says why)."""


# ======================================================================================
# Features and the model
# ======================================================================================


def features(candidates: Sequence) -> list[list[float]]:
    """One row of ``FEATURES`` per candidate. Similarities missing from the semantic list
    are below its last one: they take the lowest similarity the question saw."""
    seen = [
        s
        for c in candidates
        for s in (c.similarity, c.title_similarity, c.passage_similarity)
        if s is not None
    ]
    floor = min(seen, default=0.0)
    best = max((c.similarity for c in candidates if c.similarity is not None), default=floor)
    top_rank = max((c.keyword_rank or 0.0 for c in candidates), default=0.0) or 1.0
    rows = []
    for c in candidates:
        similarity = c.similarity if c.similarity is not None else floor
        rows.append(
            [
                similarity,
                c.title_similarity if c.title_similarity is not None else floor,
                c.passage_similarity if c.passage_similarity is not None else floor,
                similarity - best,
                math.log1p(c.passages),
                1.0 if c.keyword_position is not None else 0.0,
                (c.keyword_rank or 0.0) / top_rank,
            ]
        )
    return rows


@dataclass
class Ranker:
    version: str
    weights: dict[str, float]
    manifest: dict = field(default_factory=dict)

    def scores(self, candidates: Sequence) -> list[float]:
        index = {name: i for i, name in enumerate(FEATURES)}
        terms = [(index[name], w) for name, w in self.weights.items() if name in index]
        return [sum(row[i] * w for i, w in terms) for row in features(candidates)]

    def rerank(self, candidates: Sequence) -> list:
        """The same candidates, best first by this model (ties keep their order)."""
        scores = self.scores(candidates)
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
        return [candidates[i] for i in order]


def load(version: str, directory: Path | str | None = None) -> Ranker:
    """The ranker ``version`` (``default``: the committed one unless the ranker folder
    has its own ``default``). Raises ``RankerError`` saying what is wrong."""
    if not VERSION_PATTERN.match(version or ""):
        raise RankerError(f"{version!r} is not a ranker version name.")
    folder = Path(directory or settings.HELPDESK_RANKER_DIR) / version
    if not folder.is_dir() and version == "default":
        folder = BUILTIN_DIR / "default"
    try:
        weights = json.loads((folder / "weights.json").read_text(encoding="utf-8"))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise RankerError(f"Ranker {version!r}: {error.filename} is missing.") from error
    except (OSError, ValueError) as error:
        raise RankerError(f"Ranker {version!r} cannot be read: {error}") from error
    if not isinstance(weights, dict) or not weights:
        raise RankerError(f"Ranker {version!r}: weights.json holds no weights.")
    unknown = set(weights) - set(FEATURES)
    if unknown:
        raise RankerError(f"Ranker {version!r}: unknown features {sorted(unknown)}.")
    try:
        weights = {name: float(value) for name, value in weights.items()}
    except (TypeError, ValueError) as error:
        raise RankerError(f"Ranker {version!r}: a weight is not a number.") from error
    return Ranker(version=version, weights=weights, manifest=manifest)


_loaded: dict[tuple, Ranker | None] = {}


def active() -> Ranker | None:
    """The ranker ``settings.HELPDESK_RANKER`` names, loaded once per process (and again
    when its files change); ``None`` when none is set or it cannot be loaded (logged
    once: search then keeps the fusion's order)."""
    version = getattr(settings, "HELPDESK_RANKER", "")
    if not version:
        return None
    directory = Path(settings.HELPDESK_RANKER_DIR)
    folder = directory / version if (directory / version).is_dir() else BUILTIN_DIR / version
    try:
        stamp = (folder / "weights.json").stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(directory), version, stamp)
    if key not in _loaded:
        try:
            _loaded[key] = load(version, directory)
        except RankerError as error:
            logger.warning("search ranker not used, fusion order kept: %s", error)
            _loaded[key] = None
    return _loaded[key]


# ======================================================================================
# Training and figures
# ======================================================================================


@dataclass
class Sample:
    """A question's fused candidates (best first) and the articles that answer it."""

    candidates: list
    relevant: frozenset[int]
    group: str = ""  # what cross-validation keeps together (the answering article)


def train(
    samples: Iterable[Sample],
    *,
    depth: int = 20,
    l2: float = 1e-3,
    feature_names: Sequence[str] = FEATURES,
) -> dict[str, float]:
    """Weights that put each question's known article first among its ``depth`` fused
    candidates (questions whose article is not among them teach nothing and are left
    out). ``l2`` pulls towards ``PRIOR``, the fusion itself."""
    import numpy as np
    from scipy.optimize import minimize

    columns = [FEATURES.index(name) for name in feature_names]
    lists, targets = [], []
    for sample in samples:
        head = sample.candidates[:depth]
        gold = [i for i, c in enumerate(head) if c.article_id in sample.relevant]
        if gold and len(head) > 1:
            rows = np.asarray(features(head), dtype=np.float64)[:, columns]
            lists.append(np.vstack([rows, np.zeros((depth - len(head), len(columns)))]))
            mask = np.zeros(depth, dtype=bool)
            mask[: len(head)] = True
            targets.append((gold[0], mask))
    if not lists:
        raise RankerError("No question has its article among the search candidates.")
    x = np.stack(lists)  # questions × depth × features
    valid = np.stack([mask for _, mask in targets])
    gold = np.asarray([g for g, _ in targets])
    prior = np.asarray([PRIOR.get(name, 0.0) for name in feature_names])
    n = len(x)

    def loss(w):
        z = np.where(valid, x @ w, -np.inf)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        value = -np.mean(np.log(p[np.arange(n), gold] + 1e-12)) + l2 * np.sum((w - prior) ** 2)
        p[np.arange(n), gold] -= 1.0
        gradient = np.einsum("qd,qdf->f", p, x) / n + 2 * l2 * (w - prior)
        return value, gradient

    result = minimize(loss, prior.copy(), jac=True, method="L-BFGS-B")
    return {name: round(float(w), 6) for name, w in zip(feature_names, result.x, strict=True)}


def first_relevant(ordered: Sequence, relevant: frozenset[int]) -> int | None:
    """0-based place of the first answering article, ``None`` when absent."""
    return next((i for i, c in enumerate(ordered) if c.article_id in relevant), None)


def figures(places: Sequence[int | None]) -> dict:
    """recall@1/5/10 and MRR over the questions' first-relevant places."""
    n = len(places)

    def share(k):
        return round(sum(1 for p in places if p is not None and p < k) / n, 4) if n else None

    return {
        "n": n,
        "recall_at_1": share(1),
        "recall_at_5": share(5),
        "recall_at_10": share(10),
        "mrr": round(sum(1 / (p + 1) for p in places if p is not None) / n, 4) if n else None,
    }


def cross_validate(
    samples: Sequence[Sample],
    *,
    folds: int = 5,
    seed: int = 0,
    depth: int = 20,
    fit: Callable[[list[Sample]], Ranker] | None = None,
) -> list[int | None]:
    """Each question ranked by a ranker trained without any question about its article
    (``folds`` groups of whole articles): what a ranker does on articles it has never
    seen. Returns the places, in ``samples`` order."""
    fit = fit or (lambda train_samples: Ranker("cv", train(train_samples)))
    groups = sorted({s.group for s in samples})
    random.Random(seed).shuffle(groups)  # noqa: S311 (fold assignment, not secrecy)
    fold_of = {g: i % folds for i, g in enumerate(groups)}
    places: list[int | None] = [None] * len(samples)
    for fold in range(folds):
        held = [i for i, s in enumerate(samples) if fold_of[s.group] == fold]
        if not held:
            continue
        ranker = fit([s for s in samples if fold_of[s.group] != fold])
        for i in held:
            head, tail = samples[i].candidates[:depth], samples[i].candidates[depth:]
            ordered = ranker.rerank(head) + tail
            places[i] = first_relevant(ordered, samples[i].relevant)
    return places


def store(
    *,
    weights: dict[str, float],
    version: str | None = None,
    directory: Path | str | None = None,
    counts: dict | None = None,
    figures_by_method: dict | None = None,
    notes: str = "",
) -> Path:
    """Write ``<directory>/<version>/`` (a new version; ``None``: named after the time)."""
    version = version or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    if not VERSION_PATTERN.match(version):
        raise RankerError(f"{version!r} is not a ranker version name (letters, digits, . _ -).")
    folder = Path(directory or settings.HELPDESK_RANKER_DIR) / version
    if folder.exists():
        raise RankerError(f"Ranker {version!r} already exists in {folder.parent}.")
    folder.mkdir(parents=True)
    manifest = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": "linear, listwise softmax over the fused candidates",
        "features": list(weights),
        "training": counts or {},
        "figures": figures_by_method or {},
        "notes": notes,
    }
    (folder / "weights.json").write_text(json.dumps(weights, indent=2) + "\n", encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


# ======================================================================================
# Questions with known answers → candidates
# ======================================================================================


@dataclass
class Question:
    text: str
    relevant: frozenset[int]  # article ids
    group: str = ""


@dataclass
class Collected:
    """Each method's ordered candidates, question by question (same order)."""

    dense: list[Sample] = field(default_factory=list)
    keyword: list[Sample] = field(default_factory=list)
    fusion: list[Sample] = field(default_factory=list)


def collect(
    questions: Sequence[Question], *, scope, provider, progress=lambda items: items
) -> Collected:
    """Run search's candidate stage for every question (embedded in one batch; three
    queries each: semantic, title pass, keyword alone) and order each method's list:
    dense only (similarity), keyword only (full text without embeddings), the fusion."""
    from knowledge import search

    vectors = provider.embed_documents([q.text for q in questions])
    out = Collected()
    for question, vector in progress(list(zip(questions, vectors, strict=True))):
        candidates = search.gather(question.text, scope, query_vector=vector)
        dense = sorted(
            (c for c in candidates if c.similarity is not None),
            key=lambda c: (-c.similarity, c.article_id),
        )
        keyword = search.fuse(search.gather(question.text, scope, query_vector=None))
        for target, ordered in (
            (out.dense, dense),
            (out.keyword, keyword),
            (out.fusion, search.fuse(candidates)),
        ):
            target.append(Sample(ordered, question.relevant, question.group))
    return out
