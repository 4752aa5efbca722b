"""The search service: the process's handle on the retrieval package (one index,
embedders by name) and the blocking work (parse, chunk, embed, index, search) that
callers run in threads.

Nothing is loaded at start-up: Chroma opens on first use and each embedding model on
its first file or query, so a server that never uses file_search pays nothing for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.chunking import Chunk, InvalidChunkingStrategy
from retrieval.embedding import (
    Embedder,
    EmbeddingModels,
    EmbeddingModelUnavailable,
    IngestEncoding,
    UnknownEmbeddingModel,
)
from retrieval.index import ChunkIndex
from retrieval.parsing import InvalidFile, UnsupportedFile, open_document
from retrieval.pipeline import Control, IngestProgress, Lane, Stopped, Vectors, ingest_document
from retrieval.records import SearchTrace, StoredChunk
from server.config import Settings


@dataclass
class Ingested:
    """How one ingestion ended: `error` is the API's last_error when it failed."""

    usage_bytes: int = 0
    chunks: int = 0
    error: dict[str, str] | None = None
    stopped: bool = False  # told to stop before the end (cancelled, or shutting down)


@dataclass
class IngestJob:
    store_id: str
    file_id: str
    filename: str
    path: Path
    strategy: dict[str, Any]
    attributes: dict[str, Any]
    embedding_model: str
    generation: int | None = None  # the claim's generation; its chunks carry it


class SearchService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._index: ChunkIndex | None = None
        self._lock = threading.Lock()
        # Clients may only name the models the operator offers: the bundled one, the
        # default and ASSISTD_EMBEDDING_MODELS (crud validates store settings with it).
        self.models = EmbeddingModels(
            [settings.embedding_model, *settings.embedding_models],
            default=settings.embedding_model,
            onnx_queries=settings.onnx_queries,
            encoding=IngestEncoding(
                onnx=settings.ingest_onnx,
                threads=settings.ingest_threads,
                int8=settings.ingest_int8,
            ),
        )

    @property
    def index(self) -> ChunkIndex:
        with self._lock:
            if self._index is None:
                if self.settings.chroma_url:
                    self._index = ChunkIndex(url=self.settings.chroma_url)
                else:
                    self._index = ChunkIndex(path=self.settings.chroma_dir)
            return self._index

    def embedder(self, name: str) -> Embedder:
        return self.models.get(name)

    def ingest(self, job: IngestJob, control: Control, lane: Lane) -> Ingested:
        """Parse, chunk, embed and index one file, batch by batch (retrieval/pipeline.py),
        taking turns on `lane` and asking `control` between batches whether to go on. On
        a failure nothing of the file is left in the index, and the error says what the
        user can do about it; when told to stop, `stopped` is set and the chunks written
        so far stay for the caller to keep or remove."""
        progress = IngestProgress()

        def write(chunks: list[Chunk], vectors: Vectors, first: bool) -> None:
            self.index.add_file(
                job.store_id,
                job.file_id,
                filename=job.filename,
                chunks=chunks,
                vectors=vectors,
                embedding_model=embedder.name,
                attributes=job.attributes,
                generation=job.generation,
                fresh=first,
            )
            progress.chunks += len(chunks)

        try:
            embedder = self.embedder(job.embedding_model)
            stream = open_document(job.path, job.filename)
            done = ingest_document(
                stream,
                job.strategy,
                embedder,
                write,
                control,
                lane=lane,
                turn_seconds=self.settings.ingest_turn_seconds,
            )
        except Stopped:
            return Ingested(chunks=progress.chunks, stopped=True)
        except UnsupportedFile as exc:
            return self._failed(job, "unsupported_file", str(exc))
        except (InvalidFile, InvalidChunkingStrategy) as exc:
            return self._failed(job, "invalid_file", str(exc))
        except FileNotFoundError:
            return self._failed(job, "invalid_file", "The file's content is missing from storage.")
        except (UnknownEmbeddingModel, EmbeddingModelUnavailable) as exc:
            return self._failed(job, "server_error", str(exc))
        except Exception as exc:  # an ingestion bug must fail the file, not the worker
            return self._failed(job, "server_error", f"Ingestion failed: {exc}")
        return Ingested(usage_bytes=done.usage_bytes, chunks=done.chunks)

    def _failed(self, job: IngestJob, code: str, message: str) -> Ingested:
        # Only this attempt's chunks: another generation's are not ours to remove.
        self.remove_file(job.store_id, job.file_id, generation=job.generation)
        return Ingested(error={"code": code, "message": message})

    def remove_file(
        self,
        store_id: str,
        file_id: str,
        *,
        generation: int | None = None,
        older_than: int | None = None,
    ) -> None:
        """All of a file's chunks; with `generation` only that attempt's, with
        `older_than` those of earlier attempts (see ChunkIndex.delete_file)."""
        self.index.delete_file(store_id, file_id, generation=generation, older_than=older_than)

    def remove_store(self, store_id: str) -> None:
        self.index.delete_store(store_id)

    def update_attributes(
        self, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> None:
        self.index.update_attributes(store_id, file_id, attributes)

    def chunks(self, store_id: str, file_id: str) -> list[StoredChunk]:
        return self.index.list_chunks(store_id, file_id)

    def search(
        self,
        stores: list[tuple[str, str]],
        queries: list[str],
        *,
        max_num_results: int,
        score_threshold: float = 0.0,
        filters: dict[str, Any] | None = None,
        ranker: str = "auto",
    ) -> SearchTrace:
        """Search (store_id, embedding_model) pairs. Stores embedded with different
        models are searched per model and merged by their 0..1 scores."""
        by_model: dict[str, list[str]] = {}
        for store_id, model in stores:
            by_model.setdefault(model, []).append(store_id)
        traces = [
            self.index.search(
                store_ids,
                queries,
                embedder=self.embedder(model),
                max_num_results=max_num_results,
                score_threshold=score_threshold,
                filters=filters,
                ranker=ranker,
            )
            for model, store_ids in by_model.items()
        ]
        if len(traces) == 1:
            return traces[0]
        candidates = sorted(
            (c for t in traces for c in t.candidates), key=lambda c: c.score, reverse=True
        )
        results = sorted(
            (c for t in traces for c in t.results), key=lambda c: c.score, reverse=True
        )[:max_num_results]
        chosen = {id(c) for c in results}
        for c in candidates:
            c.selected = id(c) in chosen
        return SearchTrace(queries=queries, candidates=candidates, results=results)
