"""MODELS_CONFIG checks: each problem is one line naming the file, the entry and the field;
model errors reach clients without object reprs; cost comes from the local cost map."""

from __future__ import annotations

from pathlib import Path

import httpx
import litellm
import openai
import pytest
import yaml

from server.config import Settings
from server.models_config import ModelsConfigError, load
from server.observability.usage import cost_of
from server.runs.model_client import ModelClient
from server.runs.model_errors import clean, describe


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ModelsConfigError) as err:
        load(path)
    return str(err.value).splitlines()


ENTRY = {"model_name": "gpt-4o", "litellm_params": {"model": "openai/qwen", "api_base": "http://m"}}


def test_a_typo_names_file_entry_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, {"model_list": [ENTRY, {"model_name": "local", "litellm_param": {}}]})
    (line,) = problems(path)
    assert line == (
        f"MODELS_CONFIG {path}: model_list[1] (model_name 'local'): unknown field "
        "'litellm_param'; did you mean 'litellm_params'?"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"model_list": []}, "'model_list' must be a non-empty list"),
        ({"model_lst": [ENTRY]}, "unknown top-level field 'model_lst'; did you mean 'model_list'?"),
        (
            {"model_list": [{"model_name": "x", "litellm_params": {"api_base": "http://m"}}]},
            "model_list[0] (model_name 'x'): litellm_params.model is missing",
        ),
        (
            {"model_list": [{**ENTRY, "litellm_params": {"model": "openai/q", "timeout": "30s"}}]},
            "litellm_params.timeout must be a number >= 0, not '30s'",
        ),
        (
            {"model_list": [{**ENTRY, "litellm_params": {"model": "openai/q", "api_bse": "x"}}]},
            "unknown field 'api_bse'; did you mean 'api_base'?",
        ),
        (
            {"model_list": [ENTRY], "router_settings": {"num_retry": 2}},
            "router_settings: unknown field 'num_retry'; did you mean 'num_retries'?",
        ),
        (
            {"model_list": [ENTRY], "router_settings": {"num_retries": -1}},
            "router_settings.num_retries must be a whole number >= 0, not -1",
        ),
        (
            {"model_list": [ENTRY], "fallbacks": [{"gpt-4o": ["gpt4-mini"]}]},
            "fallbacks[0]: 'gpt4-mini' is not a model_name in model_list",
        ),
        ("model_list:\n  - model_name: [oops\n", "not valid YAML"),
    ],
)
def test_each_mistake_is_one_clear_line(tmp_path: Path, data: object, expected: str) -> None:
    lines = problems(write(tmp_path, data))
    assert len(lines) == 1 and expected in lines[0], lines
    assert str(tmp_path / "models.yaml") in lines[0]


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.yaml") == [
        f"MODELS_CONFIG {tmp_path / 'nope.yaml'}: no such file"
    ]


def test_litellm_settings_and_provider_options_pass(tmp_path: Path) -> None:
    data = {
        "model_list": [
            {**ENTRY, "litellm_params": {"model": "openai/q", "num_retries": 2, "timeout": 30}},
            {"model_name": "b", "litellm_params": {"model": "ollama_chat/x", "keep_alive": "5m"}},
        ],
        "litellm_settings": {
            "num_retries": 3,
            "request_timeout": 40,
            "fallbacks": [{"b": ["gpt-4o"]}],
        },
        "router_settings": {"cooldown_time": 5},
    }
    config = load(write(tmp_path, data))
    assert config.router_settings == {
        "cooldown_time": 5,
        "fallbacks": [{"b": ["gpt-4o"]}],
        "num_retries": 3,
        "timeout": 40,
    }
    assert config.names == ["gpt-4o", "b"]


def test_connection_errors_reach_clients_without_object_reprs() -> None:
    raw = (
        "litellm.APIConnectionError: OpenAIException - Cannot connect to host 127.0.0.1:9 "
        "ssl:<ssl.SSLContext object at 0x7f3a2b1c9d80> [Connect call failed ('127.0.0.1', 9)]"
        "\nReceived Model Group=gpt-4o\nAvailable Model Group Fallbacks=None"
    )
    exc = litellm.APIConnectionError(message=raw, llm_provider="openai", model="gpt-4o")
    failed = describe(exc, "gpt-4o", "MODEL_BASE_URL", 600)
    assert failed.code == "server_error"
    assert "object at 0x" not in failed.message and "ssl:" not in failed.message
    assert "Model Group" not in failed.message
    assert failed.message.startswith("Could not reach the model endpoint serving 'gpt-4o'")
    assert "Cannot connect to host 127.0.0.1:9 [Connect call failed" in failed.message
    assert "running and reachable" in failed.message
    assert clean("<Foo object at 0xdeadbeef> boom") == "boom"


def test_errors_say_what_to_do() -> None:
    response = httpx.Response(401, request=httpx.Request("POST", "http://m"))
    denied = openai.AuthenticationError("bad key", response=response, body=None)
    assert "MODEL_API_KEY" in describe(denied, "m", "MODEL_BASE_URL", 600).message
    late = describe(TimeoutError(), "m", "MODELS_CONFIG", 30)
    assert "did not answer within 30 s" in late.message and "ASSISTD_MODEL_TIMEOUT" in late.message


def test_cost_local_models_are_free_and_prices_override(tmp_path: Path) -> None:
    data = {
        "model_list": [
            {
                "model_name": "local",
                "litellm_params": {"model": "openai/gpt-4o", "api_base": "http://m"},
            },
            {"model_name": "hosted", "litellm_params": {"model": "gpt-4o"}},
            {
                "model_name": "priced",
                "litellm_params": {"model": "openai/q", "api_base": "http://m"},
                "model_info": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002},
            },
        ]
    }
    settings = Settings.from_env(
        {"MODELS_CONFIG": str(write(tmp_path, data)), "MODEL_BASE_URL": "http://m/v1"}
    )
    client = ModelClient(settings)
    assert cost_of(client, "local", 1000, 1000) == 0.0  # its own api_base: self-hosted
    assert cost_of(client, "hosted", 1000, 1000) == pytest.approx(0.0125)  # litellm's map
    assert cost_of(client, "priced", 1000, 100) == pytest.approx(1.2)
    assert cost_of(client, "gpt-4o", 1000, 1000) == 0.0  # the catch-all is a local endpoint
