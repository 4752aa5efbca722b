"""The models this server serves: what `GET /v1/models` lists and what assistants and
runs may name.

The list is MODELS_CONFIG's names, the exact names ASSISTD_PROVIDER_MODELS allows, and,
when MODEL_BASE_URL is set, that endpoint's own `/models` list: fetched with a short
timeout and cached, so a listing never waits long on it and an endpoint that does not
answer only drops its part of the list. Whether a name may be used is decided without
any I/O: MODEL_BASE_URL is a catch-all, so with it every name is accepted, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from server.config import Settings
from server.errors import APIError, bad_request
from server.runs.model_client import ModelClient

log = logging.getLogger("assistd.models")

LIST_TIMEOUT = 2.0  # seconds the endpoint's /models may take
CACHE_SECONDS = 60.0  # a good answer is reused this long
RETRY_SECONDS = 10.0  # after a failure, the endpoint is asked again no sooner


@dataclass(frozen=True)
class ModelEntry:
    id: str
    created: int
    owned_by: str

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": self.owned_by,
        }


class ModelCatalog:
    def __init__(self, settings: Settings, client: ModelClient) -> None:
        self.settings = settings
        self.client = client
        self.started = int(time.time())
        self._remote: list[ModelEntry] = []
        self._fetched_at = float("-inf")
        self._ok = False
        self._lock = asyncio.Lock()

    def check(self, model: str | None, param: str = "model") -> None:
        """400 `model_not_found` naming the served models when `model` has no route."""
        if model is None or self.client.kind(model) is not None:
            return
        raise bad_request(self.client.unknown_model_message(model), param, "model_not_found")

    def status(self) -> str:
        """For /ready: whether any model is routed (the API refuses every model if not)."""
        settings = self.settings
        if self.client.routed or settings.model_base_url or settings.provider_models:
            return "ok"
        return "none routed: set MODEL_BASE_URL or MODELS_CONFIG"

    def configured(self) -> list[ModelEntry]:
        config = self.client.config
        created = int(config.path.stat().st_mtime) if config and config.path.exists() else 0
        entries = [ModelEntry(n, created, "assistd") for n in (config.names if config else [])]
        for pattern in self.settings.provider_models:
            if not any(ch in pattern for ch in "*?["):  # an exact name can be listed
                entries.append(ModelEntry(pattern, self.started, pattern.split("/", 1)[0]))
        return entries

    async def served(self) -> list[ModelEntry]:
        entries = {entry.id: entry for entry in self.configured()}
        for entry in await self.remote():
            entries.setdefault(entry.id, entry)
        return list(entries.values())

    async def get(self, model_id: str) -> ModelEntry:
        for entry in await self.served():
            if entry.id == model_id:
                return entry
        raise APIError(
            404,
            f"The model '{model_id}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )

    async def remote(self) -> list[ModelEntry]:
        """MODEL_BASE_URL's own list, cached; [] when it is unset or does not answer."""
        if not self.settings.model_base_url:
            return []
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age < (CACHE_SECONDS if self._ok else RETRY_SECONDS):
                return self._remote
            try:
                self._remote, self._ok = await self._fetch(), True
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "MODEL_BASE_URL did not list its models (%s); listing the configured ones only",
                    exc.__class__.__name__,
                )
                self._remote, self._ok = [], False
            self._fetched_at = time.monotonic()
            return self._remote

    async def _fetch(self) -> list[ModelEntry]:
        base = (self.settings.model_base_url or "").rstrip("/")
        headers = {"Authorization": f"Bearer {self.settings.model_api_key or 'none'}"}
        async with httpx.AsyncClient(timeout=LIST_TIMEOUT) as http:
            response = await http.get(f"{base}/models", headers=headers)
            response.raise_for_status()
            data = response.json()
        items = data.get("data") if isinstance(data, dict) else data
        entries = []
        for item in items or []:
            model_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(model_id, str) and model_id:
                created = item.get("created")
                owned = item.get("owned_by")
                entries.append(
                    ModelEntry(
                        model_id,
                        created if isinstance(created, int) else self.started,
                        owned if isinstance(owned, str) and owned else "model_base_url",
                    )
                )
        return entries
