"""Where the `markdown` and `code` strategies may start a block: cuts at line starts,
found line by line as the text streams in (retrieval/chunk_stream.py packs the blocks).

Two bounds keep pathological input from holding everything in memory: a line longer than
`LINE_CAP` characters is classified by its first `LINE_CAP`, and a run of comment lines
above a definition (which the definition's cut moves up to) longer than `LEAD_IN_CAP`
restarts at the current line.
"""

from __future__ import annotations

import re
from collections import deque

LINE_CAP = 1 << 16
LEAD_IN_CAP = 1 << 16

# A cut is a line start where a new block begins, with a strength: 2 = section (heading or
# top-level definition), 1 = paragraph (first line after blank lines).
SECTION, PARAGRAPH = 2, 1
_HEADING = re.compile(r"#{1,6}[ \t]")
_FENCE = re.compile(r"[ \t]{0,3}(```|~~~)")
_DEFINITION = re.compile(
    r"(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:def|class|function|func|fn|impl|struct|enum|"
    r"trait|interface|type|module|package|namespace|public|private|protected|internal|static|"
    r"abstract|final|sealed|pub|object|CREATE|create)\b"
)
_LEAD_IN = re.compile(r"(?:@\w|#|//|/\*|\*|--|\"\"\"|;)")


class LineCuts:
    """Finds the cuts of `kind` ("markdown" or "code") line by line; cuts at positions
    below `resolved` are final."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.line_start = 0
        self.decided = False  # the current (long) line was classified by its prefix
        self.searched = 0  # no newline between line_start and here
        self.fenced = self.blank = False
        self.lead_in: int | None = None  # start of the comment/decorator run just above
        self.cuts: deque[tuple[int, int]] = deque()

    def resolved(self, text_end: int) -> int:
        if self.lead_in is not None:
            return self.lead_in
        return text_end if self.decided else self.line_start

    def keep_from(self) -> int:
        """The text the scanner still needs starts here."""
        if self.lead_in is not None:
            return self.lead_in
        return self.searched if self.decided else self.line_start

    def scan(self, buf: str, base: int, final: bool) -> None:
        """Classify the lines of `buf` (the text from global offset `base` on) not yet
        seen; with `final`, the last line too."""
        text_end = base + len(buf)
        while True:
            newline = buf.find("\n", max(self.line_start, self.searched) - base)
            if newline < 0:
                self.searched = text_end
                length = text_end - self.line_start
                if not self.decided and ((final and length) or length >= LINE_CAP):
                    end = min(text_end, self.line_start + LINE_CAP)
                    self._line(self.line_start, buf[self.line_start - base : end - base])
                    self.decided = True
                return
            if not self.decided:
                end = min(base + newline, self.line_start + LINE_CAP)
                self._line(self.line_start, buf[self.line_start - base : end - base])
            self.line_start = self.searched = base + newline + 1
            self.decided = False

    def _cut(self, pos: int, level: int) -> None:
        if self.cuts and self.cuts[-1][0] == pos:
            self.cuts[-1] = (pos, max(level, self.cuts[-1][1]))
        else:
            self.cuts.append((pos, level))

    def _line(self, pos: int, line: str) -> None:
        if self.kind == "markdown":
            if _FENCE.match(line):
                self.fenced = not self.fenced
            if not line.strip():
                self.blank = True
                return
            if not self.fenced and _HEADING.match(line):
                self._cut(pos, SECTION)
            elif self.blank:
                self._cut(pos, PARAGRAPH)
            self.blank = False
            return
        if not line.strip():
            self.blank, self.lead_in = True, None
            return
        top_level = not line[0].isspace()
        if top_level and _DEFINITION.match(line):
            self._cut(pos if self.lead_in is None else self.lead_in, SECTION)
        elif self.blank:
            self._cut(pos, PARAGRAPH)
        if top_level and _LEAD_IN.match(line):
            if self.lead_in is None or pos - self.lead_in > LEAD_IN_CAP:
                self.lead_in = pos
        else:
            self.lead_in = None
        self.blank = False
