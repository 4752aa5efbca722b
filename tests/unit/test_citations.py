"""file_search citations and code_interpreter file links (server/tools/), in process."""

from __future__ import annotations

import pytest

from server.protocol.runs import FileSearchResult
from server.tools.code_interpreter import annotate
from server.tools.file_search import (
    QUOTE_CHARS,
    cite,
    output_text,
    queries_from_arguments,
)


def result(file_id: str, name: str, text: str = "passage") -> FileSearchResult:
    return {
        "file_id": file_id,
        "file_name": name,
        "score": 0.5,
        "content": [{"type": "text", "text": text}],
    }


SOURCES = [
    [result("file-a", "a.md", "alpha text")],
    [result("file-b", "b.md", "beta text"), result("file-c", "c.md", "x" * 1000)],
]


def test_markers_become_citations_at_their_place() -> None:
    text = "Alpha 【0:0†a.md】 and gamma 【1:1†c.md】."
    appended, annotations = cite(text, SOURCES)
    assert appended == ""
    assert [a["file_citation"]["file_id"] for a in annotations] == ["file-a", "file-c"]
    for a in annotations:
        assert text[a["start_index"] : a["end_index"]] == a["text"]
    assert annotations[0]["file_citation"].get("quote") == "alpha text"
    assert annotations[1]["file_citation"].get("quote") == "x" * QUOTE_CHARS


def test_a_one_number_marker_refers_to_the_last_search() -> None:
    _, annotations = cite("Beta 【0†b.md】.", SOURCES)
    assert [a["file_citation"]["file_id"] for a in annotations] == ["file-b"]


def test_markers_naming_no_source_are_ignored_and_then_the_top_sources_are_appended() -> None:
    text = "An answer 【7:0†nowhere】"
    appended, annotations = cite(text, SOURCES)
    assert appended == " 【1:0†b.md】【1:1†c.md】"
    full = text + appended
    assert [full[a["start_index"] : a["end_index"]] for a in annotations] == [
        "【1:0†b.md】",
        "【1:1†c.md】",
    ]


def test_appended_sources_are_three_distinct_files_at_most() -> None:
    many = [[result(f"file-{i % 4}", f"{i % 4}.md") for i in range(8)]]
    appended, annotations = cite("", many)
    assert appended == "【0:0†0.md】【0:1†1.md】【0:2†2.md】"  # no leading space on an empty reply
    assert [a["start_index"] for a in annotations] == [0, 10, 20]


def test_without_sources_nothing_is_cited() -> None:
    assert cite("Anything 【0:0†a.md】", []) == ("", [])
    assert cite("Anything", [[], []]) == ("", [])


def test_the_model_reads_numbered_sources_with_their_markers() -> None:
    text = output_text(3, SOURCES[1])
    assert "【3:0†b.md】\nbeta text" in text and "【3:1†c.md】" in text
    assert output_text(0, []) == "No relevant passages were found in the files."


@pytest.mark.parametrize(
    ("arguments", "queries"),
    [
        ('{"queries": ["a", " b ", ""]}', ["a", "b"]),
        ('{"query": "kettle"}', ["kettle"]),
        ('"just a string"', ["just a string"]),
        ("not json at all", ["not json at all"]),
        ('{"queries": ["1", "2", "3", "4", "5", "6"]}', ["1", "2", "3", "4", "5"]),
        ("", []),
        ('{"other": 1}', []),
    ],
)
def test_queries_in_whatever_shape_the_model_sent(arguments: str, queries: list[str]) -> None:
    assert queries_from_arguments(arguments) == queries


def test_sandbox_links_to_produced_files_become_file_paths() -> None:
    text = "See [the table](sandbox:/mnt/data/out.csv). Also sandbox:/mnt/data/gone.txt."
    (link,) = annotate(text, {"/mnt/data/out.csv": "file-out"})
    assert link["type"] == "file_path" and link["file_path"] == {"file_id": "file-out"}
    assert text[link["start_index"] : link["end_index"]] == "sandbox:/mnt/data/out.csv"
