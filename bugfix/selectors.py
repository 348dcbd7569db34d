"""Non-trivial reads of bugfix: functions returning QuerySets."""

from __future__ import annotations

from django.db.models import QuerySet

from bugfix.models import GithubLink


def github_link_list() -> QuerySet[GithubLink]:
    """Every ticket's GitHub link, with its ticket (the team's view: agents only)."""
    return GithubLink.objects.select_related("ticket")
