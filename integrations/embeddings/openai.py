"""OpenAI ``text-embedding-3-small`` shortened to 384 dimensions (``dimensions=384``).

The official SDK retries 429 and 5xx answers with exponential backoff, honouring
``retry-after``; what still fails becomes an ``EmbeddingError``.
"""

from __future__ import annotations

import math

from django.conf import settings

from integrations.embeddings.base import EmbeddingError

MODEL = "text-embedding-3-small"


class OpenAIEmbeddings:
    dimensions = 384
    model_name = f"{MODEL}@384"

    def __init__(
        self,
        *,
        api_key: str,
        max_retries: int = 3,
        timeout: float = 30.0,
        batch_size: int = 128,
        base_url: str | None = None,
        http_client=None,
    ):
        import openai

        self._openai = openai
        self.client = openai.OpenAI(
            api_key=api_key,
            max_retries=max_retries,
            timeout=timeout,
            base_url=base_url,
            http_client=http_client,
        )
        self.batch_size = batch_size

    @classmethod
    def from_settings(cls) -> OpenAIEmbeddings:
        if not settings.OPENAI_API_KEY:
            raise EmbeddingError("HELPDESK_EMBEDDINGS_PROVIDER=openai needs OPENAI_API_KEY.")
        return cls(
            api_key=settings.OPENAI_API_KEY,
            max_retries=settings.HELPDESK_LLM_MAX_RETRIES,
            timeout=settings.HELPDESK_LLM_TIMEOUT_SECONDS,
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = self.client.embeddings.create(
                    model=MODEL, input=batch, dimensions=self.dimensions, encoding_format="float"
                )
            except self._openai.OpenAIError as exc:
                raise EmbeddingError(f"OpenAI embeddings failed: {exc}") from exc
            ordered = sorted(response.data, key=lambda item: item.index)
            if len(ordered) != len(batch):
                raise EmbeddingError(f"OpenAI returned {len(ordered)} vectors for {len(batch)}.")
            vectors.extend(_unit(item.embedding) for item in ordered)
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _unit(vector: list[float]) -> list[float]:
    # Shortened embeddings are not unit length; cosine distance wants them to be.
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
