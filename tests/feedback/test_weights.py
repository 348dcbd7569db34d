"""The documented weight function: 1 + log10(1 + MRR/100), bounded, 1 without revenue."""

from decimal import Decimal

import pytest

from feedback.weights import weight_for_mrr, weight_for_user
from tests.factories import AgentFactory, CustomerFactory, OrganizationFactory


@pytest.mark.parametrize(
    ("mrr", "weight"),
    [
        (None, "1.0000"),
        (0, "1.0000"),
        (900, "2.0000"),
        (9_900, "3.0000"),
        (2_000, "2.3222"),
        (10**12, "5.0000"),  # bounded by HELPDESK_VOTE_WEIGHT_MAX
    ],
)
def test_weight_grows_with_revenue_and_is_bounded(mrr, weight):
    assert weight_for_mrr(mrr) == Decimal(weight)


def test_weight_function_follows_settings(settings):
    settings.HELPDESK_VOTE_WEIGHT_MRR_DIVISOR = 1000
    settings.HELPDESK_VOTE_WEIGHT_MAX = 2
    assert weight_for_mrr(9_000) == Decimal("2.0000")
    assert weight_for_mrr(99_000) == Decimal("2.0000")  # capped
    assert weight_for_mrr(0) == Decimal("1.0000")


def test_voter_without_organization_counts_one(db):
    organization, weight = weight_for_user(AgentFactory())
    assert organization is None
    assert weight == Decimal("1.0000")
    org = OrganizationFactory(mrr=900)
    organization, weight = weight_for_user(CustomerFactory(profile__organization=org))
    assert organization == org
    assert weight == Decimal("2.0000")
