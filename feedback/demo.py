"""Demo roadmap for a fresh install: idempotent (requests are looked up by title), built
through the services so votes, weights, counters and changelogs are real."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

REQUESTS = [
    # title, kind, author, status, voters (username: +1/-1), description, note
    (
        "Dark mode for the agent workspace",
        "feature_request",
        "customer",
        "planned",
        {"dana": 1, "li": 1, "sam": 1},
        "Our team works late shifts; a dark theme would be easier on the eyes.",
        "Designs are done; building it next quarter.",
    ),
    (
        "SAML single sign-on with Okta and Azure AD",
        "feature_request",
        "dana",
        "in_progress",
        {"customer": 1, "li": 1},
        "Security review requires SSO for every tool we use.",
        "Okta works in staging; Azure AD is next.",
    ),
    (
        "Export reports to CSV",
        "feature_request",
        "li",
        "completed",
        {"customer": 1, "sam": 1},
        "We build our monthly reports in a spreadsheet.",
        "Shipped: *Reports → Export* on every report.",
    ),
    (
        "Slack notifications for escalations",
        "feature_request",
        "sam",
        "open",
        {"li": 1, "customer": -1},
        "Post to a channel when a ticket is escalated, with a link.",
        "",
    ),
    (
        "Board view loses scroll position after editing a card",
        "bug_report",
        "customer",
        "under_review",
        {"dana": 1},
        "1. Scroll down a long board\n2. Edit a card\n3. The board jumps back to the top",
        "",
    ),
    (
        "Keyboard shortcuts for moving cards",
        "improvement",
        "li",
        "open",
        {"sam": 1},
        "`j`/`k` to move between cards and `m` to move one would save us hours.",
        "",
    ),
    (
        "Recurring tasks",
        "feature_request",
        "sam",
        "open",
        {"customer": 1, "dana": 1, "li": 1},
        "Weekly and monthly tasks that recreate themselves when completed.",
        "",
    ),
    (
        "Offline mode for the mobile app",
        "feature_request",
        "li",
        "wont_fix",
        {"sam": 1},
        "Edit boards on a plane and sync later.",
        "Not now: sync conflicts would put your data at risk. We will revisit in 2027.",
    ),
]


@transaction.atomic
def load_demo_feedback() -> None:
    from feedback import services
    from feedback.models import FeatureRequest

    User = get_user_model()
    people = {u.username: u for u in User.objects.filter(username__in=_usernames())}
    agent = User.objects.filter(username="agent").first()
    if agent is None:
        return
    for title, kind, author, status, voters, description, note in REQUESTS:
        if author not in people or FeatureRequest.objects.filter(title=title).exists():
            continue
        feature = services.request_submit(
            author=people[author], title=title, description=description, kind=kind
        )
        for username, value in voters.items():
            if username in people:
                services.vote_cast(request=feature, user=people[username], value=value)
        if status != "open":
            services.request_change_status(request=feature, status=status, actor=agent, note=note)


def _usernames() -> set[str]:
    names = {author for _, _, author, *_ in REQUESTS}
    for *_, voters, _description, _note in REQUESTS:
        names |= set(voters)
    return names


def load_demo() -> None:
    """Feedback's part of ``load_demo_data`` (core): the roadmap and its votes."""
    load_demo_feedback()
