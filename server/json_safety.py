"""What can be stored and read back: text without unpaired surrogates or NUL, finite
numbers.

Python's json module reads `"\\udfff"` and `NaN` happily, and writes them back the same
way; orjson, which reads our JSON columns, refuses both. A row holding either is a row
no list can return again. PostgreSQL refuses NUL (`"\\u0000"`) in any text value, even
a query parameter. So request bodies holding them are refused (server/body_guard
finds them and names the param), every JSON column is written by `dumps_for_storage`
(which can only write what orjson reads), and `assistd doctor` repairs rows written
before that (server/doctor.py).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import orjson

log = logging.getLogger("assistd")

REPLACEMENT = "\ufffd"


def has_lone_surrogate(text: str) -> bool:
    """True if `text` holds a surrogate code point, which UTF-8 cannot encode. A valid
    astral character (an emoji) is one code point in Python, never a pair."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def repair_text(text: str) -> str:
    """Unpaired surrogates become U+FFFD; a pair split into two code points is rejoined."""
    if not has_lone_surrogate(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if has_lone_surrogate(text):
        return "an unpaired surrogate"
    if "\x00" in text:
        return "a NUL character"
    return None


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first place in a decoded JSON value that cannot be stored, as (param, reason):
    param in OpenAI's notation (`metadata.k`, `messages[0].content`), None if all is well.
    A bad key is reported at its object's path."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "non-finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                return path, f"{problem} in a key"
            found = find_unstorable(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_unstorable(item, f"{path}[{i}]")
            if found:
                return found
    return None


def repair(value: Any) -> Any:
    """`value` with unpaired surrogates replaced and non-finite numbers made null."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {repair_text(str(k)): repair(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [repair(v) for v in value]
    return value


def dumps_for_storage(value: Any) -> str:
    """The JSON columns' serializer: never writes what orjson (their reader) refuses.

    orjson itself is the check (and faster than json.dumps). What it cannot write (an
    unpaired surrogate from a model's output, an integer past 64 bits, nesting past 255)
    is repaired and written by the stdlib; requests never get here with such values
    (server/body_guard.py), so a repair is logged."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    fixed = repair(value)
    if fixed != value:
        log.warning("stored a JSON value with unpaired surrogates or non-finite numbers repaired")
    return json.dumps(fixed, ensure_ascii=False, allow_nan=False)
