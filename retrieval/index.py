"""The chunk index: one Chroma collection per vector store, searched hybrid (vectors + BM25).

Layout. Each chunk is stored as one record per embedding window (ids: retrieval.records),
in the store's collection (cosine space). Every record carries file_id, filename,
chunk_index, window, windows, start, end, tokens, page, embedding_model, an ingest id, the
generation if any and the file's attributes as ``attr.<key>``; window 0 also carries the
chunk's text and its keyword tokens. The text is metadata, not a Chroma
"document", because Chroma builds a full-text index over documents that we never use (BM25
runs here) and that halves insert speed.

Freshness. Every write ends by setting a new random ``revision`` in the collection's
metadata. A search reads it (one cheap call per store, needed anyway to open the collection)
and rebuilds its in-memory BM25 snapshot only when it changed, so several processes sharing a
Chroma server stay consistent.

Scores. ``vector_score`` is the cosine similarity of the query and the chunk's best window,
clipped to 0..1. ``keyword_score`` is BM25 normalised per query (see retrieval.keyword).
``score`` fuses them (retrieval.fusion: ``0.8 * vector + 0.2 * keyword``, ``0.6``/``0.4`` for
a query that names an exact identifier). Both scores are computed for every candidate,
including those only one side retrieved, so ``score_threshold`` compares like with like.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import uuid
from collections.abc import Iterator
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
from retrieval.fusion import IDENTIFIER_VECTOR_WEIGHT, RANKERS, VECTOR_WEIGHT, query_weights
from retrieval.keyword import KeywordIndex, keyword_tokens
from retrieval.records import (
    Candidate,
    SearchTrace,
    StoredChunk,
    generation_of,
    key_of_meta,
    record_id,
)
from retrieval.store_search import StoreSearch

__all__ = [
    "IDENTIFIER_VECTOR_WEIGHT",
    "VECTOR_WEIGHT",
    "Candidate",
    "ChunkIndex",
    "InvalidFilter",
    "SearchTrace",
    "StoredChunk",
    "validate_filters",
]

BACKGROUND_REBUILD_CHUNKS = 20_000
_PAGE = 5000  # rows per Chroma get; unpaged gets of ~100k rows overflow SQLite's variables


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
            key = key_of_meta(base)
            for w, vector in enumerate(windows):
                meta = {**base, "window": w}
                if w == 0:
                    meta["text"] = chunk.text
                    meta["kw"] = " ".join(keyword_tokens(chunk.text))
                ids.append(record_id(key, w))
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
                if generation_of(rid) < older_than
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
            if not update:  # nothing to set or clear; Chroma refuses an empty metadata
                continue
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
        chunks = [StoredChunk.of_meta(m) for m in records if int(m.get("generation", -1)) == newest]
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
        if ranker not in RANKERS:
            raise ValueError(f"unknown ranker {ranker!r}")
        queries = [q for q in queries if q and q.strip()]
        if not queries:
            return SearchTrace(queries=[], candidates=[], results=[])
        query_vectors = np.stack([embedder.encode_query(q) for q in queries]).astype(np.float32)
        query_tokens = [keyword_tokens(q) for q in queries]
        weights = query_weights(queries)
        where = to_chroma_where(filters)
        predicate = filter_predicate(filters) if filters else None
        per_store: list[StoreSearch] = []
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
            search = StoreSearch(
                store_id,
                collection,
                snapshot,
                query_vectors,
                query_tokens,
                weights,
                where,
                predicate,
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


def _attribute_metadata(attributes: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise ValueError(f"attribute {key!r} must be a string, number or boolean")
        out[ATTRIBUTE_PREFIX + key] = value
    return out
