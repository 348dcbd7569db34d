"""Submitting, voting, withdrawing, status changes with emails, merging and reweighing."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import mail

from core.errors import Conflict, DomainError, NotPermitted
from core.models import OutboxItem
from feedback import services, tasks
from feedback.models import FeatureRequest, FeatureRequestEvent, Vote
from feedback.weights import weight_for_mrr
from support import services as support_services
from tests.factories import CustomerFactory, OrganizationFactory

UP, DOWN = Vote.Value.UP, Vote.Value.DOWN


def counters(feature):
    feature.refresh_from_db()
    return feature.upvotes, feature.downvotes, feature.weighted_score


def expected_score(feature):
    """The definition: sum over the votes of value × weight."""
    return sum((v.value * v.weight for v in feature.votes.all()), Decimal(0))


def test_submit_counts_the_authors_upvote_with_their_weight(feature, customer):
    # customer's organization A has MRR 2000 → 1 + log10(21)
    assert counters(feature) == (1, 0, Decimal("2.3222"))
    assert feature.author == customer
    assert feature.status == FeatureRequest.Status.OPEN
    vote = feature.votes.get()
    assert (vote.user, vote.organization.name, vote.value) == (customer, "Acme", UP)
    assert list(feature.events.values_list("kind", flat=True)) == ["submitted"]
    assert "<strong>Please</strong>" in feature.description_html


def test_submit_sanitizes_the_markdown_description(customer):
    feature = services.request_submit(
        author=customer,
        title="Embed videos in answers",
        description='<script>alert(1)</script>[x](javascript:alert(1)) <img src=x onerror="y">',
    )
    html = feature.description_html
    assert "<script" not in html
    assert "javascript:" not in html
    assert "onerror" not in html


@pytest.mark.parametrize(
    ("title", "description", "kind", "field"),
    [
        ("abc", "", "feature_request", "title"),
        ("x" * 201, "", "feature_request", "title"),
        ("A fine title", "d" * 10_001, "feature_request", "description"),
        ("A fine title", "", "wish", "kind"),
    ],
)
def test_submit_refuses_bad_input_with_the_field_named(customer, title, description, kind, field):
    with pytest.raises(DomainError) as error:
        services.request_submit(author=customer, title=title, description=description, kind=kind)
    assert error.value.field == field
    assert not FeatureRequest.objects.exists()


def test_anonymous_can_neither_submit_nor_vote(feature):
    with pytest.raises(NotPermitted):
        services.request_submit(author=AnonymousUser(), title="Anonymous wish")
    with pytest.raises(NotPermitted):
        services.vote_cast(request=feature, user=AnonymousUser(), value=UP)
    assert counters(feature)[0] == 1


def test_votes_are_weighted_by_the_voters_organization_revenue(feature, other_customer, agent):
    services.vote_cast(request=feature, user=other_customer, value=UP)  # Globex, MRR 100
    services.vote_cast(request=feature, user=agent, value=DOWN)  # no organization → 1
    up, down, score = counters(feature)
    assert (up, down) == (2, 1)
    assert score == weight_for_mrr(2000) + weight_for_mrr(100) - 1
    assert score == expected_score(feature)


def test_voting_twice_the_same_way_changes_nothing(feature, customer):
    services.vote_cast(request=feature, user=customer, value=UP)
    assert counters(feature) == (1, 0, Decimal("2.3222"))
    assert feature.votes.count() == 1


def test_changing_a_vote_moves_it_between_counters(feature, customer):
    services.vote_cast(request=feature, user=customer, value=DOWN)
    assert counters(feature) == (0, 1, Decimal("-2.3222"))
    services.vote_cast(request=feature, user=customer, value=UP)
    assert counters(feature) == (1, 0, Decimal("2.3222"))
    assert feature.votes.count() == 1


def test_withdraw_restores_the_counters(feature, other_customer, customer):
    before = counters(feature)
    services.vote_cast(request=feature, user=other_customer, value=DOWN)
    assert counters(feature) != before
    assert services.vote_withdraw(request=feature, user=other_customer) is True
    assert counters(feature) == before
    assert services.vote_withdraw(request=feature, user=other_customer) is False
    services.vote_withdraw(request=feature, user=customer)
    assert counters(feature) == (0, 0, Decimal("0"))


def test_invalid_vote_value_is_refused(feature, other_customer):
    with pytest.raises(DomainError) as error:
        services.vote_cast(request=feature, user=other_customer, value=5)
    assert error.value.field == "value"


def test_voting_closes_when_the_request_is_done(feature, agent, other_customer):
    services.request_change_status(request=feature, status="completed", actor=agent)
    with pytest.raises(Conflict, match="Voting is closed"):
        services.vote_cast(request=feature, user=other_customer, value=UP)


def test_private_requests_take_votes_only_from_their_author_and_staff(customer, other_customer):
    feature = services.request_submit(author=customer, title="Private idea", is_public=False)
    with pytest.raises(NotPermitted):
        services.vote_cast(request=feature, user=other_customer, value=UP)


# ---- status changes ------------------------------------------------------------------------


def test_status_change_writes_the_changelog_and_emails_each_voter_once(
    feature, agent, other_customer, colleague, run_effects
):
    services.vote_cast(request=feature, user=other_customer, value=UP)
    services.vote_cast(request=feature, user=colleague, value=DOWN)
    services.vote_cast(request=feature, user=agent, value=UP)  # the actor is not emailed
    with run_effects():
        event = services.request_change_status(
            request=feature, status="planned", actor=agent, note="Shipping in Q1."
        )
    feature.refresh_from_db()
    assert feature.status == "planned"
    assert feature.status_changed_at is not None
    assert (event.old_status, event.new_status, event.note) == (
        "open",
        "planned",
        "Shipping in Q1.",
    )
    recipients = sorted(address for m in mail.outbox for address in m.to)
    assert recipients == sorted([feature.author.email, other_customer.email, colleague.email])
    assert all(len(m.to) == 1 for m in mail.outbox)  # voters never see each other
    assert "now planned" in mail.outbox[0].subject
    assert "Shipping in Q1." in mail.outbox[0].body
    # A redelivered task sends nothing more.
    assert tasks.notify_status_change(event.pk) == 0
    assert len(mail.outbox) == 3
    assert FeatureRequestEvent.objects.get(pk=event.pk).notified_at is not None


def test_status_change_needs_staff_and_a_real_change(feature, customer, agent):
    with pytest.raises(NotPermitted):
        services.request_change_status(request=feature, status="planned", actor=customer)
    with pytest.raises(Conflict, match="already open"):
        services.request_change_status(request=feature, status="open", actor=agent)
    with pytest.raises(DomainError) as error:
        services.request_change_status(request=feature, status="shipped", actor=agent)
    assert error.value.field == "status"
    assert feature.events.count() == 1


def test_a_failed_send_is_retried_not_lost(
    feature, agent, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        event = services.request_change_status(request=feature, status="planned", actor=agent)

    def broken(_event):
        raise ConnectionError("SMTP down")

    monkeypatch.setattr("feedback.notifications.status_changed", broken)
    with pytest.raises(ConnectionError):
        tasks.notify_status_change.run(event.pk)
    assert FeatureRequestEvent.objects.get(pk=event.pk).notified_at is None
    monkeypatch.undo()
    assert tasks.notify_status_change.run(event.pk) == 1
    assert len(mail.outbox) == 1


# ---- merging -------------------------------------------------------------------------------


def test_merge_moves_votes_keeping_one_per_user(customer, other_customer, colleague, agent):
    survivor = services.request_submit(author=customer, title="Export tickets to CSV")
    duplicate = services.request_submit(author=other_customer, title="CSV export please")
    services.vote_cast(request=duplicate, user=customer, value=DOWN)  # voted on both
    services.vote_cast(request=duplicate, user=colleague, value=UP)  # only on the duplicate

    result = services.request_merge(duplicate=duplicate, survivor=survivor, actor=agent)

    assert result.pk == survivor.pk
    votes = {v.user: v.value for v in survivor.votes.all()}
    assert votes == {customer: UP, other_customer: UP, colleague: UP}  # survivor's vote kept
    assert not duplicate.votes.exists()
    assert counters(survivor) == (3, 0, expected_score(survivor))
    assert counters(duplicate) == (0, 0, Decimal("0"))
    duplicate.refresh_from_db()
    assert duplicate.merged_into == survivor
    assert duplicate.events.last().kind == "merged"
    assert survivor.events.last().kind == "duplicate_merged"


def test_merge_recomputes_weights_from_todays_revenue(customer, other_customer, agent, org_b):
    survivor = services.request_submit(author=customer, title="Export tickets to CSV")
    duplicate = services.request_submit(author=other_customer, title="CSV export please")
    org_b.mrr = 9_900
    org_b.save()  # the task would do this too; the merge must not wait for it
    survivor = services.request_merge(duplicate=duplicate, survivor=survivor, actor=agent)
    assert survivor.votes.get(user=other_customer).weight == Decimal("3.0000")
    assert survivor.weighted_score == weight_for_mrr(2000) + Decimal(3)


def test_merge_refuses_itself_chains_and_customers(feature, customer, agent):
    other = services.request_submit(author=customer, title="Another request")
    with pytest.raises(NotPermitted):
        services.request_merge(duplicate=other, survivor=feature, actor=customer)
    with pytest.raises(DomainError):
        services.request_merge(duplicate=feature, survivor=feature, actor=agent)
    services.request_merge(duplicate=other, survivor=feature, actor=agent)
    with pytest.raises(Conflict, match="already merged"):
        services.request_merge(duplicate=other, survivor=feature, actor=agent)
    with pytest.raises(Conflict, match="merged into"):
        services.vote_cast(request=other, user=agent, value=UP)


# ---- revenue changes -----------------------------------------------------------------------


def test_an_mrr_change_reweighs_the_organizations_votes(
    feature, colleague, org_a, manager, run_effects
):
    services.vote_cast(request=feature, user=colleague, value=UP)  # two Acme votes
    assert counters(feature)[2] == 2 * weight_for_mrr(2000)
    with run_effects():
        support_services.organization_update(organization=org_a, actor=manager, mrr=9_900)
    assert counters(feature)[2] == Decimal("6.0000")
    assert set(feature.votes.values_list("weight", flat=True)) == {Decimal("3.0000")}
    # Idempotent: running it again changes nothing.
    assert services.organization_reweigh_votes(organization_id=org_a.pk) == 1
    assert counters(feature)[2] == Decimal("6.0000")


def test_a_revenue_change_schedules_the_reweigh_in_its_transaction(org_a, manager):
    support_services.organization_update(organization=org_a, actor=manager, mrr=9_900)

    item = OutboxItem.objects.get(task="feedback.tasks.reweigh_organization_votes")
    assert item.args == [org_a.pk]


def test_an_agent_who_is_not_a_manager_cannot_change_revenue(feature, org_a, agent, run_effects):
    with pytest.raises(NotPermitted), run_effects() as effects:
        support_services.organization_update(organization=org_a, actor=agent, mrr=9_900)
    assert effects.callbacks == []
    assert not OutboxItem.objects.filter(task="feedback.tasks.reweigh_organization_votes").exists()
    assert counters(feature)[2] == weight_for_mrr(2000)


def test_saving_an_organization_without_an_mrr_change_queues_nothing(org_a, manager, run_effects):
    with run_effects() as effects:
        support_services.organization_update(
            organization=org_a, actor=manager, name="Acme Corp", mrr=2000
        )
    assert effects.callbacks == []


def test_an_organization_without_revenue_still_counts_one(feature):
    free = OrganizationFactory(mrr=0)
    voter = CustomerFactory(profile__organization=free)
    services.vote_cast(request=feature, user=voter, value=UP)
    assert feature.votes.get(user=voter).weight == Decimal("1.0000")
