"""File rows; the bytes live in server.storage.BlobStore, addressed by content hash."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, func, select

from server.errors import bad_request, not_found
from server.ids import new_id, now
from server.models import StoredFile
from server.protocol.files import FileObject


def to_api(row: StoredFile) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        purpose=row.purpose,
        status=row.status,
    )


def get(session: Session, project: str, file_id: str) -> StoredFile:
    row = session.exec(
        select(StoredFile).where(StoredFile.project == project, StoredFile.id == file_id)
    ).first()
    if row is None:
        raise not_found("file", file_id)
    return row


def create(
    session: Session,
    project: str,
    *,
    filename: str,
    size: int,
    purpose: str,
    sha256: str,
    created_at: int | None = None,
    expires_at: int | None = None,
) -> StoredFile:
    row = StoredFile(
        id=new_id("file"),
        project=project,
        created_at=created_at or now(),
        filename=filename,
        bytes=size,
        purpose=purpose,
        sha256=sha256,
        expires_at=expires_at,
    )
    session.add(row)
    session.commit()
    return row


def delete(session: Session, row: StoredFile) -> bool:
    """Delete the row; True when no other row still points at the same bytes."""
    session.delete(row)
    session.commit()
    others = session.exec(
        select(func.count()).select_from(StoredFile).where(StoredFile.sha256 == row.sha256)
    ).one()
    return others == 0


def require_files(session: Session, project: str, refs: Iterable[tuple[str, str]]) -> None:
    """Every (file_id, param) must name a file of this project, else 400 naming the param."""
    wanted: dict[str, str] = {}
    for file_id, param in refs:
        wanted.setdefault(file_id, param)
    if not wanted:
        return
    found = set(
        session.exec(
            select(StoredFile.id).where(
                StoredFile.project == project,
                col(StoredFile.id).in_(list(wanted)),
            )
        )
    )
    for file_id, param in wanted.items():
        if file_id not in found:
            raise bad_request(f"No file found with id '{file_id}'.", param=param)


def tool_resource_file_refs(
    resources: Any, prefix: str = "tool_resources"
) -> list[tuple[str, str]]:
    if resources is None or resources.code_interpreter is None:
        return []
    return [
        (file_id, f"{prefix}.code_interpreter.file_ids[{i}]")
        for i, file_id in enumerate(resources.code_interpreter.file_ids)
    ]
