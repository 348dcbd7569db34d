"""Every write of feedback: one function per state change, one transaction each.

Votes and counters: a vote locks its request row (``select_for_update``), so votes on one
request are applied one at a time; the unique (request, user) constraint keeps one vote per
user whatever happens; the denormalized ``upvotes``/``downvotes``/``weighted_score`` are
changed by SQL expressions (``F()`` deltas, or recounts from the votes) in the same
transaction, never read-modify-written in Python. Emails go out after commit, from a task.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Case, Count, DecimalField, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import events
from core.errors import Conflict, DomainError, NotPermitted
from core.outbox import schedule_after_commit
from core.roles import is_agent
from feedback.models import FeatureRequest, FeatureRequestEvent, Vote
from feedback.weights import weight_for_mrr, weight_for_user

Status = FeatureRequest.Status
TITLE_MIN, TITLE_MAX = 5, 200
DESCRIPTION_MAX = 10_000
SCORE = DecimalField(max_digits=14, decimal_places=4)


def _clean_text(*, title: str, description: str) -> tuple[str, str]:
    title = " ".join((title or "").split())
    description = (description or "").strip()
    if len(title) < TITLE_MIN:
        raise DomainError(
            f"Give the request a title of at least {TITLE_MIN} characters.", field="title"
        )
    if len(title) > TITLE_MAX:
        raise DomainError(f"Keep the title under {TITLE_MAX} characters.", field="title")
    if len(description) > DESCRIPTION_MAX:
        raise DomainError(
            f"Keep the description under {DESCRIPTION_MAX:,} characters.", field="description"
        )
    return title, description


@transaction.atomic
def request_submit(
    *,
    author,
    title: str,
    description: str = "",
    kind: str = FeatureRequest.Kind.FEATURE_REQUEST,
    related_article=None,
    is_public: bool = True,
) -> FeatureRequest:
    """A new request, with the author's own upvote already counted."""
    if not (author and author.is_authenticated):
        raise NotPermitted("Sign in to submit a request.")
    if kind not in FeatureRequest.Kind.values:
        raise DomainError(f"Unknown kind {kind!r}.", field="kind")
    title, description = _clean_text(title=title, description=description)
    request = FeatureRequest.objects.create(
        title=title,
        description=description,
        kind=kind,
        author=author,
        related_article=related_article,
        is_public=is_public,
    )
    FeatureRequestEvent.objects.create(
        request=request,
        kind=FeatureRequestEvent.Kind.SUBMITTED,
        actor=author,
        new_status=Status.OPEN,
    )
    vote_cast(request=request, user=author, value=Vote.Value.UP)
    request.refresh_from_db(fields=["upvotes", "downvotes", "weighted_score"])
    return request


def _locked(request: FeatureRequest) -> FeatureRequest:
    return FeatureRequest.objects.select_for_update().get(pk=request.pk)


def _apply_delta(request_id: int, *, value: int, weight: Decimal, sign: int) -> None:
    """Add (sign=+1) or take away (sign=−1) one vote's share of the counters, in SQL."""
    FeatureRequest.objects.filter(pk=request_id).update(
        upvotes=F("upvotes") + (sign if value == Vote.Value.UP else 0),
        downvotes=F("downvotes") + (sign if value == Vote.Value.DOWN else 0),
        weighted_score=F("weighted_score") + Value(sign * value * weight, output_field=SCORE),
    )


@transaction.atomic
def vote_cast(*, request: FeatureRequest, user, value: int) -> Vote:
    """Cast the user's vote, or change it; voting the same way twice changes nothing."""
    if not (user and user.is_authenticated):
        raise NotPermitted("Sign in to vote.")
    if value not in (Vote.Value.UP, Vote.Value.DOWN):
        raise DomainError("A vote is up (1) or down (-1).", field="value")
    request = _locked(request)
    if request.merged_into_id:
        raise Conflict(f"This request was merged into #{request.merged_into_id}; vote there.")
    if not request.is_votable:
        raise Conflict(f"Voting is closed: the request is {request.get_status_display().lower()}.")
    if not request.is_public and request.author_id != user.pk and not is_agent(user):
        raise NotPermitted("You cannot vote on this request.")

    organization, weight = weight_for_user(user)
    vote = Vote.objects.filter(request=request, user=user).first()
    if vote is not None:
        if vote.value == value:
            return vote
        _apply_delta(request.pk, value=vote.value, weight=vote.weight, sign=-1)
        vote.value, vote.weight, vote.organization = value, weight, organization
        vote.save(update_fields=["value", "weight", "organization", "updated_at"])
    else:
        vote = Vote.objects.create(
            request=request, user=user, organization=organization, value=value, weight=weight
        )
    _apply_delta(request.pk, value=value, weight=weight, sign=+1)
    return vote


@transaction.atomic
def vote_withdraw(*, request: FeatureRequest, user) -> bool:
    """Take the user's vote back; answers whether there was one."""
    if not (user and user.is_authenticated):
        raise NotPermitted("Sign in to vote.")
    request = _locked(request)
    vote = Vote.objects.filter(request=request, user=user).first()
    if vote is None:
        return False
    vote.delete()
    _apply_delta(request.pk, value=vote.value, weight=vote.weight, sign=-1)
    return True


def _recount(request_ids) -> None:
    """Set the counters of these requests from their votes, in one UPDATE."""
    votes = Vote.objects.filter(request=OuterRef("pk")).order_by().values("request")
    FeatureRequest.objects.filter(pk__in=list(request_ids)).update(
        upvotes=Coalesce(Subquery(votes.annotate(n=Count("pk", filter=Q(value=1))).values("n")), 0),
        downvotes=Coalesce(
            Subquery(votes.annotate(n=Count("pk", filter=Q(value=-1))).values("n")), 0
        ),
        weighted_score=Coalesce(
            Subquery(votes.annotate(s=Sum(F("value") * F("weight"))).values("s")),
            Value(0, output_field=SCORE),
            output_field=SCORE,
        ),
    )


def _reweigh(votes) -> set[int]:
    """Give these votes the weight of their organization's current MRR, in one UPDATE;
    answers the ids of the requests they belong to."""
    organization_ids = set(votes.values_list("organization_id", flat=True).distinct())
    from support.models import Organization

    weights = {
        pk: weight_for_mrr(mrr)
        for pk, mrr in Organization.objects.filter(pk__in=organization_ids - {None}).values_list(
            "pk", "mrr"
        )
    }
    request_ids = set(votes.values_list("request_id", flat=True).distinct())
    votes.update(
        weight=Case(
            *[When(organization_id=pk, then=Value(w)) for pk, w in weights.items()],
            default=Value(weight_for_mrr(None)),
            output_field=Vote._meta.get_field("weight"),
        )
    )
    return request_ids


@transaction.atomic
def request_change_status(
    *, request: FeatureRequest, status: str, actor, note: str = ""
) -> FeatureRequestEvent:
    """Move a request to another status, write its changelog entry and email its voters
    (once each, after commit)."""
    if not is_agent(actor):
        raise NotPermitted("Only the team changes a request's status.")
    if status not in Status.values:
        raise DomainError(f"Unknown status {status!r}.", field="status")
    request = _locked(request)
    if request.merged_into_id:
        raise Conflict(f"This request was merged into #{request.merged_into_id}.")
    if request.status == status:
        raise Conflict(f"The request is already {request.get_status_display().lower()}.")
    old = request.status
    request.status = status
    request.status_changed_at = timezone.now()
    request.save(update_fields=["status", "status_changed_at", "updated_at"])
    event = FeatureRequestEvent.objects.create(
        request=request,
        kind=FeatureRequestEvent.Kind.STATUS_CHANGED,
        actor=actor,
        old_status=old,
        new_status=status,
        note=(note or "").strip(),
    )
    schedule_after_commit("feedback.tasks.notify_status_change", event.pk)
    events.announce(
        "feature_request_status_changed", feature_request_id=request.pk, old=old, new=status
    )
    return event


@transaction.atomic
def request_merge(*, duplicate: FeatureRequest, survivor: FeatureRequest, actor) -> FeatureRequest:
    """Fold a duplicate into its survivor: votes move (one per user: where someone voted on
    both, the survivor's vote stays), weights are recomputed from today's MRR, both
    requests' counters are recounted, related tickets move, and both changelogs say so."""
    if not is_agent(actor):
        raise NotPermitted("Only the team merges requests.")
    if duplicate.pk == survivor.pk:
        raise DomainError("A request cannot be merged into itself.", field="survivor")
    # Lock both rows in id order, so two merges cannot deadlock.
    locked = {
        r.pk: r
        for r in FeatureRequest.objects.select_for_update()
        .filter(pk__in=[duplicate.pk, survivor.pk])
        .order_by("pk")
    }
    duplicate, survivor = locked[duplicate.pk], locked[survivor.pk]
    if duplicate.merged_into_id:
        raise Conflict(f"#{duplicate.pk} is already merged into #{duplicate.merged_into_id}.")
    if survivor.merged_into_id:
        raise Conflict(
            f"#{survivor.pk} was itself merged into #{survivor.merged_into_id}; merge into that."
        )

    survivor_voters = Vote.objects.filter(request=survivor).values("user_id")
    Vote.objects.filter(request=duplicate, user_id__in=survivor_voters).delete()
    Vote.objects.filter(request=duplicate).update(request=survivor)
    _reweigh(Vote.objects.filter(request=survivor))
    survivor.related_tickets.add(*duplicate.related_tickets.all())
    duplicate.merged_into = survivor
    duplicate.save(update_fields=["merged_into", "updated_at"])
    FeatureRequest.objects.filter(merged_into=duplicate).update(merged_into=survivor)
    _recount([duplicate.pk, survivor.pk])
    FeatureRequestEvent.objects.create(
        request=duplicate, kind=FeatureRequestEvent.Kind.MERGED, actor=actor, other=survivor
    )
    FeatureRequestEvent.objects.create(
        request=survivor,
        kind=FeatureRequestEvent.Kind.DUPLICATE_MERGED,
        actor=actor,
        other=duplicate,
    )
    survivor.refresh_from_db()
    return survivor


def status_change_mark_notified(*, event_id: int) -> None:
    """The voters were told about this status change (``notify_status_change``)."""
    FeatureRequestEvent.objects.filter(pk=event_id).update(notified_at=timezone.now())


@transaction.atomic
def organization_reweigh_votes(*, organization_id: int) -> int:
    """Recompute the weight of every vote of this organization from its MRR now, and the
    scores of the requests they count in. Idempotent; answers the number of requests."""
    votes = Vote.objects.filter(organization_id=organization_id)
    request_ids = set(votes.values_list("request_id", flat=True).distinct())
    if not request_ids:
        return 0
    # Lock the affected requests (id order, as merges do) so no vote lands in between.
    list(
        FeatureRequest.objects.select_for_update()
        .filter(pk__in=request_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    _reweigh(votes)
    _recount(request_ids)
    return len(request_ids)
