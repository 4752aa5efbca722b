"""Ingest throughput of the retrieval pipeline against raw model.encode, and search latency
at 100k chunks.

1. Ingest: a generated corpus (markdown, text, HTML and PDF files built from the sentences
   of bench/data/retrieval_eval) goes through the whole pipeline file by file, as the server
   does it: parse_file -> chunk_document -> Embedder.encode -> ChunkIndex.add_file (Chroma
   on disk). The same chunk texts are then embedded with a bare
   SentenceTransformer.encode (batch 64) in the same process, the two taking turns file by
   file so that both see the same load. Chunks are static 200/50 by
   default, so every chunk fits one model window and both sides embed the same tokens
   (with 800-token chunks the pipeline embeds ~3.4 windows per chunk while raw encode
   silently truncates each to 256 tokens: not a like-for-like comparison).
2. Search: a store of --search-chunks chunks (default 100k) is built with texts made of the
   corpus sentences plus random identifiers, and vectors that are real MiniLM vectors of
   such texts, jittered and renormalised (embedding 100k chunks on 2 cores would take
   hours). Queries are real questions, embedded per query; each timed search is the whole
   ChunkIndex.search (query embedding, revision check, vector + BM25, fusion, text fetch).

Prints numbers; asserts nothing.

    .venv/bin/python bench/ingest.py                      # ~15 min on 2 cores
    .venv/bin/python bench/ingest.py --chunks 500 --search-chunks 20000   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from retrieval import ChunkIndex, chunk_document, get_embedder, parse_file  # noqa: E402
from retrieval.chunking import Chunk  # noqa: E402
from tests.support.documents import pdf_bytes  # noqa: E402

DATA = REPO / "bench" / "data" / "retrieval_eval"
FORMATS = (".md", ".txt", ".html", ".pdf")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def sentences() -> list[str]:
    text = " ".join(p.read_text() for p in sorted((DATA / "docs").iterdir()))
    text = re.sub(r"[#|`*-]+", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 4]


def make_corpus(folder: Path, words: int, rng: random.Random) -> list[tuple[Path, str]]:
    """Files of about 6,000 words each, cycling through the formats, until `words`."""
    pool = sentences()
    files: list[tuple[Path, str]] = []
    written = 0
    while written < words:
        paragraphs = []
        size = 0
        while size < 6000:
            para = " ".join(rng.choice(pool) for _ in range(rng.randint(3, 7)))
            paragraphs.append(para)
            size += len(para.split())
        written += size
        ext = FORMATS[len(files) % len(FORMATS)]
        name = f"doc{len(files):04d}{ext}"
        path = folder / f"blob{len(files):04d}"
        if ext == ".md":
            body = "\n\n".join(f"## Part {i}\n\n{p}" for i, p in enumerate(paragraphs))
            path.write_text(f"# Document {len(files)}\n\n{body}\n")
        elif ext == ".txt":
            path.write_text("\n\n".join(paragraphs))
        elif ext == ".html":
            path.write_text("<html><body>" + "".join(f"<p>{p}</p>" for p in paragraphs))
        else:
            lines = [ln for p in paragraphs for ln in wrap(p, 110)]
            path.write_bytes(
                pdf_bytes(["\n".join(lines[i : i + 60]) for i in range(0, len(lines), 60)])
            )
        files.append((path, name))
    return files


def wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def ingest(args: argparse.Namespace, tmp: Path) -> None:
    embedder = get_embedder().load()
    model = embedder._model  # type: ignore[attr-defined]  # the bare SentenceTransformer
    strategy = {
        "type": "static",
        "static": {"max_chunk_size_tokens": args.max_tokens, "chunk_overlap_tokens": args.overlap},
    }
    rng = random.Random(7)
    step = args.max_tokens - args.overlap
    files = make_corpus(tmp, int(args.chunks * step * 0.75), rng)  # ~0.75 words per token
    index = ChunkIndex(tmp / "chroma")
    model.encode(["warm up"] * 64, batch_size=64)
    stages = {"parse": 0.0, "chunk": 0.0, "embed": 0.0, "index": 0.0}
    texts: list[str] = []
    windows = 0
    pipeline = raw = 0.0
    for i, (path, name) in enumerate(files):
        # Pipeline and raw encode take turns file by file (alternating which goes first),
        # so both see the same load on a shared machine.
        if i % 2:
            raw += encode_raw(model, path, name, strategy, embedder)
        t0 = time.perf_counter()
        doc = parse_file(path, name)
        t1 = time.perf_counter()
        chunks = chunk_document(doc, strategy, embedder)
        t2 = time.perf_counter()
        vectors = embedder.encode([c.text for c in chunks], [c.tokens for c in chunks])
        t3 = time.perf_counter()
        index.add_file(
            "vs_ingest",
            f"file-{i}",
            filename=name,
            chunks=chunks,
            vectors=vectors,
            embedding_model=embedder.name,
        )
        t4 = time.perf_counter()
        for key, took in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[key] += took
        pipeline += t4 - t0
        texts.extend(c.text for c in chunks)
        windows += sum(len(v) for v in vectors)
        if not i % 2:
            raw += encode_raw(model, path, name, strategy, embedder)
    n = len(texts)
    print(
        f"\ningest: {len(files)} files ({', '.join(FORMATS)}), {n} chunks "
        f"(static {args.max_tokens}/{args.overlap}), {windows} windows, device {embedder.device}"
    )
    print(f"  {'':<34} {'seconds':>8} {'chunks/s':>9}")
    print(f"  {'pipeline (parse+chunk+embed+add)':<34} {pipeline:8.1f} {n / pipeline:9.1f}")
    print(f"  {'raw model.encode, same texts':<34} {raw:8.1f} {n / raw:9.1f}")
    print(f"  ratio pipeline/raw {raw / pipeline:.2f}  (target >= 0.80)")
    print("  pipeline stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))


def encode_raw(model, path: Path, name: str, strategy: dict, embedder) -> float:  # type: ignore[no-untyped-def]
    """Seconds for a bare model.encode of this file's chunk texts (made outside the clock)."""
    texts = [c.text for c in chunk_document(parse_file(path, name), strategy, embedder)]
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - t0


def search(args: argparse.Namespace, tmp: Path) -> None:
    embedder = get_embedder().load()
    rng = random.Random(11)
    nprng = np.random.default_rng(11)
    pool = sentences()
    base_texts = [" ".join(rng.choice(pool) for _ in range(5)) for _ in range(512)]
    base = np.asarray([v[0] for v in embedder.encode(base_texts)], dtype=np.float32)
    index = ChunkIndex(tmp / "chroma-search")
    per_file = 100
    t0 = time.perf_counter()
    for f in range(args.search_chunks // per_file):
        chunks, vectors = [], []
        for c in range(per_file):
            b = rng.randrange(len(base_texts))
            code = f"ZX-{rng.randrange(10**6):06d}"
            text = f"{base_texts[b]} Reference {code}."
            vec = base[b] + nprng.normal(scale=0.02, size=base.shape[1]).astype(np.float32)
            vec /= np.linalg.norm(vec)
            chunks.append(Chunk(c, text, c * 1000, c * 1000 + len(text), 150, None))
            vectors.append([vec.tolist()])
        index.add_file(
            "vs_big",
            f"file-{f:05d}",
            filename=f"doc{f}.md",
            chunks=chunks,
            vectors=vectors,
            embedding_model=embedder.name,
            attributes={"group": f % 10},
        )
    built = time.perf_counter() - t0
    questions = [json.loads(line)["question"] for line in (DATA / "questions.jsonl").open()]
    t0 = time.perf_counter()
    index.search(["vs_big"], [questions[0]], embedder=embedder)  # builds the BM25 snapshot
    snapshot = time.perf_counter() - t0
    for q in questions[:10]:
        index.search(["vs_big"], [q], embedder=embedder)
    hybrid, embed_only, filtered = [], [], []
    for _ in range(args.rounds):
        for q in questions:
            t0 = time.perf_counter()
            embedder.encode_query(q)
            embed_only.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            index.search(["vs_big"], [q], embedder=embedder)
            hybrid.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            index.search(
                ["vs_big"],
                [q],
                embedder=embedder,
                filters={"type": "lt", "key": "group", "value": 5},
            )
            filtered.append((time.perf_counter() - t0) * 1000)
    print(
        f"\nsearch: {args.search_chunks} chunks in one store (built in {built:.0f} s; first "
        f"search, building the BM25 snapshot, {snapshot:.1f} s), {len(hybrid)} queries"
    )
    print(f"  {'(ms)':<40} {'p50':>7} {'p95':>7}")
    for label, values in (
        ("hybrid search, whole call", hybrid),
        ("  of which query embedding alone", embed_only),
        ("hybrid search + filter (half the files)", filtered),
    ):
        print(f"  {label:<40} {pct(values, 0.5):7.1f} {pct(values, 0.95):7.1f}")
    p50 = statistics.median(hybrid)
    print(f"  target p50 <= 25 ms: {'PASS' if p50 <= 25 else 'MISS'} ({p50:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=2000, help="ingest corpus size, in chunks")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=50)
    parser.add_argument("--search-chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 60 questions")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    print("$ .venv/bin/python bench/ingest.py " + " ".join(sys.argv[1:]))
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="assistd-ingest-") as tmp:
        if not args.skip_ingest:
            ingest(args, Path(tmp))
        if not args.skip_search:
            search(args, Path(tmp))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
