"""Split a document into chunks measured in the embedding model's own tokens.

The document is tokenized with the model's fast tokenizer and its offsets, and every chunk
is a run of those tokens, so `chunk.text == doc.text[chunk.start:chunk.end]` always holds.
The text may come as a stream of pieces (`chunk_pieces`): it is then tokenized a segment at
a time and memory stays bounded (retrieval/chunk_stream.py), with the same chunks as for
the whole text. Four strategies:

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

from collections.abc import Iterable, Iterator
from typing import Any

from retrieval.chunk_stream import Chunk, Tokenizer, stream_chunks
from retrieval.parsing import ParsedDocument, TextPiece

__all__ = [
    "AUTO_WINDOW_OVERLAP",
    "AUTO_WINDOW_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP",
    "Chunk",
    "InvalidChunkingStrategy",
    "Tokenizer",
    "chunk_document",
    "chunk_pieces",
    "document_pieces",
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


class InvalidChunkingStrategy(ValueError):
    """A malformed `chunking_strategy`; `param` names the offending field, as OpenAI does."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


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
    """Chunk a whole parsed document by a strategy from `normalize_strategy` (raw input is
    normalised first)."""
    return list(chunk_pieces(document_pieces(doc), strategy, tokenizer))


def chunk_pieces(
    pieces: Iterable[TextPiece], strategy: dict[str, Any], tokenizer: Tokenizer
) -> Iterator[Chunk]:
    """Chunks of a document given as a stream of pieces (`parsing.open_document`), yielded
    as they become certain; memory stays bounded by the chunk size, whatever the
    document's (retrieval/chunk_stream.py). The same chunks as `chunk_document` of the
    whole text."""
    strategy = normalize_strategy(strategy)
    kind = strategy["type"]
    if kind == "auto":  # static windows of the auto size, embedded small-to-big
        kind, size, overlap = "static", DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP
    else:
        size = strategy[kind]["max_chunk_size_tokens"]
        overlap = strategy[kind]["chunk_overlap_tokens"]
    return stream_chunks(pieces, kind, size, overlap, tokenizer)


def document_pieces(doc: ParsedDocument) -> Iterator[TextPiece]:
    """A parsed document as pieces: one per page, or the whole text."""
    if not doc.pages:
        yield TextPiece(doc.text)
        return
    for page in doc.pages:
        yield TextPiece(doc.text[page.start : page.end], page.number)
