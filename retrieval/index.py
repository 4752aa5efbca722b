"""The chunk index: one Chroma collection per vector store, searched hybrid (vectors + BM25).

Layout. Each chunk is stored as one record per embedding window, id
``{file_id}:{chunk_index}:{window}`` (``{file_id}@{generation}:...`` when the writer gives a
generation, so two ingestions of one file never share ids), in the store's collection
(cosine space). Every record carries file_id, filename, chunk_index, window, windows, start,
end, tokens, page, embedding_model, an ingest id, the generation if any and the file's
attributes as ``attr.<key>``; window 0 also
carries the chunk's text and its keyword tokens. The text is metadata, not a Chroma
"document", because Chroma builds a full-text index over documents that we never use (BM25
runs here) and that halves insert speed.

Freshness. Every write ends by setting a new random ``revision`` in the collection's
metadata. A search reads it (one cheap call per store, needed anyway to open the collection)
and rebuilds its in-memory BM25 snapshot only when it changed, so several processes sharing a
Chroma server stay consistent.

Scores. ``vector_score`` is the cosine similarity of the query and the chunk's best window,
clipped to 0..1. ``keyword_score`` is BM25 normalised per query (see retrieval.keyword).
``score`` is their convex combination, ``0.7 * vector + 0.3 * keyword`` (the weights are
fixed, not fitted to our evaluation set); with several queries each signal and the score
are the best over the queries. Both scores are computed for every candidate, including those
only one side retrieved, so ``score_threshold`` compares like with like.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings
from chromadb.errors import NotFoundError

from retrieval.chunking import Chunk
from retrieval.embedding import Embedder
from retrieval.filters import (
    ATTRIBUTE_PREFIX,
    InvalidFilter,
    filter_predicate,
    to_chroma_where,
    validate_filters,
)
from retrieval.keyword import KeywordIndex, chunk_key, keyword_tokens, public_chunk_id

__all__ = [
    "VECTOR_WEIGHT",
    "Candidate",
    "ChunkIndex",
    "InvalidFilter",
    "SearchTrace",
    "StoredChunk",
    "validate_filters",
]

VECTOR_WEIGHT = 0.7
HYBRID_RANKERS = ("auto", "none", "default-2024-11-15", "default_2024_08_21", "default-2024-08-21")
SINGLE_RANKERS = ("vector", "keyword")
BACKGROUND_REBUILD_CHUNKS = 20_000
_PAGE = 5000  # rows per Chroma get; unpaged gets of ~100k rows overflow SQLite's variables


@dataclass
class StoredChunk:
    id: str  # "file_id:chunk_index", the chunk id users see
    file_id: str
    filename: str
    index: int
    text: str
    tokens: int
    start: int
    end: int
    page: int | None
    embedding_model: str
    windows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Candidate:
    chunk_id: str
    store_id: str
    file_id: str
    filename: str
    text: str
    start: int
    end: int
    page: int | None
    attributes: dict[str, Any]
    vector_score: float
    keyword_score: float
    score: float
    vector_rank: int | None  # 1-based rank among the vector hits (best over queries)
    keyword_rank: int | None
    selected: bool = False
    # The chunk's internal key (`retrieval.keyword.chunk_key`); chunk_id is the public id.
    key: str = field(default="", repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["key"]
        return out


@dataclass
class SearchTrace:
    queries: list[str]
    candidates: list[Candidate]  # every chunk considered, best first
    results: list[Candidate]  # the selected ones

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": list(self.queries),
            "candidates": [c.to_dict() for c in self.candidates],
            "results": [c.to_dict() for c in self.results],
        }


def collection_name(store_id: str) -> str:
    """A valid Chroma name (3-512 of [A-Za-z0-9._-], alphanumeric ends) unique per store."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", store_id)[:60]
    digest = hashlib.sha1(store_id.encode()).hexdigest()[:12]
    return f"assistd-{safe}-{digest}"


class ChunkIndex:
    """Chroma-backed storage and hybrid search of chunks; safe to share between threads."""

    def __init__(self, path: Path | None = None, url: str | None = None) -> None:
        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        if url:
            parsed = urlparse(url)
            self.client = chromadb.HttpClient(
                host=parsed.hostname or "localhost",
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=settings,
            )
        else:
            if path is None:
                raise ValueError("ChunkIndex needs a path or a url")
            Path(path).mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(path), settings=settings)
        self._batch = max(1, int(self.client.get_max_batch_size()))
        self._keyword: dict[str, KeywordIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._rebuilding: set[str] = set()

    # ---- writes -------------------------------------------------------------------------

    def add_file(
        self,
        store_id: str,
        file_id: str,
        *,
        filename: str,
        chunks: list[Chunk],
        vectors: list[list[list[float]]],
        embedding_model: str,
        attributes: dict[str, Any] | None = None,
        generation: int | None = None,
        fresh: bool = True,
    ) -> None:
        """Store a file's chunks: one record per embedding window. `fresh=False` adds a
        further batch of the same ingestion (removing nothing).

        Without a `generation` the file's previous chunks are replaced. With one (the
        server's ingestion jobs) the chunks are written beside any other generation's,
        under their own record ids and tagged `generation`, and nothing else of the file
        is touched: the caller decides which generation stays (`delete_file`), so a stale
        ingestion can never remove or overwrite a newer one's chunks."""
        if len(vectors) != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vector lists")
        collection = self._collection(store_id, create=True)
        assert collection is not None
        held = (collection.metadata or {}).get("embedding_model")
        if held and held != embedding_model and collection.count() > 0:
            raise ValueError(
                f"Vector store '{store_id}' holds '{held}' embeddings; "
                f"cannot add '{embedding_model}' embeddings to it."
            )
        attrs = _attribute_metadata(attributes)
        ingest = uuid.uuid4().hex
        ids: list[str] = []
        embeddings: list[list[float]] = []
        metadatas: list[dict[str, Any]] = []
        for chunk, windows in zip(chunks, vectors, strict=True):
            if not windows:
                raise ValueError(f"chunk {chunk.index} of {file_id} has no vectors")
            base: dict[str, Any] = {
                "file_id": file_id,
                "filename": filename,
                "chunk_index": chunk.index,
                "windows": len(windows),
                "start": chunk.start,
                "end": chunk.end,
                "tokens": chunk.tokens,
                "embedding_model": embedding_model,
                "ingest": ingest,
                **attrs,
            }
            if generation is not None:
                base["generation"] = generation
            if chunk.page is not None:
                base["page"] = chunk.page
            key = chunk_key(base)
            for w, vector in enumerate(windows):
                meta = {**base, "window": w}
                if w == 0:
                    meta["text"] = chunk.text
                    meta["kw"] = " ".join(keyword_tokens(chunk.text))
                ids.append(f"{key}:{w}")
                embeddings.append(vector)
                metadatas.append(meta)
        if fresh and generation is None:
            collection.delete(where={"file_id": file_id})
        elif fresh:  # a retry of the same generation starts clean
            collection.delete(where={"$and": [{"file_id": file_id}, {"generation": generation}]})
        for i in range(0, len(ids), self._batch):
            collection.add(
                ids=ids[i : i + self._batch],
                embeddings=embeddings[i : i + self._batch],
                metadatas=metadatas[i : i + self._batch],
            )
        self._bump(collection, store_id, embedding_model)

    def delete_file(
        self,
        store_id: str,
        file_id: str,
        *,
        generation: int | None = None,
        older_than: int | None = None,
    ) -> None:
        """Remove a file's chunks: all of them; with `generation`, only that generation's;
        with `older_than`, those of generations below it (and untagged ones)."""
        collection = self._collection(store_id)
        if collection is None:
            return
        if generation is not None:
            collection.delete(where={"$and": [{"file_id": file_id}, {"generation": generation}]})
        elif older_than is not None:
            ids = [
                rid
                for rid in self._ids(collection, {"file_id": file_id})
                if _generation_of(rid) < older_than
            ]
            if not ids:
                return
            for i in range(0, len(ids), self._batch):
                collection.delete(ids=ids[i : i + self._batch])
        else:
            collection.delete(where={"file_id": file_id})
        self._bump(collection, store_id)

    def delete_store(self, store_id: str) -> None:
        """Drop the store's collection; a store that has none is fine."""
        with contextlib.suppress(NotFoundError, ValueError):
            self.client.delete_collection(collection_name(store_id))
        self._keyword.pop(store_id, None)

    def update_attributes(
        self, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> None:
        """Replace a file's attributes on all its records (what filters see)."""
        collection = self._collection(store_id)
        if collection is None:
            return
        new = _attribute_metadata(attributes)
        ids: list[str] = []
        metadatas: list[dict[str, Any]] = []
        for rid, meta in self._records(collection, {"file_id": file_id}):
            update: dict[str, Any] = {k: None for k in meta if k.startswith(ATTRIBUTE_PREFIX)}
            update.update(new)
            ids.append(rid)
            metadatas.append(update)
        for i in range(0, len(ids), self._batch):
            collection.update(
                ids=ids[i : i + self._batch], metadatas=metadatas[i : i + self._batch]
            )
        self._bump(collection, store_id)

    # ---- reads --------------------------------------------------------------------------

    def list_chunks(self, store_id: str, file_id: str) -> list[StoredChunk]:
        collection = self._collection(store_id)
        if collection is None:
            return []
        where = {"$and": [{"file_id": file_id}, {"window": 0}]}
        records = [meta for _, meta in self._records(collection, where)]
        # While a file is re-ingested two generations can coexist: list the newest.
        newest = max((int(m.get("generation", -1)) for m in records), default=-1)
        chunks = [_stored_chunk(m) for m in records if int(m.get("generation", -1)) == newest]
        return sorted(chunks, key=lambda c: c.index)

    def search(
        self,
        store_ids: list[str],
        queries: list[str],
        *,
        embedder: Embedder,
        max_num_results: int = 10,
        score_threshold: float = 0.0,
        filters: dict[str, Any] | None = None,
        ranker: str = "auto",
        candidates_per_query: int = 50,
        candidate_text: bool = False,
    ) -> SearchTrace:
        """Hybrid search of `queries` over the stores; see the module docstring for scores.

        ranker: "auto"/"none"/"default-2024-11-15"/"default_2024_08_21" fuse both signals;
        "vector" and "keyword" rank by one signal alone (both scores are still reported).
        Results always carry their text; the other candidates only with `candidate_text`
        (fetching text is the dearest step of a search).
        """
        validate_filters(filters)
        if ranker not in HYBRID_RANKERS + SINGLE_RANKERS:
            raise ValueError(f"unknown ranker {ranker!r}")
        queries = [q for q in queries if q and q.strip()]
        if not queries:
            return SearchTrace(queries=[], candidates=[], results=[])
        query_vectors = np.stack([embedder.encode_query(q) for q in queries]).astype(np.float32)
        query_tokens = [keyword_tokens(q) for q in queries]
        where = to_chroma_where(filters)
        predicate = filter_predicate(filters) if filters else None
        per_store: list[_StoreSearch] = []
        for store_id in dict.fromkeys(store_ids):
            collection = self._collection(store_id)
            if collection is None:
                continue
            held = (collection.metadata or {}).get("embedding_model")
            if held and held != embedder.name:
                raise ValueError(
                    f"Vector store '{store_id}' was embedded with '{held}'; "
                    f"it cannot be searched with '{embedder.name}'."
                )
            snapshot = self._snapshot(store_id, collection)
            search = _StoreSearch(
                store_id, collection, snapshot, query_vectors, query_tokens, where, predicate
            )
            search.run(candidates_per_query, ranker)
            per_store.append(search)
        candidates = [c for search in per_store for c in search.candidates]
        candidates.sort(key=lambda c: (-c.score, c.store_id, c.file_id, c.start))
        gone: set[tuple[str, str]] = set()
        results: list[Candidate] = []
        pending = [c for c in candidates if c.score >= score_threshold]
        taken = 0
        while taken < len(pending) and len(results) < max_num_results:
            batch = pending[taken : taken + max_num_results - len(results)]
            taken += len(batch)
            for search in per_store:
                gone |= search.fill_text([c for c in batch if c.store_id == search.store_id])
            results.extend(c for c in batch if (c.store_id, c.key) not in gone)
        for candidate in results:
            candidate.selected = True
        if candidate_text:
            for search in per_store:
                gone |= search.fill_text([c for c in search.candidates if not c.selected])
        candidates = [c for c in candidates if (c.store_id, c.key) not in gone]
        return SearchTrace(queries=queries, candidates=candidates, results=results)

    # ---- internals ----------------------------------------------------------------------

    def _collection(self, store_id: str, create: bool = False) -> Any:
        name = collection_name(store_id)
        try:
            return self.client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            if not create:
                return None
        try:
            return self.client.create_collection(
                name,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"store_id": store_id, "revision": uuid.uuid4().hex},
                embedding_function=None,
            )
        except Exception:  # created meanwhile by another thread or process
            return self.client.get_collection(name, embedding_function=None)

    def _bump(self, collection: Any, store_id: str, embedding_model: str | None = None) -> None:
        """Publish a change: a new random revision (random, so racing writers never agree)."""
        meta = dict(collection.metadata or {})
        meta.update(store_id=store_id, revision=uuid.uuid4().hex)
        if embedding_model:
            meta["embedding_model"] = embedding_model
        collection.modify(metadata=meta)

    def _records(
        self, collection: Any, where: dict[str, Any] | None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        offset = 0
        while True:
            page = collection.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            yield from zip(page["ids"], page["metadatas"], strict=True)
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    def _ids(self, collection: Any, where: dict[str, Any]) -> list[str]:
        """Record ids only (no metadata is read)."""
        ids: list[str] = []
        while True:
            page = collection.get(where=where, include=[], limit=_PAGE, offset=len(ids))
            ids.extend(page["ids"])
            if len(page["ids"]) < _PAGE:
                return ids

    def _lock(self, store_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(store_id, threading.Lock())

    def _snapshot(self, store_id: str, collection: Any) -> KeywordIndex:
        """The store's BM25 snapshot at the collection's current revision.

        Small stores rebuild before answering. A big store (a rebuild reads every chunk and
        takes seconds) keeps answering from its previous snapshot while a background thread
        rebuilds; meanwhile new chunks are found by the vector side only."""
        revision = str((collection.metadata or {}).get("revision", ""))
        cached = self._keyword.get(store_id)
        if cached is not None and cached.revision == revision:
            return cached
        if cached is not None and len(cached.keys) >= BACKGROUND_REBUILD_CHUNKS:
            with self._locks_guard:
                if store_id not in self._rebuilding:
                    self._rebuilding.add(store_id)
                    threading.Thread(
                        target=self._rebuild_later, args=(store_id,), daemon=True
                    ).start()
            return cached
        return self._rebuild(store_id, collection)

    def _rebuild(self, store_id: str, collection: Any) -> KeywordIndex:
        with self._lock(store_id):
            revision = str((collection.metadata or {}).get("revision", ""))
            cached = self._keyword.get(store_id)
            if cached is not None and cached.revision == revision:
                return cached
            records = [meta for _, meta in self._records(collection, {"window": 0})]
            snapshot = KeywordIndex.build(revision, records)
            self._keyword[store_id] = snapshot
            return snapshot

    def _rebuild_later(self, store_id: str) -> None:
        try:
            collection = self._collection(store_id)
            if collection is not None:
                self._rebuild(store_id, collection)
        finally:
            with self._locks_guard:
                self._rebuilding.discard(store_id)


class _StoreSearch:
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
        fused = VECTOR_WEIGHT * vector + (1 - VECTOR_WEIGHT) * keyword  # (queries, keys)
        best_vector = vector.max(axis=0).tolist()
        best_keyword = keyword.max(axis=0).tolist()
        final = {"vector": best_vector, "keyword": best_keyword}.get(
            ranker, fused.max(axis=0).tolist()
        )
        for j, key in enumerate(keys):
            file_id, filename, start, end, page, _, attributes = info[key]
            self.candidates.append(
                Candidate(
                    chunk_id=public_chunk_id(key),
                    store_id=self.store_id,
                    file_id=file_id,
                    filename=filename,
                    text="",  # read later, for the selected ones
                    start=start,
                    end=end,
                    page=page,
                    attributes=dict(attributes),
                    vector_score=best_vector[j],
                    keyword_score=best_keyword[j],
                    score=final[j],
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
                key = rid.rsplit(":", 1)[0]
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

    def _describe(self, keys: list[str]) -> dict[str, tuple[Any, ...]]:
        """Chunk info from the snapshot; chunks newer than it are read from Chroma."""
        info: dict[str, tuple[Any, ...]] = {}
        newer = []
        for key in keys:
            pos = self.snapshot.position.get(key)
            if pos is None:
                newer.append(f"{key}:0")
            else:
                info[key] = self.snapshot.chunk(pos)
        if newer:
            got = self.collection.get(ids=newer, include=["metadatas"])
            for meta in got["metadatas"]:
                attributes = _attributes_of(meta)
                if self.predicate and not self.predicate(attributes):
                    continue
                info[chunk_key(meta)] = (
                    meta["file_id"],
                    meta.get("filename", ""),
                    int(meta["start"]),
                    int(meta["end"]),
                    meta.get("page"),
                    int(meta.get("windows", 1)),
                    attributes,
                )
        return info

    def _complete_similarity(
        self, keys: list[str], similarity: dict[str, np.ndarray], info: dict[str, tuple[Any, ...]]
    ) -> None:
        """Exact cosine for every (query, chunk) the vector search did not return: the best
        of the chunk's windows. Chunks whose vectors are gone are dropped."""
        wanted = [k for k in keys if k not in similarity or np.isnan(similarity[k]).any()]
        if not wanted:
            return
        ids = [f"{key}:{w}" for key in wanted for w in range(info[key][5])]
        got = self.collection.get(ids=ids, include=["embeddings"])
        found: dict[str, np.ndarray] = {}
        if len(got["ids"]):
            sims = np.asarray(got["embeddings"], dtype=np.float32) @ self.query_vectors.T
            for rid, row in zip(got["ids"], sims, strict=True):
                key = rid.rsplit(":", 1)[0]
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
        got = self.collection.get(ids=[f"{c.key}:0" for c in candidates], include=["metadatas"])
        texts = {
            rid.rsplit(":", 1)[0]: meta.get("text", "")
            for rid, meta in zip(got["ids"], got["metadatas"], strict=True)
        }
        gone = set()
        for candidate in candidates:
            if candidate.key in texts:
                candidate.text = texts[candidate.key]
            else:
                gone.add((self.store_id, candidate.key))
        return gone


def _generation_of(record_id: str) -> int:
    """The generation in a record id "{file_id}@{generation}:{chunk}:{window}"; -1 for
    records written without one."""
    _, tagged, generation = record_id.rsplit(":", 2)[0].partition("@")
    return int(generation) if tagged else -1


def _attributes_of(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        k[len(ATTRIBUTE_PREFIX) :]: v for k, v in meta.items() if k.startswith(ATTRIBUTE_PREFIX)
    }


def _stored_chunk(meta: dict[str, Any]) -> StoredChunk:
    return StoredChunk(
        id=f"{meta['file_id']}:{meta['chunk_index']}",
        file_id=meta["file_id"],
        filename=meta.get("filename", ""),
        index=int(meta["chunk_index"]),
        text=meta.get("text", ""),
        tokens=int(meta.get("tokens", 0)),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        page=meta.get("page"),
        embedding_model=meta.get("embedding_model", ""),
        windows=int(meta.get("windows", 1)),
    )


def _attribute_metadata(attributes: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise ValueError(f"attribute {key!r} must be a string, number or boolean")
        out[ATTRIBUTE_PREFIX + key] = value
    return out
