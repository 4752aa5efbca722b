"""Request work that can block for long: an upload's copy and hash, a search's query
embedding (a hosted model's round trip, or the first query's model load).

It runs on a thread limiter of its own. On the request pool it would hold one of the
few threads every sync route shares (config.usable_cpus); on the event loop's default
executor it would queue ahead of the run engine and the API-key checks that use it.
This work mostly waits on I/O or runs outside the GIL (hashlib, ONNX Runtime, torch),
so this pool may be larger than the CPU count.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request

T = TypeVar("T")

SLOW_THREADS = 8


def make_limiter() -> anyio.CapacityLimiter:
    """Called in the app's lifespan: a limiter belongs to the running event loop."""
    return anyio.CapacityLimiter(SLOW_THREADS)


async def run_slow(request: Request, func: Callable[..., T], *args: Any) -> T:
    limiter: anyio.CapacityLimiter = request.app.state.slow_limiter
    return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=limiter)
