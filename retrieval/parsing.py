"""Turn an uploaded file into plain text (plus page spans where the format has pages).

The format is chosen by the upload's filename extension, as OpenAI does: the stored blob has
no name of its own. Binary formats go through maintained converters (pypdf for PDF, one
page at a time so citations can name a page; markitdown for DOCX/PPTX/XLSX/HTML), text
formats are decoded here. Two failure kinds keep the server's answers clear:
`UnsupportedFile` (we do not read this format at all) and `InvalidFile` (the format is one we
read, but this file is corrupt, encrypted, binary or empty).
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DocumentStream",
    "InvalidFile",
    "PageSpan",
    "ParsedDocument",
    "TextPiece",
    "UnsupportedFile",
    "open_document",
    "parse_file",
]

BLOCK_BYTES = 1 << 20  # a text file is read and decoded this much at a time
PIECE_CHARS = 1 << 20  # converters' whole texts are handed on in pieces this long


@dataclass(frozen=True)
class PageSpan:
    """Page `number` (1-based) covers `text[start:end]` of its document."""

    number: int
    start: int
    end: int


@dataclass
class ParsedDocument:
    """Extracted text; `pages` tile `text` exactly (contiguous, in order) or are None."""

    text: str
    pages: list[PageSpan] | None
    format: str

    def page_at(self, offset: int) -> int | None:
        """Page number holding character `offset` (None for formats without pages)."""
        if not self.pages:
            return None
        lo, hi = 0, len(self.pages) - 1
        while lo < hi:  # last page whose start <= offset
            mid = (lo + hi + 1) // 2
            if self.pages[mid].start <= offset:
                lo = mid
            else:
                hi = mid - 1
        return self.pages[lo].number


@dataclass(frozen=True)
class TextPiece:
    """A run of a document's text; `page` is the page it belongs to (None: no pages). A
    page starts with the first piece that carries its number."""

    text: str
    page: int | None = None


class DocumentStream:
    """A document's text as pieces, produced while they are consumed. `fraction` says how
    far through the file the pieces so far reach (bytes for text, pages for PDF), for
    progress. Iterating raises `InvalidFile` at the end when the file held no text."""

    def __init__(
        self,
        pieces: Iterator[TextPiece],
        format: str,
        filename: str,
        fraction: Callable[[], float],
    ) -> None:
        self.format = format
        self.filename = filename
        self._pieces = pieces
        self._fraction = fraction

    @property
    def fraction(self) -> float:
        return min(1.0, max(0.0, self._fraction()))

    def __iter__(self) -> Iterator[TextPiece]:
        seen = False
        for piece in self._pieces:
            seen = seen or (bool(piece.text) and not piece.text.isspace())
            yield piece
        if not seen:
            raise InvalidFile(
                f"File '{self.filename}' contains no extractable text"
                + (" (a scanned PDF needs OCR first)" if self.format == "pdf" else "")
                + "."
            )


class UnsupportedFile(Exception):
    """The file's type is not one file_search can read."""


class InvalidFile(Exception):
    """The file claims a supported type but cannot be read as one."""


_TEXT_FORMATS = {
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".rst": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".tsv": "csv",
}
_CODE_NAMES = (
    "c h cc cpp cxx hpp cs css scss go java js jsx mjs ts tsx php py rb sh bash zsh tex rs kt"
    " kts swift sql yaml yml xml toml ini cfg scala lua pl r m dart vue svelte proto graphql"
    " ipynb bat ps1 dockerfile tf hs ex exs erl clj groovy gradle jl ml fs vb asm"
)
_CODE_EXTENSIONS = frozenset(f".{name}" for name in _CODE_NAMES.split(" "))
_MARKITDOWN_FORMATS = {
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".html": "html",
    ".htm": "html",
}
SUPPORTED_EXTENSIONS = frozenset({".pdf", *_TEXT_FORMATS, *_CODE_EXTENSIONS, *_MARKITDOWN_FORMATS})
_HINTS = {
    ".doc": "save it as .docx",
    ".ppt": "save it as .pptx",
    ".xls": "save it as .xlsx or .csv",
    ".rtf": "save it as .docx or .txt",
}
_SLIDE_MARK = re.compile(r"^<!-- Slide number: (\d+) -->\n?", re.MULTILINE)
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def parse_file(path: Path, filename: str) -> ParsedDocument:
    """Extract the text of the file at `path`, choosing the parser by `filename`'s extension.

    The whole text at once; ingestion reads `open_document`'s pieces instead."""
    stream = open_document(path, filename)
    parts: list[str] = []
    pages: list[PageSpan] = []
    pos = 0
    for piece in stream:
        if piece.page is not None:
            if pages and pages[-1].number == piece.page:
                pages[-1] = PageSpan(piece.page, pages[-1].start, pos + len(piece.text))
            else:
                pages.append(PageSpan(piece.page, pos, pos + len(piece.text)))
        parts.append(piece.text)
        pos += len(piece.text)
    return ParsedDocument("".join(parts), pages or None, stream.format)


def open_document(path: Path, filename: str) -> DocumentStream:
    """The file's text as a stream of pieces, read as they are consumed: text files in
    1 MiB blocks, PDFs a page at a time, so memory stays bounded whatever the file's size
    (the Office and HTML converters produce their whole text at once). Problems found on
    opening raise here; a text file's encoding and binary checks read the file once first,
    so only a BOM-marked file that turns out undecodable, or a PDF page that cannot be
    read, raises while iterating."""
    ext = PurePath(filename).suffix.lower()
    if ext == ".pdf":
        return _pdf_stream(path, filename)
    if ext in _MARKITDOWN_FORMATS:
        return _whole(_parse_markitdown(path, filename, ext), filename)
    if ext in _TEXT_FORMATS or ext in _CODE_EXTENSIONS:
        return _text_stream(path, filename, _text_format(ext))
    raise UnsupportedFile(_unsupported_message(filename, ext))


def _text_format(ext: str) -> str:
    return _TEXT_FORMATS.get(ext, "code")


def _unsupported_message(filename: str, ext: str) -> str:
    if not ext:
        return (
            f"File '{filename}' has no extension, so its type is unknown. "
            "Upload it with an extension such as .txt, .md, .pdf or .docx."
        )
    hint = f" ({_HINTS[ext]})" if ext in _HINTS else ""
    return (
        f"Files with extension '{ext}' are not supported for retrieval{hint}. Supported: "
        ".pdf, .docx, .pptx, .xlsx, .html, .txt, .md, .json, .csv and source code files."
    )


def _decode_text(data: bytes, filename: str) -> str:
    """Decode text bytes: BOM-marked UTF-8/16/32, else UTF-8, else Windows-1252."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _normalise_newlines(data.decode(codec))
            except UnicodeDecodeError as exc:
                raise InvalidFile(f"File '{filename}' is not valid {codec} text: {exc}.") from exc
    if b"\x00" in data:
        raise InvalidFile(
            f"File '{filename}' looks binary (it contains NUL bytes), not text; "
            "check that the extension matches its content."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise InvalidFile(
                f"File '{filename}' is not readable text (not UTF-8 or Windows-1252)."
            ) from exc
    if _control_ratio(text) > 0.05:
        raise InvalidFile(
            f"File '{filename}' looks binary (mostly control characters), not text; "
            "check that the extension matches its content."
        )
    return _normalise_newlines(text)


def _control_ratio(text: str) -> float:
    sample = text[:65536]
    if not sample:
        return 0.0
    bad = sum(1 for ch in sample if ch not in "\n\r\t\f" and unicodedata.category(ch) == "Cc")
    return bad / len(sample)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text_stream(path: Path, filename: str, fmt: str) -> DocumentStream:
    """Decode a text file block by block, with `_decode_text`'s rules: a BOM picks the
    codec; otherwise a first pass over the bytes checks for NUL bytes and picks UTF-8 or,
    failing that, Windows-1252, and the first 64k characters must not be mostly control
    characters. CRLF and CR become LF, also across block boundaries."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(4)
    codec = next((c for bom, c in _BOMS if head.startswith(bom)), None)
    if codec is None:
        codec = _scan_codec(path, filename)
        with path.open("rb") as fh:
            sample = codecs.getincrementaldecoder(codec)().decode(fh.read(4 * 65536))
        if _control_ratio(sample) > 0.05:
            raise InvalidFile(
                f"File '{filename}' looks binary (mostly control characters), not text; "
                "check that the extension matches its content."
            )
    done = [0]

    def pieces() -> Iterator[TextPiece]:
        decoder = codecs.getincrementaldecoder(codec)()
        held = ""  # a trailing CR waits: it may be the first half of a CRLF
        with path.open("rb") as fh:
            while True:
                block = fh.read(BLOCK_BYTES)
                done[0] += len(block)
                try:
                    text = held + decoder.decode(block, final=not block)
                except UnicodeDecodeError as exc:
                    raise InvalidFile(
                        f"File '{filename}' is not valid {codec} text: {exc}."
                    ) from exc
                held = ""
                if block and text.endswith("\r"):
                    text, held = text[:-1], "\r"
                if text:
                    yield TextPiece(_normalise_newlines(text))
                if not block:
                    return

    return DocumentStream(pieces(), fmt, filename, lambda: done[0] / size if size else 1.0)


def _scan_codec(path: Path, filename: str) -> str:
    """UTF-8 if the whole file decodes as UTF-8, else Windows-1252 if it decodes as that;
    NUL bytes mean binary. One pass per candidate, a block at a time."""
    for codec in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(codec)()
        with path.open("rb") as fh:
            try:
                while block := fh.read(BLOCK_BYTES):
                    if b"\x00" in block:
                        raise InvalidFile(
                            f"File '{filename}' looks binary (it contains NUL bytes), not "
                            "text; check that the extension matches its content."
                        )
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
        return codec
    raise InvalidFile(f"File '{filename}' is not readable text (not UTF-8 or Windows-1252).")


def _pdf_stream(path: Path, filename: str) -> DocumentStream:
    """One piece per PDF page, extracted as it is consumed; pages are joined with a blank
    line that belongs to the page before, so each page's span runs to the next one's."""
    import pypdf
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its recoverable-damage chatter
    errors = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError)
    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidFile(f"File '{filename}' is a password-protected PDF.")
        count = len(reader.pages)
    except InvalidFile:
        raise
    except errors as exc:
        raise InvalidFile(f"File '{filename}' is not a readable PDF: {exc}.") from exc
    done = [0]

    def pieces() -> Iterator[TextPiece]:
        for number in range(count):
            try:
                text = (reader.pages[number].extract_text() or "").strip()
            except errors as exc:
                raise InvalidFile(f"File '{filename}' is not a readable PDF: {exc}.") from exc
            done[0] = number + 1
            yield TextPiece(text + ("\n\n" if number + 1 < count else ""), number + 1)

    return DocumentStream(pieces(), "pdf", filename, lambda: done[0] / count if count else 1.0)


def _whole(doc: ParsedDocument, filename: str) -> DocumentStream:
    """A converter's whole text, handed on in pieces (one per page where it has pages)."""
    done = [False]

    def pieces() -> Iterator[TextPiece]:
        spans = doc.pages or [PageSpan(0, 0, len(doc.text))]
        for span in spans:
            page = span.number if doc.pages else None
            for at in range(span.start, max(span.end, span.start + 1), PIECE_CHARS):
                yield TextPiece(doc.text[at : min(at + PIECE_CHARS, span.end)], page)
        done[0] = True

    return DocumentStream(pieces(), doc.format, filename, lambda: 1.0 if done[0] else 0.0)


def _parse_markitdown(path: Path, filename: str, ext: str) -> ParsedDocument:
    from markitdown import StreamInfo
    from markitdown.converters import (
        DocxConverter,
        HtmlConverter,
        PptxConverter,
        XlsxConverter,
    )

    fmt = _MARKITDOWN_FORMATS[ext]
    converter = {
        "docx": DocxConverter,
        "pptx": PptxConverter,
        "xlsx": XlsxConverter,
        "html": HtmlConverter,
    }[fmt]()
    data = path.read_bytes()
    if fmt == "html":
        data = _decode_text(data, filename).encode("utf-8")
    try:
        result = converter.convert(
            io.BytesIO(data), StreamInfo(extension=ext, charset="utf-8" if fmt == "html" else None)
        )
    except Exception as exc:  # converters raise whatever their zip/xml libraries raise
        raise InvalidFile(
            f"File '{filename}' is not a readable {fmt.upper()} file: {exc}."
        ) from exc
    text = (result.markdown or "").strip()
    if fmt == "pptx":
        return _split_slides(text)
    return ParsedDocument(text, None, fmt)


def _split_slides(markdown: str) -> ParsedDocument:
    """markitdown marks each slide with an HTML comment; turn those into page spans."""
    marks = list(_SLIDE_MARK.finditer(markdown))
    if not marks:
        return ParsedDocument(markdown, None, "pptx")
    bodies = [
        markdown[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(markdown)]
        for i, m in enumerate(marks)
    ]
    numbers = [int(m.group(1)) for m in marks]
    doc = _join_pages([b.strip() for b in bodies], "pptx")
    assert doc.pages is not None
    doc.pages = [PageSpan(numbers[p.number - 1], p.start, p.end) for p in doc.pages]
    return doc


def _join_pages(texts: list[str], fmt: str) -> ParsedDocument:
    """Join page texts with blank lines; each span runs to the next page's start."""
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for i, page in enumerate(texts):
        piece = page + ("\n\n" if i + 1 < len(texts) else "")
        starts.append(pos)
        parts.append(piece)
        pos += len(piece)
    text = "".join(parts)
    pages = [
        PageSpan(i + 1, start, starts[i + 1] if i + 1 < len(starts) else len(text))
        for i, start in enumerate(starts)
    ]
    return ParsedDocument(text, pages, fmt)
