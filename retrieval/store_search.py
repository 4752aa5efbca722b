"""One store's part of a hybrid search (ChunkIndex.search runs one per store): retrieve
candidates from the vector and the keyword side, score every candidate on both signals
exactly, fuse the scores (retrieval.fusion), and read the text of the chosen ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from retrieval.fusion import fuse
from retrieval.keyword import KeywordIndex
from retrieval.records import (
    Candidate,
    ChunkFacts,
    key_of_meta,
    key_of_record,
    public_id,
    record_id,
)

__all__ = ["StoreSearch"]


class StoreSearch:
    """One store's part of a search: retrieve from both sides, then score every candidate on
    both signals exactly (a chunk only one side found gets the other side's score too)."""

    def __init__(
        self,
        store_id: str,
        collection: Any,
        snapshot: KeywordIndex,
        query_vectors: np.ndarray,
        query_tokens: list[list[str]],
        where: dict[str, Any] | None,
        predicate: Callable[[dict[str, Any]], bool] | None,
    ) -> None:
        self.store_id = store_id
        self.collection = collection
        self.snapshot = snapshot
        self.query_vectors = query_vectors
        self.query_tokens = query_tokens
        self.where = where
        self.predicate = predicate
        self.candidates: list[Candidate] = []

    def run(self, k: int, ranker: str) -> None:
        snap = self.snapshot
        mask = snap.file_mask(self.predicate) if self.predicate else None
        keyword_all = [snap.scores(tokens, mask) for tokens in self.query_tokens]
        similarity: dict[str, np.ndarray] = {}  # chunk key -> cosine per query (nan: unknown)
        vector_ranks: dict[str, int] = {}
        if ranker != "keyword":
            vector_ranks = self._vector_hits(k, similarity)
        keyword_ranks: dict[str, int] = {}
        if ranker != "vector":
            for scores in keyword_all:
                for rank, pos in enumerate(snap.top(scores, k), 1):
                    key = snap.keys[pos]
                    keyword_ranks[key] = min(rank, keyword_ranks.get(key, rank))
        keys = list(dict.fromkeys([*vector_ranks, *keyword_ranks]))
        if not keys:
            return
        info = self._describe(keys)
        self._complete_similarity([k for k in keys if k in info], similarity, info)
        keys = [k for k in keys if k in info and k in similarity]  # others: deleted meanwhile
        if not keys:
            return
        positions = np.asarray([snap.position.get(k, -1) for k in keys])
        keyword = np.stack([np.where(positions >= 0, s[positions], 0.0) for s in keyword_all])
        vector = np.clip(np.nan_to_num(np.stack([similarity[k] for k in keys], axis=1)), 0.0, 1.0)
        fused = fuse(vector, keyword, ranker)  # both (queries, keys)
        for j, key in enumerate(keys):
            facts = info[key]
            self.candidates.append(
                Candidate(
                    chunk_id=public_id(key),
                    store_id=self.store_id,
                    file_id=facts.file_id,
                    filename=facts.filename,
                    text="",  # read later, for the selected ones
                    start=facts.start,
                    end=facts.end,
                    page=facts.page,
                    attributes=dict(facts.attributes),
                    vector_score=fused.vector[j],
                    keyword_score=fused.keyword[j],
                    score=fused.score[j],
                    vector_rank=vector_ranks.get(key),
                    keyword_rank=keyword_ranks.get(key),
                    key=key,
                )
            )

    def _vector_hits(self, k: int, similarity: dict[str, np.ndarray]) -> dict[str, int]:
        """Chunk key -> best rank over the queries; windows collapse onto their chunk.

        With a filter, first over-fetch unfiltered and filter here (Chroma's filtered
        search is far slower); fall back to Chroma's `where` when too few pass."""
        total = self.snapshot.total_windows or self.collection.count()
        if total <= 0:
            return {}
        n = min(k * (4 if self.predicate else 2), total)
        result = self.collection.query(
            query_embeddings=self.query_vectors, n_results=n, include=["distances"]
        )
        ranks = self._collapse(result, k, similarity, self._passes if self.predicate else None)
        if self.predicate and len(ranks) < k and n < total:
            similarity.clear()
            result = self.collection.query(
                query_embeddings=self.query_vectors,
                n_results=min(k * 2, total),
                where=self.where,
                include=["distances"],
            )
            ranks = self._collapse(result, k, similarity, None)
        return ranks

    def _passes(self, key: str) -> bool:
        pos = self.snapshot.position.get(key)
        if pos is None:
            return True  # newer than the snapshot: checked once its metadata is read
        assert self.predicate is not None
        return bool(self.predicate(self.snapshot.attributes[int(self.snapshot.file_of[pos])]))

    def _collapse(
        self,
        result: dict[str, Any],
        k: int,
        similarity: dict[str, np.ndarray],
        keep: Callable[[str], bool] | None,
    ) -> dict[str, int]:
        ranks: dict[str, int] = {}
        n_queries = len(self.query_vectors)
        for q, (ids, distances) in enumerate(zip(result["ids"], result["distances"], strict=True)):
            seen = 0
            for rid, distance in zip(ids, distances, strict=True):
                key = key_of_record(rid)
                if key in similarity and not np.isnan(similarity[key][q]):
                    continue  # a lower-scoring window of a chunk already seen
                if keep is not None and not keep(key):
                    continue
                row = similarity.setdefault(key, np.full(n_queries, np.nan, dtype=np.float32))
                row[q] = 1.0 - float(distance)
                seen += 1
                ranks[key] = min(seen, ranks.get(key, seen))
                if seen >= k:
                    break
        return ranks

    def _describe(self, keys: list[str]) -> dict[str, ChunkFacts]:
        """Chunk facts from the snapshot; chunks newer than it are read from Chroma."""
        info: dict[str, ChunkFacts] = {}
        newer = []
        for key in keys:
            pos = self.snapshot.position.get(key)
            if pos is None:
                newer.append(record_id(key, 0))
            else:
                info[key] = self.snapshot.chunk(pos)
        if newer:
            got = self.collection.get(ids=newer, include=["metadatas"])
            for meta in got["metadatas"]:
                facts = ChunkFacts.of_meta(meta)
                if self.predicate and not self.predicate(facts.attributes):
                    continue
                info[key_of_meta(meta)] = facts
        return info

    def _complete_similarity(
        self, keys: list[str], similarity: dict[str, np.ndarray], info: dict[str, ChunkFacts]
    ) -> None:
        """Exact cosine for every (query, chunk) the vector search did not return: the best
        of the chunk's windows. Chunks whose vectors are gone are dropped."""
        wanted = [k for k in keys if k not in similarity or np.isnan(similarity[k]).any()]
        if not wanted:
            return
        ids = [record_id(key, w) for key in wanted for w in range(info[key].windows)]
        got = self.collection.get(ids=ids, include=["embeddings"])
        found: dict[str, np.ndarray] = {}
        if len(got["ids"]):
            sims = np.asarray(got["embeddings"], dtype=np.float32) @ self.query_vectors.T
            for rid, row in zip(got["ids"], sims, strict=True):
                key = key_of_record(rid)
                found[key] = np.maximum(found[key], row) if key in found else row
        for key in wanted:
            if key not in found:
                similarity.pop(key, None)
                continue
            current = similarity.get(key)
            similarity[key] = (
                found[key] if current is None else np.where(np.isnan(current), found[key], current)
            )

    def fill_text(self, candidates: list[Candidate]) -> set[tuple[str, str]]:
        """Read the chunk texts of `candidates`; return those whose chunk is gone."""
        if not candidates:
            return set()
        ids = [record_id(c.key, 0) for c in candidates]
        got = self.collection.get(ids=ids, include=["metadatas"])
        texts = {
            key_of_record(rid): meta.get("text", "")
            for rid, meta in zip(got["ids"], got["metadatas"], strict=True)
        }
        gone = set()
        for candidate in candidates:
            if candidate.key in texts:
                candidate.text = texts[candidate.key]
            else:
                gone.add((self.store_id, candidate.key))
        return gone
