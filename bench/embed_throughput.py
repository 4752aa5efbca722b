"""Embedding throughput: assistd's Embedder.encode (windows, batching, normalisation)
against a bare SentenceTransformer.encode of the same chunk texts, on whatever device
torch finds (a GPU when there is one: CUDA ingestion runs on PyTorch; on a CPU it runs on
ONNX Runtime, int8, when onnxruntime is installed). Needs only torch and
sentence-transformers, so it also runs on a lent GPU machine, where Chroma is not
installed. The line `path` says which encoder ran.

    .venv/bin/python bench/embed_throughput.py                      # bundled MiniLM
    python3 bench/embed_throughput.py --model .bench-model --chunks 20000   # on the GPU box
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retrieval.embedding import get_embedder  # noqa: E402

EVAL = Path(__file__).resolve().parent / "data" / "retrieval_eval"


def chunk_texts(n: int, tokens: int, embedder) -> list[str]:  # type: ignore[no-untyped-def]
    """`n` texts of about `tokens` model tokens, cut from the evaluation documents."""
    words = " ".join(p.read_text() for p in sorted((EVAL / "docs").iterdir())).split()
    rng = random.Random(7)
    per_word = max(1.0, embedder.count_tokens(" ".join(words[:2000])) / 2000)
    length = int(tokens / per_word)
    out = []
    for _ in range(n):
        start = rng.randrange(0, max(1, len(words) - length))
        out.append(" ".join(words[start : start + length]))
    return out


def timed(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model name or local directory")
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument(
        "--tokens", type=int, default=200, help="tokens per chunk (200 fits one window)"
    )
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    import torch

    embedder = get_embedder(args.model).load()
    model = embedder._model  # type: ignore[attr-defined]
    device = str(model.device)
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor()
    texts = chunk_texts(args.chunks, args.tokens, embedder)
    windows = sum(len(embedder.windows(t)) for t in texts)
    # Token counts come from the chunker in the real pipeline (it tokenized the document
    # once to cut it), so they are computed outside the timed region here too.
    counts = embedder.count_tokens_batch(texts)
    # Warm up both paths (CUDA kernels, allocator) before timing.
    embedder.encode(texts[:64])
    model.encode(texts[:64], batch_size=64)

    ours = timed(lambda: embedder.encode(texts, counts), args.reps)
    raw = timed(lambda: model.encode(texts, batch_size=64, normalize_embeddings=True), args.reps)
    print(f"$ {' '.join(sys.argv)}")
    onnx = getattr(embedder, "_batch_encoder", lambda: None)() if device == "cpu" else None
    path = f"ONNX Runtime, int8 {embedder.encoding.int8}" if onnx else "PyTorch"
    print(f"device {device} ({name}), torch {torch.__version__}, model {embedder.name}")
    print(f"path: {path}, {torch.get_num_threads()} torch threads")
    print(f"{len(texts)} chunks of ~{args.tokens} tokens ({windows} windows), best of {args.reps}")
    print(f"  {'':34} {'seconds':>8} {'chunks/s':>10}")
    print(f"  {'Embedder.encode (assistd)':34} {ours:8.2f} {len(texts) / ours:10.0f}")
    print(f"  {'SentenceTransformer.encode (raw)':34} {raw:8.2f} {len(texts) / raw:10.0f}")
    print(f"  ratio assistd/raw x{raw / ours:.2f}")


if __name__ == "__main__":
    main()
