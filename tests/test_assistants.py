"""Assistants through the official SDK: create, retrieve, update, list, delete."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.conftest import walk

FUNCTION_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_create_assistant_returns_every_field(client: OpenAI) -> None:
    a = client.beta.assistants.create(
        name="Code Helper",
        model="gpt-4o",
        instructions="You write code.",
        description="helps",
        tools=[FUNCTION_TOOL, {"type": "code_interpreter"}, {"type": "file_search"}],
        metadata={"team": "core"},
        temperature=0.5,
        top_p=0.9,
        response_format={"type": "json_object"},
    )
    assert a.id.startswith("asst_")
    assert a.object == "assistant"
    assert isinstance(a.created_at, int)
    assert (a.name, a.model, a.instructions, a.description) == (
        "Code Helper",
        "gpt-4o",
        "You write code.",
        "helps",
    )
    assert [t.type for t in a.tools] == ["function", "code_interpreter", "file_search"]
    assert a.tools[0].function.name == "get_weather"
    assert a.tools[0].function.parameters == FUNCTION_TOOL["function"]["parameters"]
    assert a.metadata == {"team": "core"}
    assert (a.temperature, a.top_p) == (0.5, 0.9)
    assert a.response_format.type == "json_object"
    assert client.beta.assistants.retrieve(a.id) == a


def test_minimal_assistant_has_defaults(client: OpenAI) -> None:
    a = client.beta.assistants.create(model="m")
    assert a.tools == [] and a.metadata == {} and a.response_format == "auto"
    assert a.name is None and a.instructions is None


def test_update_changes_only_given_fields(client: OpenAI) -> None:
    a = client.beta.assistants.create(model="m1", name="before", instructions="keep me")
    b = client.beta.assistants.update(
        a.id, name="after", metadata={"v": "2"}, tools=[FUNCTION_TOOL]
    )
    assert (b.name, b.instructions, b.model) == ("after", "keep me", "m1")
    assert b.metadata == {"v": "2"} and b.tools[0].type == "function"
    c = client.beta.assistants.update(a.id, model="m2", instructions=None)
    assert c.model == "m2" and c.instructions is None and c.name == "after"
    assert client.beta.assistants.retrieve(a.id) == c


def test_code_interpreter_file_ids_are_checked(client: OpenAI, text_file) -> None:
    f = client.files.create(file=text_file.open("rb"), purpose="assistants")
    a = client.beta.assistants.create(
        model="m", tool_resources={"code_interpreter": {"file_ids": [f.id]}}
    )
    assert a.tool_resources.code_interpreter.file_ids == [f.id]
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(
            model="m", tool_resources={"code_interpreter": {"file_ids": ["file-missing"]}}
        )
    assert err.value.param == "tool_resources.code_interpreter.file_ids[0]"


def test_delete_assistant(client: OpenAI) -> None:
    a = client.beta.assistants.create(model="m")
    deleted = client.beta.assistants.delete(a.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (a.id, "assistant.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(a.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(a.id)


def test_list_pages_through_everything_in_order(client: OpenAI) -> None:
    tag = {"batch": "paging"}
    made = [
        client.beta.assistants.create(model="m", name=f"a{i}", metadata=tag).id for i in range(7)
    ]
    page = client.beta.assistants.list(limit=3, order="asc")
    walked = [a.id for a in walk(page) if a.metadata == tag]
    assert walked == made
    newest_first = [a.id for a in walk(client.beta.assistants.list(limit=2))]
    assert [i for i in newest_first if i in made] == made[::-1]
    first = client.beta.assistants.list(limit=3, order="asc", after=made[1])
    assert [a.id for a in first.data] == made[2:5] and first.has_more
    back = client.beta.assistants.list(limit=2, order="asc", before=made[4])
    assert [a.id for a in back.data] == made[2:4]
    assert back.first_id == made[2] and back.last_id == made[3]
