"""Every write of bugfix: one function per state change, one transaction each.

The GitHub link of a ticket moves ``pending → issue_created → pr_drafted → pr_merged |
pr_rejected``, or to ``failed`` with the reason in ``last_error`` (a later request starts it
again). Each step writes a team-only ticket event. The calls to GitHub itself happen in
``bugfix.automation`` (from tasks or the review screens), outside these transactions;
these functions record what GitHub answered. A person's "Send to GitHub" (admin, API) is
:func:`ticket_send_to_github`; triage's confirmed bug arrives through ``subscribers``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bugfix.models import GithubLink
from core.errors import Conflict, DomainError, NotPermitted
from core.outbox import schedule_after_commit
from core.roles import is_agent
from support import events
from support import services as support_services
from support.models import DONE_STATUSES, Message, Ticket, TicketEvent, TicketType

logger = logging.getLogger(__name__)
Status = GithubLink.Status
EventKind = TicketEvent.Kind


def repository_for(ticket: Ticket) -> str:
    """Where a ticket's bug goes: its organization's repository, else GITHUB_REPOSITORY."""
    organization = ticket.organization
    return (organization.github_repository if organization else "") or settings.GITHUB_REPOSITORY


def github_enabled_for(ticket: Ticket) -> bool:
    return bool(settings.GITHUB_TOKEN and repository_for(ticket))


def _locked(link_id: int) -> GithubLink:
    return GithubLink.objects.select_for_update().select_related("ticket").get(pk=link_id)


@transaction.atomic
def github_link_request(*, ticket: Ticket, actor=None) -> GithubLink:
    """Send a bug ticket to GitHub: the link is made once per ticket and the issue is
    created by a task after commit. Asking again after a failure starts over."""
    if actor is not None and not is_agent(actor):
        raise NotPermitted("Only the team sends tickets to GitHub.")
    repository = repository_for(ticket)
    if not settings.GITHUB_TOKEN or not repository:
        raise DomainError(
            "GitHub is not configured: set GITHUB_TOKEN and GITHUB_REPOSITORY "
            "(or the organization's repository)."
        )
    link, created = GithubLink.objects.get_or_create(
        ticket=ticket, defaults={"repository": repository}
    )
    restart = not created and link.status == Status.FAILED
    if restart:
        link = _locked(link.pk)
        link.status = Status.ISSUE_CREATED if link.issue_number else Status.PENDING
        link.last_error, link.attempts = "", 0
        link.save(update_fields=["status", "last_error", "attempts", "updated_at"])
    if created or restart:
        task = "draft_pull_request" if link.issue_number else "create_issue"
        schedule_after_commit(f"bugfix.tasks.{task}", link.pk)
    return link


@transaction.atomic
def ticket_send_to_github(*, ticket: Ticket, actor) -> GithubLink:
    """A person sends a ticket to GitHub (admin action, API): it becomes a bug if it is
    not one, and its link is requested, in one transaction, so a refused request (GitHub
    not configured, an actor outside the team) leaves the ticket's type as it was."""
    if ticket.type != TicketType.BUG:
        ticket = support_services.ticket_update(ticket=ticket, actor=actor, type=TicketType.BUG)
    return github_link_request(ticket=ticket, actor=actor)


@transaction.atomic
def link_record_issue(*, link_id: int, number: int, url: str) -> GithubLink:
    link = _locked(link_id)
    if link.issue_number == number:
        return link
    link.issue_number, link.issue_url = number, url
    link.status, link.last_error = Status.ISSUE_CREATED, ""
    link.save(update_fields=["issue_number", "issue_url", "status", "last_error", "updated_at"])
    events.github_event(
        ticket=link.ticket,
        kind=EventKind.GITHUB_ISSUE_CREATED,
        metadata={"repository": link.repository, "issue_number": number, "issue_url": url},
    )
    return link


@transaction.atomic
def link_record_suggestion(
    *, link_id: int, files: list[dict], explanation: str, confidence: float, model: str
) -> GithubLink:
    link = _locked(link_id)
    link.suggested_files, link.fix_explanation = files, explanation
    link.fix_confidence, link.fix_model = max(0.0, min(1.0, confidence)), model
    link.save(
        update_fields=[
            "suggested_files",
            "fix_explanation",
            "fix_confidence",
            "fix_model",
            "updated_at",
        ]
    )
    return link


@transaction.atomic
def link_record_pull_request(
    *, link_id: int, branch: str, base: str, number: int, url: str
) -> GithubLink:
    link = _locked(link_id)
    if link.pr_number == number:
        return link
    link.branch_name, link.base_branch, link.pr_number, link.pr_url = branch, base, number, url
    link.status, link.checks_state, link.last_error = Status.PR_DRAFTED, link.Checks.PENDING, ""
    link.save()
    events.github_event(
        ticket=link.ticket,
        kind=EventKind.GITHUB_PR_DRAFTED,
        metadata={"pr_number": number, "pr_url": url, "branch": branch},
    )
    return link


@transaction.atomic
def link_record_failure(*, link_id: int, message: str, final: bool) -> GithubLink:
    """Note a failed attempt; ``final``: no more retries, the link is ``failed`` (the ticket
    itself is untouched and stays with whoever has it)."""
    link = _locked(link_id)
    link.last_error, link.attempts = message[:2000], link.attempts + 1
    if final:
        link.status = Status.FAILED
        events.github_event(
            ticket=link.ticket, kind=EventKind.GITHUB_FAILED, metadata={"error": message[:500]}
        )
    link.save(update_fields=["last_error", "attempts", "status", "updated_at"])
    return link


def link_check_reviewable(link: GithubLink, actor) -> None:
    if not is_agent(actor):
        raise NotPermitted("Only the team reviews suggested fixes.")
    if link.status != Status.PR_DRAFTED:
        raise Conflict(f"There is no draft pull request to review ({link.get_status_display()}).")
    if link.reviewed_at is not None:
        raise Conflict("This pull request was reviewed already.")


@transaction.atomic
def link_record_review(*, link_id: int, actor, approved: bool, note: str = "") -> GithubLink:
    link = _locked(link_id)
    link_check_reviewable(link, actor)
    link.reviewed_by, link.reviewed_at = actor, timezone.now()
    link.review_decision = "approved" if approved else "rejected"
    link.review_note = (note or "").strip()[:2000]
    if not approved:
        link.status = Status.PR_REJECTED
    link.save()
    events.github_event(
        ticket=link.ticket,
        kind=EventKind.GITHUB_PR_REVIEWED if approved else EventKind.GITHUB_PR_REJECTED,
        actor=actor,
        metadata={"pr_number": link.pr_number, "note": link.review_note},
    )
    return link


@transaction.atomic
def link_pull_request_closed(*, link_id: int, merged: bool) -> GithubLink:
    """GitHub says the PR was closed: merged (the ticket is resolved, with a message to the
    customer) or not (the fix is rejected; the ticket stays with the team)."""
    link = _locked(link_id)
    if link.status in (Status.PR_MERGED, Status.PR_REJECTED) and (
        (link.status == Status.PR_MERGED) == merged
    ):
        return link
    link.status = Status.PR_MERGED if merged else Status.PR_REJECTED
    link.save(update_fields=["status", "updated_at"])
    ticket = Ticket.objects.select_for_update().get(pk=link.ticket_id)
    events.github_event(
        ticket=ticket,
        kind=EventKind.GITHUB_PR_MERGED if merged else EventKind.GITHUB_PR_REJECTED,
        metadata={"pr_number": link.pr_number, "pr_url": link.pr_url},
    )
    if merged:
        support_services.message_add(
            ticket=ticket,
            author=None,
            sender_kind=Message.SenderKind.SYSTEM,
            body=(
                "Good news: the fix for the problem you reported has been merged and ships "
                "with the next release. Reply here if you still see it after that."
            ),
        )
        ticket.refresh_from_db()
        if ticket.status not in DONE_STATUSES:
            support_services.ticket_resolve(ticket=ticket, actor=None, actor_kind="system")
    return link


@transaction.atomic
def link_record_checks(*, link_id: int, state: str) -> GithubLink:
    link = _locked(link_id)
    if link.checks_state != state:
        link.checks_state = state
        link.save(update_fields=["checks_state", "updated_at"])
    return link


@transaction.atomic
def link_issue_closed(*, link_id: int, reason: str = "") -> GithubLink:
    link = _locked(link_id)
    events.github_event(
        ticket=link.ticket,
        kind=EventKind.GITHUB_ISSUE_CLOSED,
        metadata={"issue_number": link.issue_number, "state_reason": reason},
    )
    return link
