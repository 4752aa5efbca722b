"""Model routing: MODELS_CONFIG (litellm's model_list YAML, with fallbacks) and the
MODEL_BASE_URL catch-all, each reached over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from server.runs.model_client import direct_routes
from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.scripted_model import ScriptedModel, start_scripted_model
from tests.support.server_process import ServerProcess


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


def test_no_route_at_all_fails_the_run_clearly(tmp_path, model) -> None:
    proc = ServerProcess(tmp_path, env={"ASSISTD_API_KEYS": f"{KEY_ALPHA}:alpha"}).start()
    try:
        run = _run(proc, "gpt-4o")
        assert run.status == "failed" and run.last_error.code == "server_error"
        assert "MODEL_BASE_URL" in run.last_error.message
    finally:
        proc.stop()


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
