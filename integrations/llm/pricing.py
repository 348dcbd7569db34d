"""What a call cost, from the per-model price table in settings
(``HELPDESK_LLM_PRICES``: USD per million input and output tokens)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings


def price_for(model: str) -> tuple[Decimal, Decimal] | None:
    prices = settings.HELPDESK_LLM_PRICES
    if model in prices:
        return tuple(Decimal(str(p)) for p in prices[model])
    # Dated snapshots ("claude-sonnet-4-5-20250929") cost what their family costs.
    for name in sorted(prices, key=len, reverse=True):
        if model.startswith(name):
            return tuple(Decimal(str(p)) for p in prices[name])
    return None


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """Cost of one call; unknown models count as 0 and are visible as such in analytics."""
    prices = price_for(model)
    if prices is None:
        return Decimal("0")
    per_input, per_output = prices
    total = (per_input * input_tokens + per_output * output_tokens) / Decimal(1_000_000)
    return total.quantize(Decimal("0.000001"))
