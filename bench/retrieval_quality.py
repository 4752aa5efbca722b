"""Retrieval quality on real documentation: assistd's defaults against BM25 and plain dense.

Two corpora built from Debian packages by bench/corpus.py (the PostgreSQL 15 manual's
Parts I-III as HTML, and Git's guides rendered to PDF), and questions written for them
(bench/data/doc_eval/*.jsonl, checked by bench/evalset.py: each names its file and quotes
the answering passage; "paraphrased" ones share under 20% of their content words with it).
Three systems answer every question in the same run:

* ``assistd``: the server's own search service (server.tools.search_service.SearchService,
  what ``vector_stores.search`` calls) on default settings: files ingested with the default
  chunking strategy (``auto``), searched with max_num_results=10, ranker ``auto``.
* ``dense``: plain dense retrieval, the same MiniLM model, static chunks of 200 tokens with
  50 overlap (one vector each), cosine similarity, brute force.
* ``bm25``: BM25 alone (bm25s, Lucene, k1=1.5, b=0.75) over the same 200/50 chunks, with the
  project's keyword tokens (stemmed, stop-worded).

A result is a hit when it comes from the question's file and its character span covers at
least half of the quoted answer passage (quotes are one to three sentences; a 200-token
chunk holds them whole unless a boundary cuts them, and then the half of the passage it
does hold is what a reader of the chunk sees). Prints recall@1/5/10 and MRR@10 per corpus
and subset (all / paraphrased / lexical), the mean tokens of the top 5 results (what
recall@5 costs in prompt), recall within the first 2,000 tokens of results (R@2kt: ten
200-token chunks or four 500-token ones, so chunk size cannot buy recall), the held-out
split, and the margin of assistd over the best baseline (PASS or MISS against issue 14's
+0.04 recall@5, overall and paraphrased). Exits 0.

Embeddings are cached by text in bench/.cache/ (SQLite), so only new chunk texts are
embedded: the first run embeds the corpora (tens of minutes on 2 CPU cores), later runs
with the same chunking only ingest into Chroma and search (minutes). ``--systems`` also takes
``proto/GROUP/STEP/FUSION`` prototypes that reuse the baseline's vectors (run_proto), which
is how the defaults were chosen on ``--split dev``.

    .venv/bin/python bench/retrieval_quality.py                  # both corpora, all systems
    .venv/bin/python bench/retrieval_quality.py --split dev --corpus postgres
    .venv/bin/python bench/retrieval_quality.py --strategy \
        '{"type": "static", "static": {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 100}}'
    .venv/bin/python bench/retrieval_quality.py --smoke          # the old 60-question set
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench.corpus import ensure  # noqa: E402
from bench.evalset import Question, attach_spans, load  # noqa: E402
from retrieval import chunk_document, normalize_strategy, parse_file  # noqa: E402
from retrieval.chunking import Chunk  # noqa: E402
from retrieval.embedding import Embedder, EmbeddingModels, IngestEncoding  # noqa: E402
from retrieval.parsing import ParsedDocument  # noqa: E402

CACHE = REPO / "bench" / ".cache"
CORPORA = ("postgres", "gitpdf")
K = 10
Hit = tuple[str, int, int, int]  # file, start, end, tokens of one returned chunk


@dataclass
class Corpus:
    name: str
    folder: Path
    docs: dict[str, ParsedDocument]
    questions: list[Question]


@dataclass
class Outcome:
    """One system's answers: per question id, the returned chunks best first."""

    results: dict[str, list[Hit]] = field(default_factory=dict)
    seconds: float = 0.0


# ---- embedding cache -----------------------------------------------------------------------


def encoding_key(embedder: Embedder) -> str:
    """The cache's name for how `embedder` embeds documents: PyTorch fp32 is the model's
    name (vectors cached before ingestion ran on ONNX Runtime stay valid); the ingestion
    encoder on ONNX Runtime adds its weights, `|onnx-fp32` or `|onnx-int8-on` / `-all`."""
    encoding = getattr(embedder, "encoding", None)
    if encoding is None or not encoding.onnx or embedder._batch_encoder() is None:  # type: ignore[attr-defined]
        return embedder.name
    return f"{embedder.name}|onnx-{'fp32' if encoding.int8 == 'off' else 'int8-' + encoding.int8}"


class EmbeddingCache:
    """Unit vectors by (model, sha1 of text) in SQLite; fills in what it lacks, in batches,
    committing as it goes so an interrupted first run keeps its work."""

    def __init__(self, embedder: Embedder) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(CACHE / "embeddings.sqlite")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vec"
            " (model TEXT, key BLOB, v BLOB, PRIMARY KEY (model, key))"
        )
        self.model = encoding_key(embedder)
        self.inner = embedder._embed
        self.hits = self.misses = 0
        embedder._embed = self  # type: ignore[method-assign]

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).digest() for t in texts]
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            rows = self.db.execute(
                f"SELECT key, v FROM vec WHERE model = ? AND key IN ({','.join('?' * len(part))})",
                [self.model, *part],
            ).fetchall()
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        missing = [(k, t) for k, t in dict(zip(keys, texts, strict=True)).items() if k not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        step = 512
        t0 = time.perf_counter()
        for i in range(0, len(missing), step):
            part = missing[i : i + step]
            vectors = np.asarray(self.inner([t for _, t in part]), dtype=np.float32)
            self.db.executemany(
                "INSERT OR REPLACE INTO vec VALUES (?, ?, ?)",
                [(self.model, k, v.tobytes()) for (k, _), v in zip(part, vectors, strict=True)],
            )
            self.db.commit()
            found.update((k, v) for (k, _), v in zip(part, vectors, strict=True))
            done = min(i + step, len(missing))
            rate = done / (time.perf_counter() - t0)
            print(f"  embedded {done}/{len(missing)} new texts ({rate:.1f}/s)", flush=True)
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)


# ---- corpora -------------------------------------------------------------------------------


def load_corpus(name: str) -> Corpus:
    folder = ensure(name)
    manifest = (folder / "manifest.json").read_bytes()
    cached = CACHE / f"parsed-{name}-{hashlib.sha1(manifest).hexdigest()[:12]}.pkl"
    if cached.exists():
        docs = pickle.loads(cached.read_bytes())
    else:
        files = json.loads(manifest)["files"]
        docs = {f: parse_file(folder / f, f) for f in files}
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps(docs))
    questions = load(name)
    problems = attach_spans(questions, {f: d.text for f, d in docs.items()})
    if problems:
        sys.exit("\n".join(problems))
    return Corpus(name, folder, docs, questions)


def static(size: int, overlap: int) -> dict[str, Any]:
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }


# ---- systems -------------------------------------------------------------------------------


class GoOn:
    """The pipeline's control (retrieval.pipeline.Control): never stop."""

    def stopped(self) -> bool:
        return False

    def checkpoint(self, progress: object) -> bool:
        return True


class AssistdSystem:
    """The server's search service built from default Settings (its own embedder, so the
    ingestion encoder is the server's: ONNX Runtime int8 by default), with that embedder's
    document vectors cached by text under `encoding_key`. `env` overrides settings the way
    the server reads them (ASSISTD_INGEST_ONNX, ASSISTD_INGEST_INT8)."""

    def __init__(self, env: dict[str, str]) -> None:
        from server.config import Settings
        from server.tools.search_service import SearchService

        self.tmp = tempfile.TemporaryDirectory(prefix="assistd-quality-")
        settings = Settings.from_env(
            {**env, "ASSISTD_DATA_DIR": self.tmp.name, "DATABASE_URL": "sqlite://"}
        )
        self.service = SearchService(settings)
        self.embedder = self.service.embedder(settings.embedding_model).load()
        self.cache = EmbeddingCache(self.embedder)
        self.name = self.cache.model


def run_assistd(corpus: Corpus, system: AssistdSystem, strategy: dict[str, Any] | None) -> Outcome:
    """The server's search service, as vector_stores.search uses it, in this process."""
    from retrieval.pipeline import Lane
    from server.tools.search_service import IngestJob

    service, embedder, lane = system.service, system.embedder, Lane()
    out = Outcome()
    # One index for the run: each corpus is a store of its own.
    store = f"vs_{corpus.name}"
    model = service.settings.embedding_model
    t0 = time.perf_counter()
    chunks = 0
    for name in corpus.docs:
        job = IngestJob(
            store_id=store,
            file_id=name,
            filename=name,
            path=corpus.folder / name,
            strategy=normalize_strategy(strategy),
            attributes={},
            embedding_model=model,
            generation=1,
        )
        done = service.ingest(job, GoOn(), lane)
        if done.error:
            sys.exit(f"{name}: {done.error}")
        chunks += done.chunks
    print(f"  assistd: {chunks} chunks ingested in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    for q in corpus.questions:
        trace = service.search([(store, model)], [q.text], max_num_results=K)
        out.results[q.id] = [
            (c.file_id, c.start, c.end, embedder.count_tokens(c.text)) for c in trace.results
        ]
    out.seconds = time.perf_counter() - t0
    return out


@dataclass
class ChunkTable:
    """Every chunk of a corpus under one chunking, with its vector."""

    files: list[str]
    chunks: list[Chunk]
    vectors: np.ndarray  # (chunks, dim), unit rows


def chunk_table(corpus: Corpus, embedder: Embedder, strategy: dict[str, Any]) -> ChunkTable:
    files: list[str] = []
    chunks: list[Chunk] = []
    for name, doc in corpus.docs.items():
        for chunk in chunk_document(doc, strategy, embedder):
            files.append(name)
            chunks.append(chunk)
    if any(c.tokens > embedder.max_tokens for c in chunks):
        sys.exit("baseline chunks must fit one embedding window")
    vectors = np.asarray(embedder._embed([c.text for c in chunks]), dtype=np.float32)
    return ChunkTable(files, chunks, vectors)


def top_hits(table: ChunkTable, scores: np.ndarray) -> list[Hit]:
    order = np.argsort(-scores, kind="stable")[:K]
    return [
        (table.files[i], table.chunks[i].start, table.chunks[i].end, table.chunks[i].tokens)
        for i in order
        if scores[i] > 0
    ]


def run_dense(corpus: Corpus, embedder: Embedder, table: ChunkTable) -> Outcome:
    out = Outcome()
    t0 = time.perf_counter()
    for q in corpus.questions:
        query = np.asarray(embedder.encode_query(q.text), dtype=np.float32)
        out.results[q.id] = top_hits(table, table.vectors @ query)
    out.seconds = time.perf_counter() - t0
    return out


def run_bm25(corpus: Corpus, table: ChunkTable) -> Outcome:
    import bm25s

    from retrieval.keyword import keyword_tokens

    out = Outcome()
    bm25 = bm25s.BM25()  # Lucene variant, k1=1.5, b=0.75, as assistd's keyword side
    bm25.index([keyword_tokens(c.text) for c in table.chunks], show_progress=False)
    t0 = time.perf_counter()
    for q in corpus.questions:
        tokens = [t for t in keyword_tokens(q.text) if t in bm25.vocab_dict]
        scores = bm25.get_scores(tokens) if tokens else np.zeros(len(table.chunks))
        out.results[q.id] = top_hits(table, np.asarray(scores))
    out.seconds = time.perf_counter() - t0
    return out


# ---- prototypes (phase 2 experiments; reuse the baseline's chunk vectors) ------------------


def bm25_normalised(chunks: list[str]) -> Callable[[str], np.ndarray]:
    """assistd's keyword score over `chunks`: BM25 over the BM25 of an average-length chunk
    holding every query term once, capped at 1 (retrieval.keyword.KeywordIndex.scores)."""
    import math

    import bm25s

    from retrieval.keyword import keyword_tokens

    bm25 = bm25s.BM25()
    bm25.index([keyword_tokens(c) for c in chunks], show_progress=False)
    indptr = bm25.scores["indptr"]
    df = {
        t: int(indptr[i + 1] - indptr[i]) for t, i in bm25.vocab_dict.items() if i + 1 < len(indptr)
    }
    n = len(chunks)

    def score(query: str) -> np.ndarray:
        tokens = list(dict.fromkeys(keyword_tokens(query)))
        known = [t for t in tokens if t in df]
        if not known:
            return np.zeros(n, dtype=np.float32)
        ideal = sum(math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in tokens)
        raw = np.asarray(bm25.get_scores(known), dtype=np.float32)
        return np.minimum(raw / max(ideal / (1 + bm25.k1), 1e-9), 1.0)

    return score


def ranks_of(scores: np.ndarray, depth: int = 50) -> np.ndarray:
    """1-based rank of each item among the `depth` best with a positive score, else inf."""
    out = np.full(len(scores), np.inf)
    order = np.argsort(-scores, kind="stable")[:depth]
    order = order[scores[order] > 0]
    out[order] = np.arange(1, len(order) + 1)
    return out


def run_proto(
    corpus: Corpus, embedder: Embedder, table: ChunkTable, group: int, step: int, fusion: str
) -> Outcome:
    """Small-to-big over the baseline's chunks: parents are `group` consecutive baseline
    chunks of a file (a new parent every `step` chunks); a parent's vector score is its best
    child's cosine (max-sim); `fusion` is "vector", "convex:W" (W x vector + (1-W) x
    assistd's normalised BM25 over parents) or "rrf:K:W" (1/(K+rank_vector) +
    W/(K+rank_bm25), each side's top 50)."""
    parents: list[tuple[str, int, int, list[int]]] = []  # file, start, end, child rows
    by_file: dict[str, list[int]] = {}
    for row, name in enumerate(table.files):
        by_file.setdefault(name, []).append(row)
    for name, rows in by_file.items():
        starts = list(range(0, max(len(rows) - group, 0) + 1, step))
        if starts[-1] + group < len(rows):
            starts.append(len(rows) - group)
        for s in starts:
            kids = rows[s : s + group]
            parents.append((name, table.chunks[kids[0]].start, table.chunks[kids[-1]].end, kids))
    texts = [corpus.docs[f].text[a:b] for f, a, b, _ in parents]
    tokens = embedder.count_tokens_batch(texts)
    child_parent = np.concatenate([np.full(len(k), i) for i, (_, _, _, k) in enumerate(parents)])
    child_rows = np.concatenate([np.asarray(k) for _, _, _, k in parents])
    keyword = bm25_normalised(texts)
    kind, *params = fusion.split(":")
    from retrieval.keyword import names_identifier

    out = Outcome()
    t0 = time.perf_counter()
    for q in corpus.questions:
        query = np.asarray(embedder.encode_query(q.text), dtype=np.float32)
        child = table.vectors[child_rows] @ query
        vector = np.full(len(parents), -1.0, dtype=np.float32)
        np.maximum.at(vector, child_parent, child)
        vector = np.clip(vector, 0.0, 1.0)
        if kind == "vector":
            final = vector
        elif kind == "convex":
            w = float(params[0])
            final = w * vector + (1 - w) * keyword(q.text)
        elif kind == "qconvex":  # a lower vector weight for queries naming an identifier
            w = float(params[1] if names_identifier(q.text) else params[0])
            final = w * vector + (1 - w) * keyword(q.text)
        elif kind == "rrf":
            k, w = float(params[0]), float(params[1])
            final = 1 / (k + ranks_of(vector)) + w / (k + ranks_of(keyword(q.text)))
        else:
            sys.exit(f"unknown fusion {fusion!r}")
        order = np.argsort(-final, kind="stable")[:K]
        out.results[q.id] = [
            (parents[i][0], parents[i][1], parents[i][2], tokens[i]) for i in order if final[i] > 0
        ]
    out.seconds = time.perf_counter() - t0
    return out


# ---- scoring -------------------------------------------------------------------------------


def rank_of(q: Question, hits: list[Hit]) -> int | None:
    """1-based rank of the first result holding at least half of the answer passage."""
    need = (q.span[1] - q.span[0]) / 2
    for rank, (file, start, end, _) in enumerate(hits[:K], 1):
        if file == q.file and min(end, q.span[1]) - max(start, q.span[0]) >= need:
            return rank
    return None


BUDGET = 2000  # tokens of results, for a size-fair comparison (R@2kt)


def within_budget(hits: list[Hit], budget: int = BUDGET) -> list[Hit]:
    """The first results whose tokens add up to at most `budget` (at least one)."""
    out: list[Hit] = []
    used = 0
    for hit in hits:
        if out and used + hit[3] > budget:
            break
        out.append(hit)
        used += hit[3]
    return out


def metrics(questions: list[Question], outcome: Outcome) -> dict[str, float]:
    ranks = [rank_of(q, outcome.results[q.id]) for q in questions]
    budgeted = [rank_of(q, within_budget(outcome.results[q.id])) for q in questions]
    n = max(len(ranks), 1)
    top5 = [sum(h[3] for h in outcome.results[q.id][:5]) for q in questions]
    return {
        "n": len(ranks),
        "r@1": sum(r == 1 for r in ranks) / n,
        "r@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "r@10": sum(r is not None for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "r@2kt": sum(r is not None for r in budgeted) / n,
        "tok5": float(np.mean(top5)) if top5 else 0.0,
    }


SUBSETS: dict[str, Callable[[Question], bool]] = {
    "all": lambda q: True,
    "paraphrased": lambda q: q.kind == "paraphrased",
    "lexical": lambda q: q.kind == "lexical",
}


def report(
    title: str, questions: list[Question], outcomes: dict[str, Outcome], baselines: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    print(f"\n{title}")
    print(
        f"  {'system':<24} {'subset':<12} {'n':>4} {'R@1':>6} {'R@5':>6} {'R@10':>6}"
        f" {'MRR@10':>7} {'tok@5':>6} {'R@2kt':>6}"
    )
    table: dict[str, dict[str, dict[str, float]]] = {}
    for system, outcome in outcomes.items():
        table[system] = {}
        for subset, keep in SUBSETS.items():
            m = metrics([q for q in questions if keep(q)], outcome)
            table[system][subset] = m
            print(
                f"  {system:<24} {subset:<12} {m['n']:>4} {m['r@1']:6.3f} {m['r@5']:6.3f}"
                f" {m['r@10']:6.3f} {m['mrr']:7.3f} {m['tok5']:6.0f} {m['r@2kt']:6.3f}"
            )
    present = [b for b in baselines if b in table]
    for system in [s for s in table if s not in baselines] if present else []:
        for subset in ("all", "paraphrased"):
            best = max(present, key=lambda b: table[b][subset]["r@5"])
            margin = table[system][subset]["r@5"] - table[best][subset]["r@5"]
            verdict = "PASS" if margin >= 0.04 else "MISS"
            print(
                f"  margin R@5 {subset:<12} {system} - {best} = {margin:+.3f}"
                f"  (target >= +0.04: {verdict})"
            )
    return table


def main() -> None:
    if "--smoke" in sys.argv[1:]:
        from bench.retrieval_smoke import main as smoke

        smoke([a for a in sys.argv[1:] if a != "--smoke"])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the old small set instead")
    parser.add_argument("--corpus", default=",".join(CORPORA), help="postgres,gitpdf")
    parser.add_argument("--systems", default="assistd,dense,bm25")
    parser.add_argument("--split", choices=("all", "dev", "test"), default="all")
    parser.add_argument(
        "--strategy", type=json.loads, default=None, help="assistd's chunking_strategy (JSON)"
    )
    parser.add_argument("--baseline-size", type=int, default=200)
    parser.add_argument("--baseline-overlap", type=int, default=50)
    parser.add_argument("--dump", type=Path, help="write every question's ranks (JSON)")
    parser.add_argument(
        "--ingest-onnx",
        choices=("on", "off"),
        help="assistd's ASSISTD_INGEST_ONNX (default: the server's, on; off = PyTorch fp32)",
    )
    parser.add_argument(
        "--ingest-int8",
        choices=("on", "all", "off"),
        help="assistd's ASSISTD_INGEST_INT8 (default: the server's, on)",
    )
    args = parser.parse_args()
    print("$ .venv/bin/python bench/retrieval_quality.py " + " ".join(sys.argv[1:]))
    load_avg = os.getloadavg()[0]
    print(f"load average at start: {load_avg:.2f} on {os.cpu_count()} cores")

    # The baselines embed with plain sentence-transformers (PyTorch fp32), as a user of the
    # model would; assistd with the server's own ingestion encoder (AssistdSystem).
    embedder = EmbeddingModels(encoding=IngestEncoding(onnx=False)).get(None).load()
    caches = [EmbeddingCache(embedder)]
    systems = args.systems.split(",")
    assistd = None
    if "assistd" in systems:
        env = {}
        if args.ingest_onnx:
            env["ASSISTD_INGEST_ONNX"] = args.ingest_onnx
        if args.ingest_int8:
            env["ASSISTD_INGEST_INT8"] = args.ingest_int8
        assistd = AssistdSystem(env)
        caches.append(assistd.cache)
        print(f"assistd ingests with {assistd.name}; the baselines with {embedder.name}")
    baselines = [s for s in systems if s in ("dense", "bm25")]
    every: list[Question] = []
    combined: dict[str, Outcome] = {s: Outcome() for s in systems}
    dump: dict[str, Any] = {}
    for name in args.corpus.split(","):
        corpus = load_corpus(name)
        if args.split != "all":
            corpus.questions = [q for q in corpus.questions if q.split == args.split]
        print(
            f"\n{name}: {len(corpus.docs)} files, "
            f"{sum(len(d.text) for d in corpus.docs.values()) / 1e6:.2f} M characters, "
            f"{len(corpus.questions)} questions "
            f"({sum(q.kind == 'paraphrased' for q in corpus.questions)} paraphrased)"
        )
        outcomes: dict[str, Outcome] = {}
        table = None
        if any(s != "assistd" for s in systems):
            table = chunk_table(corpus, embedder, static(args.baseline_size, args.baseline_overlap))
            print(
                f"  baseline chunks (static {args.baseline_size}/{args.baseline_overlap}): "
                f"{len(table.chunks)}"
            )
        for system in systems:
            if system == "assistd":
                assert assistd is not None
                outcomes[system] = run_assistd(corpus, assistd, args.strategy)
            elif system == "dense":
                assert table is not None
                outcomes[system] = run_dense(corpus, embedder, table)
            elif system == "bm25":
                assert table is not None
                outcomes[system] = run_bm25(corpus, table)
            elif system.startswith("proto"):  # proto/GROUP/STEP/FUSION, e.g. proto/2/2/rrf:60:0.5
                assert table is not None
                _, group, step, fusion = system.split("/")
                outcomes[system] = run_proto(corpus, embedder, table, int(group), int(step), fusion)
            else:
                sys.exit(f"unknown system {system!r}")
        report(f"{name} ({args.split} questions)", corpus.questions, outcomes, baselines)
        if args.split == "all":
            held_out = [q for q in corpus.questions if q.split == "test"]
            report(f"{name}, held-out split only (test)", held_out, outcomes, baselines)
        every.extend(corpus.questions)
        for system, outcome in outcomes.items():
            combined[system].results.update(outcome.results)
        for q in corpus.questions:
            dump[q.id] = {
                "kind": q.kind,
                "split": q.split,
                **{s: rank_of(q, o.results[q.id]) for s, o in outcomes.items()},
            }
    if len(args.corpus.split(",")) > 1:
        report(f"both corpora ({args.split} questions)", every, combined, baselines)
        if args.split == "all":
            held_out = [q for q in every if q.split == "test"]
            report("both corpora, held-out split only (test)", held_out, combined, baselines)
    for cache in caches:
        print(f"\nembedding cache ({cache.model}): {cache.hits} reused, {cache.misses} embedded")
    if args.dump:
        args.dump.write_text(json.dumps(dump, indent=1) + "\n")


if __name__ == "__main__":
    main()
