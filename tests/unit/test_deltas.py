"""Stream delta builders (server/protocol/deltas.py), in process: the exact bytes the
runner streamed before they were typed, key order included."""

from __future__ import annotations

import json
from typing import Any

from server.protocol import deltas
from server.protocol.messages import FileCitationAnnotation


def wire(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def test_message_deltas() -> None:
    assert wire(deltas.message_text("msg_1", 2, "Hi")) == (
        '{"id":"msg_1","object":"thread.message.delta","delta":{"content":[{"index":2,'
        '"type":"text","text":{"value":"Hi","annotations":[]}}]}}'
    )
    assert wire(deltas.message_images("msg_1", ["file-a", "file-b"])) == (
        '{"id":"msg_1","object":"thread.message.delta","delta":{"content":['
        '{"index":0,"type":"image_file","image_file":{"file_id":"file-a"}},'
        '{"index":1,"type":"image_file","image_file":{"file_id":"file-b"}}]}}'
    )


def test_citation_deltas_number_their_annotations_and_carry_appended_text() -> None:
    citation: FileCitationAnnotation = {
        "type": "file_citation",
        "text": "【0:0†a.md】",
        "start_index": 3,
        "end_index": 13,
        "file_citation": {"file_id": "file-a", "quote": "q"},
    }
    cited = deltas.message_annotations("msg_1", 0, [citation], "")
    text = cited["delta"]["content"][0]
    assert wire(text) == (
        '{"index":0,"type":"text","text":{"annotations":[{"index":0,"type":"file_citation",'
        '"text":"【0:0†a.md】","start_index":3,"end_index":13,'
        '"file_citation":{"file_id":"file-a","quote":"q"}}]}}'
    )
    appended = deltas.message_annotations("msg_1", 0, [citation], " 【0:0†a.md】")
    assert list(appended["delta"]["content"][0]["text"]) == ["annotations", "value"]


def test_step_deltas_of_each_tool() -> None:
    created: deltas.FunctionToolCallDelta = {
        "index": 0,
        "type": "function",
        "id": "call_1",
        "function": {"arguments": "", "output": None, "name": "lookup"},
    }
    assert wire(deltas.step_tool_call("step_1", created)) == (
        '{"id":"step_1","object":"thread.run.step.delta","delta":{"step_details":'
        '{"type":"tool_calls","tool_calls":[{"index":0,"type":"function","id":"call_1",'
        '"function":{"arguments":"","output":null,"name":"lookup"}}]}}}'
    )
    outputs = deltas.code_outputs(
        [{"type": "logs", "logs": "42\n"}, {"type": "image", "image": {"file_id": "file-i"}}]
    )
    assert wire(outputs) == (
        '[{"index":0,"type":"logs","logs":"42\\n"},'
        '{"index":1,"type":"image","image":{"file_id":"file-i"}}]'
    )
