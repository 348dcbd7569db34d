"""Celery tasks of feedback: thin, take ids, idempotent, call services."""
