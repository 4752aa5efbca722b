"""How much file_search may put into a prompt: a share of the model's context window.

Why: 20 results of 800 tokens put 7,849 prompt tokens into a one-line question on a small
local model, most of its context. A run's results are taken best first while they fit in
`ASSISTD_FILE_SEARCH_CONTEXT_SHARE` of the model's context (at least the best one, cut to
fit when it alone is too long). The context comes from, in order: the model's
`model_info` (`max_input_tokens`, else `max_tokens`) in MODELS_CONFIG, litellm's local
model map for the name (or for the name the MODELS_CONFIG entry routes to), else
`ASSISTD_MODEL_CONTEXT_TOKENS` (models behind MODEL_BASE_URL are unknown to litellm).
Tokens are counted with litellm's counter for the model (tiktoken's files ship with
litellm, so this is offline).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.config import Settings

log = logging.getLogger("assistd.runner")


class ContextWindows:
    """Context lengths of model names, looked up once each."""

    def __init__(self, settings: Settings) -> None:
        self.default = settings.model_context_tokens
        self.entries: dict[str, list[dict[str, Any]]] = {}
        if settings.models_config:
            self.entries = _entries(settings.models_config)
        self.lookup: Callable[[str], int] = functools.lru_cache(maxsize=256)(self._lookup)

    def _lookup(self, model: str) -> int:
        names = [model]
        for entry in self.entries.get(model, []):
            info = entry.get("model_info") or {}
            limit = info.get("max_input_tokens") or info.get("max_tokens")
            if limit:
                return int(limit)
            routed = (entry.get("litellm_params") or {}).get("model")
            if routed:
                names.append(str(routed))
        for name in names:
            limit = _litellm_limit(name)
            if limit:
                return limit
        return self.default


def _entries(path: Path) -> dict[str, list[dict[str, Any]]]:
    from server import models_config

    entries: dict[str, list[dict[str, Any]]] = {}
    for entry in models_config.load(path).model_list:
        entries.setdefault(str(entry.get("model_name")), []).append(entry)
    return entries


def _litellm_limit(name: str) -> int | None:
    import litellm

    try:
        info = litellm.get_model_info(name)
    except Exception:  # litellm raises a bare Exception for names it does not map
        return None
    limit = info.get("max_input_tokens") or info.get("max_tokens")
    return int(limit) if limit else None


def count_tokens(model: str, text: str) -> int:
    import litellm

    try:
        return int(litellm.token_counter(model=model, text=text))
    except Exception:  # an odd name: about four characters a token
        return len(text) // 4 + 1


def fit(results: list[Any], budget: int, model: str) -> list[Any]:
    """The leading `results` (candidates, best first) whose texts fit in `budget` tokens;
    the first is always kept, its text cut to the budget when it alone is over."""
    kept: list[Any] = []
    used = 0
    for result in results:
        tokens = count_tokens(model, result.text) + 16  # its marker and spacing
        if used + tokens > budget:
            if not kept:
                share = max(0.0, (budget - 16) / tokens)
                result.text = result.text[: int(len(result.text) * share)]
                kept.append(result)
            break
        kept.append(result)
        used += tokens
    if len(kept) < len(results):
        log.info(
            "file_search: %d of %d results fit in %d tokens of %s's context",
            len(kept),
            len(results),
            budget,
            model,
        )
    return kept
