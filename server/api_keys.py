"""API keys kept in the database (`assistd keys ...`) and their lookup on the hot path.

A key is `sk-assistd-` followed by 40 random letters and digits (about 238 bits). It is
shown once, when created; the database holds only its SHA-256 and a short visible prefix.

Why a plain SHA-256 and not bcrypt/argon2: slow, salted hashes protect low-entropy
secrets (passwords) against guessing. A 238-bit random key cannot be guessed from its
hash however fast the hash is, so salting and stretching add nothing but cost: around
100 ms of CPU per uncached request. An unsalted digest is also deterministic, so a key is
found by an indexed equality lookup instead of trying every row.

Every request checks its key, so lookups are cached in process (`KeyCache`) for
`CACHE_SECONDS`: a revoke made through any process or the CLI takes effect on every
replica within that time, with no signalling between them.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import Engine, inspect, or_
from sqlmodel import Session, col, select

from server.ids import now
from server.models import ApiKey

KEY_PREFIX = "sk-assistd-"
_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 40
# The visible part: the fixed prefix and 8 random characters (47 bits), enough to tell
# keys apart in a listing while revealing nothing useful about the rest.
SHOWN_LENGTH = len(KEY_PREFIX) + 8
CACHE_SECONDS = 5.0
# Bound on cached lookups, so a client trying random keys cannot grow memory unbounded;
# past it the least recently used entry goes, so busy keys stay cached through a flood.
CACHE_MAX_ENTRIES = 10_000


def generate_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, project: str) -> tuple[ApiKey, str]:
    """Store a new key for `project`; returns the row and the key itself (never stored)."""
    key = generate_key()
    row = ApiKey(
        id="key_" + "".join(secrets.choice(_ALPHABET) for _ in range(24)),
        project=project,
        prefix=key[:SHOWN_LENGTH],
        key_hash=hash_key(key),
        created_at=now(),
    )
    with Session(engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    return row, key


def list_keys(engine: Engine) -> list[ApiKey]:
    with Session(engine) as session:
        return list(session.exec(select(ApiKey).order_by(col(ApiKey.seq))))


class KeyNotFound(LookupError):
    pass


def revoke_key(engine: Engine, ref: str) -> ApiKey:
    """Revoke the key whose id, listed prefix or full value is `ref` (idempotent: an
    already revoked key keeps its first `revoked_at`). Raises KeyNotFound when nothing or
    more than one key matches."""
    ref = ref.strip().removesuffix("...")  # as `keys list` shows the prefix
    with Session(engine, expire_on_commit=False) as session:
        query = select(ApiKey).where(
            or_(
                col(ApiKey.id) == ref,
                col(ApiKey.prefix) == ref,
                col(ApiKey.key_hash) == hash_key(ref),
            )
        )
        rows = list(session.exec(query))
        if not rows:
            raise KeyNotFound(f"no key has the id or prefix {ref!r}")
        if len(rows) > 1:
            ids = ", ".join(r.id for r in rows)
            raise KeyNotFound(f"{ref!r} matches several keys ({ids}); revoke one by its id")
        row = rows[0]
        if row.revoked_at is None:
            row.revoked_at = now()
            session.add(row)
            session.commit()
        return row


def database_has_keys(engine: Engine) -> bool:
    """Whether any key was ever created here (revoked ones count). False on a database
    not yet migrated to have the table, as a fresh one before the first start."""
    if not inspect(engine).has_table(ApiKey.__tablename__):
        return False
    with Session(engine) as session:
        return session.exec(select(ApiKey.seq).limit(1)).first() is not None


class KeyCache:
    """Resolves bearer keys to projects: env keys (ASSISTD_API_KEYS) first, then the
    database through a bounded LRU cache with a TTL, keyed by the key's hash.

    A hit costs one SHA-256 and a dict lookup on the event loop; a miss (or an entry older
    than `ttl`) reads the database in a worker thread. Unknown keys are cached too, so a
    client repeating a wrong key does not reach the database on every request. At
    `max_entries` the least recently used entry is dropped, one at a time, so a client
    cycling through random keys evicts other random keys, not the ones in use. Database
    errors propagate (nothing is cached): `deps.current_project` answers 503.
    """

    def __init__(
        self,
        engine: Engine,
        env_keys: dict[str, str],
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
    ) -> None:
        self.engine = engine
        self.env_keys = env_keys
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        # digest -> (project or None, expiry); ordered from least to most recently used.
        self._projects: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        # Once a key exists auth stays required: rows are never deleted.
        self._required = bool(env_keys)
        self._required_checked_at = float("-inf")

    async def auth_required(self) -> bool:
        if self._required:
            return True
        if self.clock() - self._required_checked_at >= self.ttl:
            self._required = await asyncio.to_thread(database_has_keys, self.engine)
            self._required_checked_at = self.clock()
        return self._required

    async def project_for(self, key: str) -> str | None:
        """The key's project, or None for an unknown or revoked key."""
        project = self.env_keys.get(key)
        if project is not None or not key.startswith(KEY_PREFIX):
            return project
        digest = hash_key(key)
        cached = self._projects.get(digest)
        if cached is not None:
            if cached[1] > self.clock():
                self._projects.move_to_end(digest)
                return cached[0]
            del self._projects[digest]
        project = await asyncio.to_thread(self._lookup, digest)
        # Another request may have stored this digest during the await: replace it.
        self._projects.pop(digest, None)
        self._projects[digest] = (project, self.clock() + self.ttl)
        while len(self._projects) > self.max_entries:
            self._projects.popitem(last=False)
        return project

    def __len__(self) -> int:
        return len(self._projects)

    def _lookup(self, digest: str) -> str | None:
        with Session(self.engine) as session:
            query = select(ApiKey.project).where(
                ApiKey.key_hash == digest, col(ApiKey.revoked_at).is_(None)
            )
            return session.exec(query).first()
