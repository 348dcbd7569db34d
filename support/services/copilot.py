"""The agents' copilot: the record of each call (what it cost, whether it worked).

The copilot itself (``support.ai.copilot``) changes nothing on the ticket and sends
nothing to the customer: its only write is this row, which the AI dashboards count.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from config import metrics
from support.models import CopilotCall, Ticket

__all__ = ["copilot_call_record"]


@transaction.atomic
def copilot_call_record(
    *,
    ticket: Ticket | None,
    user,
    kind: str,
    provider: str,
    ai_model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: Decimal = Decimal(0),
    latency_ms: int = 0,
    error: str = "",
) -> CopilotCall:
    """One copilot call; ``error`` given means it failed (nothing came back to use)."""
    metrics.observe_copilot_call(
        kind=kind,
        model=ai_model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost_usd,
        latency_ms=latency_ms,
        failed=bool(error),
    )
    return CopilotCall.objects.create(
        ticket=ticket,
        user=user if getattr(user, "pk", None) else None,
        kind=kind,
        provider=provider[:20],
        ai_model=ai_model[:100],
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        succeeded=not error,
        error=error[:300],
    )
