"""Request limits: OpenAI's documented ones where they exist, ours where it had none.

docs/security.md lists each with where it comes from. Anything not bounded here is
bounded by the body cap (ASSISTD_MAX_JSON_BYTES, server/body_guard.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator

# Integers are stored in INTEGER columns (32 bits on PostgreSQL) or sent on to the
# model and Chroma (64 bits): anything larger was an OverflowError at commit, a 500.
MAX_INT32 = 2**31 - 1
MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1

MAX_NAME = 256  # assistant name (spec)
MAX_DESCRIPTION = 512  # assistant description (spec)
MAX_INSTRUCTIONS = 256_000  # assistant instructions (spec); also run instructions
MAX_TOOLS = 128  # an assistant's tools (spec)
MAX_RUN_TOOLS = 20  # a run's tools override (spec: CreateRunRequest, CreateThreadAndRun)
MAX_FUNCTION_DESCRIPTION = 1024  # the hosted API's error: "maximum length 1024"
MAX_MESSAGE_TEXT = 256_000  # a message's text, whole or per part (the hosted API's limit)
MAX_ATTACHMENTS = 10  # files per message (v1's documented limit; v2's spec names none)
MAX_IMAGE_URL = 8192  # ours
MAX_SEARCH_QUERIES = 10  # ours: vector_stores.search `query` as an array
MAX_SEARCH_QUERY = 4096  # ours: characters per query (the encoder reads 256 tokens)
MAX_BATCH_FILES = 2000  # vector store file batch (spec; it was 500 in older specs)
MAX_STORE_FILE_IDS = 500  # vector_stores.create file_ids (spec)


def _integral(value: Any) -> Any:
    """42.0 is an integer to JSON Schema (and so to the published document); strict
    pydantic would refuse it. A fractional number or a string is still refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Goes after the bounds: `Annotated[int, Field(ge=1, le=50), Integral]`, so the published
# schema says minimum/maximum. Every integer a request stores has both bounds.
Integral = BeforeValidator(_integral)
