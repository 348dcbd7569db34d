"""Celery tasks of integrations: thin, take ids, idempotent, call services."""
