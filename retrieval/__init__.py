"""Retrieval for file_search: parse files, chunk them, embed the chunks, and search them.

The pipeline is ``parse_file`` (text and pages from PDF, Office, HTML, text and code) ->
``chunk_document`` (chunks in the embedding model's tokens, OpenAI's static strategy plus
markdown- and code-aware ones) -> ``Embedder.encode`` (one vector per model window, so long
chunks are never truncated) -> ``ChunkIndex.add_file`` (a Chroma collection per vector
store), and ``ChunkIndex.search`` runs hybrid vector + BM25 search with OpenAI's attribute
filters. The package knows nothing about the HTTP server; the server calls into it.

Heavy dependencies (torch, sentence-transformers, pypdf, markitdown) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names and the module each lives in. They are imported on first access (PEP 562),
# so `import retrieval.embedding` alone does not pull in Chroma, and the GPU benchmark
# runs where only torch and sentence-transformers are installed.
_EXPORTS = {
    "DEFAULT_MAX_TOKENS": "chunking",
    "DEFAULT_OVERLAP": "chunking",
    "Chunk": "chunking",
    "InvalidChunkingStrategy": "chunking",
    "chunk_document": "chunking",
    "normalize_strategy": "chunking",
    "DEFAULT_EMBEDDING_MODEL": "embedding",
    "Embedder": "embedding",
    "UnknownEmbeddingModel": "embedding",
    "get_embedder": "embedding",
    "InvalidFilter": "filters",
    "validate_filters": "filters",
    "Candidate": "records",
    "ChunkIndex": "index",
    "SearchTrace": "records",
    "StoredChunk": "records",
    "InvalidFile": "parsing",
    "PageSpan": "parsing",
    "ParsedDocument": "parsing",
    "UnsupportedFile": "parsing",
    "parse_file": "parsing",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(importlib.import_module(f"retrieval.{module}"), name)


__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP",
    "Candidate",
    "Chunk",
    "ChunkIndex",
    "Embedder",
    "InvalidChunkingStrategy",
    "InvalidFile",
    "InvalidFilter",
    "PageSpan",
    "ParsedDocument",
    "SearchTrace",
    "StoredChunk",
    "UnknownEmbeddingModel",
    "UnsupportedFile",
    "chunk_document",
    "get_embedder",
    "normalize_strategy",
    "parse_file",
    "validate_filters",
]
