"""Streaming code_interpreter input (server/tools/code_interpreter.py), in process: what
is decoded of the arguments so far never runs ahead of the finished call's code."""

from __future__ import annotations

import json

import pytest

from server.tools.code_interpreter import code_from_arguments, partial_code

CODES = [
    'print("h\\u00e9llo")\nx = 1\t# tab',
    "s = 'quote \" and backslash \\\\ end'",
    "emoji = '😀 and é'",
    "",
]


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_every_prefix_decodes_to_a_prefix_of_the_code(code: str, ascii_only: bool) -> None:
    arguments = json.dumps({"code": code}, ensure_ascii=ascii_only)
    seen = ""
    for end in range(len(arguments) + 1):
        decoded = partial_code(arguments[:end])
        assert code.startswith(decoded), (arguments[:end], decoded)
        assert len(decoded) >= len(seen)  # it only grows as arguments stream in
        seen = decoded
    assert seen == code == code_from_arguments(arguments)


def test_a_surrogate_pair_cut_in_half_is_held_back() -> None:
    arguments = json.dumps({"code": "😀"})  # {"code": "\ud83d\ude00"}
    half = arguments[: arguments.index("\\ude00")]
    assert partial_code(half) == ""


def test_other_keys_before_the_code_are_skipped() -> None:
    assert partial_code('{"language": "python", "code": "x = ') == "x = "


@pytest.mark.parametrize("arguments", ["print(1)", "import os\nos.getcwd()", '{"cod'])
def test_plain_code_is_not_streamed_but_runs_whole(arguments: str) -> None:
    assert partial_code(arguments) == ""
    if not arguments.startswith("{"):
        assert code_from_arguments(arguments) == arguments


def test_finished_arguments_in_every_shape() -> None:
    assert code_from_arguments('{"code": "x = 1"}') == "x = 1"
    assert code_from_arguments('"x = 2"') == "x = 2"  # a bare JSON string
    assert code_from_arguments('{"script": "y"}') == '{"script": "y"}'  # no code key
