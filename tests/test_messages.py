"""Messages: content forms, attachments, listing (order, cursors, run_id), update, delete."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.conftest import walk


@pytest.fixture
def thread(client: OpenAI):
    return client.beta.threads.create()


def test_string_content_becomes_a_text_part(client: OpenAI, thread) -> None:
    m = client.beta.threads.messages.create(thread_id=thread.id, role="user", content="more")
    assert m.id.startswith("msg_") and m.object == "thread.message"
    assert m.content[0].type == "text"
    assert m.content[0].text.value == "more" and m.content[0].text.annotations == []
    assert (m.role, m.status, m.thread_id, m.run_id, m.assistant_id) == (
        "user",
        "completed",
        thread.id,
        None,
        None,
    )
    assert m.attachments == [] and m.metadata == {}


def test_content_parts_and_attachments(client: OpenAI, thread, text_file) -> None:
    f = client.files.create(file=text_file.open("rb"), purpose="vision")
    m = client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content=[
            {"type": "text", "text": "look"},
            {"type": "image_file", "image_file": {"file_id": f.id, "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ],
        attachments=[
            {"file_id": f.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}
        ],
    )
    assert [p.type for p in m.content] == ["text", "image_file", "image_url"]
    assert m.content[1].image_file.file_id == f.id and m.content[1].image_file.detail == "high"
    assert m.content[2].image_url.url == "https://example.com/cat.png"
    assert [t.type for t in m.attachments[0].tools] == ["file_search", "code_interpreter"]
    assert client.beta.threads.messages.retrieve(m.id, thread_id=thread.id) == m


def test_unknown_image_file_is_rejected(client: OpenAI, thread) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(
            thread_id=thread.id,
            role="user",
            content=[{"type": "image_file", "image_file": {"file_id": "file-ghost"}}],
        )
    assert err.value.param == "content[0].image_file.file_id"


def test_list_order_and_cursors(client: OpenAI, thread) -> None:
    ids = [
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content=str(i)).id
        for i in range(25)
    ]
    default = client.beta.threads.messages.list(thread_id=thread.id)
    assert len(default.data) == 20 and default.has_more  # default limit 20, newest first
    assert [m.id for m in default.data] == ids[::-1][:20]
    walked = [
        m.id
        for m in walk(client.beta.threads.messages.list(thread_id=thread.id, order="asc", limit=4))
    ]
    assert walked == ids
    after = client.beta.threads.messages.list(thread_id=thread.id, order="asc", after=ids[20])
    assert [m.id for m in after.data] == ids[21:] and not after.has_more
    before = client.beta.threads.messages.list(thread_id=thread.id, before=ids[3], limit=5)
    assert [m.id for m in before.data] == [ids[8], ids[7], ids[6], ids[5], ids[4]]
    assert client.beta.threads.messages.list(thread_id=thread.id, run_id="run_none").data == []


def test_update_metadata_and_delete(client: OpenAI, thread) -> None:
    m = client.beta.threads.messages.create(thread_id=thread.id, role="user", content="x")
    u = client.beta.threads.messages.update(m.id, thread_id=thread.id, metadata={"k": "v"})
    assert u.metadata == {"k": "v"} and u.content == m.content
    d = client.beta.threads.messages.delete(m.id, thread_id=thread.id)
    assert (d.id, d.object, d.deleted) == (m.id, "thread.message.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=thread.id)


def test_message_of_another_thread_is_not_found(client: OpenAI, thread) -> None:
    m = client.beta.threads.messages.create(thread_id=thread.id, role="user", content="x")
    other = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=other.id)


def test_list_of_an_empty_thread_is_an_empty_page(client: OpenAI, thread) -> None:
    page = client.beta.threads.messages.list(thread_id=thread.id)
    assert page.data == [] and not page.has_more


def test_list_of_a_missing_thread_is_not_found_even_with_a_cursor(client: OpenAI) -> None:
    # The page query runs first; a missing thread must still win over a bad cursor.
    for kwargs in ({}, {"after": "msg_nope"}, {"before": "msg_nope"}):
        with pytest.raises(openai.NotFoundError):
            client.beta.threads.messages.list(thread_id="thread_missing", **kwargs)


def test_unknown_cursor_of_a_thread_is_a_bad_request(client: OpenAI, thread) -> None:
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="x")
    for param in ("after", "before"):
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.messages.list(thread_id=thread.id, **{param: "msg_nope"})
        assert err.value.param == param


def test_list_of_a_deleted_thread_is_not_found(client: OpenAI) -> None:
    gone = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    client.beta.threads.delete(gone.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread_id=gone.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(thread_id=gone.id, role="user", content="x")


def test_a_stale_active_run_pointer_does_not_lock_the_thread(
    client: OpenAI, server, thread
) -> None:
    """A thread whose `active_run_id` names a run that no longer exists (a crash between
    deleting the run and clearing the pointer) takes messages: the fast one-statement
    lock misses, and the careful path finds no active run and takes over."""
    from sqlalchemy import create_engine, text

    engine = create_engine(server.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE threads SET active_run_id = 'run_gone' WHERE id = :id"),
                {"id": thread.id},
            )
        m = client.beta.threads.messages.create(thread_id=thread.id, role="user", content="x")
        assert client.beta.threads.messages.list(thread_id=thread.id).data[0].id == m.id
        with engine.connect() as conn:
            pointer = conn.execute(
                text("SELECT active_run_id FROM threads WHERE id = :id"), {"id": thread.id}
            ).scalar_one()
        assert pointer is None
    finally:
        engine.dispose()
