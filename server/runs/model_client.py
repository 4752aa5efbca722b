"""The one place that talks to models: litellm's streaming `acompletion` behind a small
adapter that routes a model name, normalises stream chunks and classifies failures.

Routing: names listed in MODELS_CONFIG (litellm's own YAML, server/models_config.py) go
through a litellm Router, or straight to litellm when the Router has nothing to do for
them; a name with a litellm provider prefix (`ollama_chat/llama3`, `anthropic/...`) goes
straight to that provider only when ASSISTD_PROVIDER_MODELS allows it; every other name
is sent to the MODEL_BASE_URL catch-all as an OpenAI-compatible model. With no route at
all a name is unknown: assistants and runs naming it are refused (routers check `kind`).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import litellm

from server import models_config
from server.config import Settings
from server.models_config import ModelsConfig
from server.observability import logs
from server.runs.model_errors import ModelCallFailed, describe

litellm.suppress_debug_info = True
# litellm brings its own stderr handlers: its records go through ours (--log-format),
# at WARNING unless --log-level debug.
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    logging.getLogger(_name).setLevel(logs.library_level())
logs.adopt("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
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


# router_settings that only say where to fall back or how long to wait: the names the
# Router has no other work for may still skip it. Any other setting (retries, cooldowns,
# routing) is the Router's job, so then every configured name goes through it.
_PLAIN_ROUTER_SETTINGS = {"fallbacks", "context_window_fallbacks", "content_policy_fallbacks"}


class ModelClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        config = models_config.load(settings.models_config) if settings.models_config else None
        self.config: ModelsConfig | None = config
        self.router: litellm.Router | None = None
        self.routed: set[str] = set()
        self.direct: dict[str, dict[str, Any]] = {}
        self.timeout = settings.model_timeout
        if config is not None:
            # litellm's own retries stay off unless the file asks for them; a deployment's
            # `timeout` in litellm_params wins over the Router's, so none is passed per call.
            options = {"num_retries": 0, "timeout": settings.model_timeout}
            options.update(config.router_settings)
            self.timeout = float(options["timeout"])
            self.router = litellm.Router(model_list=config.model_list, **options)
            self.routed = set(config.names)
            if set(config.router_settings) <= _PLAIN_ROUTER_SETTINGS | {"timeout"}:
                self.direct = direct_routes(config.model_list, config.fallbacks)
        # A routed name is priced as its first deployment (litellm_model).
        self.priced_as: dict[str, str] = {}
        if config is not None:
            self.priced_as = {
                m["model_name"]: str((m.get("litellm_params") or {}).get("model", m["model_name"]))
                for m in reversed(config.model_list)
            }
        # litellm_settings.drop_params, passed with each call rather than set on the
        # litellm module, so that it stays this client's setting.
        self.drop_params = config.drop_params if config is not None else None

    def provider_allowed(self, model: str) -> bool:
        """A provider-prefixed name clients may use directly (ASSISTD_PROVIDER_MODELS)."""
        provider = model.split("/", 1)[0] if "/" in model else None
        if not provider or provider not in litellm.provider_list:
            return False
        return any(fnmatch.fnmatchcase(model, p) for p in self.settings.provider_models)

    def kind(self, model: str) -> str | None:
        """How a name is routed: "direct" or "router" (MODELS_CONFIG), "provider" (an
        allowed provider-prefixed name), "catch_all" (MODEL_BASE_URL), or None."""
        if model in self.direct:
            return "direct"
        if self.router is not None and model in self.routed:
            return "router"
        if self.provider_allowed(model):
            return "provider"
        if self.settings.model_base_url:
            return "catch_all"
        return None

    def route_of(self, model: str) -> str:
        """How a model name is routed, in words (recorded with each model call)."""
        kind = self.kind(model)
        if kind == "direct":
            return f"MODELS_CONFIG: {self.direct[model].get('model', model)}"
        if kind == "router":
            return "MODELS_CONFIG: litellm Router"
        if kind == "provider":
            return f"litellm provider {model.split('/', 1)[0]}"
        if kind == "catch_all":
            return f"MODEL_BASE_URL: {self.settings.model_base_url}"
        return "no route"

    def litellm_model(self, model: str) -> str:
        """The name litellm prices a call to `model` by (its local cost map): a routed
        name's (first) deployment model, `openai/<name>` for the catch-all."""
        if model in self.priced_as:
            return self.priced_as[model]
        provider = model.split("/", 1)[0] if "/" in model else None
        if provider and provider in litellm.provider_list:
            return model
        return f"openai/{model}"

    def route_label(self, model: str) -> str:
        """The route's kind without addresses, for messages API clients read."""
        kind = self.kind(model)
        if kind in ("direct", "router"):
            return "MODELS_CONFIG"
        if kind == "provider":
            return f"litellm provider {model.split('/', 1)[0]}"
        return "MODEL_BASE_URL" if kind == "catch_all" else "no route"

    def unknown_model_message(self, model: str) -> str:
        """Why `model` cannot be used here, naming what can."""
        served = sorted(self.routed)
        listing = ", ".join(f"'{n}'" for n in served[:20]) if served else "none"
        prefixed = "/" in model and model.split("/", 1)[0] in litellm.provider_list
        why = (
            " Provider-prefixed names must be allowed by ASSISTD_PROVIDER_MODELS."
            if prefixed
            else ""
        )
        if not served and not self.settings.model_base_url:
            return (
                f"The model '{model}' does not exist: this server routes no models (its "
                f"operator sets MODEL_BASE_URL or MODELS_CONFIG).{why}"
            )
        return f"The model '{model}' does not exist. Models served here: {listing}.{why}"

    def _timeout_of(self, model: str) -> float:
        params = self.direct.get(model)
        if params is None and self.config is not None and model in self.routed:
            deployments = self.config.deployments(model)
            params = deployments[0].get("litellm_params") if deployments else None
        value = (params or {}).get("timeout")
        return float(value) if isinstance(value, int | float) else self.timeout

    async def _open(self, request: ModelRequest) -> Any:
        common: dict[str, Any] = {
            **request.params(),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.drop_params is not None:
            common["drop_params"] = self.drop_params
        kind = self.kind(request.model)
        if kind == "direct":
            # Defaults first: the entry's own num_retries or timeout win, and are never
            # passed twice (which failed every call).
            params = {"timeout": self.timeout, "num_retries": 0, **self.direct[request.model]}
            return await litellm.acompletion(**{**params, **common})
        if kind == "router":
            assert self.router is not None
            return await self.router.acompletion(model=request.model, **common)
        common["timeout"] = self.settings.model_timeout
        if kind == "provider":
            return await litellm.acompletion(model=request.model, num_retries=0, **common)
        if kind == "catch_all":
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
        try:
            async for event in self._stream(request):
                yield event
        except (ModelNotConfigured, ModelCallFailed):
            raise
        except Exception as exc:
            route = self.route_label(request.model)
            failed = describe(exc, request.model, route, self._timeout_of(request.model))
            raise failed from exc

    async def _stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
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
    if isinstance(exc, ModelCallFailed):
        return exc.code, exc.message
    if isinstance(exc, ModelNotConfigured):
        return "server_error", str(exc)
    failed = describe(exc, "?", "unknown route", None)
    return failed.code, failed.message
