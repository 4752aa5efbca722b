"""Hybrid fusion: one score per candidate chunk from its vector and keyword scores.

Both signals are 0..1 for every (query, candidate) pair: cosine similarity clipped to
0..1, and BM25 normalised per query (retrieval.keyword). The hybrid score is their
convex combination, ``0.7 * vector + 0.3 * keyword`` (the weights are fixed, not fitted
to our evaluation set); with several queries each signal and the score are the best
over the queries. The "vector" and "keyword" rankers rank by one signal alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HYBRID_RANKERS", "RANKERS", "SINGLE_RANKERS", "VECTOR_WEIGHT", "Fused", "fuse"]

VECTOR_WEIGHT = 0.7
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


def fuse(vector: np.ndarray, keyword: np.ndarray, ranker: str) -> Fused:
    """`vector` and `keyword`: (queries, candidates) score matrices, 0..1."""
    best_vector = vector.max(axis=0).tolist()
    best_keyword = keyword.max(axis=0).tolist()
    if ranker == "vector":
        return Fused(best_vector, best_keyword, best_vector)
    if ranker == "keyword":
        return Fused(best_vector, best_keyword, best_keyword)
    fused = VECTOR_WEIGHT * vector + (1 - VECTOR_WEIGHT) * keyword
    return Fused(best_vector, best_keyword, fused.max(axis=0).tolist())
