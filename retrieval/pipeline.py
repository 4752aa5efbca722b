"""Ingesting one document in bounded batches: parse -> chunk -> embed -> write, streamed.

Why: a 20 MB text once took a server from 316 MB to 3.1 GB, because the whole text was
tokenized, chunked and embedded at once. Here the document is read as a stream of pieces
(`parsing.open_document`), chunked as it streams (`chunking.chunk_pieces`), and every
batch of chunks is embedded and written before the next is read, so memory follows the
batch, not the file. Between batches the caller's `Control` is asked whether to go on
(the file may have been deleted or cancelled, the process may be stopping) and is told
how far the file is.

Batches take turns on a `Lane`, one per process: the embedding of every file in flight
queues there in arrival order, so a small file is embedded after at most one batch of each
big one instead of after all of it. A batch is sized to about `turn_seconds` of the
encoder's measured speed, so turns stay short on a slow CPU and batches large on a GPU.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from retrieval.chunking import Chunk, chunk_pieces, embedding_windows
from retrieval.embedding import Embedder
from retrieval.parsing import DocumentStream, TextPiece

__all__ = ["IngestProgress", "Lane", "Stopped", "ingest_document"]

MIN_BATCH_TOKENS = 256
MAX_BATCH_TOKENS = 1 << 16

Vectors = list[list[list[float]]]
Writer = Callable[[list[Chunk], Vectors, bool], None]


class Stopped(Exception):
    """The caller said stop (the file is gone or cancelled, or the process is stopping)."""


@dataclass
class IngestProgress:
    chunks: int = 0  # chunks embedded and written
    usage_bytes: int = 0  # their text, in UTF-8 bytes
    fraction: float = 0.0  # how far through the file the parser is (0..1)


class Control(Protocol):
    def stopped(self) -> bool:
        """Cheap, asked often (every piece of text)."""
        ...

    def checkpoint(self, progress: IngestProgress) -> bool:
        """Before each batch: record progress; False means stop."""
        ...


class Lane:
    """Turns on the encoder, first come first served. A waiter that is told to stop leaves
    the queue without taking its turn."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    @contextmanager
    def turn(self, stopped: Callable[[], bool]) -> Iterator[None]:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            while self._queue[0] is not ticket:
                if stopped():
                    self._queue.remove(ticket)
                    self._cond.notify_all()
                    raise Stopped
                self._cond.wait(timeout=0.2)
        try:
            yield
        finally:
            with self._cond:
                self._queue.popleft()
                self._cond.notify_all()

    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)


def ingest_document(
    stream: DocumentStream,
    strategy: dict[str, Any],
    embedder: Embedder,
    write: Writer,
    control: Control,
    *,
    lane: Lane | None = None,
    turn_seconds: float = 0.5,
) -> IngestProgress:
    """Chunk, embed and write `stream` batch by batch; `write(chunks, vectors, first)`
    stores one batch (`first`: the document's first). Raises `Stopped` when `control`
    says so, and whatever parsing or embedding raises."""
    lane = lane or Lane()
    progress = IngestProgress()
    batch: list[Chunk] = []
    tokens = 0
    budget = MIN_BATCH_TOKENS * 4  # until the encoder's speed is measured
    read = [0]  # characters read so far
    window = embedding_windows(strategy)  # `auto`: small-to-big windows

    def pieces() -> Iterator[TextPiece]:
        for piece in stream:
            if control.stopped():
                raise Stopped
            read[0] += len(piece.text)
            yield piece

    def flush() -> None:
        nonlocal batch, tokens, budget
        # The parser reads ahead of the encoder: scale its position by how much of the
        # text read so far the chunks done cover.
        done = batch[0].start if batch else 0
        progress.fraction = stream.fraction * (min(1.0, done / read[0]) if read[0] else 0.0)
        if not control.checkpoint(progress):
            raise Stopped
        texts, counts = [c.text for c in batch], [c.tokens for c in batch]
        with lane.turn(control.stopped):
            started = time.perf_counter()
            vectors = embedder.encode(texts, counts, window=window)
            took = time.perf_counter() - started
        write(batch, vectors, progress.chunks == 0)
        progress.chunks += len(batch)
        progress.usage_bytes += sum(len(text.encode("utf-8")) for text in texts)
        if took > 0:
            rate = tokens / took
            budget = int(min(MAX_BATCH_TOKENS, max(MIN_BATCH_TOKENS, rate * turn_seconds)))
        batch, tokens = [], 0

    for chunk in chunk_pieces(pieces(), strategy, embedder):
        batch.append(chunk)
        tokens += chunk.tokens
        if tokens >= budget:
            flush()
    if batch:
        flush()
    progress.fraction = 1.0
    return progress
