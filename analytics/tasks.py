"""Celery tasks of analytics: thin, take ids, idempotent, call services."""
