"""Uploaded bytes on local disk, named by SHA-256 so a filename never becomes a path."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
TEMP_PREFIX = ".upload-"

log = logging.getLogger("assistd")


class TooLarge(Exception):
    """The upload passed the configured size limit; nothing was kept."""


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _locked_temp(self) -> tuple[int, str]:
        """A new temp file, locked while we write it. `sweep` deletes only temp files it
        can lock, that is, those of a writer that died (kill -9 drops its lock). One made
        and swept in the instant before we locked it is gone: make another."""
        while True:
            fd, name = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink > 0:
                return fd, name
            os.close(fd)

    def sweep(self) -> int:
        """Delete the temp files of uploads whose process died (files/.upload-*): each
        can hold up to ASSISTD_MAX_FILE_BYTES. Safe while other processes (replicas on
        the same volume) upload: a live writer holds its file's lock. Returns the count."""
        removed = 0
        for path in self.root.glob(TEMP_PREFIX + "*"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue  # gone already
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # a live upload
            try:
                path.unlink(missing_ok=True)
                removed += 1
            finally:
                os.close(fd)  # closing drops the lock
        if removed:
            log.info("removed %d temp file(s) of interrupted uploads from %s", removed, self.root)
        return removed

    def put(self, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Copy `stream` in, hashing as it goes; returns (sha256, size)."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = self._locked_temp()
        try:
            # The file stays open, so locked, until it has its final name.
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                sha = digest.hexdigest()
                final = self.path(sha)
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp_name, final)
            return sha, size
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
