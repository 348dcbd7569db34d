"""Celery tasks of support: thin, take ids, idempotent, call services."""
