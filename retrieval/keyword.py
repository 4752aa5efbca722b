"""BM25 keyword search over one vector store's chunks (the bm25s library, in process).

Chunks are tokenized once, at ingest (`keyword_tokens`), and the tokens are stored with the
chunk in Chroma, so any process can rebuild a store's BM25 index with a split and a count
instead of re-tokenizing. Identifiers such as ``ERR-7731`` or ``payments_gw.cfg`` are kept
whole as well as split into parts, so exact codes match exactly; other words are stemmed.

Keyword scores are normalised per query against the score of an average-length chunk that
holds every query term once (`KeywordIndex.normalise`), capped at 1: 1.0 means "all the
query's terms, weighted by rarity", and a term no chunk has counts against the match.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

from retrieval.records import ChunkFacts, attributes_of, key_of_meta

__all__ = ["KeywordIndex", "keyword_tokens"]

_WORD = re.compile(r"\w+(?:[-./:]\w+)*")
_SEPARATORS = re.compile(r"[-_./:]+")
_STOPWORDS = frozenset(STOPWORDS_EN_PLUS)
_local = threading.local()


def _stemmer() -> Any:
    """PyStemmer objects are not thread-safe: one per thread."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased, stop-worded, stemmed words; compound identifiers also kept whole."""
    words: list[str] = []
    wholes: list[str] = []
    for match in _WORD.finditer(text.lower()):
        token = match.group()
        parts = _SEPARATORS.split(token)
        if len(parts) > 1:
            wholes.append(token)
        words.extend(p for p in parts if p and p not in _STOPWORDS and (len(p) > 1 or p.isdigit()))
    stems: list[str] = _stemmer().stemWords(words)
    return stems + wholes


@dataclass
class KeywordIndex:
    """An immutable snapshot of one store at one revision: the BM25 index plus the chunk
    table that search needs (so candidates cost no Chroma round trip until their text)."""

    revision: str
    keys: list[str]  # chunk keys (retrieval.records), in BM25 document order
    file_of: np.ndarray  # chunk position -> position in `files`
    files: list[str]
    filenames: list[str]  # per file
    attributes: list[dict[str, Any]]  # per file, unprefixed
    spans: np.ndarray  # per chunk: start, end, page (-1: none), windows
    total_windows: int
    retriever: bm25s.BM25 | None
    doc_freq: dict[str, int] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, revision: str, records: list[dict[str, Any]]) -> KeywordIndex:
        """`records`: window-0 metadata of every chunk, as ChunkIndex writes it."""
        records = sorted(
            records, key=lambda m: (m["file_id"], m.get("generation", -1), m["chunk_index"])
        )
        keys = [key_of_meta(m) for m in records]
        files: list[str] = []
        filenames: list[str] = []
        attributes: list[dict[str, Any]] = []
        file_pos: dict[str, int] = {}
        file_of = np.empty(len(records), dtype=np.int64)
        spans = np.empty((len(records), 4), dtype=np.int64)
        for i, meta in enumerate(records):
            pos = file_pos.get(meta["file_id"])
            if pos is None:
                pos = file_pos[meta["file_id"]] = len(files)
                files.append(meta["file_id"])
                filenames.append(meta.get("filename", ""))
                attributes.append(attributes_of(meta))
            file_of[i] = pos
            spans[i] = (meta["start"], meta["end"], meta.get("page", -1), meta.get("windows", 1))
        retriever = None
        doc_freq: dict[str, int] = {}
        if records:
            retriever = bm25s.BM25()  # Lucene BM25, k1=1.5, b=0.75
            retriever.index([m.get("kw", "").split() for m in records], show_progress=False)
            indptr = retriever.scores["indptr"]
            doc_freq = {  # bm25s keeps its scores column-major by token: df = column length
                tok: int(indptr[i + 1] - indptr[i])
                for tok, i in retriever.vocab_dict.items()
                if tok and i + 1 < len(indptr)
            }
        return cls(
            revision=revision,
            keys=keys,
            file_of=file_of,
            files=files,
            filenames=filenames,
            attributes=attributes,
            spans=spans,
            total_windows=int(spans[:, 3].sum()) if len(records) else 0,
            retriever=retriever,
            doc_freq=doc_freq,
            position={key: i for i, key in enumerate(keys)},
        )

    def chunk(self, pos: int) -> ChunkFacts:
        """What the snapshot knows of chunk `pos`."""
        f = int(self.file_of[pos])
        start, end, page, windows = (int(x) for x in self.spans[pos])
        return ChunkFacts(
            file_id=self.files[f],
            filename=self.filenames[f],
            start=start,
            end=end,
            page=None if page < 0 else page,
            windows=windows,
            attributes=self.attributes[f],
        )

    def scores(self, tokens: list[str], mask: np.ndarray | None) -> np.ndarray:
        """Normalised (0..1) keyword score of every chunk for one query's tokens."""
        if self.retriever is None or not tokens:
            return np.zeros(len(self.keys), dtype=np.float32)
        unique = list(dict.fromkeys(tokens))
        known = [t for t in unique if t in self.doc_freq]
        raw = self.retriever.get_scores(known) if known else np.zeros(len(self.keys))
        if mask is not None:
            raw = raw * mask
        return np.minimum(raw / self._ideal(unique), 1.0).astype(np.float32)

    def _ideal(self, tokens: list[str]) -> float:
        """BM25 of an average-length chunk holding each token once (unknown tokens: df=0)."""
        assert self.retriever is not None
        n = len(self.keys)
        idf = 0.0
        for token in tokens:
            df = self.doc_freq.get(token, 0)
            idf += math.log(1 + (n - df + 0.5) / (df + 0.5))
        k1: float = self.retriever.k1
        return max(idf / (1 + k1), 1e-9)

    def top(self, scores: np.ndarray, k: int) -> list[int]:
        """Positions of the `k` best chunks with a positive score, best first."""
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        best: list[int] = hits[np.argsort(-scores[hits], kind="stable")].tolist()
        return best

    def file_mask(self, predicate: Any) -> np.ndarray:
        """1.0 for chunks whose file passes `predicate`, else 0.0."""
        keep = np.fromiter(
            (bool(predicate(a)) for a in self.attributes), dtype=bool, count=len(self.files)
        )
        mask: np.ndarray = keep[self.file_of].astype(np.float32)
        return mask
