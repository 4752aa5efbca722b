"""Files in and out of a session through Docker's archive API, streamed.

The session's /mnt is a Docker volume (a size-capped tmpfs), so `put_archive` and
`get_archive` reach it; they stream tar over the daemon's socket, never through the
kernel's control channel, and neither side holds a whole file in memory. An input lands
in a fresh /mnt/.in-<random>/ directory and the kernel then renames it into /mnt/data:
user code never sees half a file, and gVisor, which caches what the sandbox has already
looked up, sees a path it never looked at before.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from sandbox.config import fmt_bytes

CHUNK = 1024 * 1024
UID = 65534  # the sandbox user (nobody)
BLOCK = tarfile.BLOCKSIZE


class TransferError(Exception):
    """A file could not cross; the message says why, for the step's logs."""


def input_archive(staging: str, name: str, path: Path, size: int) -> Iterator[bytes]:
    """A tar stream of `staging/` holding `path` as `staging/name`, read in chunks."""
    now = int(time.time())
    folder = tarfile.TarInfo(staging)
    folder.type, folder.mode = tarfile.DIRTYPE, 0o700
    member = tarfile.TarInfo(f"{staging}/{name}")
    member.size, member.mode = size, 0o644
    for info in (folder, member):
        info.uid = info.gid = UID
        info.mtime = now
        yield info.tobuf(format=tarfile.PAX_FORMAT)
    sent = 0
    with path.open("rb") as fh:
        while sent < size and (chunk := fh.read(min(CHUNK, size - sent))):
            sent += len(chunk)
            yield chunk
    if sent != size:
        raise TransferError(f"{name} changed size while it was copied in")
    yield b"\0" * ((-size) % BLOCK) + b"\0" * (2 * BLOCK)


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (Docker's streamed response)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


GO_TYPE_BITS = 0xFFF00000  # Go's os.FileMode type bits (dir, symlink, device, pipe, ...)


def too_large(size: int, max_bytes: int) -> TransferError:
    return TransferError(
        f"it grew to {fmt_bytes(size)}, past the {fmt_bytes(max_bytes)} left for it"
    )


def check_stat(stat: dict[str, Any], max_bytes: int) -> int:
    """The size Docker reports; TransferError unless a regular file within `max_bytes`."""
    if int(stat.get("mode", 0)) & GO_TYPE_BITS or stat.get("linkTarget"):
        raise TransferError("it is not a regular file")
    size = int(stat.get("size", 0))
    if size > max_bytes:
        raise too_large(size, max_bytes)
    return size


def member_stream(chunks: Iterator[bytes], max_bytes: int) -> BinaryIO:
    """The contents of the one regular file in a tar stream, as a readable stream."""
    archive = tarfile.open(fileobj=ChunkReader(chunks), mode="r|")  # noqa: SIM115
    member = archive.next()
    if member is None or not member.isreg():
        raise TransferError("it is not a regular file")
    if member.size > max_bytes:
        raise too_large(member.size, max_bytes)
    stream = archive.extractfile(member)
    if stream is None:
        raise TransferError("it could not be read")
    return cast(BinaryIO, stream)
