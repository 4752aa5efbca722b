"""The chunker as it was before it streamed (whole text, one tokenizer pass), kept as
the oracle that tests/unit/test_chunk_stream.py compares the streaming chunker with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retrieval.chunking import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP,
    Chunk,
    Tokenizer,
    normalize_strategy,
)
from retrieval.parsing import ParsedDocument


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
