"""tool_choice as the chat model gets it (server/runs/prompt.py), in process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.models import Run
from server.runs.prompt import chat_tool_choice
from server.storage import BlobStore
from server.tools.base import ServerTool
from server.tools.code_interpreter import CodeInterpreter


def run_with(choice: Any) -> Run:
    return Run(tool_choice=choice, tools=[])


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, ServerTool]:
    return {"code_interpreter": CodeInterpreter(None, BlobStore(tmp_path))}


def test_a_named_server_tool_forces_exactly_its_function(tools: dict[str, ServerTool]) -> None:
    choice = chat_tool_choice(run_with({"type": "code_interpreter"}), tools)
    assert choice == {"type": "function", "function": {"name": "code_interpreter"}}


def test_a_named_function_forces_that_function(tools: dict[str, ServerTool]) -> None:
    named = {"type": "function", "function": {"name": "lookup"}}
    assert chat_tool_choice(run_with(named), tools) == named


@pytest.mark.parametrize("choice", ["auto", "none", "required", None])
def test_plain_choices_pass_through(tools: dict[str, ServerTool], choice: str | None) -> None:
    assert chat_tool_choice(run_with(choice), tools) == choice
