"""MODELS_CONFIG: litellm's own YAML (`model_list`, `router_settings`, `litellm_settings`,
top-level `fallbacks`), read and checked once at start-up.

A mistake here used to surface as a traceback from deep inside litellm, or as every run
failing later. Each problem is reported as one line naming the file, the entry and the
field (`models.yaml: model_list[1] (model_name 'local'): unknown field 'litellm_param';
did you mean 'litellm_params'?`), and `assistd serve` exits with status 2 on it.
"""

from __future__ import annotations

import difflib
import inspect
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ENTRY_FIELDS = {"model_name", "litellm_params", "model_info", "rpm", "tpm"}
TOP_FIELDS = {
    "model_list",
    "router_settings",
    "litellm_settings",
    "fallbacks",
    "context_window_fallbacks",
}
# litellm_settings keys assistd applies (litellm's proxy reads many more, for itself).
LITELLM_SETTINGS = {
    "fallbacks",
    "context_window_fallbacks",
    "num_retries",
    "request_timeout",
    "drop_params",
}
FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
PRICE_FIELDS = ("input_cost_per_token", "output_cost_per_token")
_NUMBERS: dict[str, type | tuple[type, ...]] = {
    "timeout": (int, float),
    "stream_timeout": (int, float),
    "num_retries": int,
    "max_retries": int,
    "rpm": int,
    "tpm": int,
    "allowed_fails": int,
    "cooldown_time": (int, float),
    "retry_after": (int, float),
    "request_timeout": (int, float),
    "input_cost_per_token": (int, float),
    "output_cost_per_token": (int, float),
}


class ModelsConfigError(Exception):
    """MODELS_CONFIG cannot be used; the message is one line per problem."""


@dataclass
class ModelsConfig:
    path: Path
    model_list: list[dict[str, Any]]
    # Keyword arguments for litellm.Router (fallbacks included), as litellm documents them.
    router_settings: dict[str, Any] = field(default_factory=dict)
    drop_params: bool | None = None

    @property
    def names(self) -> list[str]:
        """Model names clients may use, in file order, each once."""
        return list(dict.fromkeys(entry["model_name"] for entry in self.model_list))

    @property
    def fallbacks(self) -> list[dict[str, Any]]:
        chains: list[dict[str, Any]] = []
        for key in FALLBACK_KEYS:
            chains += self.router_settings.get(key) or []
        return chains

    def deployments(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.model_list if entry["model_name"] == name]

    def prices(self, name: str) -> tuple[float, float] | None:
        """(input, output) cost per token set for `name` in the file, if any: under
        `model_info` or `litellm_params` of its first deployment."""
        for entry in self.deployments(name):
            for where in (entry.get("model_info") or {}, entry.get("litellm_params") or {}):
                if any(key in where for key in PRICE_FIELDS):
                    return (
                        float(where.get("input_cost_per_token") or 0),
                        float(where.get("output_cost_per_token") or 0),
                    )
        return None


@cache
def _router_arguments() -> frozenset[str]:
    import litellm

    params = inspect.signature(litellm.Router.__init__).parameters
    return frozenset(name for name in params if name not in ("self", "model_list"))


@cache
def _known_litellm_params() -> frozenset[str]:
    import litellm
    from litellm.types.router import LiteLLM_Params

    completion = inspect.signature(litellm.completion).parameters
    # Router-only deployment options litellm documents besides the typed ones.
    router = {"num_retries", "weight", "order", "max_parallel_requests", "retry_after"}
    return frozenset(LiteLLM_Params.model_fields) | frozenset(completion) | router


def _suggest(name: str, known: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def load(path: Path) -> ModelsConfig:
    """Read and check the file; ModelsConfigError lists every problem, one per line."""
    where = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ModelsConfigError(f"MODELS_CONFIG {where}: no such file") from None
    except OSError as exc:
        raise ModelsConfigError(f"MODELS_CONFIG {where}: cannot read it: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelsConfigError(f"MODELS_CONFIG {where}:{at} not valid YAML: {problem}") from None
    problems: list[str] = []
    config = _check(path, data, problems)
    if problems:
        raise ModelsConfigError("\n".join(f"MODELS_CONFIG {where}: {p}" for p in problems))
    assert config is not None
    return config


def _check(path: Path, data: Any, problems: list[str]) -> ModelsConfig | None:
    if not isinstance(data, dict):
        problems.append("the file must be a mapping with a 'model_list'")
        return None
    for key in data:
        if key not in TOP_FIELDS:
            problems.append(f"unknown top-level field '{key}'{_suggest(str(key), TOP_FIELDS)}")
    model_list = data.get("model_list")
    if not isinstance(model_list, list) or not model_list:
        if "model_list" in data or not problems:  # not already explained by a typo
            problems.append("'model_list' must be a non-empty list of {model_name, litellm_params}")
        model_list = []
    entries = [_check_entry(i, entry, problems) for i, entry in enumerate(model_list)]
    router = data.get("router_settings") or {}
    if not isinstance(router, dict):
        problems.append("'router_settings' must be a mapping")
        router = {}
    router = dict(router)
    for key, value in router.items():
        if key not in _router_arguments():
            hint = _suggest(str(key), _router_arguments())
            problems.append(f"router_settings: unknown field '{key}'{hint}")
        else:
            _check_type(f"router_settings.{key}", key, value, problems)
    settings = data.get("litellm_settings") or {}
    if not isinstance(settings, dict):
        problems.append("'litellm_settings' must be a mapping")
        settings = {}
    for key, value in settings.items():
        if key not in LITELLM_SETTINGS:
            known = ", ".join(sorted(LITELLM_SETTINGS))
            problems.append(
                f"litellm_settings: '{key}' is not applied by assistd (it reads {known})"
                f"{_suggest(str(key), LITELLM_SETTINGS)}"
            )
        else:
            _check_type(f"litellm_settings.{key}", key, value, problems)
    # Fallbacks may sit at the top, under router_settings or under litellm_settings.
    for key in ("fallbacks", "context_window_fallbacks"):
        chains = data.get(key) or router.get(key) or settings.get(key)
        if chains:
            router[key] = chains
    if "num_retries" in settings:
        router.setdefault("num_retries", settings["num_retries"])
    if "request_timeout" in settings:
        router.setdefault("timeout", settings["request_timeout"])
    names = {e["model_name"] for e in entries if e is not None}
    for key in FALLBACK_KEYS:
        _check_fallbacks(key, router.get(key), names, problems)
    if problems:
        return None
    drop = settings.get("drop_params")
    return ModelsConfig(
        path=path,
        model_list=[e for e in entries if e is not None],
        router_settings=router,
        drop_params=bool(drop) if drop is not None else None,
    )


def _check_entry(index: int, entry: Any, problems: list[str]) -> dict[str, Any] | None:
    label = f"model_list[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{label}: must be a mapping with model_name and litellm_params")
        return None
    name = entry.get("model_name")
    if isinstance(name, str) and name.strip():
        label += f" (model_name '{name}')"
    else:
        problems.append(f"{label}: 'model_name' is missing or not a string")
    before = len(problems)
    for key in entry:
        if key not in ENTRY_FIELDS:
            problems.append(f"{label}: unknown field '{key}'{_suggest(str(key), ENTRY_FIELDS)}")
    params = entry.get("litellm_params")
    if not isinstance(params, dict):
        if "litellm_params" in entry or not any("unknown field" in p for p in problems[before:]):
            problems.append(f"{label}: 'litellm_params' must be a mapping with at least 'model'")
        return None
    model = params.get("model")
    if not isinstance(model, str) or not model.strip():
        problems.append(f"{label}: litellm_params.model is missing (what the endpoint serves)")
    known = _known_litellm_params()
    for key, value in params.items():
        if key not in known:
            hint = _suggest(str(key), known)
            if hint:  # a near miss is a typo; anything else may be a provider's own option
                problems.append(f"{label}: litellm_params: unknown field '{key}'{hint}")
        _check_type(f"{label}: litellm_params.{key}", key, value, problems)
    info = entry.get("model_info")
    if info is not None and not isinstance(info, dict):
        problems.append(f"{label}: 'model_info' must be a mapping")
    for key, value in (info or {}).items():
        _check_type(f"{label}: model_info.{key}", key, value, problems)
    for key in ("rpm", "tpm"):
        if key in entry:
            _check_type(f"{label}: {key}", key, entry[key], problems)
    if len(problems) > before or not isinstance(name, str):
        return None
    return {**entry, "litellm_params": resolve_env(params)}


def _check_type(label: str, key: str, value: Any, problems: list[str]) -> None:
    expected = _NUMBERS.get(key)
    if expected is None:
        return
    if not isinstance(value, expected) or not isinstance(value, int | float):
        value_ok = False
    else:  # bool is an int, but never a count or a number of seconds
        value_ok = not isinstance(value, bool) and value >= 0
    if not value_ok:
        kind = "a whole number" if expected is int else "a number"
        problems.append(f"{label} must be {kind} >= 0, not {value!r}")


def _check_fallbacks(key: str, chains: Any, names: set[str], problems: list[str]) -> None:
    if chains is None:
        return
    if not isinstance(chains, list):
        problems.append(f"{key} must be a list like [{{primary: [backup]}}]")
        return
    for i, chain in enumerate(chains):
        if not isinstance(chain, dict):
            problems.append(f"{key}[{i}] must be a mapping like {{primary: [backup]}}")
            continue
        for primary, backups in chain.items():
            listed = backups if isinstance(backups, list) else [backups]
            for name in [primary, *listed]:
                if name not in names:
                    problems.append(
                        f"{key}[{i}]: '{name}' is not a model_name in model_list"
                        f"{_suggest(str(name), names)}"
                    )


def resolve_env(params: dict[str, Any]) -> dict[str, Any]:
    """litellm's `os.environ/NAME` values, read now: the Router resolves them itself, but
    the names called without it (model_client.direct_routes) need them resolved."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str) and value.startswith("os.environ/"):
            value = os.environ.get(value.removeprefix("os.environ/"), "")
        out[key] = value
    return out
