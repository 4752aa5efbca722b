"""Model routing: MODELS_CONFIG (litellm's model_list YAML, with fallbacks) and the
MODEL_BASE_URL catch-all, each reached over real HTTP."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import openai
import pytest
import yaml

from server.runs.model_client import direct_routes
from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.scripted_model import ScriptedModel, start_scripted_model
from tests.support.server_process import ServerProcess, run_server_python


@pytest.fixture(scope="module")
def second_model() -> Iterator[tuple[ScriptedModel, str]]:
    model, url, stop = start_scripted_model()
    yield model, url
    stop()


@pytest.fixture(scope="module")
def routed_server(tmp_path_factory, scripted, second_model) -> Iterator[ServerProcess]:
    main_url, other_url = scripted[1], second_model[1]
    config = {
        "model_list": [
            {
                "model_name": "smart",
                "litellm_params": {
                    "model": "openai/smart-v1",
                    "api_base": main_url,
                    "api_key": "k",
                },
            },
            {
                "model_name": "primary",
                "litellm_params": {
                    "model": "openai/primary-v1",
                    "api_base": other_url,
                    "api_key": "k",
                },
            },
            {
                "model_name": "backup",
                "litellm_params": {
                    "model": "openai/backup-v1",
                    "api_base": main_url,
                    "api_key": "k",
                },
            },
            # The two settings operators set most, on names called without the Router:
            # they used to fail every call ("got multiple values for keyword argument").
            {
                "model_name": "retrying",
                "litellm_params": {
                    "model": "openai/retrying-v1",
                    "api_base": main_url,
                    "api_key": "k",
                    "num_retries": 1,
                },
            },
            {
                "model_name": "unreachable",  # nothing listens there; https, as in the issue
                "litellm_params": {
                    "model": "openai/gone-v1",
                    "api_base": "https://127.0.0.1:9/v1",
                    "api_key": "k",
                },
            },
            {
                "model_name": "hasty",
                "litellm_params": {
                    "model": "openai/hasty-v1",
                    "api_base": main_url,
                    "api_key": "k",
                    "timeout": 1,
                },
            },
        ],
        "fallbacks": [{"primary": ["backup"]}],
    }
    data = tmp_path_factory.mktemp("routed")
    path = data / "models.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = ServerProcess(data, env=server_env(main_url, MODELS_CONFIG=str(path))).start()
    yield proc
    proc.stop()


def _run(proc: ServerProcess, model_name: str):  # type: ignore[no-untyped-def]
    c = make_client(proc.base_url, KEY_ALPHA)
    a = c.beta.assistants.create(model=model_name)
    t = c.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    return c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)


def test_configured_name_goes_to_its_route(routed_server, model, second_model) -> None:
    second_model[0].reset()
    assert _run(routed_server, "smart").status == "completed"
    assert [r["model"] for r in model.requests] == ["smart-v1"]
    assert second_model[0].call_count == 0


def test_fallback_takes_over_when_the_route_fails(routed_server, model, second_model) -> None:
    other = second_model[0]
    other.reset()
    other.fail(500, "primary is down")
    model.text("answered by backup")
    run = _run(routed_server, "primary")
    assert run.status == "completed"
    assert [r["model"] for r in other.requests] == ["primary-v1"]
    assert [r["model"] for r in model.requests] == ["backup-v1"]


def test_unrouted_name_goes_to_the_catch_all(routed_server, model) -> None:
    assert _run(routed_server, "anything-else").status == "completed"
    assert [r["model"] for r in model.requests] == ["anything-else"]
    assert model.request_headers[0]["authorization"] == "Bearer none"


def test_only_names_the_router_has_no_work_for_skip_it() -> None:
    """One deployment, no fallback chain, no rate limits: called with litellm directly.
    Anything the Router would act on (fallbacks, load balancing, rpm/tpm) keeps it."""

    def entry(name: str, model: str, **params: object) -> dict[str, object]:
        return {"model_name": name, "litellm_params": {"model": model, **params}}

    model_list = [
        entry("plain", "openai/plain-v1", api_base="http://m/v1", api_key="k"),
        entry("primary", "openai/p"),
        entry("backup", "openai/b"),
        entry("balanced", "openai/x1"),
        entry("balanced", "openai/x2"),
        entry("limited", "openai/l", rpm=10),
    ]
    direct = direct_routes(model_list, [{"primary": ["backup"]}])
    assert direct == {
        "plain": {"model": "openai/plain-v1", "api_base": "http://m/v1", "api_key": "k"}
    }


# -- litellm settings, passed through as litellm documents them ------------------------


def test_litellm_params_num_retries_retries_a_failed_call(routed_server, model) -> None:
    model.fail(500, "flaky")
    model.text("second time lucky")
    run = _run(routed_server, "retrying")
    assert run.status == "completed", run.last_error
    assert [r["model"] for r in model.requests] == ["retrying-v1", "retrying-v1"]


def test_litellm_params_timeout_ends_a_call_that_does_not_answer(routed_server, model) -> None:
    for _ in range(3):
        model.stall(5, "too late")
    started = time.monotonic()
    run = _run(routed_server, "hasty")
    assert run.status == "failed" and run.last_error.code == "server_error"
    assert "'hasty'" in run.last_error.message
    assert "did not answer within 1 s" in run.last_error.message
    assert time.monotonic() - started < 5


def test_an_unreachable_endpoint_fails_the_run_with_what_to_do(routed_server) -> None:
    """What failed and what to do, in words: no `ssl:<ssl.SSLContext object at 0x...>`."""
    run = _run(routed_server, "unreachable")
    assert run.status == "failed" and run.last_error.code == "server_error"
    message = run.last_error.message
    assert message.startswith("Could not reach the model endpoint serving 'unreachable'")
    assert "Cannot connect to host 127.0.0.1:9" in message
    assert "running and reachable from assistd" in message
    assert "object at 0x" not in message and "<" not in message and "ssl:" not in message


@pytest.fixture(scope="module")
def tuned_server(tmp_path_factory, scripted, second_model) -> Iterator[ServerProcess]:
    """router_settings: retries, a timeout, cooldowns and fallbacks, all for the Router;
    MODEL_BASE_URL points at a port that accepts connections and never answers."""
    main_url, other_url = scripted[1], second_model[1]

    def entry(name: str, model: str, url: str, **params: object) -> dict[str, object]:
        return {
            "model_name": name,
            "litellm_params": {"model": model, "api_base": url, "api_key": "k", **params},
        }

    config = {
        "model_list": [
            # Two deployments of one name; the second model's is picked first (weight).
            entry("pool", "openai/pool-a", other_url, weight=1000),
            entry("pool", "openai/pool-b", main_url, weight=1),
            entry("steady", "openai/steady-v1", main_url),
            entry("lead", "openai/lead-v1", other_url),
        ],
        "router_settings": {
            "num_retries": 2,
            "retry_after": 0,
            "allowed_fails": 1,
            "cooldown_time": 120,
            "timeout": 30,
            "fallbacks": [{"lead": ["steady"]}],
        },
    }
    data = tmp_path_factory.mktemp("tuned")
    path = data / "models.yaml"
    path.write_text(yaml.safe_dump(config))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel; nothing ever answers
    dead_url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
    env = server_env(dead_url, MODELS_CONFIG=str(path))
    proc = ServerProcess(data, env=env).start()
    proc.models_config = path  # type: ignore[attr-defined]
    yield proc
    proc.stop()
    silent.close()


def test_router_num_retries_retries_the_deployment(tuned_server, model) -> None:
    model.fail(500, "flaky")
    model.text("retried")
    assert _run(tuned_server, "steady").status == "completed"
    assert [r["model"] for r in model.requests] == ["steady-v1", "steady-v1"]


def test_router_fallbacks_under_router_settings(tuned_server, model, second_model) -> None:
    other = second_model[0]
    other.reset()
    for _ in range(3):
        other.fail(500, "lead is down")
    model.text("from steady")
    run = _run(tuned_server, "lead")
    assert run.status == "completed", run.last_error
    assert set(r["model"] for r in other.requests) == {"lead-v1"}
    assert [r["model"] for r in model.requests][-1] == "steady-v1"
    other.reset()


def test_router_cooldown_skips_a_failing_deployment(tuned_server, model, second_model) -> None:
    """pool-a (weight 1000) fails past allowed_fails and is cooled down: the retry and
    every later call go to pool-b, though the weights favour pool-a."""
    other = second_model[0]
    other.reset()
    for _ in range(5):
        other.fail(500, "pool-a is down")
    for _ in range(3):
        assert _run(tuned_server, "pool").status == "completed"
    assert [r["model"] for r in other.requests] == ["pool-a", "pool-a"]
    assert [r["model"] for r in model.requests] == ["pool-b"] * 3
    other.reset()


def test_models_list_survives_an_endpoint_that_never_answers(tuned_server) -> None:
    c = make_client(tuned_server.base_url, KEY_ALPHA)
    started = time.monotonic()
    assert {m.id for m in c.models.list()} == {"pool", "steady", "lead"}
    assert time.monotonic() - started < 6
    started = time.monotonic()
    assert c.models.retrieve("steady").owned_by == "assistd"
    assert time.monotonic() - started < 1  # the failure is remembered for a while


def test_models_check_pings_every_route(tuned_server, model, second_model) -> None:
    second_model[0].reset()
    env = {**os.environ, "MODELS_CONFIG": str(tuned_server.models_config)}
    env["MODEL_BASE_URL"] = tuned_server.extra_env["MODEL_BASE_URL"]
    done = run_server_python(["-m", "server", "models", "check", "--timeout", "2"], env)
    assert done.returncode == 1, done.stdout + done.stderr  # MODEL_BASE_URL never answers
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0][0] == "MODELS_CONFIG" and "valid" in done.stdout
    results = {(r[0], r[2]): " ".join(r[3:]) for r in rows[2:] if len(r) > 3}
    assert results[("pool", "openai/pool-a")].startswith("ok (")
    assert results[("steady", "openai/steady-v1")].startswith("ok (")
    assert "MODEL_BASE_URL" in done.stdout and "FAILED" in done.stdout
    one_token = [r for r in model.requests if r["model"] == "steady-v1"]
    assert one_token and one_token[-1]["max_tokens"] == 1


# -- the models a server serves ---------------------------------------------------------


def test_models_list_and_retrieve_in_openai_shape(routed_server) -> None:
    c = make_client(routed_server.base_url, KEY_ALPHA)
    listed = {m.id: m for m in c.models.list()}
    assert {"smart", "primary", "backup", "retrying", "hasty", "scripted-model"} <= set(listed)
    assert listed["smart"].object == "model" and listed["smart"].owned_by == "assistd"
    assert listed["scripted-model"].owned_by == "scripted"  # MODEL_BASE_URL's own list
    assert c.models.retrieve("smart").id == "smart"
    with pytest.raises(openai.NotFoundError) as missing:
        c.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found"


def test_a_provider_prefix_does_not_bypass_the_config(routed_server, model) -> None:
    """Without ASSISTD_PROVIDER_MODELS, `anthropic/...` is just a name for the catch-all:
    no hosted provider is called."""
    assert _run(routed_server, "anthropic/claude-3-5-sonnet").status == "completed"
    assert [r["model"] for r in model.requests] == ["anthropic/claude-3-5-sonnet"]


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory, scripted) -> Iterator[ServerProcess]:
    """MODELS_CONFIG only (no catch-all), ollama_chat names allowed."""
    config = {
        "model_list": [
            {
                "model_name": "smart",
                "litellm_params": {"model": "openai/smart-v1", "api_base": scripted[1]},
            }
        ]
    }
    data = tmp_path_factory.mktemp("strict")
    (data / "models.yaml").write_text(yaml.safe_dump(config))
    env = {
        "ASSISTD_API_KEYS": f"{KEY_ALPHA}:alpha",
        "MODELS_CONFIG": str(data / "models.yaml"),
        "ASSISTD_PROVIDER_MODELS": "ollama_chat/*",
        "ASSISTD_SANDBOX": "off",
    }
    proc = ServerProcess(data, env=env).start()
    yield proc
    proc.stop()


def test_unknown_models_are_refused_naming_the_served_ones(strict_server) -> None:
    c = make_client(strict_server.base_url, KEY_ALPHA)
    for name in ("gpt-4o", "anthropic/claude-3-5-sonnet"):
        with pytest.raises(openai.BadRequestError) as refused:
            c.beta.assistants.create(model=name)
        error = refused.value.body
        assert error["param"] == "model" and error["code"] == "model_not_found"
        assert f"'{name}'" in error["message"] and "'smart'" in error["message"]
    assert "ASSISTD_PROVIDER_MODELS" in error["message"]  # the prefixed one says why
    allowed = c.beta.assistants.create(model="ollama_chat/llama3.1")
    assistant = c.beta.assistants.create(model="smart")
    with pytest.raises(openai.BadRequestError):
        c.beta.assistants.update(assistant.id, model="gpt-4o")
    assert c.beta.assistants.retrieve(assistant.id).model == "smart"
    thread = c.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as run_refused:
        c.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, model="gpt-4o")
    assert run_refused.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        c.beta.threads.create_and_run(assistant_id=assistant.id, model="nope")
    assert c.beta.threads.runs.list(thread_id=thread.id).data == []
    assert {m.id for m in c.models.list()} == {"smart"}
    assert allowed.model == "ollama_chat/llama3.1"
