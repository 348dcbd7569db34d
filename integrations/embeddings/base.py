from __future__ import annotations

from typing import Protocol


class EmbeddingError(Exception):
    """The provider could not embed the texts (after its retries)."""


class EmbeddingProvider(Protocol):
    #: Stored with each chunk: vectors of different models are never compared.
    model_name: str
    dimensions: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        ...

    def embed_query(self, text: str) -> list[float]: ...
