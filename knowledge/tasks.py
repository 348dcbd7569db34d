"""Celery tasks of knowledge base: thin, take ids, idempotent, call services."""
