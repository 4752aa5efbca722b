"""Threads: creation with messages and resources, update, and cascading delete."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, inspect, text


def test_create_thread_with_initial_messages(client: OpenAI, text_file) -> None:
    f = client.files.create(file=text_file.open("rb"), purpose="assistants")
    t = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "hello",
                "attachments": [{"file_id": f.id, "tools": [{"type": "code_interpreter"}]}],
                "metadata": {"m": "1"},
            },
        ],
        tool_resources={"code_interpreter": {"file_ids": [f.id]}},
        metadata={"user": "u1"},
    )
    assert t.id.startswith("thread_") and t.object == "thread"
    assert t.metadata == {"user": "u1"}
    assert t.tool_resources.code_interpreter.file_ids == [f.id]
    msgs = client.beta.threads.messages.list(thread_id=t.id, order="asc").data
    assert [(m.role, m.content[0].text.value) for m in msgs] == [
        ("user", "hi"),
        ("assistant", "hello"),
    ]
    assert msgs[1].attachments[0].file_id == f.id and msgs[1].metadata == {"m": "1"}
    assert all(m.thread_id == t.id and m.status == "completed" for m in msgs)


def test_empty_thread(client: OpenAI) -> None:
    t = client.beta.threads.create()
    assert t.metadata == {} and client.beta.threads.retrieve(t.id) == t
    assert client.beta.threads.messages.list(thread_id=t.id).data == []


def test_bad_initial_message_creates_nothing(client: OpenAI, row_counts) -> None:
    before = row_counts()
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.create(
            messages=[
                {"role": "user", "content": "ok"},
                {
                    "role": "user",
                    "content": "x",
                    "attachments": [{"file_id": "file-nope", "tools": []}],
                },
            ]
        )
    assert err.value.param == "messages[1].attachments[0].file_id"
    assert row_counts() == before


def test_update_thread(client: OpenAI) -> None:
    t = client.beta.threads.create(metadata={"a": "1"})
    u = client.beta.threads.update(t.id, metadata={"b": "2"})
    assert u.metadata == {"b": "2"} and client.beta.threads.retrieve(t.id).metadata == {"b": "2"}
    v = client.beta.threads.update(t.id, tool_resources={"file_search": {"vector_store_ids": []}})
    assert v.metadata == {"b": "2"}


def test_delete_thread_cascades_to_messages(client: OpenAI) -> None:
    t = client.beta.threads.create(messages=[{"role": "user", "content": "bye"}])
    m = client.beta.threads.messages.list(thread_id=t.id).data[0]
    d = client.beta.threads.delete(t.id)
    assert (d.id, d.object, d.deleted) == (t.id, "thread.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(t.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread_id=t.id)


def test_delete_waits_for_a_message_in_flight_and_removes_it_too(client: OpenAI, server) -> None:
    """A message create holds the thread's row lock until it commits. A delete arriving
    meanwhile must wait for it and remove that message as well, not delete the rows it
    can see and leave the late one without a thread (PostgreSQL, where reads do not
    wait for writers; on SQLite the single writer lock orders them anyway)."""
    t = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    engine = create_engine(server.database_url)
    try:
        columns = [c["name"] for c in inspect(engine).get_columns("messages") if c["name"] != "seq"]
        copied = ", ".join("'msg_late'" if c == "id" else c for c in columns)
        with engine.connect() as conn:
            in_flight = conn.begin()  # the create: lock the thread, insert, not yet committed
            conn.execute(text("UPDATE threads SET active_run_id = NULL WHERE id = :t"), {"t": t.id})
            conn.execute(
                text(
                    f"INSERT INTO messages ({', '.join(columns)}) "
                    f"SELECT {copied} FROM messages WHERE thread_id = :t"
                ),
                {"t": t.id},
            )
            with ThreadPoolExecutor(1) as pool:
                deleting = pool.submit(client.beta.threads.delete, t.id)
                time.sleep(1.0)  # the delete reaches the lock and waits there
                in_flight.commit()
                assert deleting.result(timeout=60).deleted
        with engine.connect() as conn:
            left = conn.execute(
                text("SELECT COUNT(*) FROM messages WHERE thread_id = :t"), {"t": t.id}
            ).scalar_one()
        assert left == 0
    finally:
        engine.dispose()
