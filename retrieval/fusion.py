"""Hybrid fusion: one score per candidate chunk from its vector and keyword scores.

Both signals are 0..1 for every (query, candidate) pair: cosine similarity clipped to
0..1, and BM25 normalised per query (retrieval.keyword). The hybrid score is their
convex combination, ``0.8 * vector + 0.2 * keyword``, or ``0.6 * vector + 0.4 * keyword``
for a query that names an exact identifier (``ERR-7731``, ``pg_dump``), which only the
keyword side can match (`query_weights`); the weights were chosen on the dev half of
bench/data/doc_eval (docs/retrieval.md). With several queries each signal and the score
are the best over the queries. The "vector" and "keyword" rankers rank by one signal alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.keyword import names_identifier

__all__ = [
    "HYBRID_RANKERS",
    "IDENTIFIER_VECTOR_WEIGHT",
    "RANKERS",
    "SINGLE_RANKERS",
    "VECTOR_WEIGHT",
    "Fused",
    "fuse",
    "query_weights",
]

VECTOR_WEIGHT = 0.8
IDENTIFIER_VECTOR_WEIGHT = 0.6  # queries naming an exact code (keyword.names_identifier)
HYBRID_RANKERS = ("auto", "none", "default-2024-11-15", "default_2024_08_21", "default-2024-08-21")
SINGLE_RANKERS = ("vector", "keyword")
RANKERS = HYBRID_RANKERS + SINGLE_RANKERS


@dataclass
class Fused:
    """Per candidate, in the order given: the best of each signal over the queries, and
    the score the ranker orders by."""

    vector: list[float]
    keyword: list[float]
    score: list[float]


def query_weights(queries: list[str]) -> np.ndarray:
    """Each query's vector weight (its keyword weight is 1 minus it), shape (queries,)."""
    return np.asarray(
        [IDENTIFIER_VECTOR_WEIGHT if names_identifier(q) else VECTOR_WEIGHT for q in queries],
        dtype=np.float32,
    )


def fuse(
    vector: np.ndarray, keyword: np.ndarray, ranker: str, weights: np.ndarray | None = None
) -> Fused:
    """`vector` and `keyword`: (queries, candidates) score matrices, 0..1; `weights`: each
    query's vector weight (`query_weights`), VECTOR_WEIGHT for all when None."""
    best_vector = vector.max(axis=0).tolist()
    best_keyword = keyword.max(axis=0).tolist()
    if ranker == "vector":
        return Fused(best_vector, best_keyword, best_vector)
    if ranker == "keyword":
        return Fused(best_vector, best_keyword, best_keyword)
    if weights is None:
        weights = np.full(len(vector), VECTOR_WEIGHT, dtype=np.float32)
    w = weights[:, None]  # (queries, 1)
    fused = w * vector + (1 - w) * keyword
    return Fused(best_vector, best_keyword, fused.max(axis=0).tolist())
