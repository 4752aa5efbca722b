"""CPU the request body check (server/body_guard.py) adds to a request, in process.

Every POST body is parsed once more (orjson) and, past 64 brackets, walked for its depth
before FastAPI parses it. This calls the middleware around a do-nothing ASGI app and the
app alone, alternately, and prints the difference in CPU microseconds per request for
the bodies of a message create and of an assistant with 20 function tools, next to the
stdlib parse FastAPI then does anyway (the baseline). It asserts nothing.

    .venv/bin/python bench/body_guard.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.body_guard import BodyGuard  # noqa: E402

MESSAGE = {"role": "user", "content": "What is the weather in Paris today? " * 3}
FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "d" * 200,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASSISTANT = {"model": "m", "instructions": "x" * 20_000, "tools": [FUNCTION] * 20}
ROUNDS, CALLS = 5, 5000


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def per_call(app: Any, body: bytes) -> float:
    """CPU microseconds per call of `app` with `body`."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {"type": "http", "method": "POST", "path": "/v1/x", "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(_: Any) -> None:
        return None

    start = time.process_time()
    for _ in range(CALLS):
        await app(scope, receive, send)
    return (time.process_time() - start) / CALLS * 1e6


async def main() -> None:
    guard = BodyGuard(bare, 4 * 1024 * 1024)
    print(f"{'body':<28} {'bytes':>7} {'added us':>9} {'stdlib parse us':>16}")
    for name, value in (("message create", MESSAGE), ("assistant, 20 functions", ASSISTANT)):
        body = json.dumps(value).encode()
        added = []
        for _ in range(ROUNDS):  # alternate, so a noisy spell lands on both
            added.append(await per_call(guard, body) - await per_call(bare, body))
        start = time.process_time()
        for _ in range(CALLS):
            json.loads(body)
        parse = (time.process_time() - start) / CALLS * 1e6
        print(f"{name:<28} {len(body):>7} {sorted(added)[ROUNDS // 2]:>9.1f} {parse:>16.1f}")


if __name__ == "__main__":
    asyncio.run(main())
