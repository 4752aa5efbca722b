"""`assistd doctor`: find and repair rows the API cannot read back.

Before requests were checked (server/body_guard.py), one holding an unpaired surrogate
(`{"metadata": {"k": "\\udfff"}}`) or NaN was stored as JSON that orjson, our reader,
refuses: every list that met the row answered 500, and the client never learned the id
to delete it. SQLite can also hold text columns that are not UTF-8 at all (written by
other tools). This walks every table and column, and rewrites what it cannot read:
unpaired surrogates and undecodable bytes become U+FFFD, NaN and Infinity become null.
Nothing else changes; `--dry-run` only reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import JSON, Engine, String, Table, cast, inspect, select, update
from sqlalchemy.types import LargeBinary
from sqlmodel import SQLModel

import server.models  # noqa: F401  (registers the tables)
from server.json_safety import dumps_for_storage, repair, repair_text

BATCH = 1000


@dataclass(frozen=True)
class Repair:
    table: str
    row: str  # the row's public id, or its primary key
    column: str
    before: str
    after: str

    def describe(self) -> str:
        return (
            f"{self.table} {self.row} {self.column}: {_short(self.before)} -> {_short(self.after)}"
        )


def _short(text: str, limit: int = 80) -> str:
    shown = ascii(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _decode(raw: bytes) -> str:
    """Text from stored bytes, keeping a surrogate as one code point (one U+FFFD later)."""
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def _fix_json(raw: bytes) -> tuple[str, Any] | None:
    """(text as stored, repaired value) if orjson cannot read `raw`, else None."""
    try:
        orjson.loads(raw)
        return None
    except orjson.JSONDecodeError:
        pass
    text = _decode(raw)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None  # not JSON at all: nothing we can repair without guessing
    return text, repair(value)


def _fix_text(raw: bytes) -> tuple[str, str] | None:
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError:
        text = _decode(raw)
        return text, repair_text(text)


def _rows(engine: Engine, table: Table, column: Any) -> Iterator[tuple[Any, ...]]:
    """(primary key..., public id or None, raw bytes) of the rows with a value in `column`.
    Read as bytes (SQLite hands undecodable text to Python only that way)."""
    pk = list(table.primary_key.columns)
    ident = table.c.get("id")
    raw = cast(column, LargeBinary) if engine.dialect.name == "sqlite" else cast(column, String)
    label = (ident if ident is not None else pk[0]).label("public_id")
    stmt = select(*pk, label, raw.label("raw")).where(column.is_not(None))
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=BATCH).execute(stmt):
            *key, public_id, value = row
            data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
            yield (*key, public_id, bytes(data))


def _is_text(kind: Any) -> bool:
    """String, or a decorator over it (SQLModel's AutoString)."""
    return isinstance(kind, String) or isinstance(getattr(kind, "impl", None), String)


def diagnose(engine: Engine, *, dry_run: bool) -> list[Repair]:
    """Every repair needed (made, unless dry_run), table by table."""
    repairs: list[Repair] = []
    present = set(inspect(engine).get_table_names())
    sqlite = engine.dialect.name == "sqlite"
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in present:
            continue
        pk = list(table.primary_key.columns)
        for column in table.columns:
            is_json = isinstance(column.type, JSON)
            # PostgreSQL text is always valid UTF-8; only its json columns can hold "\udfff".
            if not is_json and not (sqlite and _is_text(column.type)):
                continue
            found: list[tuple[list[Any], Any]] = []
            for *key, public_id, raw in _rows(engine, table, column):
                fixed = _fix_json(raw) if is_json else _fix_text(raw)
                if fixed is None:
                    continue
                before, after = fixed
                shown = after if isinstance(after, str) else dumps_for_storage(after)
                repairs.append(Repair(table.name, str(public_id), column.name, before, shown))
                found.append((key, after))
            if dry_run or not found:
                continue
            # Written once the read is over (SQLite: no write under an open read cursor).
            with engine.begin() as conn:
                for key, after in found:
                    where = [c == k for c, k in zip(pk, key, strict=True)]
                    conn.execute(update(table).where(*where).values({column.name: after}))
    return repairs
