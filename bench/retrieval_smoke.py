"""Smoke test: keyword-only, vector-only and hybrid search on a small fixed set.

Run through `bench/retrieval_quality.py --smoke` (extra arguments pass through).

The set (bench/data/retrieval_eval/) is 24 short documents and 60 questions, each naming
its file and an exact substring of the passage that answers it. Every document goes
through the real pipeline (parse_file -> chunk_document -> Embedder.encode ->
ChunkIndex.add_file, Chroma in a temp dir), then each question is searched with each
ranker. A retrieved chunk is a hit when it holds at least half of the answer's characters
(by character span in the parsed text). Prints recall@1, recall@5 and MRR@10 per ranker;
exits 1 unless hybrid has a higher MRR than both single signals and no lower recall@5.

    .venv/bin/python bench/retrieval_quality.py --smoke
    .venv/bin/python bench/retrieval_quality.py --smoke --max-tokens 300 --overlap 100 --verbose
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from retrieval import ChunkIndex, chunk_document, get_embedder, parse_file  # noqa: E402

DATA = REPO / "bench" / "data" / "retrieval_eval"
RANKERS = {"keyword": "keyword", "vector": "vector", "hybrid": "auto"}
STORE = "vs_eval"


@dataclass
class Question:
    text: str
    file: str
    answer: str
    span: tuple[int, int] = (0, 0)


def load_questions(texts: dict[str, str]) -> list[Question]:
    questions = []
    for line in (DATA / "questions.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        q = Question(raw["question"], raw["file"], raw["answer"])
        at = texts[q.file].find(q.answer)
        if at < 0:
            sys.exit(f"answer not found in parsed {q.file}: {q.answer!r}")
        q.span = (at, at + len(q.answer))
        questions.append(q)
    return questions


def is_hit(q: Question, file_id: str, start: int, end: int) -> bool:
    if file_id != q.file:
        return False
    overlap = min(end, q.span[1]) - max(start, q.span[0])
    return overlap * 2 >= q.span[1] - q.span[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=50)
    parser.add_argument("--verbose", action="store_true", help="print each question's ranks")
    args = parser.parse_args(argv)
    print("$ .venv/bin/python bench/retrieval_quality.py --smoke " + " ".join(argv or []))

    embedder = get_embedder()
    strategy = {
        "type": "static",
        "static": {"max_chunk_size_tokens": args.max_tokens, "chunk_overlap_tokens": args.overlap},
    }
    texts: dict[str, str] = {}
    n_chunks = 0
    with tempfile.TemporaryDirectory(prefix="assistd-eval-") as tmp:
        index = ChunkIndex(Path(tmp))
        for path in sorted((DATA / "docs").iterdir()):
            doc = parse_file(path, path.name)
            texts[path.name] = doc.text
            chunks = chunk_document(doc, strategy, embedder)
            vectors = embedder.encode([c.text for c in chunks])
            index.add_file(
                STORE,
                path.name,  # the file name doubles as file id
                filename=path.name,
                chunks=chunks,
                vectors=vectors,
                embedding_model=embedder.name,
            )
            n_chunks += len(chunks)
        questions = load_questions(texts)
        print(
            f"{len(texts)} documents, {n_chunks} chunks (static {args.max_tokens}/{args.overlap}),"
            f" {len(questions)} questions, model {embedder.name}\n"
        )
        metrics: dict[str, dict[str, float]] = {}
        ranks: dict[str, list[int | None]] = {}
        for label, ranker in RANKERS.items():
            found: list[int | None] = []
            t0 = time.perf_counter()
            for q in questions:
                trace = index.search(
                    [STORE], [q.text], embedder=embedder, max_num_results=10, ranker=ranker
                )
                rank = next(
                    (
                        i
                        for i, c in enumerate(trace.results, 1)
                        if is_hit(q, c.file_id, c.start, c.end)
                    ),
                    None,
                )
                found.append(rank)
            elapsed = (time.perf_counter() - t0) / len(questions) * 1000
            ranks[label] = found
            metrics[label] = {
                "recall@1": sum(r == 1 for r in found) / len(found),
                "recall@5": sum(r is not None and r <= 5 for r in found) / len(found),
                "mrr@10": sum(1 / r for r in found if r) / len(found),
                "ms/query": elapsed,
            }
    if args.verbose:
        print(f"{'question':<70} {'kw':>4} {'vec':>4} {'hyb':>4}")
        for i, q in enumerate(questions):
            cells = [str(ranks[label][i] or "-") for label in RANKERS]
            print(f"{q.text[:70]:<70} {cells[0]:>4} {cells[1]:>4} {cells[2]:>4}")
        print()
    print(f"{'ranker':<10} {'recall@1':>9} {'recall@5':>9} {'MRR@10':>8} {'ms/query':>9}")
    for label, m in metrics.items():
        print(
            f"{label:<10} {m['recall@1']:9.3f} {m['recall@5']:9.3f} {m['mrr@10']:8.3f}"
            f" {m['ms/query']:9.1f}"
        )
    hybrid = metrics["hybrid"]
    wins = all(
        hybrid["mrr@10"] > metrics[other]["mrr@10"]
        and hybrid["recall@5"] >= metrics[other]["recall@5"]
        for other in ("keyword", "vector")
    )
    print(
        "\nhybrid beats both single signals (higher MRR, recall@5 no lower):",
        "PASS" if wins else "FAIL",
    )
    sys.exit(0 if wins else 1)


if __name__ == "__main__":
    main()
