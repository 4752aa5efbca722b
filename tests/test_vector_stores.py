"""Vector stores, their files and batches, search and the chunk listing, through the SDK:
real ingestion (parsers, the bundled MiniLM, Chroma) in a real server process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from tests.conftest import walk
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


def test_a_file_is_indexed_and_search_finds_its_passage(client: OpenAI, tmp_path: Path) -> None:
    store = client.vector_stores.create(name="Manuals", metadata={"team": "support"})
    assert store.status == "completed" and store.file_counts.total == 0
    f = upload(client, tmp_path, "warranty.md", WARRANTY)
    attached = client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=f.id)
    assert attached.status == "completed", attached.last_error
    assert attached.id == f.id and attached.usage_bytes > 0
    assert attached.chunking_strategy.type == "static"
    assert attached.chunking_strategy.static.max_chunk_size_tokens == 800
    assert attached.chunking_strategy.static.chunk_overlap_tokens == 400

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
    vsf = client.vector_stores.files.poll(f.id, vector_store_id=store.id, poll_interval_ms=100)
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
    only_policy = client.vector_stores.search(
        store.id, query=query, filters={"type": "eq", "key": "kind", "value": "policy"}
    )
    assert {r.file_id for r in only_policy.data} == {files[0].id, files[1].id}
    recent_policy = client.vector_stores.search(
        store.id,
        query=query,
        filters={
            "type": "and",
            "filters": [
                {"type": "eq", "key": "kind", "value": "policy"},
                {"type": "gte", "key": "year", "value": 2025},
            ],
        },
    )
    assert [r.file_id for r in recent_policy.data] == [files[1].id]
    assert recent_policy.data[0].attributes == {"kind": "policy", "year": 2026}

    # Attributes can change after ingestion, and filters follow.
    client.vector_stores.files.update(
        files[2].id, vector_store_id=store.id, attributes={"kind": "policy", "year": 2026}
    )
    recent_policy = client.vector_stores.search(
        store.id,
        query=query,
        filters={
            "type": "and",
            "filters": [
                {"type": "eq", "key": "kind", "value": "policy"},
                {"type": "gte", "key": "year", "value": 2025},
            ],
        },
    )
    assert {r.file_id for r in recent_policy.data} == {files[1].id, files[2].id}

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
    results = {
        f.id: client.vector_stores.files.poll(f.id, vector_store_id=store.id, poll_interval_ms=100)
        for f in (exe, pdf, binary)
    }
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
        for file_id in (f.id, keep.id):
            client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=100)
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


def test_deleting_a_store_removes_it_and_its_files(client: OpenAI, tmp_path: Path) -> None:
    f = upload(client, tmp_path, "tea.md", RECIPES)
    store = client.vector_stores.create(file_ids=[f.id])
    client.vector_stores.files.poll(f.id, vector_store_id=store.id, poll_interval_ms=100)
    deleted = client.vector_stores.delete(store.id)
    assert deleted.deleted and deleted.object == "vector_store.deleted"
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(f.id, vector_store_id=store.id)
    assert client.files.retrieve(f.id).id == f.id


def test_an_expired_store_says_so_and_is_not_searched(
    client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    f = upload(client, tmp_path, "tea.md", RECIPES)
    store = client.vector_stores.create(
        file_ids=[f.id], expires_after={"anchor": "last_active_at", "days": 1}
    )
    assert store.expires_after.days == 1
    assert store.expires_at == store.last_active_at + 86_400
    client.vector_stores.files.poll(f.id, vector_store_id=store.id, poll_interval_ms=100)
    engine = create_engine(server.database_url)
    with engine.begin() as conn:  # a day and a bit later
        conn.execute(
            text("UPDATE vector_stores SET expires_at = :t WHERE id = :id"),
            {"t": int(time.time()) - 60, "id": store.id},
        )
    engine.dispose()
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
    client.vector_stores.files.poll(f.id, vector_store_id=store.id, poll_interval_ms=100)
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
