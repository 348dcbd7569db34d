"""Votes arriving at the same moment on separate database connections: one row per user,
counters exactly equal to the votes (no lost update, no double count)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from feedback import services
from feedback.models import Vote
from tests.factories import CustomerFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run_at_once(*calls):
    """Run each call in its own thread (its own connection), released together."""
    barrier = threading.Barrier(len(calls))
    errors = []

    def worker(call):
        try:
            barrier.wait(timeout=10)
            call()
        except Exception as error:  # reported to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def totals(feature):
    feature.refresh_from_db()
    votes = list(feature.votes.all())
    return (
        (feature.upvotes, feature.downvotes, feature.weighted_score),
        (
            sum(v.value == 1 for v in votes),
            sum(v.value == -1 for v in votes),
            sum((v.value * v.weight for v in votes), Decimal(0)),
        ),
    )


def test_the_same_user_voting_twice_at_once_gives_one_vote(feature, other_customer):
    errors = run_at_once(
        lambda: services.vote_cast(request=feature, user=other_customer, value=Vote.Value.UP),
        lambda: services.vote_cast(request=feature, user=other_customer, value=Vote.Value.UP),
    )
    assert errors == []
    assert Vote.objects.filter(request=feature, user=other_customer).count() == 1
    stored, recomputed = totals(feature)
    assert stored == recomputed
    assert stored[:2] == (2, 0)


def test_up_and_down_from_one_user_at_once_leave_one_consistent_vote(feature, other_customer):
    errors = run_at_once(
        lambda: services.vote_cast(request=feature, user=other_customer, value=Vote.Value.UP),
        lambda: services.vote_cast(request=feature, user=other_customer, value=Vote.Value.DOWN),
    )
    assert errors == []
    assert Vote.objects.filter(request=feature, user=other_customer).count() == 1
    stored, recomputed = totals(feature)
    assert stored == recomputed
    assert stored[0] + stored[1] == 2


def test_many_people_voting_and_withdrawing_at_once_keep_exact_counters(feature):
    org = OrganizationFactory(mrr=5_000)
    voters = [CustomerFactory(profile__organization=org) for _ in range(8)]
    for voter in voters[:4]:
        services.vote_cast(request=feature, user=voter, value=Vote.Value.DOWN)
    calls = [
        *(
            (lambda v=v: services.vote_cast(request=feature, user=v, value=Vote.Value.UP))
            for v in voters
        ),
        *((lambda v=v: services.vote_withdraw(request=feature, user=v)) for v in voters[6:]),
    ]
    errors = run_at_once(*calls)
    assert errors == []
    stored, recomputed = totals(feature)
    assert stored == recomputed
    assert feature.votes.count() in range(7, 10)
