"""The AI's decision traces: one row per analysis (``support.ai.trace`` builds its steps),
and their deletion after ``HELPDESK_AI_TRACE_RETENTION_DAYS``."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from support.models import AnalysisTrace

__all__ = ["ai_trace_record", "ai_traces_prune"]

#: Outcomes of an analysis as a trace records them.
OUTCOMES = ("resolved", "asked", "escalated", "superseded", "drafted", "failed")


@transaction.atomic
def ai_trace_record(
    *,
    ticket_id: int,
    outcome: str,
    steps: list[dict],
    provider: str = "",
    ai_model: str = "",
    decision: str = "",
    reason: str = "",
    confidence: float | None = None,
    duration_ms: int = 0,
) -> AnalysisTrace:
    """Why the AI did what it did in one analysis of a ticket (``outcome``: one of
    ``OUTCOMES``); ``steps`` as ``support.ai.trace.steps`` makes them."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown analysis outcome {outcome!r}")
    return AnalysisTrace.objects.create(
        ticket_id=ticket_id,
        outcome=outcome,
        steps=steps,
        provider=provider[:20],
        ai_model=ai_model[:100],
        decision=decision[:20],
        reason=reason[:500],
        confidence=confidence,
        duration_ms=max(0, int(duration_ms)),
    )


def ai_traces_prune(*, keep_days: int, batch: int = 1000, now=None) -> int:
    """Delete traces older than ``keep_days``, ``batch`` rows per transaction (a long
    backlog never holds one big lock); returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                AnalysisTrace.objects.filter(created_at__lt=cutoff)
                .order_by("created_at")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                return deleted
            count, _ = AnalysisTrace.objects.filter(pk__in=ids).delete()
            deleted += count
