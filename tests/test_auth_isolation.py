"""API keys and projects: 401 without a valid key; another project's ids are 404."""

from __future__ import annotations

import subprocess

import openai
import pytest
from openai import OpenAI

from tests.conftest import make_client, walk
from tests.support.server_process import REPO, SERVER_PYTHON, ServerProcess


def test_wrong_key_is_401_invalid_api_key(server) -> None:
    wrong = make_client(server.base_url, "sk-wrong-key-123456")
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.beta.assistants.list()
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
    assert err.value.body["type"] == "invalid_request_error"
    assert "123456" not in err.value.message.replace("3456", "")  # the key is masked


def test_missing_key_is_401(server) -> None:
    import httpx

    for headers in ({}, {"Authorization": "Basic abc"}):
        r = httpx.get(f"{server.base_url}/v1/files", headers=headers)
        assert r.status_code == 401
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and "API key" in error["message"]


def test_health_needs_no_key(server) -> None:
    import httpx

    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}


def test_other_project_sees_nothing(client: OpenAI, other_client: OpenAI, text_file) -> None:
    a = client.beta.assistants.create(model="m", name="secret")
    t = client.beta.threads.create(messages=[{"role": "user", "content": "private"}])
    m = client.beta.threads.messages.list(thread_id=t.id).data[0]
    f = client.files.create(file=text_file.open("rb"), purpose="assistants")

    o = other_client
    attempts = [
        lambda: o.beta.assistants.retrieve(a.id),
        lambda: o.beta.assistants.update(a.id, name="stolen"),
        lambda: o.beta.assistants.delete(a.id),
        lambda: o.beta.threads.retrieve(t.id),
        lambda: o.beta.threads.update(t.id, metadata={"x": "y"}),
        lambda: o.beta.threads.delete(t.id),
        lambda: o.beta.threads.messages.list(thread_id=t.id),
        lambda: o.beta.threads.messages.list(thread_id=t.id, after=m.id),
        lambda: o.beta.threads.messages.list(thread_id=t.id, before=m.id),
        lambda: o.beta.threads.messages.list(thread_id=t.id, run_id="run_x"),
        lambda: o.beta.threads.messages.create(thread_id=t.id, role="user", content="inject"),
        lambda: o.beta.threads.messages.retrieve(m.id, thread_id=t.id),
        lambda: o.beta.threads.messages.update(m.id, thread_id=t.id, metadata={"x": "y"}),
        lambda: o.beta.threads.messages.delete(m.id, thread_id=t.id),
        lambda: o.files.retrieve(f.id),
        lambda: o.files.content(f.id),
        lambda: o.files.delete(f.id),
    ]
    for attempt in attempts:
        with pytest.raises(openai.NotFoundError):
            attempt()
    # Referencing the other project's file in a body is as unknown as a made-up id.
    with pytest.raises(openai.BadRequestError):
        o.beta.threads.create(
            messages=[
                {"role": "user", "content": "x", "attachments": [{"file_id": f.id, "tools": []}]}
            ]
        )
    assert a.id not in {x.id for x in walk(o.beta.assistants.list(limit=100))}
    assert f.id not in {x.id for x in o.files.list()}
    # ...and nothing of the owner's changed.
    assert client.beta.assistants.retrieve(a.id).name == "secret"
    assert client.beta.threads.retrieve(t.id).metadata == {}
    assert [x.id for x in client.beta.threads.messages.list(thread_id=t.id)] == [m.id]
    assert client.files.content(f.id).read() == text_file.read_bytes()


def test_without_keys_any_bearer_is_the_default_project(tmp_path) -> None:
    # A catch-all model endpoint (never called here): without any route, every model
    # name is refused at assistant creation.
    proc = ServerProcess(tmp_path / "open", env={"MODEL_BASE_URL": "http://127.0.0.1:9/v1"})
    proc.start()
    try:
        one = make_client(proc.base_url, "anything-locally")
        two = make_client(proc.base_url, "something-else")
        a = one.beta.assistants.create(model="m")
        assert two.beta.assistants.retrieve(a.id).id == a.id
    finally:
        proc.stop()


def test_refuses_public_bind_without_keys(tmp_path) -> None:
    env = {"ASSISTD_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [SERVER_PYTHON, "-m", "server", "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ASSISTD_API_KEYS" in done.stderr and "--allow-insecure" in done.stderr
