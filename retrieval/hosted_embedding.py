"""Hosted embedding models, reached through litellm ("litellm/<provider>/<model>")."""

from __future__ import annotations

import re

import numpy as np

from retrieval.embedding import Embedder

__all__ = ["LiteLLMEmbedder"]


class LiteLLMEmbedder(Embedder):
    """A hosted embedding model reached through litellm ("litellm/<provider>/<model>").

    Tokens are approximated without a vocabulary (up to four letters, up to three digits, or
    one other character each), which over-counts English, so windows stay inside the limit.
    """

    _TOKEN = re.compile(r"[A-Za-z]{1,4}|\d{1,3}|[^\sA-Za-z\d]")

    def __init__(self, name: str, batch_size: int = 64) -> None:
        super().__init__(name, batch_size)
        self.model = name.removeprefix("litellm/")
        self._dimension: int | None = None
        self._max_tokens: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self._embed(["dimension probe"]).shape[1])
        return self._dimension

    @property
    def max_tokens(self) -> int:
        if self._max_tokens is None:
            import litellm

            try:
                info = litellm.get_model_info(self.model)
                limit = info.get("max_input_tokens") or info.get("max_tokens")
            except Exception:  # litellm raises a bare Exception for unmapped models
                limit = None
            self._max_tokens = int(limit or 8191)
        return self._max_tokens

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._TOKEN.finditer(text)]

    def _embed(self, texts: list[str]) -> np.ndarray:
        import litellm

        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            response = litellm.embedding(model=self.model, input=texts[i : i + self.batch_size])
            rows.extend(item["embedding"] for item in response.data)
        vectors = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._dimension = int(vectors.shape[1])
        return vectors / np.where(norms == 0, 1, norms)
