"""Object ids with OpenAI's prefixes, so logs and client code look the same as before."""

from __future__ import annotations

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits

PREFIX = {
    "assistant": "asst_",
    "thread": "thread_",
    "message": "msg_",
    "run": "run_",
    "step": "step_",
    "file": "file-",
    "vector_store": "vs_",
    "file_batch": "vsfb_",
    "call": "call_",
    "record": "rec_",
}


def new_id(kind: str, length: int = 24) -> str:
    return PREFIX[kind] + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    """Integer Unix seconds, the only timestamp format the API uses."""
    return int(time.time())
