"""How much one vote counts: the one documented function of the voter's organization's
monthly recurring revenue (MRR, USD).

    weight(mrr) = min(MAX, 1 + log10(1 + mrr / DIVISOR))

with ``DIVISOR`` = ``HELPDESK_VOTE_WEIGHT_MRR_DIVISOR`` (default 100) and ``MAX`` =
``HELPDESK_VOTE_WEIGHT_MAX`` (default 5). An organization with no MRR, or a voter with no
organization, counts 1; revenue raises the weight logarithmically, so a customer paying
$900 a month counts 2, one paying $9,900 counts 3, and no account outweighs the others
without bound. Weights are rounded to 4 decimal places, as they are stored.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

PLACES = Decimal("0.0001")


def weight_for_mrr(mrr: Decimal | float | int | None) -> Decimal:
    """The weight of a vote from an organization with this MRR (``None``: no organization)."""
    revenue = max(float(mrr or 0), 0.0)
    value = 1 + math.log10(1 + revenue / settings.HELPDESK_VOTE_WEIGHT_MRR_DIVISOR)
    value = min(value, settings.HELPDESK_VOTE_WEIGHT_MAX)
    return Decimal(repr(value)).quantize(PLACES, rounding=ROUND_HALF_UP)


def weight_for_user(user) -> tuple[object | None, Decimal]:
    """The voter's organization (or ``None``) and the weight their vote carries now."""
    profile = getattr(user, "customer_profile", None)
    organization = getattr(profile, "organization", None) if profile else None
    return organization, weight_for_mrr(organization.mrr if organization else None)
