"""Celery tasks of bugfix (the GitHub automation): thin, take a link id, idempotent.

A rate limit is retried at its reset time (``retry-after`` or ``x-ratelimit-reset``, at
most ``HELPDESK_GITHUB_MAX_RATE_LIMIT_WAIT``), 5xx and network errors with backoff, up to
``MAX_RETRIES``; anything else (bad credentials, unknown repository, refused request) is
recorded on the link at once. The ticket is never touched by a failure.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from bugfix import automation, services
from bugfix.models import GithubLink
from core.outbox import schedule_after_commit
from integrations.github.client import GithubFailure

logger = logging.getLogger(__name__)
MAX_RETRIES = 5


def _handle(task, link_id: int, failure: GithubFailure):
    retries = task.request.retries
    final = (
        failure.retry_in is None
        or retries >= MAX_RETRIES
        or failure.retry_in > settings.HELPDESK_GITHUB_MAX_RATE_LIMIT_WAIT
    )
    services.link_record_failure(link_id=link_id, message=failure.message, final=final)
    logger.warning("GitHub step failed for link %s: %s", link_id, failure.message)
    if final:
        return "failed"
    countdown = failure.retry_in * (2**retries if failure.status and failure.status >= 500 else 1)
    raise task.retry(countdown=countdown, max_retries=MAX_RETRIES, exc=failure)


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def create_issue(self, link_id: int) -> str:
    """Open the GitHub issue of a bug ticket, then queue the draft fix."""
    try:
        link = automation.create_issue(link_id)
    except GithubFailure as failure:
        return _handle(self, link_id, failure)
    except GithubLink.DoesNotExist:
        return "gone"
    schedule_after_commit(draft_pull_request, link.pk)
    return f"issue #{link.issue_number}"


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def draft_pull_request(self, link_id: int) -> str:
    """Ask the AI for a fix and open a draft PR when it is confident enough."""
    try:
        link = automation.draft_pull_request(link_id)
    except GithubFailure as failure:
        return _handle(self, link_id, failure)
    except GithubLink.DoesNotExist:
        return "gone"
    return f"pr #{link.pr_number}" if link.pr_number else "suggestion only"
