"""Split a parsed document into chunks measured in the embedding model's own tokens.

The whole document is tokenized once (a fast tokenizer with offsets), and every chunk is a
run of those tokens, so `chunk.text == doc.text[chunk.start:chunk.end]` always holds and a
300-page PDF costs one tokenizer pass. Four strategies:

* ``static`` (OpenAI's): fixed windows of ``max_chunk_size_tokens`` advancing by
  ``max - chunk_overlap_tokens``, exactly as asked.
* ``auto`` (the default): static chunks of ``DEFAULT_MAX_TOKENS``/``DEFAULT_OVERLAP`` (500/50)
  that are embedded small-to-big: each chunk is embedded as windows of
  ``AUTO_WINDOW_TOKENS``/``AUTO_WINDOW_OVERLAP`` (200/50, inside MiniLM's 256-token window)
  and scores as its best window, so a search matches on a small, focused span and returns
  the chunk around it (``embedding_windows``). The API reports it in static form
  (``reported_strategy``); docs/retrieval.md has the evaluation behind the numbers.
* ``markdown`` (ours): cut at headings and blank lines first, then pack whole blocks up to
  the size; a heading starts a new chunk once the current one is a quarter full.
* ``code`` (ours): the same packing, cut at top-level definitions and blank lines.

For the packed strategies the overlap is made of whole trailing blocks (at most
``chunk_overlap_tokens``); a block longer than the size is windowed like ``static``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from retrieval.parsing import ParsedDocument

__all__ = [
    "AUTO_WINDOW_OVERLAP",
    "AUTO_WINDOW_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP",
    "Chunk",
    "InvalidChunkingStrategy",
    "Tokenizer",
    "chunk_document",
    "embedding_windows",
    "normalize_strategy",
    "reported_strategy",
]

# `auto`: chunks of 500 tokens (50 shared with the next), embedded in 200-token windows that
# advance by 150. Chosen on the dev half of bench/data/doc_eval (docs/retrieval.md).
DEFAULT_MAX_TOKENS = 500
DEFAULT_OVERLAP = 50
AUTO_WINDOW_TOKENS = 200
AUTO_WINDOW_OVERLAP = 50
MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 4096
STRATEGY_TYPES = ("static", "markdown", "code")


class Tokenizer(Protocol):
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text`, special tokens excluded."""
        ...


class InvalidChunkingStrategy(ValueError):
    """A malformed `chunking_strategy`; `param` names the offending field, as OpenAI does."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class Chunk:
    """Tokens `[start, end)` of the document as characters; `page` is where the chunk starts."""

    index: int
    text: str
    start: int
    end: int
    tokens: int
    page: int | None


def normalize_strategy(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a request's `chunking_strategy` and return the form to store.

    `None` and `{"type": "auto"}` become `{"type": "auto"}`: the server's defaults, applied at
    ingestion and shown in static form by `reported_strategy`; the others are explicit.
    """
    if raw is None:
        raw = {"type": "auto"}
    if not isinstance(raw, dict):
        raise InvalidChunkingStrategy(
            "Invalid 'chunking_strategy': expected an object.", "chunking_strategy"
        )
    kind = raw.get("type")
    if kind == "auto":
        _reject_extra(raw, {"type"}, "chunking_strategy")
        return {"type": "auto"}
    if kind not in STRATEGY_TYPES:
        raise InvalidChunkingStrategy(
            f"Invalid 'chunking_strategy.type': expected one of 'auto', 'static', 'markdown', "
            f"'code', but got {kind!r} instead.",
            "chunking_strategy.type",
        )
    _reject_extra(raw, {"type", kind}, "chunking_strategy")
    params = raw.get(kind)
    prefix = f"chunking_strategy.{kind}"
    if not isinstance(params, dict):
        raise InvalidChunkingStrategy(f"Missing required parameter: '{prefix}'.", prefix)
    _reject_extra(params, {"max_chunk_size_tokens", "chunk_overlap_tokens"}, prefix)
    size = _int_param(params, "max_chunk_size_tokens", prefix)
    overlap = _int_param(params, "chunk_overlap_tokens", prefix)
    if not MIN_MAX_TOKENS <= size <= MAX_MAX_TOKENS:
        bound = "below minimum" if size < MIN_MAX_TOKENS else "above maximum"
        expect = f">= {MIN_MAX_TOKENS}" if size < MIN_MAX_TOKENS else f"<= {MAX_MAX_TOKENS}"
        raise InvalidChunkingStrategy(
            f"Invalid '{prefix}.max_chunk_size_tokens': integer {bound} value. "
            f"Expected a value {expect}, but got {size} instead.",
            f"{prefix}.max_chunk_size_tokens",
        )
    if overlap < 0:
        raise InvalidChunkingStrategy(
            f"Invalid '{prefix}.chunk_overlap_tokens': integer below minimum value. "
            f"Expected a value >= 0, but got {overlap} instead.",
            f"{prefix}.chunk_overlap_tokens",
        )
    if overlap > size // 2:
        raise InvalidChunkingStrategy(
            f"Invalid '{prefix}.chunk_overlap_tokens': chunk_overlap_tokens must not exceed "
            f"half of max_chunk_size_tokens ({size // 2}), but got {overlap} instead.",
            f"{prefix}.chunk_overlap_tokens",
        )
    return _static_form(kind, size, overlap)


def reported_strategy(strategy: dict[str, Any]) -> dict[str, Any]:
    """A stored strategy as the API shows it: `auto` as the static chunking it performs (as
    the hosted API reports its auto values), the others as stored."""
    if strategy.get("type") == "auto":
        return _static_form("static", DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP)
    return strategy


def embedding_windows(strategy: dict[str, Any] | None) -> tuple[int, int] | None:
    """(tokens, overlap) of the windows a strategy's chunks are embedded in: `auto`'s small
    windows, or None for the model's whole window (254 tokens for MiniLM, 32 overlap), which
    is what explicit strategies have always used."""
    if strategy is None or strategy.get("type") == "auto":
        return AUTO_WINDOW_TOKENS, AUTO_WINDOW_OVERLAP
    return None


def _static_form(kind: str, size: int, overlap: int) -> dict[str, Any]:
    return {"type": kind, kind: {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def _reject_extra(obj: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            raise InvalidChunkingStrategy(
                f"Unknown parameter: '{prefix}.{key}'.", f"{prefix}.{key}"
            )


def _int_param(params: dict[str, Any], name: str, prefix: str) -> int:
    value = params.get(name)
    if value is None:
        raise InvalidChunkingStrategy(
            f"Missing required parameter: '{prefix}.{name}'.", f"{prefix}.{name}"
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidChunkingStrategy(
            f"Invalid type for '{prefix}.{name}': expected an integer, but got "
            f"{type(value).__name__} instead.",
            f"{prefix}.{name}",
        )
    return value


def chunk_document(
    doc: ParsedDocument, strategy: dict[str, Any], tokenizer: Tokenizer
) -> list[Chunk]:
    """Chunk `doc` by a strategy from `normalize_strategy` (raw input is normalised first)."""
    strategy = normalize_strategy(strategy)
    kind = strategy["type"]
    if kind == "auto":
        size, overlap = DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP
    else:
        size = strategy[kind]["max_chunk_size_tokens"]
        overlap = strategy[kind]["chunk_overlap_tokens"]
    offsets = tokenizer.token_offsets(doc.text)
    if not offsets:
        return []
    if kind in ("static", "auto"):
        spans = _windows(0, len(offsets), size, overlap)
    else:
        cuts = _markdown_cuts(doc.text) if kind == "markdown" else _code_cuts(doc.text)
        spans = _pack(_blocks(offsets, cuts), size, overlap)
    return [
        Chunk(
            index=i,
            text=doc.text[offsets[a][0] : offsets[b - 1][1]],
            start=offsets[a][0],
            end=offsets[b - 1][1],
            tokens=b - a,
            page=doc.page_at(offsets[a][0]),
        )
        for i, (a, b) in enumerate(spans)
    ]


def _windows(first: int, last: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows over [first, last): `size` long, each starting `size - overlap` later."""
    spans = []
    step = size - overlap
    start = first
    while True:
        end = min(start + size, last)
        spans.append((start, end))
        if end >= last:
            return spans
        start += step


# A cut is a line start where a new block begins, with a strength: 2 = section (heading or
# top-level definition), 1 = paragraph (first line after blank lines).
_SECTION, _PARAGRAPH = 2, 1
_HEADING = re.compile(r"#{1,6}[ \t]")
_FENCE = re.compile(r"[ \t]{0,3}(```|~~~)")
_DEFINITION = re.compile(
    r"(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:def|class|function|func|fn|impl|struct|enum|"
    r"trait|interface|type|module|package|namespace|public|private|protected|internal|static|"
    r"abstract|final|sealed|pub|object|CREATE|create)\b"
)
_LEAD_IN = re.compile(r"(?:@\w|#|//|/\*|\*|--|\"\"\"|;)")


def _lines(text: str) -> list[tuple[int, str]]:
    """(start offset, line) for every line."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def _markdown_cuts(text: str) -> dict[int, int]:
    cuts: dict[int, int] = {}
    fenced = blank = False
    for pos, line in _lines(text):
        if _FENCE.match(line):
            fenced = not fenced
        if not line.strip():
            blank = True
            continue
        if not fenced and _HEADING.match(line):
            cuts[pos] = _SECTION
        elif blank:
            cuts[pos] = _PARAGRAPH
        blank = False
    return cuts


def _code_cuts(text: str) -> dict[int, int]:
    """Top-level definitions (with the comments/decorators right above them) and blank lines."""
    cuts: dict[int, int] = {}
    lead_in: int | None = None  # start of the comment/decorator run just above
    blank = False
    for pos, line in _lines(text):
        if not line.strip():
            blank, lead_in = True, None
            continue
        top_level = not line[0].isspace()
        if top_level and _DEFINITION.match(line):
            cuts[pos if lead_in is None else lead_in] = _SECTION
        elif blank:
            cuts[pos] = _PARAGRAPH
        if top_level and _LEAD_IN.match(line):
            lead_in = pos if lead_in is None else lead_in
        else:
            lead_in = None
        blank = False
    return cuts


@dataclass
class _Block:
    first: int  # token index range [first, last)
    last: int
    section: bool  # begins at a heading / top-level definition


def _blocks(offsets: list[tuple[int, int]], cuts: dict[int, int]) -> list[_Block]:
    """Group tokens into blocks, a new block at the first token at or after each cut."""
    positions = sorted(cuts)
    blocks: list[_Block] = []
    first, section, p = 0, False, 0
    for i, (start, _) in enumerate(offsets):
        level = 0
        while p < len(positions) and positions[p] <= start:
            level = max(level, cuts[positions[p]])
            p += 1
        if level and i > first:
            blocks.append(_Block(first, i, section))
            first, section = i, level == _SECTION
        elif level:
            section = section or level == _SECTION
    blocks.append(_Block(first, len(offsets), section))
    return blocks


def _pack(blocks: list[_Block], size: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of whole blocks into chunks of at most `size` tokens.

    The next chunk starts with the previous chunk's trailing blocks that fit in `overlap`
    (none at a section start); a block longer than `size` is windowed on its own.
    """
    spans: list[tuple[int, int]] = []
    current: list[_Block] = []
    carried = 0  # leading blocks of `current` already emitted with the previous chunk

    def held() -> int:
        return current[-1].last - current[0].first if current else 0

    for block in blocks:
        length = block.last - block.first
        fresh = len(current) > carried
        if length > size:
            if fresh:
                spans.append((current[0].first, current[-1].last))
            spans.extend(_windows(block.first, block.last, size, overlap))
            current, carried = [], 0
            continue
        new_section = block.section and held() >= size // 4
        if fresh and (held() + length > size or new_section):
            spans.append((current[0].first, current[-1].last))
            current = [] if new_section else _tail(current, overlap)
            carried = len(current)
        while current and block.last - current[0].first > size:
            current.pop(0)
            carried = max(0, carried - 1)
        current.append(block)
    if len(current) > carried:
        spans.append((current[0].first, current[-1].last))
    return spans


def _tail(blocks: list[_Block], overlap: int) -> list[_Block]:
    """The trailing blocks of an emitted chunk that together fit in `overlap` tokens."""
    kept: list[_Block] = []
    for block in reversed(blocks[1:]):  # never the whole chunk again
        if blocks[-1].last - block.first > overlap:
            break
        kept.insert(0, block)
    return kept
