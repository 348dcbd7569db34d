"""The AI's decision trace: why it did what it did on a ticket, step by step.

:func:`steps` turns a :class:`support.ai.planner.Plan` into the list stored on
``AnalysisTrace.steps`` (the pipeline records one row per analysis through
``services.ai_trace_record``). Each step is a ``{"step": name, ...}`` dict:

- ``triage``: ticket type (and the share of the neighbours' vote), priority, sentiment,
  whether people are needed, the nearest labelled examples with their similarities, and
  the always-escalate rules that fired (``policy``: topic and why), the share of the
  neighbours' weight that says a person is needed, and the customer's language;
- ``retrieval``: the fused candidates of the hybrid search, each with its place in the
  full-text list (``keyword_rank``) and in the vector list (``vector_rank``), the
  full-text score (``ts_rank_cd``), the cosine similarity and the fused score;
- ``passages``: what was sent to the model (article, similarity, an excerpt);
- ``examples``: the approved training examples and labelled examples in the prompt;
- ``model``: provider, model, tokens, latency and the structured output, or the error;
  with tool use, the number of model requests and each tool call in order (its
  arguments, its result or error, how long it took);
- ``confidence``: self-rating, retrieval strength, citation factor and their combination
  (``support.ai.confidence.components``);
- ``route``: the decision, the escalation kind, the reason and the thresholds used.

A failed analysis adds an ``error`` step after whatever steps it got to. Everything is
JSON-safe and bounded: texts are cut at ``MAX_TEXT`` characters, lists at ``MAX_ITEMS``.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from django.conf import settings

from support.ai import confidence as conf

if TYPE_CHECKING:
    from support.ai.planner import Plan

MAX_TEXT = 600
MAX_OUTPUT_TEXT = 2000
MAX_ITEMS = 10
MAX_DEPTH = 4


def steps(plan: Plan | None, *, provider=None, error: str = "") -> list[dict]:
    """The steps of one analysis; ``plan`` None when it failed before planning ended,
    ``error`` given when it failed (an ``error`` step closes the list)."""
    out: list[dict] = []
    if plan is not None:
        out = [
            triage_step(plan),
            retrieval_step(plan),
            passages_step(plan),
            examples_step(plan),
            model_step(plan, provider),
            confidence_step(plan),
            route_step(plan),
        ]
    if error:
        out.append({"step": "error", "error": _text(error, MAX_TEXT)})
    return _json_safe(out)


def summary(plan: Plan | None, *, provider=None, error: str = "") -> dict[str, Any]:
    """The trace row's own columns: provider, model, decision, reason (the error, when
    the analysis failed) and confidence."""
    completion = plan.completion if plan is not None else None
    reason = error or (_route_reason(plan) if plan is not None else "")
    return {
        "provider": (completion.provider if completion else _name(provider))[:20],
        "ai_model": (completion.model if completion else getattr(provider, "model", ""))[:100],
        "decision": plan.decision if plan is not None else "",
        "reason": reason[:500],
        "confidence": plan.confidence if completion is not None else None,
    }


# ---- the steps -------------------------------------------------------------------------


def triage_step(plan: Plan) -> dict:
    t = plan.triage
    return {
        "step": "triage",
        "ticket_type": t.ticket_type,
        "type_confidence": t.type_confidence,
        "priority": t.priority,
        "sentiment": t.sentiment,
        "needs_human": t.needs_human,
        "human_share": t.human_share,
        "language": plan.language.code if plan.language else "",
        "neighbours": [
            {
                "similarity": round(similarity, 4),
                "id": str(label.get("id", "")),
                "ticket_type": label.get("ticket_type"),
                "needs_human": label.get("needs_human"),
                "text": _text(label.get("text", ""), 200),
            }
            for similarity, label in t.neighbours[:MAX_ITEMS]
        ],
        "policy": [{"topic": topic, "why": why} for topic, why in t.policy],
    }


def retrieval_step(plan: Plan) -> dict:
    return {
        "step": "retrieval",
        "candidates": [
            {
                "article_id": r.article.pk,
                "title": _text(r.article.title, 200),
                "chunk_id": r.chunk.pk if r.chunk else None,
                "keyword_rank": r.keyword_position,
                "vector_rank": r.semantic_position,
                "keyword_score": _round(r.keyword_rank),
                "vector_similarity": _round(r.similarity),
                "fused_score": _round(r.score, 6),
            }
            for r in plan.results[:MAX_ITEMS]
        ],
    }


def passages_step(plan: Plan) -> dict:
    return {
        "step": "passages",
        "passages": [
            {
                "article_id": p.get("article_id"),
                "title": _text(p.get("title", ""), 200),
                "similarity": p.get("similarity"),
                "text": _text(p.get("text", ""), MAX_TEXT),
            }
            for p in plan.passages[:MAX_ITEMS]
        ],
    }


def examples_step(plan: Plan) -> dict:
    return {
        "step": "examples",
        "training_example_ids": list(plan.training_example_ids)[:MAX_ITEMS],
        "labelled_example_ids": [str(e.get("id", "")) for e in plan.examples_used][:MAX_ITEMS],
    }


def model_step(plan: Plan, provider=None) -> dict:
    completion = plan.completion
    if completion is None:
        return {
            "step": "model",
            "provider": _name(provider),
            "model": getattr(provider, "model", ""),
            "error": _text(plan.error, MAX_TEXT),
        }
    step = {
        "step": "model",
        "provider": completion.provider,
        "model": completion.model,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "latency_ms": completion.latency_ms,
        "output": _bounded(completion.data),
    }
    if plan.tool_steps:  # tool use: the requests it took and each call (none: answered at once)
        step["requests"] = plan.tool_steps
        step["tool_calls"] = [
            {
                "step": call.get("step"),
                "name": call.get("name"),
                "arguments": _bounded(call.get("arguments") or {}),
                "result": _bounded(call.get("result")),
                "error": _text(call.get("error") or "", MAX_TEXT),
                "ms": call.get("ms"),
            }
            for call in plan.tool_calls[:MAX_ITEMS]
        ]
    return step


def confidence_step(plan: Plan) -> dict:
    completion = plan.completion
    if completion is None:
        return {"step": "confidence", "components": None, "combined": plan.confidence}
    parts = conf.components(
        self_rating=completion.data.get("confidence", 0.0),
        strength=plan.strength,
        cited=completion.data.get("cited_article_ids", []),
        retrieved=sorted(plan.retrieved_ids),
        grounded=bool(plan.toolbox and plan.toolbox.records),
    )
    return {"step": "confidence", "components": parts, "combined": plan.confidence}


def route_step(plan: Plan) -> dict:
    return {
        "step": "route",
        "decision": plan.decision,
        "escalation_kind": plan.escalation_kind,
        "reason": _text(_route_reason(plan), MAX_TEXT),
        "thresholds": {
            "escalate_below": settings.HELPDESK_AI_ESCALATE_BELOW,
            "auto_resolve_at": settings.HELPDESK_AI_AUTO_RESOLVE_AT,
            "max_customer_messages": settings.HELPDESK_AI_MAX_CUSTOMER_MESSAGES,
        },
    }


# ---- helpers ---------------------------------------------------------------------------


def _route_reason(plan: Plan) -> str:
    """Why the route was taken: the escalation's reason, or the confidence against the
    threshold it passed."""
    if plan.escalation_reason:
        return plan.escalation_reason
    if plan.decision == "resolve":
        return (
            f"AI confidence {plan.confidence:.2f} is at or above "
            f"{settings.HELPDESK_AI_AUTO_RESOLVE_AT}: answered and resolved."
        )
    if plan.decision == "ask":
        return (
            f"AI confidence {plan.confidence:.2f} is between "
            f"{settings.HELPDESK_AI_ESCALATE_BELOW} and {settings.HELPDESK_AI_AUTO_RESOLVE_AT}: "
            "answered and waiting for the customer."
        )
    return ""


def _name(provider) -> str:
    return str(getattr(provider, "name", "") or "")


def _text(value, limit: int) -> str:
    value = str(value or "")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _bounded(value, depth: int = 0):
    """``value`` with long strings cut and long lists capped, nested at most MAX_DEPTH."""
    if isinstance(value, str):
        return _text(value, MAX_OUTPUT_TEXT)
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return _text(json.dumps(value, default=str), MAX_TEXT)
        return {str(k): _bounded(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            return _text(json.dumps(value, default=str), MAX_TEXT)
        return [_bounded(v, depth + 1) for v in list(value)[: MAX_ITEMS * 2]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _text(value, MAX_TEXT)


def _json_safe(value):
    """Plain JSON: other types as text, and NaN or infinities (which PostgreSQL's jsonb
    refuses; a zero vector's cosine is NaN) as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
