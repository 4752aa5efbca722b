"""Turn an uploaded file into plain text (plus page spans where the format has pages).

The format is chosen by the upload's filename extension, as OpenAI does: the stored blob has
no name of its own. Binary formats go through maintained converters (pypdf for PDF, one
page at a time so citations can name a page; markitdown for DOCX/PPTX/XLSX/HTML), text
formats are decoded here. Two failure kinds keep the server's answers clear:
`UnsupportedFile` (we do not read this format at all) and `InvalidFile` (the format is one we
read, but this file is corrupt, encrypted, binary or empty).
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePath

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "InvalidFile",
    "PageSpan",
    "ParsedDocument",
    "UnsupportedFile",
    "parse_file",
]


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
    """Extract the text of the file at `path`, choosing the parser by `filename`'s extension."""
    ext = PurePath(filename).suffix.lower()
    if ext == ".pdf":
        doc = _parse_pdf(path, filename)
    elif ext in _MARKITDOWN_FORMATS:
        doc = _parse_markitdown(path, filename, ext)
    elif ext in _TEXT_FORMATS or ext in _CODE_EXTENSIONS:
        doc = ParsedDocument(_decode_text(path.read_bytes(), filename), None, _text_format(ext))
    else:
        raise UnsupportedFile(_unsupported_message(filename, ext))
    if not doc.text.strip():
        raise InvalidFile(
            f"File '{filename}' contains no extractable text"
            + (" (a scanned PDF needs OCR first)" if doc.format == "pdf" else "")
            + "."
        )
    return doc


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


def _parse_pdf(path: Path, filename: str) -> ParsedDocument:
    """One PageSpan per PDF page; pages are joined with a blank line that belongs to the page
    before it, so the spans tile the text."""
    import pypdf
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its recoverable-damage chatter
    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidFile(f"File '{filename}' is a password-protected PDF.")
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
    except InvalidFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise InvalidFile(f"File '{filename}' is not a readable PDF: {exc}.") from exc
    return _join_pages(texts, "pdf")


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
