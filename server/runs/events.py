"""In-process run events: the runner publishes, streaming responses subscribe.

A stream is served by the process that executes its run, so a process-local bus is
enough; runs nobody streams publish to no one at almost no cost.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

# Events after which a stream is over (for now: the run waits for tool outputs or ended).
FINAL_EVENTS = frozenset(
    {
        "thread.run.requires_action",
        "thread.run.completed",
        "thread.run.incomplete",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "error",
    }
)

Event = tuple[str, Any]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    def subscribe(self, run_id: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers[run_id].add(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: asyncio.Queue[Event]) -> None:
        subs = self._subscribers.get(run_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[run_id]

    def publish(self, run_id: str, event: str, data: Any) -> None:
        subs = self._subscribers.get(run_id)
        if not subs:
            return
        if hasattr(data, "model_dump"):
            data = data.model_dump()
        for queue in subs:
            queue.put_nowait((event, data))


def sse(event: str, data: Any) -> bytes:
    if hasattr(data, "model_dump"):
        data = data.model_dump()
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


DONE = b"event: done\ndata: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"  # an SSE comment: clients ignore it, proxies see traffic
