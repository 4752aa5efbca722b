"""Chunk records in the index: the one codec of record ids, and the named records a
search passes around.

A chunk is stored as one Chroma record per embedding window. The records of a chunk
share its key, ``{file_id}:{chunk_index}``, or ``{file_id}@{generation}:{chunk_index}``
when an ingestion wrote it under a generation (so two ingestions of one file never share
a record id); a record's id is ``{key}:{window}``. Users see the chunk as
``{file_id}:{chunk_index}``, whatever generation wrote it. Nothing else in the package
builds or splits these strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from retrieval.filters import ATTRIBUTE_PREFIX

__all__ = [
    "Candidate",
    "ChunkFacts",
    "SearchTrace",
    "StoredChunk",
    "attributes_of",
    "chunk_key",
    "generation_of",
    "key_of_meta",
    "key_of_record",
    "public_id",
    "record_id",
]


# --- the id codec ------------------------------------------------------------------------


def chunk_key(file_id: str, chunk_index: int, generation: int | None = None) -> str:
    """The key a chunk's records share."""
    file_part = file_id if generation is None else f"{file_id}@{generation}"
    return f"{file_part}:{chunk_index}"


def key_of_meta(meta: Mapping[str, Any]) -> str:
    """The chunk key of a record, from its metadata (as ChunkIndex writes it)."""
    return chunk_key(meta["file_id"], meta["chunk_index"], meta.get("generation"))


def record_id(key: str, window: int) -> str:
    """The id of a chunk's record for embedding window `window` (0 holds the text)."""
    return f"{key}:{window}"


def key_of_record(record_id: str) -> str:
    """The chunk key of a record id."""
    return record_id.rsplit(":", 1)[0]


def generation_of(record_id: str) -> int:
    """The generation a record was written under; -1 for records written without one."""
    _, tagged, generation = key_of_record(record_id).rsplit(":", 1)[0].partition("@")
    return int(generation) if tagged else -1


def public_id(key: str) -> str:
    """The chunk id users see, "file_id:index", from a chunk key."""
    file_part, _, index = key.rpartition(":")
    return f"{file_part.split('@', 1)[0]}:{index}"


def attributes_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A record's file attributes, without their metadata prefix."""
    return {
        k[len(ATTRIBUTE_PREFIX) :]: v for k, v in meta.items() if k.startswith(ATTRIBUTE_PREFIX)
    }


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkFacts:
    """What a search knows of a chunk before reading its text."""

    file_id: str
    filename: str
    start: int
    end: int
    page: int | None
    windows: int
    attributes: dict[str, Any]

    @classmethod
    def of_meta(cls, meta: Mapping[str, Any]) -> ChunkFacts:
        return cls(
            file_id=meta["file_id"],
            filename=meta.get("filename", ""),
            start=int(meta["start"]),
            end=int(meta["end"]),
            page=meta.get("page"),
            windows=int(meta.get("windows", 1)),
            attributes=attributes_of(meta),
        )


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

    @classmethod
    def of_meta(cls, meta: Mapping[str, Any]) -> StoredChunk:
        """A chunk from its window-0 record's metadata."""
        return cls(
            id=chunk_key(meta["file_id"], meta["chunk_index"]),
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
    # The chunk's key (`chunk_key`); chunk_id is the public id.
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
