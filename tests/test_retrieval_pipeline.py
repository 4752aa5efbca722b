"""The retrieval pipeline with its real parts: pypdf/markitdown, the bundled MiniLM, Chroma
on disk and bm25s. Nothing is mocked; the model loads once for the module."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from retrieval import (
    ChunkIndex,
    InvalidChunkingStrategy,
    InvalidFile,
    InvalidFilter,
    ParsedDocument,
    UnknownEmbeddingModel,
    UnsupportedFile,
    chunk_document,
    get_embedder,
    normalize_strategy,
    parse_file,
    validate_filters,
)
from retrieval import embedding as embedding_module
from retrieval.embedding import DEFAULT_EMBEDDING_MODEL, Embedder, allow_models
from retrieval.index import collection_name
from tests.support.documents import pdf_bytes

EVAL_DOCS = Path(__file__).resolve().parents[1] / "bench" / "data" / "retrieval_eval" / "docs"
SMALL = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder().load()


def write(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "blob"  # stored uploads have no extension: the filename decides
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def docx_bytes(paragraphs: list[tuple[str | None, str]]) -> bytes:
    """A minimal .docx: (style, text) paragraphs, style e.g. "Heading1" or None."""
    ns = "http://schemas.openxmlformats.org"
    body = "".join(
        "<w:p>"
        + (f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else "")
        + f"<w:r><w:t>{text}</w:t></w:r></w:p>"
        for style, text in paragraphs
    )
    files = {
        "[Content_Types].xml": f'<Types xmlns="{ns}/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="{ns}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/'
        'officeDocument" Target="word/document.xml"/></Relationships>',
        "word/document.xml": f'<w:document xmlns:w="{ns}/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, xml in files.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + xml)
    return out.getvalue()


def index_text(index: ChunkIndex, embedder: Embedder, store: str, file_id: str, text: str, **kw):
    doc = ParsedDocument(text, None, "text")
    chunks = chunk_document(doc, kw.pop("strategy", None), embedder)
    vectors = embedder.encode([c.text for c in chunks])
    index.add_file(
        store,
        file_id,
        filename=kw.pop("filename", f"{file_id}.txt"),
        chunks=chunks,
        vectors=vectors,
        embedding_model=embedder.name,
        attributes=kw.pop("attributes", None),
        generation=kw.pop("generation", None),
    )
    return chunks


# ---- parsing --------------------------------------------------------------------------------


def test_text_formats_decode_boms_and_normalise_newlines(tmp_path: Path) -> None:
    assert parse_file(write(tmp_path, "a\r\nb\n"), "notes.txt").text == "a\nb\n"
    utf16 = "héllo wörld".encode("utf-16")  # with its BOM
    assert parse_file(write(tmp_path, utf16), "x.md").text == "héllo wörld"
    assert parse_file(write(tmp_path, b"\xef\xbb\xbfsig"), "x.txt").text == "sig"
    assert parse_file(write(tmp_path, "caf\xe9".encode("cp1252")), "x.txt").text == "café"
    code = parse_file(write(tmp_path, "def f():\n    return 1\n"), "module.py")
    assert (code.format, code.pages) == ("code", None)
    assert parse_file(write(tmp_path, '{"a": 1}'), "data.json").format == "json"


def test_pdf_pages_are_numbered_and_tile_the_text(tmp_path: Path) -> None:
    pages = ["Page one talks about refunds.", "Page two covers shipping.", "Page three: returns."]
    doc = parse_file(write(tmp_path, pdf_bytes(pages)), "guide.pdf")
    assert doc.format == "pdf" and doc.pages is not None
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert doc.pages[0].start == 0 and doc.pages[-1].end == len(doc.text)
    assert all(a.end == b.start for a, b in zip(doc.pages, doc.pages[1:], strict=False))
    for span, expected in zip(doc.pages, pages, strict=True):
        assert doc.text[span.start : span.end].strip() == expected
    assert doc.page_at(doc.text.index("shipping")) == 2


def test_corrupt_scanned_and_encrypted_looking_pdfs_are_invalid(tmp_path: Path) -> None:
    good = pdf_bytes(["Some text on a page."])
    with pytest.raises(InvalidFile, match="not a readable PDF"):
        parse_file(write(tmp_path, good[: len(good) // 2]), "broken.pdf")
    with pytest.raises(InvalidFile, match="no extractable text"):
        parse_file(write(tmp_path, pdf_bytes([""])), "scan.pdf")
    with pytest.raises(InvalidFile):
        parse_file(write(tmp_path, b"this is not a pdf at all"), "fake.pdf")


def test_office_and_html_files_become_markdown(tmp_path: Path) -> None:
    docx = docx_bytes([("Heading1", "Refund policy"), (None, "Refunds take five days.")])
    doc = parse_file(write(tmp_path, docx), "policy.docx")
    assert doc.format == "docx" and "# Refund policy" in doc.text and "five days" in doc.text
    html = "<html><head><script>var x = 1;</script></head><body><h2>Hours</h2><p>Open 9-5</p>"
    doc = parse_file(write(tmp_path, html), "page.html")
    assert doc.format == "html" and "## Hours" in doc.text and "var x" not in doc.text
    with pytest.raises(InvalidFile, match="not a readable DOCX"):
        parse_file(write(tmp_path, b"PK\x03\x04 truncated zip"), "broken.docx")


def test_pptx_slides_become_pages(tmp_path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    for n in range(1, 4):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {n} title"
        slide.placeholders[1].text = f"Body of slide {n}"
    buffer = io.BytesIO()
    deck.save(buffer)
    doc = parse_file(write(tmp_path, buffer.getvalue()), "deck.pptx")
    assert doc.pages is not None and [p.number for p in doc.pages] == [1, 2, 3]
    assert doc.pages[-1].end == len(doc.text)
    assert "Body of slide 2" in doc.text[doc.pages[1].start : doc.pages[1].end]
    assert "Slide number" not in doc.text


@pytest.mark.parametrize("name", ["setup.exe", "archive.zip", "photo.png", "README", "old.doc"])
def test_unsupported_types_are_rejected_by_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsupportedFile) as err:
        parse_file(write(tmp_path, b"hello"), name)
    assert "." in str(err.value)  # the message names the extension or asks for one


def test_binary_and_empty_text_files_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidFile, match="binary"):
        parse_file(write(tmp_path, b"MZ\x00\x01\x02binary"), "notes.txt")
    with pytest.raises(InvalidFile, match="no extractable text"):
        parse_file(write(tmp_path, "  \n\n "), "empty.md")


# ---- chunking -------------------------------------------------------------------------------


def test_static_chunks_are_exact_token_windows_with_overlap(embedder: Embedder) -> None:
    text = (EVAL_DOCS / "incident_2023_db_outage.md").read_text() * 3
    doc = ParsedDocument(text, None, "markdown")
    strategy = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 120, "chunk_overlap_tokens": 30},
    }
    chunks = chunk_document(doc, strategy, embedder)
    offsets = embedder.token_offsets(text)
    starts = {start: i for i, (start, _) in enumerate(offsets)}
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
    assert all(c.tokens == 120 for c in chunks[:-1]) and 0 < chunks[-1].tokens <= 120
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert starts[b.start] - starts[a.start] == 90  # advances by max - overlap tokens
    assert chunks[0].start == offsets[0][0] and chunks[-1].end == offsets[-1][1]


def test_auto_strategy_is_reported_as_openai_static_default() -> None:
    expected = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }
    assert normalize_strategy(None) == expected
    assert normalize_strategy({"type": "auto"}) == expected


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"type": "fixed"}, "chunking_strategy.type"),
        ({"type": "static"}, "chunking_strategy.static"),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 5000, "chunk_overlap_tokens": 0},
            },
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 201},
            },
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 400}},
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
        (
            {
                "type": "markdown",
                "markdown": {"max_chunk_size_tokens": "800", "chunk_overlap_tokens": 0},
            },
            "chunking_strategy.markdown.max_chunk_size_tokens",
        ),
    ],
)
def test_invalid_chunking_strategies_name_the_parameter(raw: dict, param: str) -> None:
    with pytest.raises(InvalidChunkingStrategy) as err:
        normalize_strategy(raw)
    assert err.value.param == param and param.split(".")[-1] in str(err.value)


def test_markdown_and_code_strategies_cut_at_structure(embedder: Embedder) -> None:
    sections = [f"## Section {n}\n\n" + f"Sentence {n} about topic {n}. " * 12 for n in range(6)]
    doc = ParsedDocument("# Title\n\n" + "\n\n".join(sections), None, "markdown")
    strategy = {
        "type": "markdown",
        "markdown": {"max_chunk_size_tokens": 150, "chunk_overlap_tokens": 0},
    }
    chunks = chunk_document(doc, strategy, embedder)
    assert all(c.tokens <= 150 for c in chunks)
    assert all(c.text.lstrip().startswith("#") for c in chunks)  # every chunk opens a section
    code = "\n\n".join(
        f"def f{n}(x):\n" + f"    y = x + {n}\n" * 20 + "    return y\n" for n in range(6)
    )
    strategy = {"type": "code", "code": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 0}}
    chunks = chunk_document(ParsedDocument(code, None, "code"), strategy, embedder)
    assert len(chunks) > 1 and all(c.text.startswith("def f") for c in chunks)
    assert all(c.text == code[c.start : c.end] for c in chunks)


# ---- embedding ------------------------------------------------------------------------------


def test_long_chunks_are_embedded_as_windows_never_truncated(embedder: Embedder) -> None:
    text = " ".join(f"word{n} and then some more" for n in range(200))  # ~1,200 tokens
    assert embedder.max_tokens == 254 and embedder.dimension == 384
    windows = embedder.windows(text)
    assert len(windows) >= 5
    assert all(embedder.count_tokens(w) <= embedder.max_tokens for w in windows)
    assert text.startswith(windows[0]) and text.endswith(windows[-1])
    position = 0
    for window in windows:  # consecutive, overlapping, no gaps
        found = text.find(window, max(0, position - len(window)))
        assert 0 <= found <= position
        position = found + len(window)
    assert position == len(text)
    [vectors, short] = embedder.encode([text, "short"])
    assert len(vectors) == len(windows) and len(short) == 1
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.isclose(np.linalg.norm(embedder.encode_query(text)), 1.0, atol=1e-4)


def test_queries_run_on_onnx_runtime_and_match_the_pytorch_model(embedder: Embedder) -> None:
    queries = ["What is the refund window?", "rotate API keys " * 120]  # short, and windowed
    fast = [embedder.encode_query(q) for q in queries]
    assert embedder._query_encoder() is not None  # exported on the first query
    slow_model = embedding_module.SentenceTransformerEmbedder(
        "probe", embedder.source, onnx_queries=False
    ).load()
    slow = [slow_model.encode_query(q) for q in queries]
    assert slow_model._query_encoder() is None  # the switch keeps PyTorch
    for a, b in zip(fast, slow, strict=True):
        assert float(np.dot(a, b)) > 0.9999


def test_the_embedder_cache_is_bounded_least_recently_used_out() -> None:
    names = [f"litellm/openai/lru-probe-{i}" for i in range(embedding_module.CACHE_SIZE + 1)]
    first = get_embedder(names[0])  # constructing a litellm embedder calls nothing
    kept = get_embedder(names[1])
    for name in names[2:]:
        get_embedder(names[1])  # keep this one recently used
        get_embedder(name)
    assert get_embedder(names[1]) is kept
    assert get_embedder(names[0]) is not first  # evicted, made afresh


def test_an_allow_list_refuses_other_models_before_looking_them_up(tmp_path: Path) -> None:
    listed = tmp_path / "listed-model"
    listed.mkdir()
    allow_models([str(listed), "litellm/openai/text-embedding-3-small"])
    try:
        assert get_embedder(str(listed)).name == str(listed)
        assert get_embedder("litellm/openai/text-embedding-3-small")
        for alias in (None, DEFAULT_EMBEDDING_MODEL, "sentence-transformers/all-MiniLM-L6-v2"):
            assert get_embedder(alias).name == DEFAULT_EMBEDDING_MODEL  # always offered
        errors = {}
        for name in (str(tmp_path), str(tmp_path / "missing"), "litellm/openai/other"):
            with pytest.raises(UnknownEmbeddingModel) as err:
                get_embedder(name)
            errors[name] = str(err.value).replace(name, "<name>")
        assert len(set(errors.values())) == 1  # an existing directory is not told apart
    finally:
        allow_models(None)
    assert get_embedder(str(tmp_path)).name == str(tmp_path)  # no list: any local model


def test_a_broken_model_directory_fails_to_load_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text("not json")
    broken = get_embedder(str(tmp_path))
    with pytest.raises(embedding_module.EmbeddingModelUnavailable, match="could not be loaded"):
        broken.load()


def test_embedders_are_cached_per_name_and_unknown_models_are_refused(tmp_path: Path) -> None:
    assert get_embedder() is get_embedder(DEFAULT_EMBEDDING_MODEL)
    assert get_embedder() is get_embedder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(UnknownEmbeddingModel, match="not available"):
        get_embedder("no-such-org/no-such-model")
    lazy = get_embedder(str(tmp_path))  # a local directory: constructing must not load it
    assert lazy.name == str(tmp_path) and lazy._model is None  # type: ignore[attr-defined]
    hosted = get_embedder("litellm/openai/text-embedding-3-small")  # no call is made here
    assert hosted.max_tokens == 8191 and hosted.count_tokens("ERR-7731 occurred") >= 4
    assert len(hosted.windows("word " * 20_000)) == 3


# ---- index and search -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> ChunkIndex:
    """Eight documents of the evaluation set in one store, chunked 200/50."""
    index = ChunkIndex(tmp_path_factory.mktemp("chroma"))
    names = [
        "travel_expense_policy.md",
        "incident_2023_db_outage.md",
        "incident_2024_cdn_cache.md",
        "release_notes_v3_2.md",
        "api_authentication.md",
        "parental_leave_policy.md",
        "remote_work_policy.md",
        "api_rate_limits.md",
    ]
    for name in names:
        doc = parse_file(EVAL_DOCS / name, name)
        chunks = chunk_document(doc, SMALL, embedder)
        index.add_file(
            "vs_eval",
            name,
            filename=name,
            chunks=chunks,
            vectors=embedder.encode([c.text for c in chunks]),
            embedding_model=embedder.name,
            attributes={"kind": "incident" if "incident" in name else "doc", "year": 2024},
        )
    return index


def rank_of(index: ChunkIndex, embedder: Embedder, query: str, file: str, needle: str, ranker: str):
    trace = index.search(["vs_eval"], [query], embedder=embedder, ranker=ranker, max_num_results=5)
    return next(
        (i for i, c in enumerate(trace.results, 1) if c.file_id == file and needle in c.text), None
    )


def test_search_finds_the_answering_chunk_with_scores_in_range(
    eval_index: ChunkIndex, embedder: Embedder
) -> None:
    trace = eval_index.search(
        ["vs_eval", "vs_missing"], ["What does ERR-7731 mean?"], embedder=embedder
    )
    top = trace.results[0]
    assert top.file_id == "incident_2023_db_outage.md" and "ERR-7731" in top.text
    assert top.chunk_id.startswith("incident_2023_db_outage.md:") and top.selected
    assert top.attributes == {"kind": "incident", "year": 2024}
    scores = [c.score for c in trace.candidates]
    assert scores == sorted(scores, reverse=True)
    for c in trace.candidates:
        assert 0.0 <= c.vector_score <= 1.0 and 0.0 <= c.keyword_score <= 1.0
        assert 0.0 <= c.score <= 1.0
    threshold = trace.results[2].score
    strict = eval_index.search(
        ["vs_eval"], ["What does ERR-7731 mean?"], embedder=embedder, score_threshold=threshold
    )
    assert len(strict.results) == 3 and all(c.score >= threshold for c in strict.results)
    assert trace.to_dict()["results"][0]["chunk_id"] == top.chunk_id


def test_hybrid_beats_keyword_on_paraphrase_and_vector_on_rare_identifier(
    eval_index: ChunkIndex, embedder: Embedder
) -> None:
    identifier = ("Which versions are affected by CVE-2031-4471?", "release_notes_v3_2.md", "3.1.4")
    assert rank_of(eval_index, embedder, *identifier, "vector") != 1
    assert rank_of(eval_index, embedder, *identifier, "auto") == 1
    paraphrase = ("How can I limit how large an export gets?", "release_notes_v3_2.md", "max_rows")
    assert rank_of(eval_index, embedder, *paraphrase, "keyword") != 1
    assert rank_of(eval_index, embedder, *paraphrase, "auto") == 1


def test_several_queries_are_fused(eval_index: ChunkIndex, embedder: Embedder) -> None:
    trace = eval_index.search(
        ["vs_eval"],
        ["How long are OAuth refresh tokens valid?", "What is form FIN-220 used for?"],
        embedder=embedder,
        max_num_results=4,
    )
    files = {c.file_id for c in trace.results[:2]}
    assert files == {"api_authentication.md", "travel_expense_policy.md"}


def test_filters_apply_to_both_sides(eval_index: ChunkIndex, embedder: Embedder) -> None:
    def files(filters: dict, ranker: str = "auto") -> set[str]:
        trace = eval_index.search(
            ["vs_eval"], ["outage incident cause"], embedder=embedder, filters=filters,
            ranker=ranker, max_num_results=50,
        )  # fmt: skip
        return {c.file_id for c in trace.candidates}

    incidents = {"incident_2023_db_outage.md", "incident_2024_cdn_cache.md"}
    for ranker in ("vector", "keyword"):
        assert files({"type": "eq", "key": "kind", "value": "incident"}, ranker) == incidents
    assert not files({"type": "ne", "key": "kind", "value": "doc"}) - incidents
    assert files({"type": "gte", "key": "year", "value": 2024}) >= incidents
    assert files({"type": "gt", "key": "year", "value": 2024}) == set()
    assert files({"type": "in", "key": "kind", "value": ["incident", 7]}) == incidents
    assert not files({"type": "nin", "key": "kind", "value": ["incident"]}) & incidents
    assert files({"type": "eq", "key": "missing", "value": "x"}) == set()
    compound = {
        "type": "or",
        "filters": [
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "kind", "value": "incident"},
                    {"type": "lt", "key": "year", "value": 2000},
                ],
            },
            {"type": "eq", "key": "kind", "value": "incident"},
        ],
    }
    assert files(compound) == incidents


def test_selective_filters_fall_back_to_chroma_where(
    eval_index: ChunkIndex, embedder: Embedder
) -> None:
    incidents = {"incident_2023_db_outage.md", "incident_2024_cdn_cache.md"}
    for filters in (
        {"type": "eq", "key": "kind", "value": "incident"},
        {"type": "in", "key": "kind", "value": ["incident", 7, True]},
        {"type": "and", "filters": [{"type": "nin", "key": "kind", "value": ["doc"]}]},
    ):
        trace = eval_index.search(
            ["vs_eval"], ["weeks of parental leave for a new baby"], embedder=embedder,
            filters=filters, ranker="vector", candidates_per_query=2,
        )  # fmt: skip
        assert trace.results and {c.file_id for c in trace.candidates} <= incidents


@pytest.mark.parametrize(
    ("filters", "param"),
    [
        ({"type": "like", "key": "a", "value": 1}, "filters.type"),
        ({"type": "eq", "value": 1}, "filters.key"),
        ({"type": "gt", "key": "a", "value": "x"}, "filters.value"),
        ({"type": "in", "key": "a", "value": []}, "filters.value"),
        ({"type": "and", "filters": [{"type": "eq", "key": "a"}]}, "filters.filters[0].value"),
        ({"type": "or", "filters": []}, "filters.filters"),
    ],
)
def test_malformed_filters_are_rejected(filters: dict, param: str) -> None:
    with pytest.raises(InvalidFilter) as err:
        validate_filters(filters)
    assert err.value.param == param


def test_add_list_replace_update_and_delete(tmp_path: Path, embedder: Embedder) -> None:
    index = ChunkIndex(tmp_path / "chroma")
    long = " ".join(f"The reactor coolant loop {n} runs at nominal pressure." for n in range(90))
    chunks = index_text(index, embedder, "vs_a", "file-1", long, attributes={"team": "ops"})
    stored = index.list_chunks("vs_a", "file-1")
    assert [s.index for s in stored] == list(range(len(chunks)))
    assert [s.text for s in stored] == [c.text for c in chunks]
    assert stored[0].id == "file-1:0" and stored[0].windows == 4  # 800 tokens in 254-token windows
    index_text(index, embedder, "vs_a", "file-1", "Short replacement text about pumps.")
    assert [s.text for s in index.list_chunks("vs_a", "file-1")] == [
        "Short replacement text about pumps."
    ]
    index.update_attributes("vs_a", "file-1", {"team": "dev"})
    hit = index.search(["vs_a"], ["pumps"], embedder=embedder).results[0]
    assert hit.attributes == {"team": "dev"}
    gone = {"type": "eq", "key": "team", "value": "ops"}
    assert index.search(["vs_a"], ["pumps"], embedder=embedder, filters=gone).results == []
    index.delete_file("vs_a", "file-1")
    assert index.list_chunks("vs_a", "file-1") == []
    assert index.search(["vs_a"], ["pumps"], embedder=embedder).results == []
    # Deleting the store drops its collection with the chunks still in it.
    index_text(index, embedder, "vs_a", "file-2", "Valves are tested every spring.")
    assert index.list_chunks("vs_a", "file-2")
    names = {c.name for c in index.client.list_collections()}
    assert collection_name("vs_a") in names
    index.delete_store("vs_a")
    index.delete_store("vs_never_created")
    assert collection_name("vs_a") not in {c.name for c in index.client.list_collections()}
    assert index.list_chunks("vs_a", "file-2") == []
    assert index.search(["vs_a"], ["valves"], embedder=embedder).results == []


def test_a_second_index_on_the_same_store_sees_changes(tmp_path: Path, embedder: Embedder) -> None:
    writer, reader = ChunkIndex(tmp_path / "chroma"), ChunkIndex(tmp_path / "chroma")
    index_text(writer, embedder, "vs_shared", "file-a", "Invoices are archived for seven years.")

    def found(query: str) -> list[str]:
        trace = reader.search(["vs_shared"], [query], embedder=embedder, ranker="keyword")
        return [c.file_id for c in trace.results]

    assert found("invoices archived") == ["file-a"]  # builds the reader's BM25 snapshot
    index_text(writer, embedder, "vs_shared", "file-b", "The QZ-9137 sensor reports humidity.")
    assert found("QZ-9137") == ["file-b"]
    writer.delete_file("vs_shared", "file-a")
    assert found("invoices archived") == []


def test_generations_of_a_file_coexist_until_the_caller_removes_one(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Two ingestions of one file (a stale one and its successor) write side by side under
    their own record ids; removing one generation leaves the other whole."""
    index = ChunkIndex(tmp_path / "chroma")
    index_text(index, embedder, "vs_g", "file-1", "Old text about boilers.", generation=1)
    new_text = "New text about chillers. " * 3
    new = index_text(index, embedder, "vs_g", "file-1", new_text, generation=2)
    assert [c.text for c in index.list_chunks("vs_g", "file-1")] == [c.text for c in new]
    index_text(index, embedder, "vs_g", "file-1", "Old text about boilers.", generation=1)
    index.delete_file("vs_g", "file-1", generation=1)  # the stale one takes back its own
    assert [c.text for c in index.list_chunks("vs_g", "file-1")] == [c.text for c in new]
    hit = index.search(["vs_g"], ["chillers"], embedder=embedder).results[0]
    assert hit.chunk_id == "file-1:0" and "chillers" in hit.text  # the public id, no generation
    assert "key" not in hit.to_dict()

    index_text(index, embedder, "vs_g", "file-1", "Old text about boilers.", generation=1)
    index_text(index, embedder, "vs_g", "file-1", "Newest text about pumps.", generation=3)
    index.delete_file("vs_g", "file-1", older_than=3)  # generation 3 finished: older ones go
    assert [c.text for c in index.list_chunks("vs_g", "file-1")] == ["Newest text about pumps."]
    found = index.search(["vs_g"], ["boilers chillers pumps"], embedder=embedder).results
    assert [c.text for c in found] == ["Newest text about pumps."]
