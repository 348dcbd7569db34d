"""The one confidence function of the AI agent.

    confidence = (0.6 · self-rating + 0.4 · retrieval strength) · citation factor

- *self-rating*: what the model says of its answer (0..1; the local provider rates by
  retrieval strength, having no opinion of its own);
- *retrieval strength* of an article: how likely it is to be the one that answers,
  learned from how search ranks it (:func:`retrieval_strengths`): a logistic model of its
  cosine similarity and of its lead over the best *other* article, fitted on the StackFAQ
  dev questions (the gold article first or not; and every question again with its own
  article left out of the search, where what comes first never answers). Its log-odds
  are shifted by ``RESOLVE_SHIFT`` so that the default auto-resolve threshold (0.85) sits
  at the operating point chosen on that data: in 5-fold cross-validation split by
  article, 0.757 of the questions resolved, 0.9955 of them citing the right article, and
  4.2 % of those whose article is missing resolved all the same (the linear similarity
  map it replaces: 0.862, 0.9815 and 10.0 %). ``HELPDESK_AI_AUTO_RESOLVE_AT=0.9`` is the
  stricter point: 0.69, 1.0 and 2.7 %.
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

import math
from collections.abc import Iterable, Sequence

from django.conf import settings

# Below this similarity no passage is taken as an answer: what the offline provider is
# told (``provider_thresholds``), so that it escalates rather than quotes something far.
ANSWERABLE_SIMILARITY = 0.35
#: The answer model (log-odds = intercept + Σ weight · feature), fitted as the module says.
ANSWER_MODEL = {
    "intercept": -8.752,
    "similarity": 6.746,
    "similarity_squared": 7.458,
    "lead": 10.991,  # similarity minus the best other article's (negative when behind)
}
#: log-odds(0.85) − log-odds(0.7): the default auto-resolve threshold at p = 0.7.
RESOLVE_SHIFT = math.log(0.85 / 0.15) - math.log(0.7 / 0.3)


def retrieval_strength(similarity: float | None, *, lead: float | None = None) -> float:
    """0..1 for an article at cosine ``similarity`` that leads the best other article by
    ``lead`` (its own similarity when there is no other: nothing competes)."""
    if similarity is None:
        return 0.0
    lead = similarity if lead is None else lead
    m = ANSWER_MODEL
    z = (
        m["intercept"]
        + m["similarity"] * similarity
        + m["similarity_squared"] * similarity * similarity
        + m["lead"] * lead
        + RESOLVE_SHIFT
    )
    return round(1.0 / (1.0 + math.exp(-z)), 4)


def retrieval_strengths(similarities: Sequence[float | None]) -> list[float]:
    """The strength of each article of a search's results (one similarity each, ``None``
    for one found by its words alone), each against the best of the others."""
    out = []
    for index, similarity in enumerate(similarities):
        if similarity is None:
            out.append(0.0)
            continue
        others = [s for i, s in enumerate(similarities) if i != index and s is not None]
        best_other = max(others) if others else None
        lead = similarity - best_other if best_other is not None else None
        out.append(retrieval_strength(similarity, lead=lead))
    return out


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
    strength: float,
    cited: Iterable[int],
    retrieved: Iterable[int],
    grounded: bool = False,
) -> float:
    """``strength``: the retrieval strength of the best article (:func:`retrieval_strengths`);
    ``grounded``: the answer rests on a record a read-only action returned (top)."""
    self_rating = max(0.0, min(1.0, float(self_rating)))
    cited = list(cited)
    strength = 1.0 if grounded else max(0.0, min(1.0, float(strength)))
    factor = 1.0 if grounded and not cited else citation_factor(cited, retrieved)
    value = (0.6 * self_rating + 0.4 * strength) * factor
    return round(max(0.0, min(1.0, value)), 3)


def components(
    *,
    self_rating: float,
    strength: float,
    cited: Iterable[int],
    retrieved: Iterable[int],
    grounded: bool = False,
) -> dict[str, float]:
    """The parts of :func:`combine` and its result, as the AI's decision trace shows them."""
    cited, retrieved = list(cited), list(retrieved)
    return {
        "self_rating": round(max(0.0, min(1.0, float(self_rating))), 3),
        "retrieval_strength": 1.0 if grounded else round(strength, 3),
        "citation_factor": (
            1.0 if grounded and not cited else round(citation_factor(cited, retrieved), 3)
        ),
        "grounded_by_action": grounded,
        "combined": combine(
            self_rating=self_rating,
            strength=strength,
            cited=cited,
            retrieved=retrieved,
            grounded=grounded,
        ),
    }
