"""The one confidence function of the AI agent.

    confidence = (0.6 · self-rating + 0.4 · retrieval strength) · citation factor

- *self-rating*: what the model says of its answer (0..1; the local provider rates by
  retrieval strength, having no opinion of its own);
- *retrieval strength*: cosine similarity of the best retrieved passage mapped linearly
  from 0.30 (unrelated) to 0.70 (a close paraphrase) onto 0..1;
- *citation factor*: 1 when every cited article was among those retrieved; each citation
  of an article that was not retrieved (invented, or from outside the context) halves it;
  an answer that cites nothing is worth 0.8 of itself.

An answer grounded in what a read-only HTTP action returned (an order's status read from
the shop: ``support.ai.tools``) has the strength of that record, 1, and needs no article
to cite.

Thresholds (settings): escalate below ``HELPDESK_AI_ESCALATE_BELOW`` (0.7), resolve at
``HELPDESK_AI_AUTO_RESOLVE_AT`` (0.85) or above, ask the customer in between.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

UNRELATED_SIMILARITY = 0.30
CLOSE_SIMILARITY = 0.70
# Below this similarity no passage is taken as an answer: what the offline provider is
# told (``provider_thresholds``), so that it escalates rather than quotes something far.
ANSWERABLE_SIMILARITY = 0.35


def retrieval_strength(best_similarity: float | None) -> float:
    if best_similarity is None:
        return 0.0
    span = CLOSE_SIMILARITY - UNRELATED_SIMILARITY
    return max(0.0, min(1.0, (best_similarity - UNRELATED_SIMILARITY) / span))


def provider_thresholds() -> dict[str, float]:
    """The thresholds a provider that rates by retrieval (local) is given in its context:
    ``min_similarity`` to answer at all, ``confident_at`` to skip the clarifying question
    (the auto-resolve threshold of settings)."""
    return {
        "min_similarity": ANSWERABLE_SIMILARITY,
        "confident_at": settings.HELPDESK_AI_AUTO_RESOLVE_AT,
    }


def citation_factor(cited: Iterable[int], retrieved: Iterable[int]) -> float:
    cited, retrieved = list(dict.fromkeys(cited)), set(retrieved)
    if not cited:
        return 0.8
    invalid = sum(1 for article_id in cited if article_id not in retrieved)
    return 0.5**invalid


def combine(
    *,
    self_rating: float,
    best_similarity: float | None,
    cited: Iterable[int],
    retrieved: Iterable[int],
    grounded: bool = False,
) -> float:
    """``grounded``: the answer rests on a record a read-only action returned (top)."""
    self_rating = max(0.0, min(1.0, float(self_rating)))
    cited = list(cited)
    strength = 1.0 if grounded else retrieval_strength(best_similarity)
    factor = 1.0 if grounded and not cited else citation_factor(cited, retrieved)
    value = (0.6 * self_rating + 0.4 * strength) * factor
    return round(max(0.0, min(1.0, value)), 3)


def components(
    *,
    self_rating: float,
    best_similarity: float | None,
    cited: Iterable[int],
    retrieved: Iterable[int],
    grounded: bool = False,
) -> dict[str, float]:
    """The parts of :func:`combine` and its result, as the AI's decision trace shows them."""
    cited, retrieved = list(cited), list(retrieved)
    return {
        "self_rating": round(max(0.0, min(1.0, float(self_rating))), 3),
        "retrieval_strength": 1.0 if grounded else round(retrieval_strength(best_similarity), 3),
        "citation_factor": (
            1.0 if grounded and not cited else round(citation_factor(cited, retrieved), 3)
        ),
        "grounded_by_action": grounded,
        "combined": combine(
            self_rating=self_rating,
            best_similarity=best_similarity,
            cited=cited,
            retrieved=retrieved,
            grounded=grounded,
        ),
    }
