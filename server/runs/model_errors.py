"""A failed model call as a run's `last_error`: what failed, and what to do about it.

The text reaches API clients, so it names the model and the kind of route (never the
endpoint's address or credentials) and carries only the upstream's own explanation,
cleaned of litellm's prefixes and of Python object reprs (`ssl:<ssl.SSLContext object
at 0x7f...>` used to leak through aiohttp's connection errors).
"""

from __future__ import annotations

import re

import litellm
import openai

_REPR = re.compile(r"<[^<>]*\bobject at 0x[0-9a-fA-F]+>")
_SSL = re.compile(r"\s*ssl:(?:default|None|False|True)?(?=[\s\[]|$)")
_PREFIX = re.compile(
    r"^(?:litellm\.\w+:\s*|\w+(?:Error|Exception):\s*|\w+Exception\s*-\s*|Error code: \d+ - |"
    r"APITimeoutError - |"
    r"OpenAIException - |Error_str:\s*)+"
)
# Lines litellm appends about its router's state: meaningless to an API client.
_NOISE = ("Received Model Group", "Available Model Group", "LiteLLM Retried", "model=", "Fallbacks")


class ModelCallFailed(Exception):
    """A model call that failed, already phrased for the client (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def clean(text: str, limit: int = 300) -> str:
    """Upstream error text fit for a client: one paragraph, no reprs, no litellm noise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(_NOISE)]
    out = " ".join(lines)
    out = _REPR.sub("", out)
    out = _SSL.sub("", out)
    previous = None
    while previous != out:
        previous, out = out, _PREFIX.sub("", out).strip()
    out = re.sub(r"\s{2,}", " ", out).strip(" .:-")
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from, outermost first (litellm wraps a refused
    connection as InternalServerError("Connection error."); the address is inside)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _connection_failure(exc: BaseException) -> str | None:
    """The most specific text of a connection failure in `exc`'s chain, if it is one."""
    chain = _chain(exc)
    if not any(isinstance(e, openai.APIConnectionError | ConnectionError) for e in chain):
        return None
    for inner in chain[1:]:  # the first words that say more than "Connection error."
        text = clean(str(inner))
        if text and text.rstrip(".").lower() != "connection error":
            return text
    return clean(str(exc)) or None


def describe(exc: BaseException, model: str, route: str, timeout: float | None) -> ModelCallFailed:
    """Classify `exc`, raised calling `model` through `route` ("MODEL_BASE_URL",
    "MODELS_CONFIG", "the litellm provider 'x'"), into a ModelCallFailed."""
    detail = clean(str(exc)) or exc.__class__.__name__
    via = f"'{model}' ({route})"
    chain = _chain(exc)
    if any(isinstance(e, openai.APITimeoutError | TimeoutError) for e in chain):
        exc = chain[
            next(
                i
                for i, e in enumerate(chain)
                if isinstance(e, openai.APITimeoutError | TimeoutError)
            )
        ]
    elif (refused := _connection_failure(exc)) is not None and not isinstance(
        exc, litellm.RateLimitError | openai.RateLimitError
    ):
        return ModelCallFailed(
            "server_error",
            f"Could not reach the model endpoint serving {via}: {refused}. Check that the "
            "model server is running and reachable from assistd, then retry the run.",
        )
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ModelCallFailed(
            "invalid_prompt",
            f"The prompt is too long for model {via}: {detail}. Shorten the thread or set "
            "the run's truncation_strategy or max_prompt_tokens.",
        )
    if isinstance(exc, litellm.RateLimitError | openai.RateLimitError):
        return ModelCallFailed(
            "rate_limit_exceeded",
            f"The model endpoint serving {via} is rate limiting requests: {detail}. Retry "
            "later; operators can add num_retries or fallbacks in MODELS_CONFIG.",
        )
    denied = litellm.AuthenticationError | openai.AuthenticationError | openai.PermissionDeniedError
    if isinstance(exc, denied):
        return ModelCallFailed(
            "server_error",
            f"The model endpoint serving {via} refused assistd's credentials: {detail}. "
            "Operators: set MODEL_API_KEY, or api_key for this model in MODELS_CONFIG.",
        )
    if isinstance(exc, litellm.NotFoundError | openai.NotFoundError):
        return ModelCallFailed(
            "server_error",
            f"The model endpoint serving {via} does not know this model: {detail}. Check the "
            "name against GET /v1/models.",
        )
    if isinstance(exc, litellm.BadRequestError | openai.BadRequestError):
        return ModelCallFailed(
            "invalid_prompt",
            f"The model endpoint serving {via} rejected the request: {detail}. Check that "
            "this model supports the run's tools, response_format and parameters.",
        )
    if isinstance(exc, litellm.Timeout | openai.APITimeoutError | TimeoutError):
        within = f" within {timeout:g} s" if timeout else ""
        return ModelCallFailed(
            "server_error",
            f"The model {via} did not answer{within}. Retry the run; operators can raise "
            "ASSISTD_MODEL_TIMEOUT or this route's timeout in MODELS_CONFIG.",
        )
    if isinstance(exc, litellm.APIConnectionError | openai.APIConnectionError):
        return ModelCallFailed(
            "server_error",
            f"Could not reach the model endpoint serving {via}: {detail}. Check that the "
            "model server is running and reachable from assistd, then retry the run.",
        )
    status = getattr(exc, "status_code", None)
    code = f" (HTTP {status})" if isinstance(status, int) else ""
    return ModelCallFailed(
        "server_error",
        f"The model call to {via} failed{code}: {detail}. Retry the run; operators can add "
        "num_retries or fallbacks for this model in MODELS_CONFIG.",
    )
