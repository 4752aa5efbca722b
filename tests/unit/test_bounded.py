"""Run records are capped in size: what fits is kept whole; what does not is cut at its
longest strings, then at its longest lists, always with a visible marker."""

from __future__ import annotations

import json

from server.inspector.bounded import bound, size


def test_a_record_that_fits_is_kept_exactly() -> None:
    record = {"messages": [{"role": "user", "content": "hi"}], "n": 3, "ok": True, "x": None}
    kept, cut = bound(record, 1000)
    assert kept == record and cut is False


def test_a_long_string_is_cut_with_a_marker_and_the_rest_kept() -> None:
    huge = "A" * 300_000
    record = {"model": "gpt-4o", "messages": [{"role": "user", "content": huge}, "short"]}
    kept, cut = bound(record, 20_000)
    assert cut is True
    assert size(kept) <= 20_000
    content = kept["messages"][0]["content"]
    assert content.startswith("A" * 1000)
    assert "more characters cut by assistd" in content and "capped at 20000 bytes" in content
    assert kept["model"] == "gpt-4o" and kept["messages"][1] == "short"
    # As much as fits is kept: not far under the cap.
    assert size(kept) > 15_000


def test_many_messages_keep_their_start_and_end() -> None:
    messages = [{"role": "user", "content": f"message {i} " + "x" * 50} for i in range(2000)]
    kept, cut = bound({"messages": messages}, 10_000)
    assert cut is True and size(kept) <= 10_000
    shown = kept["messages"]
    assert shown[0] == messages[0] and shown[-1] == messages[-1]
    notes = [m for m in shown if isinstance(m, str)]
    assert len(notes) == 1 and "more items cut by assistd" in notes[0]


def test_a_record_that_cannot_fit_says_so() -> None:
    record = {f"key{i}": i for i in range(5000)}  # no string or list to cut
    kept, cut = bound(record, 4096)
    assert cut is True
    assert "larger than 4096 bytes" in json.dumps(kept)
