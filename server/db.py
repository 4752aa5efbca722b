"""Engine, sessions and migrations. Sync SQLAlchemy: FastAPI runs sync routes in its
thread pool, and one code path serves SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
P = ParamSpec("P")
T = TypeVar("T")


def make_engine(url: str) -> Engine:
    """JSON columns are parsed with orjson: a page of 20 messages parses ~90 JSON values,
    and the stdlib parser was a fifth of a list request's CPU (bench/api_crud.py)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            pool_use_lifo=True,
            json_deserializer=orjson.loads,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        _serialize_writes(engine)
        return engine
    # connect_timeout: a database host that drops packets answers 503 within seconds
    # instead of hanging requests (deps.py maps connection errors to 503).
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        json_deserializer=orjson.loads,
        connect_args={"connect_timeout": 10} if url.startswith("postgresql") else {},
    )


_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _serialize_writes(engine: Engine) -> None:
    """One writing transaction at a time within this process, queued on a Python lock.

    SQLite allows one writer; a second one gets SQLITE_BUSY and sleeps in SQLite's busy
    handler (1, 2, 5 ... 100 ms steps) however soon the lock frees. Under a burst of runs
    those sleeps, not the work, set the pace. pysqlite opens a transaction just before the
    first INSERT/UPDATE/DELETE, so taking the lock there and dropping it when the
    transaction ends serialises writers with a hand-off of microseconds. Reads (WAL) never
    take it. Other processes on the same file still meet the busy handler (timeout 30 s).
    """
    lock = threading.Lock()
    key = "assistd_write_lock"

    @event.listens_for(engine, "before_cursor_execute")
    def _take(
        conn: Connection,
        cursor: DBAPICursor,
        statement: str,
        params: object,
        context: object,
        executemany: bool,
    ) -> None:
        info = conn.connection.info
        if not info.get(key) and statement.lstrip()[:7].upper().startswith(_WRITE_VERBS):
            lock.acquire()
            info[key] = True

    def _drop(dbapi_conn_info: dict[str, object]) -> None:
        if dbapi_conn_info.pop(key, False):
            lock.release()

    @event.listens_for(engine, "commit")
    def _on_commit(conn: Connection) -> None:
        _drop(conn.connection.info)

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: Connection) -> None:
        _drop(conn.connection.info)

    @event.listens_for(engine, "reset")
    def _on_reset(
        dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, reset_state: object
    ) -> None:
        _drop(record.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        _drop(record.info)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent; run on every start)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def schema_is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        return MigrationContext.configure(conn).get_current_revision() == head


def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


class Database:
    """Blocking database work for the event loop's code (runner, worker, ingestion): each
    call runs `fn(session, ...)` in a worker thread with a session of its own, one short
    transaction, so the loop never waits on the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        def work() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session, *args, **kwargs)

        return await asyncio.to_thread(work)
