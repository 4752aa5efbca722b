"""A query encoder on ONNX Runtime, exported from the loaded sentence-transformers model.

Why: a search embeds one short query, and on a CPU PyTorch's per-operator dispatch costs
more than the arithmetic; the same graph on ONNX Runtime is about 2.5x faster for a
10-token query (docs/benchmarks.md). The export happens in memory when the model is first
used for a query (about 2 s for MiniLM) and is checked against the PyTorch output; any
model that does not export, or whose exported output differs, keeps the PyTorch path.
Ingestion keeps PyTorch: long batches are arithmetic-bound and the same speed on both.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_PROBE = "How do I rotate the API keys of a production deployment?"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class QueryEncoder:
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


def export_query_encoder(model: Any) -> QueryEncoder | None:
    """The model's query path on ONNX Runtime, or None (and a log line) whenever that is
    unavailable. `model` is a loaded `SentenceTransformer`; only a CPU model is exported.
    """
    try:
        import onnxruntime as ort
        import torch
    except ImportError:
        return None
    if model.device.type != "cpu":
        return None
    try:
        features = model.preprocess([_PROBE])
        names = [n for n in _INPUTS if n in features]

        class _Graph(torch.nn.Module):
            """The whole sentence-transformers pipeline (encoder, pooling, any dense or
            normalise modules) as one traceable function of tensors."""

            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                out = self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]
                return torch.nn.functional.normalize(out.float(), dim=-1)

        args = tuple(features[n] for n in names)
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
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
        options = ort.SessionOptions()
        # One thread, as the PyTorch query path: a short query gains nothing from more.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            buffer.getvalue(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 - any failure means: keep the PyTorch path
        log.info("query encoder stays on PyTorch: ONNX export failed (%s)", exc)
        return None

    encoder = QueryEncoder(names, lambda feeds: session.run(None, feeds)[0])
    got = encoder(features)
    if got.shape != reference.shape or float(np.min(np.sum(got * reference, axis=1))) < 0.9999:
        log.warning("query encoder stays on PyTorch: ONNX output differs from the model's")
        return None
    return encoder
