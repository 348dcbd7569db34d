"""Non-trivial reads of feedback: functions returning QuerySets."""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.shortcuts import get_object_or_404

from core.roles import is_agent
from feedback.models import SEARCH_CONFIG, FeatureRequest, FeatureRequestEvent, Vote

Status = FeatureRequest.Status
OPEN_STATUSES = (Status.OPEN, Status.UNDER_REVIEW)
ORDERINGS = {
    "top": ("-weighted_score", "-upvotes", "-created_at"),
    "new": ("-created_at",),
    "votes": ("-vote_total", "-weighted_score", "-created_at"),
}


def request_list(*, user, include_merged: bool = False) -> QuerySet[FeatureRequest]:
    """Requests this user may see: public ones, their own private ones, everything for
    staff; each annotated with ``my_vote`` (1, −1 or None) for the user, in SQL."""
    queryset = FeatureRequest.objects.select_related("author", "related_article").annotate(
        vote_total=F("upvotes") + F("downvotes")
    )
    if not include_merged:
        queryset = queryset.filter(merged_into__isnull=True)
    if user is None or not user.is_authenticated:
        return queryset.filter(is_public=True).annotate(
            my_vote=Value(None, output_field=IntegerField())
        )
    if not is_agent(user):
        queryset = queryset.filter(Q(is_public=True) | Q(author=user))
    mine = Vote.objects.filter(request=OuterRef("pk"), user=user).values("value")[:1]
    return queryset.annotate(my_vote=Subquery(mine, output_field=IntegerField()))


def request_search(queryset: QuerySet, *, q: str = "", order: str | None = None) -> QuerySet:
    """Full-text search (title weighted over description, English stemming) and, when
    ``order`` is given, an ordering: ``relevance`` (search rank), ``top`` (weighted score),
    ``new`` or ``votes`` (most voted)."""
    q = (q or "").strip()
    if q:
        query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
        queryset = queryset.filter(search_vector=query)
        if order == "relevance":
            return queryset.annotate(rank=SearchRank(F("search_vector"), query)).order_by(
                "-rank", "-weighted_score"
            )
    if order is None:
        return queryset
    return queryset.order_by(*ORDERINGS.get(order, ORDERINGS["top"]))


def request_get(*, user, pk: int) -> FeatureRequest:
    """One request the user may see (merged ones too: their pages point to the survivor)."""
    return get_object_or_404(request_list(user=user, include_merged=True), pk=pk)


def roadmap_columns(*, user, per_column: int = 20) -> dict[str, list[FeatureRequest]]:
    """The public roadmap's three columns, best first (completed: most recent first)."""
    base = request_list(user=user)
    return {
        "planned": list(
            base.filter(status=Status.PLANNED).order_by(*ORDERINGS["top"])[:per_column]
        ),
        "in_progress": list(
            base.filter(status=Status.IN_PROGRESS).order_by(*ORDERINGS["top"])[:per_column]
        ),
        "completed": list(
            base.filter(status=Status.COMPLETED).order_by(
                F("status_changed_at").desc(nulls_last=True), "-weighted_score"
            )[:per_column]
        ),
    }


def request_history(request: FeatureRequest) -> QuerySet[FeatureRequestEvent]:
    return request.events.select_related("actor", "other")
