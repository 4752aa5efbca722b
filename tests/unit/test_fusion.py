"""Hybrid fusion (retrieval/fusion.py), in process."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.fusion import RANKERS, VECTOR_WEIGHT, fuse

# (queries, candidates): two queries, two candidates.
VECTOR = np.array([[0.5, 0.2], [0.1, 0.9]], dtype=np.float32)
KEYWORD = np.array([[1.0, 0.0], [0.0, 0.5]], dtype=np.float32)


def test_each_signal_is_its_best_over_the_queries() -> None:
    fused = fuse(VECTOR, KEYWORD, "auto")
    assert fused.vector == pytest.approx([0.5, 0.9])
    assert fused.keyword == pytest.approx([1.0, 0.5])


def test_hybrid_is_the_best_weighted_sum_over_the_queries() -> None:
    fused = fuse(VECTOR, KEYWORD, "auto")
    per_query = VECTOR_WEIGHT * VECTOR + (1 - VECTOR_WEIGHT) * KEYWORD
    assert fused.score == pytest.approx(per_query.max(axis=0).tolist())
    assert fused.score == pytest.approx([0.65, 0.78])  # not max(vector) mixed with max(keyword)


@pytest.mark.parametrize("ranker", [r for r in RANKERS if r not in ("vector", "keyword")])
def test_every_hybrid_ranker_fuses_the_same_way(ranker: str) -> None:
    assert fuse(VECTOR, KEYWORD, ranker).score == fuse(VECTOR, KEYWORD, "auto").score


def test_single_signal_rankers_rank_by_that_signal_and_still_report_both() -> None:
    by_vector, by_keyword = fuse(VECTOR, KEYWORD, "vector"), fuse(VECTOR, KEYWORD, "keyword")
    assert by_vector.score == by_vector.vector and by_keyword.score == by_keyword.keyword
    assert by_vector.keyword == by_keyword.keyword and by_vector.vector == by_keyword.vector
