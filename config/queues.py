"""Celery queues past one machine: AI work, email and the rest apart.

Off by default: every task goes to the one queue ``celery`` that every worker consumes
(``make run``, the tests, the default ``docker compose up``). With
``HELPDESK_CELERY_QUEUES=split`` (the compose ``scale`` profile sets it on every
container) settings route by task name:

- ``ai``: LLM and embedding work, slow and CPU- or quota-bound;
- ``email``: notifications out and mailboxes polled in, bound by mail servers;
- ``celery``: the rest (the outbox relay, sweeps, rollups, webhooks, GitHub issues).

so a backlog of analyses never delays an email or the outbox relay, and each queue gets
its own workers (``celery -A config worker -Q ai``). A worker started without ``-Q``
still consumes all three (they are all declared), so nothing is stranded when one
process has the setting and another has not. Routes go by name, so the outbox's
``send_task(name)`` (core.outbox) follows them like ``.delay()`` does.
"""

from __future__ import annotations

DEFAULT_QUEUE = "celery"
AI_QUEUE = "ai"
EMAIL_QUEUE = "email"
QUEUES = (DEFAULT_QUEUE, AI_QUEUE, EMAIL_QUEUE)

AI_TASKS = (
    "support.tasks.analyze_ticket",
    "support.tasks.draft_answer",
    "support.tasks.harvest_training_example",  # embeds the anonymized question
    "knowledge.tasks.embed_article",
    "bugfix.tasks.draft_pull_request",  # the AI drafts the fix
)
EMAIL_TASKS = (
    "support.tasks.ticket_effects",  # the emails that follow a ticket change
    "support.tasks.poll_mailboxes",
    "support.tasks.poll_mailbox",  # inbound mail from IMAP
    "feedback.tasks.notify_status_change",
    "automation.tasks.send_rule_email",
    "automation.tasks.notify_webhook_disabled",
)


def task_routes() -> dict[str, dict[str, str]]:
    """``CELERY_TASK_ROUTES`` for split queues; unnamed tasks use the default queue."""
    return {
        **{name: {"queue": AI_QUEUE} for name in AI_TASKS},
        **{name: {"queue": EMAIL_QUEUE} for name in EMAIL_TASKS},
    }


def task_queues():
    """``CELERY_TASK_QUEUES``: all three, so a worker without ``-Q`` consumes them all."""
    from kombu import Queue

    return [Queue(name, routing_key=name) for name in QUEUES]
