"""Celery tasks of the knowledge base: thin, take ids, idempotent."""

from __future__ import annotations

from celery import shared_task

from integrations.embeddings import EmbeddingError
from knowledge import services


@shared_task(
    bind=True,
    autoretry_for=(EmbeddingError, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_kwargs={"max_retries": 8},
    acks_late=True,
)
def embed_article(self, article_id: int, force: bool = False) -> str:
    """(Re-)embed one article's chunks; a no-op when text and model are unchanged."""
    return services.article_embed(article_id=article_id, force=force)
