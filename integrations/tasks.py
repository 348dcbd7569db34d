"""Celery tasks of integrations: thin, take ids, idempotent, call services.

The GitHub tasks live in ``integrations.github.tasks`` (imported here so the worker's
autodiscovery registers them).
"""

from integrations.github.tasks import create_issue, draft_pull_request  # noqa: F401
