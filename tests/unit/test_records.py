"""The record-id codec and chunk records (retrieval/records.py), in process."""

from __future__ import annotations

import pytest

from retrieval.records import (
    ChunkFacts,
    StoredChunk,
    attributes_of,
    chunk_key,
    generation_of,
    key_of_meta,
    key_of_record,
    public_id,
    record_id,
)


@pytest.mark.parametrize(
    ("generation", "key"), [(None, "file-abc:3"), (0, "file-abc@0:3"), (12, "file-abc@12:3")]
)
def test_keys_and_record_ids_round_trip(generation: int | None, key: str) -> None:
    assert chunk_key("file-abc", 3, generation) == key
    for window in (0, 1, 17):
        rid = record_id(key, window)
        assert rid == f"{key}:{window}"
        assert key_of_record(rid) == key
        assert generation_of(rid) == (-1 if generation is None else generation)
    assert public_id(key) == "file-abc:3"  # users never see the generation


def test_a_key_is_read_from_record_metadata() -> None:
    assert key_of_meta({"file_id": "f", "chunk_index": 2}) == "f:2"
    assert key_of_meta({"file_id": "f", "chunk_index": 2, "generation": 5}) == "f@5:2"


def test_ids_with_colons_in_the_file_id_still_split_from_the_right() -> None:
    key = chunk_key("doc:v2.md", 4, 1)
    assert key_of_record(record_id(key, 0)) == key and generation_of(record_id(key, 0)) == 1
    assert public_id(key) == "doc:v2.md:4"


def test_chunk_facts_from_metadata() -> None:
    meta = {
        "file_id": "f",
        "filename": "f.md",
        "chunk_index": 0,
        "start": 10,
        "end": 90,
        "page": 2,
        "windows": 3,
        "attr.lang": "en",
        "attr.year": 2024,
        "text": "ignored",
    }
    facts = ChunkFacts.of_meta(meta)
    assert facts == ChunkFacts("f", "f.md", 10, 90, 2, 3, {"lang": "en", "year": 2024})
    assert attributes_of(meta) == {"lang": "en", "year": 2024}
    bare = ChunkFacts.of_meta({"file_id": "g", "start": 0, "end": 1})
    assert (bare.filename, bare.page, bare.windows, bare.attributes) == ("", None, 1, {})


def test_a_stored_chunk_has_the_public_id_whatever_its_generation() -> None:
    meta = {"file_id": "f", "chunk_index": 7, "generation": 3, "text": "t", "tokens": 5}
    chunk = StoredChunk.of_meta(meta)
    assert (chunk.id, chunk.index, chunk.text, chunk.tokens) == ("f:7", 7, "t", 5)
