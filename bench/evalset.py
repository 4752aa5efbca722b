"""The documentation evaluation's questions: loading, locating answers, paraphrase check.

Each line of ``bench/data/doc_eval/<corpus>.jsonl`` is one question::

    {"id": "pg-017", "file": "ddl-alter.html", "question": "...", "answer": "<exact quote>",
     "overlap": 0.0, "kind": "paraphrased", "split": "test"}

``answer`` is a quote of the passage that answers the question, copied from the file's
text as ``retrieval.parse_file`` returns it (whitespace may differ: the quote is matched
with every run of whitespace as ``\\s+``). ``overlap``, ``kind`` and ``split`` are derived,
never hand-set: ``python bench/evalset.py --write`` recomputes them.

Content words: the lower-cased runs of letters and digits (``[a-z0-9]+``) of a text,
less the English stop words of ``STOPWORDS`` (bm25s's ``STOPWORDS_EN_PLUS``, 500 words) and
one-letter tokens, each reduced by the Snowball English stemmer (PyStemmer), so "indexes"
and "indexing" count as one word. ``overlap`` = the share of the question's distinct
content words that also occur in the answer passage. A question is ``paraphrased`` when
its overlap is under 0.2, else ``lexical``.

Split: ``dev`` or ``test`` by the parity of the first byte of sha1(id), fixed before any
tuning; tuning looks at dev only, and the benchmark reports test separately.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

DATA = Path(__file__).resolve().parent / "data" / "doc_eval"
PARAPHRASE_BELOW = 0.2
STOPWORDS = frozenset(STOPWORDS_EN_PLUS)
_stemmer = Stemmer.Stemmer("english")


@dataclass
class Question:
    id: str
    corpus: str
    file: str
    text: str
    answer: str
    overlap: float
    kind: str  # "paraphrased" | "lexical"
    split: str  # "dev" | "test"
    span: tuple[int, int] = (0, 0)  # the answer's characters in the parsed file


def content_words(text: str) -> set[str]:
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 1]
    return set(_stemmer.stemWords([w for w in words if w not in STOPWORDS]))


def overlap(question: str, answer: str) -> float:
    asked = content_words(question)
    if not asked:
        return 1.0
    return len(asked & content_words(answer)) / len(asked)


def split_of(qid: str) -> str:
    return "dev" if hashlib.sha1(qid.encode()).digest()[0] % 2 == 0 else "test"


def locate(text: str, quote: str) -> tuple[int, int] | None:
    """Character span of `quote` in `text`, whitespace-insensitively; None if absent."""
    at = text.find(quote)
    if at >= 0:
        return at, at + len(quote)
    pattern = r"\s+".join(re.escape(part) for part in quote.split())
    found = re.search(pattern, text)
    return (found.start(), found.end()) if found else None


def load(corpus: str) -> list[Question]:
    questions = []
    for line in (DATA / f"{corpus}.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        ov = overlap(raw["question"], raw["answer"])
        questions.append(
            Question(
                id=raw["id"],
                corpus=corpus,
                file=raw["file"],
                text=raw["question"],
                answer=raw["answer"],
                overlap=ov,
                kind="paraphrased" if ov < PARAPHRASE_BELOW else "lexical",
                split=split_of(raw["id"]),
            )
        )
    return questions


def attach_spans(questions: list[Question], texts: dict[str, str]) -> list[str]:
    """Set each question's answer span; return the problems (missing file, quote not found
    or found more than once is fine: the first occurrence counts)."""
    problems = []
    for q in questions:
        if q.file not in texts:
            problems.append(f"{q.id}: no file {q.file}")
            continue
        span = locate(texts[q.file], q.answer)
        if span is None:
            problems.append(f"{q.id}: quote not in {q.file}: {q.answer[:80]!r}")
        else:
            q.span = span
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description="Check the questions; --write the derived fields.")
    parser.add_argument("corpora", nargs="*", default=["postgres", "gitpdf"])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--texts", action="store_true", help="also locate every quote (parses)")
    args = parser.parse_args()
    bad = 0
    for corpus in args.corpora:
        questions = load(corpus)
        ids = [q.id for q in questions]
        if len(set(ids)) != len(ids):
            sys.exit(f"{corpus}: duplicate ids")
        if args.texts:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from bench.corpus import ensure
            from retrieval import parse_file

            folder = ensure(corpus)
            texts = {f: parse_file(folder / f, f).text for f in sorted({q.file for q in questions})}
            problems = attach_spans(questions, texts)
            for p in problems:
                print(p)
            bad += len(problems)
        para = [q for q in questions if q.kind == "paraphrased"]
        files = {q.file for q in questions}
        print(
            f"{corpus}: {len(questions)} questions over {len(files)} files, "
            f"{len(para)} paraphrased (overlap < {PARAPHRASE_BELOW}), "
            f"{len(questions) - len(para)} lexical; "
            f"dev {sum(q.split == 'dev' for q in questions)}, "
            f"test {sum(q.split == 'test' for q in questions)}"
        )
        if args.write:
            lines = [
                json.dumps(
                    {
                        "id": q.id,
                        "file": q.file,
                        "question": q.text,
                        "answer": q.answer,
                        "overlap": round(q.overlap, 3),
                        "kind": q.kind,
                        "split": q.split,
                    },
                    ensure_ascii=False,
                )
                for q in questions
            ]
            (DATA / f"{corpus}.jsonl").write_text("\n".join(lines) + "\n")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
