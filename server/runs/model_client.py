"""The one place that talks to models: litellm's streaming `acompletion` behind a small
adapter that routes a model name, normalises stream chunks and classifies failures.

Routing: names listed in MODELS_CONFIG (litellm's own `model_list` YAML, with optional
`fallbacks`) go through a litellm Router; a name with a litellm provider prefix
(`ollama_chat/llama3`, `openai/...`) goes straight to litellm; every other name is sent
to the MODEL_BASE_URL catch-all as an OpenAI-compatible model.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import litellm
import openai
import yaml

from server.config import Settings

litellm.suppress_debug_info = True
logging.getLogger("LiteLLM").setLevel(logging.WARNING)
litellm.telemetry = False
# No success callbacks are registered: skip the per-chunk logging task litellm would
# otherwise submit to a thread pool (measured in bench/run_overhead.py).
litellm.disable_streaming_logging = True


class ModelNotConfigured(Exception):
    """No route serves this model name."""


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass
class Finish:
    reason: str | None
    usage: dict[str, int] = field(default_factory=dict)


StreamEvent = TextDelta | ToolCallDelta | Finish


@dataclass
class ModelRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: Any = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"messages": self.messages}
        if self.tools:
            out["tools"] = self.tools
            if self.tool_choice is not None:
                out["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is False:
                out["parallel_tool_calls"] = False
        for name in ("response_format", "temperature", "top_p", "max_tokens", "reasoning_effort"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def load_models_config(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(model_list, fallbacks) from a litellm-style YAML file."""
    data = yaml.safe_load(path.read_text()) or {}
    model_list = data.get("model_list") or []
    fallbacks = (
        data.get("fallbacks")
        or (data.get("router_settings") or {}).get("fallbacks")
        or (data.get("litellm_settings") or {}).get("fallbacks")
        or []
    )
    return model_list, fallbacks


def direct_routes(
    model_list: list[dict[str, Any]], fallbacks: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Names the Router has nothing to do for, with their litellm_params: one deployment,
    in no fallback chain, no rpm/tpm limits. Those are called with `litellm.acompletion`
    directly, which saves the Router's per-call bookkeeping (about 5 ms a call in
    bench/run_overhead.py); everything else goes through the Router."""
    in_chains = {
        name
        for chain in fallbacks
        for primary, backups in chain.items()
        for name in [primary, *(backups if isinstance(backups, list) else [backups])]
    }
    counts: dict[str, int] = {}
    for entry in model_list:
        counts[entry["model_name"]] = counts.get(entry["model_name"], 0) + 1
    direct: dict[str, dict[str, Any]] = {}
    for entry in model_list:
        name, params = entry["model_name"], dict(entry.get("litellm_params") or {})
        limited = {"rpm", "tpm"} & (set(params) | set(entry))
        if counts[name] == 1 and name not in in_chains and not limited and "model" in params:
            direct[name] = params
    return direct


class ModelClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.router: litellm.Router | None = None
        self.routed: set[str] = set()
        self.direct: dict[str, dict[str, Any]] = {}
        if settings.models_config:
            model_list, fallbacks = load_models_config(settings.models_config)
            self.router = litellm.Router(model_list=model_list, fallbacks=fallbacks, num_retries=0)
            self.routed = {m["model_name"] for m in model_list}
            self.direct = direct_routes(model_list, fallbacks)

    def route_of(self, model: str) -> str:
        """How a model name is routed, in words (recorded with each model call)."""
        if model in self.direct:
            return f"MODELS_CONFIG: {self.direct[model].get('model', model)}"
        if self.router is not None and model in self.routed:
            return "MODELS_CONFIG: litellm Router"
        provider = model.split("/", 1)[0] if "/" in model else None
        if provider and provider in litellm.provider_list:
            return f"litellm provider {provider}"
        if self.settings.model_base_url:
            return f"MODEL_BASE_URL: {self.settings.model_base_url}"
        return "no route"

    async def _open(self, request: ModelRequest) -> Any:
        common: dict[str, Any] = {
            **request.params(),
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": self.settings.model_timeout,
        }
        direct = self.direct.get(request.model)
        if direct is not None:
            return await litellm.acompletion(**direct, num_retries=0, **common)
        if self.router is not None and request.model in self.routed:
            return await self.router.acompletion(model=request.model, **common)
        provider = request.model.split("/", 1)[0] if "/" in request.model else None
        if provider and provider in litellm.provider_list:
            return await litellm.acompletion(model=request.model, num_retries=0, **common)
        if self.settings.model_base_url:
            return await litellm.acompletion(
                model=f"openai/{request.model}",
                api_base=self.settings.model_base_url,
                api_key=self.settings.model_api_key or "none",
                num_retries=0,
                **common,
            )
        raise ModelNotConfigured(
            f"No model endpoint serves '{request.model}': "
            "set MODEL_BASE_URL or route it in MODELS_CONFIG."
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        response = await self._open(request)
        finish_reason: str | None = None
        usage: dict[str, int] = {}
        async for chunk in response:
            if getattr(chunk, "usage", None):
                u = chunk.usage
                usage = {
                    "prompt_tokens": int(u.prompt_tokens or 0),
                    "completion_tokens": int(u.completion_tokens or 0),
                    "total_tokens": int(u.total_tokens or 0),
                }
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        yield TextDelta(delta.content)
                    for call in delta.tool_calls or []:
                        fn = call.function
                        yield ToolCallDelta(
                            index=call.index or 0,
                            id=call.id,
                            name=fn.name if fn else None,
                            arguments=(fn.arguments or "") if fn else "",
                        )
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
        yield Finish(finish_reason, usage)


def classify_error(exc: BaseException) -> tuple[str, str]:
    """A model failure as a run's `last_error` (code, message)."""
    if isinstance(exc, litellm.RateLimitError | openai.RateLimitError):
        return "rate_limit_exceeded", f"The model is rate limited: {_short(exc)}"
    if isinstance(exc, litellm.ContextWindowExceededError):
        return "invalid_prompt", f"The prompt is too long for the model: {_short(exc)}"
    if isinstance(exc, litellm.BadRequestError | openai.BadRequestError):
        return "invalid_prompt", f"The model rejected the request: {_short(exc)}"
    if isinstance(exc, litellm.Timeout | openai.APITimeoutError | TimeoutError):
        return "server_error", f"The model did not answer in time: {_short(exc)}"
    if isinstance(exc, ModelNotConfigured):
        return "server_error", str(exc)
    return "server_error", f"The model call failed: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) <= 500 else text[:497] + "..."
