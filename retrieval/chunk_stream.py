"""The chunker's machinery, fed a document as a stream of text pieces.

Why a stream: tokenizing a whole 100 MB text at once holds ~25M token offsets (gigabytes
as Python tuples). Here text is tokenized a segment at a time and only what the chunk
being built still needs is kept, so memory stays bounded by the chunk size, not the
document's; the chunks are the same as chunking the whole text at once:

* Segments end at a safe cut: before the last whitespace character that precedes a
  non-whitespace one. WordPiece, byte-level BPE and Metaspace pre-tokenizers never join
  text across such a point (BPE attaches that last space to the next word, which stays in
  the next segment), so tokens and their offsets equal the whole-text tokenization. Text
  with no whitespace for `MAX_PENDING` characters is cut anyway.
* Offsets are global character offsets, so `chunk.text == text[chunk.start:chunk.end]`.
* `static` windows are exactly `size` tokens advancing by `size - overlap`, the last one
  shorter, as when the token count is known up front: a window is emitted once one more
  token past it exists, the last one when the stream ends.
* `markdown` and `code` cuts are found line by line with the same rules
  (retrieval/chunk_cuts.py).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from retrieval.chunk_cuts import SECTION, LineCuts
from retrieval.parsing import TextPiece

SEGMENT_CHARS = 1 << 16  # text tokenized per call
MAX_PENDING = 1 << 20  # untokenized text without a safe cut before cutting anyway

_SAFE_REVERSED = re.compile(r"(?<=\S)\s")  # in reversed text: a space before a non-space
_SAFE = re.compile(r"\s(?=\S)")


class Tokenizer(Protocol):
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text`, special tokens excluded."""
        ...


@dataclass
class Chunk:
    """Tokens `[start, end)` of the document as characters; `page` is where the chunk starts."""

    index: int
    text: str
    start: int
    end: int
    tokens: int
    page: int | None


@dataclass
class Block:
    first: int  # token index range [first, last)
    last: int
    section: bool  # begins at a heading / top-level definition


class _Text:
    """The document's text from `base` on (earlier text is dropped once no chunk needs it)."""

    def __init__(self) -> None:
        self.buf = ""
        self.base = 0
        self.pages: list[tuple[int, int]] = []  # (start offset, page number)

    @property
    def end(self) -> int:
        return self.base + len(self.buf)

    def add(self, piece: TextPiece) -> None:
        if piece.page is not None and (not self.pages or self.pages[-1][1] != piece.page):
            if self.pages and self.pages[-1][0] == self.end:
                self.pages[-1] = (self.end, piece.page)  # an empty page: the later one wins
            else:
                self.pages.append((self.end, piece.page))
        self.buf += piece.text

    def slice(self, start: int, end: int) -> str:
        return self.buf[start - self.base : end - self.base]

    def page_at(self, offset: int) -> int | None:
        if not self.pages:
            return None
        i = bisect_right(self.pages, (offset, float("inf"))) - 1
        return self.pages[max(0, i)][1]

    def trim(self, keep_from: int) -> None:
        if keep_from > self.base:
            self.buf = self.buf[keep_from - self.base :]
            self.base = keep_from
        while len(self.pages) > 1 and self.pages[1][0] <= keep_from:
            self.pages.pop(0)


class _Tokens:
    """Token spans (global character offsets) with global indexes from `base` on."""

    def __init__(self) -> None:
        self.starts = np.zeros(0, dtype=np.int64)
        self.ends = np.zeros(0, dtype=np.int64)
        self.base = 0

    @property
    def count(self) -> int:
        return self.base + len(self.starts)

    def extend(self, offsets: list[tuple[int, int]], shift: int) -> None:
        if offsets:
            spans = np.asarray(offsets, dtype=np.int64) + shift
            self.starts = np.concatenate([self.starts, spans[:, 0]])
            self.ends = np.concatenate([self.ends, spans[:, 1]])

    def start(self, i: int) -> int:
        return int(self.starts[i - self.base])

    def end(self, i: int) -> int:
        return int(self.ends[i - self.base])

    def first_at(self, offset: int) -> int:
        """Index of the first token starting at or after `offset` (`count`: none yet)."""
        return self.base + int(np.searchsorted(self.starts, offset, side="left"))

    def trim(self, keep: int) -> None:
        if keep > self.base:
            cut = keep - self.base
            self.starts, self.ends = self.starts[cut:], self.ends[cut:]
            self.base = keep


class _Windows:
    """Static windows over tokens [first, last): `size` long, each `step` after the last."""

    def __init__(self, first: int, size: int, step: int) -> None:
        self.start, self.size, self.step = first, size, step

    def advance(self, available: int) -> list[tuple[int, int]]:
        """Windows that are certain while the range runs on past `available` tokens."""
        out = []
        while available > self.start + self.size:
            out.append((self.start, self.start + self.size))
            self.start += self.step
        return out

    def close(self, last: int) -> list[tuple[int, int]]:
        out = self.advance(last)
        if self.start < last:
            out.append((self.start, last))
        return out


class _Packer:
    """Greedy packing of whole blocks into chunks of at most `size` tokens.

    The next chunk starts with the previous chunk's trailing blocks that fit in `overlap`
    (none at a section start); a block longer than `size` is windowed on its own (the
    caller streams its windows: `flush_before_big`)."""

    def __init__(self, size: int, overlap: int) -> None:
        self.size, self.overlap = size, overlap
        self.current: list[Block] = []
        self.carried = 0  # leading blocks of `current` already emitted with the previous chunk

    def _held(self) -> int:
        return self.current[-1].last - self.current[0].first if self.current else 0

    def _fresh(self) -> bool:
        return len(self.current) > self.carried

    def flush_before_big(self) -> list[tuple[int, int]]:
        out = [(self.current[0].first, self.current[-1].last)] if self._fresh() else []
        self.current, self.carried = [], 0
        return out

    def add(self, block: Block) -> list[tuple[int, int]]:
        out = []
        length = block.last - block.first
        new_section = block.section and self._held() >= self.size // 4
        if self._fresh() and (self._held() + length > self.size or new_section):
            out.append((self.current[0].first, self.current[-1].last))
            self.current = [] if new_section else self._tail()
            self.carried = len(self.current)
        while self.current and block.last - self.current[0].first > self.size:
            self.current.pop(0)
            self.carried = max(0, self.carried - 1)
        self.current.append(block)
        return out

    def finish(self) -> list[tuple[int, int]]:
        return self.flush_before_big()

    def _tail(self) -> list[Block]:
        """The trailing blocks of an emitted chunk that together fit in `overlap` tokens."""
        kept: list[Block] = []
        for block in reversed(self.current[1:]):  # never the whole chunk again
            if self.current[-1].last - block.first > self.overlap:
                break
            kept.insert(0, block)
        return kept


class ChunkStream:
    """Chunks of a document fed piece by piece: `feed` returns the chunks that became
    certain, `finish` the rest. `kind` is "static", "markdown" or "code"."""

    def __init__(self, kind: str, size: int, overlap: int, tokenizer: Tokenizer) -> None:
        self.size, self.overlap, self.tokenizer = size, overlap, tokenizer
        self.text = _Text()
        self.tokens = _Tokens()
        self.tokenized = 0  # text before this offset is tokenized
        self.lines = LineCuts(kind) if kind != "static" else None
        self.packer = _Packer(size, overlap)
        self.block_first, self.block_section = 0, False  # the open block
        self.big: _Windows | None = _Windows(0, size, size - overlap) if kind == "static" else None
        self.index = 0

    def feed(self, piece: TextPiece) -> list[Chunk]:
        self.text.add(piece)
        return self._advance(final=False)

    def finish(self) -> list[Chunk]:
        return self._advance(final=True)

    def _advance(self, final: bool) -> list[Chunk]:
        if self.lines is not None:
            self.lines.scan(self.text.buf, self.text.base, final)
        self._tokenize(final)
        spans = self._spans(final)
        chunks = [self._chunk(a, b) for a, b in spans]
        self._trim()
        return chunks

    def _tokenize(self, final: bool) -> None:
        text = self.text
        while self.tokenized < text.end:
            pending = text.end - self.tokenized
            if pending <= SEGMENT_CHARS and final:
                cut = text.end
            elif pending <= SEGMENT_CHARS:
                return
            else:
                safe = self._safe_cut(forced=pending > MAX_PENDING)
                if safe is None and not final:
                    return
                cut = text.end if safe is None else safe
            segment = text.slice(self.tokenized, cut)
            self.tokens.extend(self.tokenizer.token_offsets(segment), self.tokenized)
            self.tokenized = cut

    def _safe_cut(self, forced: bool) -> int | None:
        """Where the next segment ends: the last safe cut within SEGMENT_CHARS, else the
        first one after; with `forced`, SEGMENT_CHARS on when there is none at all."""
        start, text = self.tokenized, self.text
        window = text.slice(start + 1, start + SEGMENT_CHARS + 1)
        match = _SAFE_REVERSED.search(window[::-1])
        if match:
            return start + 1 + len(window) - 1 - match.start()
        match = _SAFE.search(text.buf, start + SEGMENT_CHARS - text.base)
        if match:
            return text.base + match.start()
        return start + SEGMENT_CHARS if forced else None

    def _spans(self, final: bool) -> list[tuple[int, int]]:
        tokens = self.tokens
        if self.lines is None:  # static: windows over the whole document
            assert self.big is not None
            if final:
                return self.big.close(tokens.count) if tokens.count else []
            return self.big.advance(tokens.count)
        resolved_at = tokens.count if final else self.lines.resolved(self.text.end)
        resolved = tokens.first_at(resolved_at) if not final else tokens.count
        out: list[tuple[int, int]] = []
        cuts = self.lines.cuts
        while cuts and (final or cuts[0][0] < resolved_at):
            j = tokens.first_at(cuts[0][0])
            if j >= tokens.count or (j >= resolved and not final):
                break  # its token is not here yet, or not settled
            level = cuts.popleft()[1]
            if j > self.block_first:
                out += self._close_block(j)
                self.block_first, self.block_section = j, level == SECTION
            else:
                self.block_section = self.block_section or level == SECTION
        if final:
            cuts.clear()
            if tokens.count:
                out += self._close_block(tokens.count)
            out += self.packer.finish()
            return out
        if self.big is None and resolved - self.block_first > self.size:
            out += self.packer.flush_before_big()
            self.big = _Windows(self.block_first, self.size, self.size - self.overlap)
        if self.big is not None:
            out += self.big.advance(resolved)
        return out

    def _close_block(self, last: int) -> list[tuple[int, int]]:
        if self.big is not None:
            out = self.big.close(last)
            self.big = None
            return out
        block = Block(self.block_first, last, self.block_section)
        if last - self.block_first > self.size:
            return self.packer.flush_before_big() + _Windows(
                block.first, self.size, self.size - self.overlap
            ).close(last)
        return self.packer.add(block)

    def _chunk(self, a: int, b: int) -> Chunk:
        start, end = self.tokens.start(a), self.tokens.end(b - 1)
        chunk = Chunk(
            index=self.index,
            text=self.text.slice(start, end),
            start=start,
            end=end,
            tokens=b - a,
            page=self.text.page_at(start),
        )
        self.index += 1
        return chunk

    def _trim(self) -> None:
        """Drop the tokens and text no chunk to come can use."""
        needed = [self.tokens.count]
        if self.big is not None:
            needed.append(self.big.start)
        if self.lines is not None:
            needed.append(self.block_first)
            if self.packer.current:
                needed.append(self.packer.current[0].first)
        keep = min(needed)
        self.tokens.trim(keep)
        keep_from = [self.tokenized]
        if keep < self.tokens.count:
            keep_from.append(self.tokens.start(keep))
        if self.lines is not None:
            keep_from.append(self.lines.keep_from())
        self.text.trim(min(keep_from))


def stream_chunks(
    pieces: Iterable[TextPiece], kind: str, size: int, overlap: int, tokenizer: Tokenizer
) -> Iterator[Chunk]:
    stream = ChunkStream(kind, size, overlap, tokenizer)
    for piece in pieces:
        yield from stream.feed(piece)
    yield from stream.finish()
