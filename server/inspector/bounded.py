"""Keep a JSON record under a byte budget by cutting its longest parts, visibly.

A model call's request can be megabytes (a long thread, a big tool output). The record
keeps everything when it fits; otherwise it cuts every string past the longest length
that fits (binary search), and when even short strings are too many, the middle of the
longest lists (a long conversation keeps its start and its end). Every cut leaves a
marker saying how much went, so a reader never mistakes a cut record for the original.
"""

from __future__ import annotations

from typing import Any

import orjson

CUT = "…[{n} more characters cut by assistd: records are capped at {cap} bytes]"
CUT_ITEMS = "…[{n} more items cut by assistd: records are capped at {cap} bytes]"
SHORTEST = 64  # strings are never cut below this before lists are thinned


def size(value: Any) -> int:
    return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def bound(value: Any, cap: int) -> tuple[Any, bool]:
    """(`value` or a cut copy of it that serialises to at most `cap` bytes, whether it
    was cut). A value that cannot be brought under the cap becomes a note saying so."""
    if size(value) <= cap:
        return value, False
    longest = _longest_string(value)
    best = _search(lambda n: _clip(value, n, None, cap), SHORTEST, longest, cap)
    if best is not None:
        return best, True
    longest_list = _longest_list(value)
    best = _search(lambda n: _clip(value, SHORTEST, n, cap), 2, longest_list, cap)
    if best is not None:
        return best, True
    return {"cut": f"This record was larger than {cap} bytes even when cut."}, True


def _search(make: Any, low: int, high: int, cap: int) -> Any:
    """The cut with the largest limit in [low, high] that fits, or None."""
    found = None
    while low <= high:
        middle = (low + high) // 2
        candidate = make(middle)
        if size(candidate) <= cap:
            found, low = candidate, middle + 1
        else:
            high = middle - 1
    return found


def _clip(value: Any, chars: int, items: int | None, cap: int) -> Any:
    if isinstance(value, str):
        marker = CUT.format(n=len(value) - chars, cap=cap)
        if len(value) <= chars + len(marker):  # cutting would not make it shorter
            return value
        return value[:chars] + marker
    if isinstance(value, dict):
        return {k: _clip(v, chars, items, cap) for k, v in value.items()}
    if isinstance(value, list | tuple):
        kept = [_clip(v, chars, items, cap) for v in value]
        if items is not None and len(kept) > items:
            head, tail = items - items // 2, items // 2
            note = CUT_ITEMS.format(n=len(kept) - items, cap=cap)
            kept = [*kept[:head], note, *(kept[-tail:] if tail else [])]
        return kept
    return value


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max((_longest_string(v) for v in value.values()), default=0)
    if isinstance(value, list | tuple):
        return max((_longest_string(v) for v in value), default=0)
    return 0


def _longest_list(value: Any) -> int:
    if isinstance(value, dict):
        return max((_longest_list(v) for v in value.values()), default=0)
    if isinstance(value, list | tuple):
        return max(len(value), max((_longest_list(v) for v in value), default=0))
    return 0
