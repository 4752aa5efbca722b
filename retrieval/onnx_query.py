"""Sentence-transformers models on ONNX Runtime: the query encoder and the ingestion
encoder, both from one in-memory export of the loaded model.

Why: on a CPU, PyTorch's per-operator dispatch costs more than the arithmetic of a short
query; the same graph on ONNX Runtime is about 2.5x faster for a 10-token query
(docs/benchmarks.md). Ingestion batches are arithmetic-bound, where fp32 ONNX Runtime
gains little over PyTorch; there the graph's MatMul weights are quantized to int8
(dynamic, per channel; "on" keeps the feed-forward down-projections, whose inputs after
GELU lose the most to int8, in fp32), and batches are formed by token length so padding
stays small (bench/ingest.py has the speed, docs/retrieval.md the recall each keeps). The export
happens when the model is first used on a CPU (about 2 s for MiniLM; quantizing adds a
few) and is checked against the PyTorch output; a model that does not export, or whose
exported output differs, keeps the PyTorch path. On CUDA the model stays on PyTorch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_PROBE = "How do I rotate the API keys of a production deployment?"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Cosine with the PyTorch output below which an exported graph is refused. int8 moves
# vectors a little (0.99 on average for MiniLM); what matters is the recall it keeps.
EXACT, QUANTIZED = 0.9999, 0.97


@dataclass(frozen=True)
class IngestEncoding:
    """How ingestion embeds on a CPU: on ONNX Runtime (else PyTorch), with how many
    threads (default: the CPUs this process may use), with which weights int8: "all" (the
    default: every MatMul), "on" (all but the feed-forward down-projections) or "off"
    (`encoder`). docs/retrieval.md has the recall and speed of each."""

    onnx: bool = True
    threads: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    int8: str = "all"


class OnnxEncoder:
    """`features -> unit vectors` on ONNX Runtime, for the features it was exported with."""

    def __init__(self, names: list[str], run: Callable[[dict[str, Any]], np.ndarray]) -> None:
        self.names = names
        self._run = run

    def accepts(self, features: dict[str, Any]) -> bool:
        """False when `preprocess` produced tensors the graph does not take (a prompt
        length some pooling modules read, say): those stay on PyTorch."""
        return all(k in self.names for k, v in features.items() if hasattr(v, "shape"))

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        return self._run({n: np.asarray(features[n], dtype=np.int64) for n in self.names})


QueryEncoder = OnnxEncoder


@dataclass
class Exported:
    names: list[str]
    graph: bytes
    features: dict[str, Any]  # the probe's
    reference: np.ndarray  # the probe's vector from PyTorch


def export(model: Any) -> Exported | None:
    """The model's whole pipeline (encoder, pooling, dense and normalise modules) as one
    ONNX graph, or None (and a log line) where that is unavailable. `model` is a loaded
    `SentenceTransformer`; only a CPU model is exported."""
    try:
        import torch
    except ImportError:
        return None
    if model.device.type != "cpu":
        return None
    try:
        features = model.preprocess([_PROBE])
        names = [n for n in _INPUTS if n in features]

        class _Graph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                out = self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]
                return torch.nn.functional.normalize(out.float(), dim=-1)

        args = tuple(features[n] for n in names)
        buffer = io.BytesIO()
        with (
            warnings.catch_warnings(),
            torch.inference_mode(False),
            torch.no_grad(),
            _eager_attention(model),
        ):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Graph().eval(),
                args,
                buffer,
                input_names=names,
                output_names=["embedding"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names},
                opset_version=17,
                dynamo=False,
            )
            reference = _Graph().eval()(*args).numpy()
    except Exception as exc:  # noqa: BLE001 - any failure means: keep the PyTorch path
        log.info("model stays on PyTorch: ONNX export failed (%s)", exc)
        return None
    return Exported(names, buffer.getvalue(), features, reference)


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Export transformers' plain attention, not its SDPA: SDPA's export decomposes into
    masking operators (IsNaN, Where, ...) that ONNX Runtime runs slower. On 400 chunks of
    200 tokens (2 CPUs, interleaved) the plain graph ran 1.31x PyTorch against 1.05x in
    fp32 and 1.90x against 1.53x in int8, with the same vectors (fp32: cosine 1.000000 to
    PyTorch, largest difference 2e-7). The model's own setting is put back after."""
    inner = getattr(model[0], "auto_model", None) if len(model) else None
    switch = getattr(inner, "set_attn_implementation", None)
    before = getattr(getattr(inner, "config", None), "_attn_implementation", None)
    if switch is None or before in (None, "eager"):
        yield
        return
    try:
        switch("eager")
    except Exception:  # noqa: BLE001 - a model that cannot switch exports as it is
        yield
        return
    try:
        yield
    finally:
        switch(before)


def encoder(exported: Exported, *, threads: int = 1, int8: str = "off") -> OnnxEncoder | None:
    """An ONNX Runtime session over the export: `threads` intra-op threads; `int8` "on"
    (weights int8 but the feed-forward down-projections), "all" or "off". None if it
    cannot be built or does not reproduce the model."""
    quantize = int8 in ("on", "all")
    try:
        import onnxruntime as ort

        graph = _quantized(exported.graph, int8 == "on") if quantize else exported.graph
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Threads sleep between operators instead of spinning: the server's other work
        # shares these CPUs, and on a busy machine spinning made ingestion slower.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        log.info("model stays on PyTorch: ONNX Runtime session failed (%s)", exc)
        return None
    built = OnnxEncoder(exported.names, lambda feeds: session.run(None, feeds)[0])
    got = built(exported.features)
    floor = QUANTIZED if quantize else EXACT
    reference = exported.reference
    if got.shape != reference.shape or float(np.min(np.sum(got * reference, axis=1))) < floor:
        log.warning("model stays on PyTorch: ONNX output differs from the model's")
        return None
    return built


class Encoders:
    """A model's two ONNX Runtime encoders, each built on first use from one export:
    `query()` (one thread, fp32) and `batch(threads, int8)` (ingestion). None where the
    model does not export or the graph does not reproduce it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._exported: Exported | None = None
        self._built: dict[tuple[int, str], OnnxEncoder | None] = {}

    def query(self) -> OnnxEncoder | None:
        return self._get(1, "off")

    def batch(self, threads: int, int8: str) -> OnnxEncoder | None:
        return self._get(threads, int8)

    def _get(self, threads: int, int8: str) -> OnnxEncoder | None:
        key = (threads, int8)
        if key not in self._built:
            with self._lock:
                if key not in self._built:
                    if self._exported is None:
                        self._exported = export(self.model)
                    exported = self._exported
                    self._built[key] = (
                        encoder(exported, threads=threads, int8=int8) if exported else None
                    )
        return self._built[key]


def export_query_encoder(model: Any) -> OnnxEncoder | None:
    """The query path: one thread, as a short query gains nothing from more."""
    exported = export(model)
    return encoder(exported) if exported is not None else None


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """onnxruntime.quantization advises pre-processing on the root logger at every call."""
    return "pre-processing before quantization" not in record.getMessage()


# The feed-forward down-projection of a BERT-style layer (HF module names as exported).
_DOWN_PROJECTION = re.compile(r"layer\.\d+/output/dense/MatMul")


def _quantized(graph: bytes, keep_down: bool) -> bytes:
    """Dynamic int8 quantization of the MatMul weights, one scale per output channel
    (per-tensor scales cost MiniLM far more accuracy); with `keep_down`, the feed-forward
    down-projections stay fp32 (a quarter of the arithmetic, half of the error)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().addFilter(_no_preprocessing_advice)  # once: filters are a set
    with tempfile.TemporaryDirectory(prefix="assistd-onnx-") as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        source.write_bytes(graph)
        kept = [
            node.name
            for node in onnx.load_from_string(graph).graph.node
            if keep_down and node.op_type == "MatMul" and _DOWN_PROJECTION.search(node.name)
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                source,
                target,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=kept,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        return target.read_bytes()


# Padded tokens per ONNX Runtime call. Its memory grows with batch x length^2 (attention):
# encoding 96 windows of ~250 tokens grew the process by 727 MB at 8,192 and by 37 MB at
# 1,024, at the same speed on a CPU.
BATCH_TOKENS = 1024


def encode_by_length(
    onnx: OnnxEncoder,
    texts: list[str],
    counts: list[int],
    preprocess: Callable[[list[str]], dict[str, Any]],
    fallback: Callable[[dict[str, Any]], np.ndarray],
) -> np.ndarray:
    """Unit vectors for `texts` (each fitting the model), in calls of similar lengths:
    texts sorted by token count (`counts`) are grouped while the padded batch stays within
    BATCH_TOKENS, so little is spent on padding. Features the graph does not take go to
    `fallback` (PyTorch)."""
    order = sorted(range(len(texts)), key=counts.__getitem__)
    out: np.ndarray | None = None
    i = 0
    while i < len(order):
        j, longest = i, 0
        while j < len(order):
            longer = max(longest, counts[order[j]] + 2)  # + the special tokens
            if j > i and (j - i + 1) * longer > BATCH_TOKENS:
                break
            longest, j = longer, j + 1
        rows = order[i:j]
        features = preprocess([texts[k] for k in rows])
        vectors = onnx(features) if onnx.accepts(features) else fallback(features)
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
        i = j
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
