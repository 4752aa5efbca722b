"""/v1/vector_stores/{id}/files and /file_batches, plus our chunk listing extension."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from retrieval.parsing import InvalidFile, UnsupportedFile, parse_file
from server.crud import file_batches as batches
from server.crud import vector_stores as crud
from server.crud.pagination import paginate
from server.deps import DB, Listing, Project, Search, WorkerDep
from server.errors import bad_request
from server.models import VectorStoreFile
from server.protocol.common import Deleted, ListPage
from server.protocol.vector_stores import (
    ChunkObject,
    FileBatchCreate,
    FileBatchObject,
    FileContentPage,
    TextContent,
    VectorStoreFileCreate,
    VectorStoreFileObject,
    VectorStoreFileUpdate,
)
from server.routers.json_route import JSONRoute

router = APIRouter(
    prefix="/v1/vector_stores/{vector_store_id}", tags=["vector store files"], route_class=JSONRoute
)
# The SDK's *_and_poll helpers wait this long between polls (their default is 1 s).
POLL_AFTER_MS = "100"

StatusFilter = Annotated[Literal["in_progress", "completed", "failed", "cancelled"] | None, Query()]


@router.post("/files")
def attach_file(
    vector_store_id: str,
    body: VectorStoreFileCreate,
    response: Response,
    project: Project,
    db: DB,
    worker: WorkerDep,
) -> VectorStoreFileObject:
    response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    store = crud.get(db, project, vector_store_id)
    row = crud.attach(db, store, body.file_id, body.chunking_strategy, body.attributes)
    worker.wake()
    return crud.file_to_api(row)


@router.get("/files")
def list_files(
    vector_store_id: str, project: Project, db: DB, page: Listing, filter: StatusFilter = None
) -> ListPage[VectorStoreFileObject]:
    crud.get(db, project, vector_store_id)
    where = {"project": project, "vector_store_id": vector_store_id}
    if filter:
        where["status"] = filter
    return paginate(db, VectorStoreFile, where, page, crud.file_to_api)


@router.get("/files/{file_id}")
def get_file(
    vector_store_id: str, file_id: str, response: Response, project: Project, db: DB
) -> VectorStoreFileObject:
    response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return crud.file_to_api(crud.get_file(db, project, vector_store_id, file_id))


@router.post("/files/{file_id}")
def update_file(
    vector_store_id: str,
    file_id: str,
    body: VectorStoreFileUpdate,
    project: Project,
    db: DB,
    search: Search,
) -> VectorStoreFileObject:
    row = crud.get_file(db, project, vector_store_id, file_id)
    crud.update_file(db, row, body.attributes)
    if row.status == "completed":
        search.update_attributes(vector_store_id, file_id, row.attributes)
    return crud.file_to_api(row)


@router.delete("/files/{file_id}")
def detach_file(
    vector_store_id: str,
    file_id: str,
    project: Project,
    db: DB,
    search: Search,
    worker: WorkerDep,
) -> Deleted:
    crud.detach(db, crud.get_file(db, project, vector_store_id, file_id))
    worker.wake()  # an ingestion of it in flight stops at once (server/tools/ingestion.py)
    search.remove_file(vector_store_id, file_id)
    return Deleted(id=file_id, object="vector_store.file.deleted")


@router.get("/files/{file_id}/content")
def file_content(
    vector_store_id: str, file_id: str, request: Request, project: Project, db: DB
) -> FileContentPage:
    """The parsed text the chunks were cut from: one item per page where the format
    has pages."""
    crud.get_file(db, project, vector_store_id, file_id)
    stored = crud.stored_file(db, project, file_id)
    if stored is None:
        return FileContentPage(data=[])
    try:
        document = parse_file(request.app.state.blobs.path(stored.sha256), stored.filename)
    except (InvalidFile, UnsupportedFile) as exc:
        raise bad_request(str(exc), param="file_id") from None
    if document.pages:
        texts = [document.text[p.start : p.end] for p in document.pages]
    else:
        texts = [document.text]
    return FileContentPage(data=[TextContent(text=t) for t in texts])


@router.get("/files/{file_id}/chunks")
def list_chunks(
    vector_store_id: str,
    file_id: str,
    request: Request,
    project: Project,
    db: DB,
    page: Listing,
    search: Search,
) -> ListPage[ChunkObject]:
    """Extension: every chunk of a file as indexed, in document order by default."""
    crud.get_file(db, project, vector_store_id, file_id)
    chunks = [
        ChunkObject(
            id=c.id,
            vector_store_id=vector_store_id,
            file_id=c.file_id,
            index=c.index,
            text=c.text,
            tokens=c.tokens,
            start_index=c.start,
            end_index=c.end,
            page=c.page,
            embedding_model=c.embedding_model,
            windows=c.windows,
        )
        for c in search.chunks(vector_store_id, file_id)
    ]
    if "order" not in request.query_params:
        page.order = "asc"
    if page.order == "desc":
        chunks.reverse()
    ids = [c.id for c in chunks]
    start, end = 0, len(chunks)
    for cursor, param in ((page.after, "after"), (page.before, "before")):
        if cursor is not None and cursor not in ids:
            raise bad_request(f"Invalid '{param}': no chunk found with id '{cursor}'.", param)
    if page.after:
        start = ids.index(page.after) + 1
    if page.before:
        end = ids.index(page.before)
    window = chunks[start:end]
    data = window[-page.limit :] if page.before and not page.after else window[: page.limit]
    return ListPage(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(window) > len(data),
    )


@router.post("/file_batches")
def create_batch(
    vector_store_id: str,
    body: FileBatchCreate,
    response: Response,
    project: Project,
    db: DB,
    worker: WorkerDep,
) -> FileBatchObject:
    response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    batch = batches.create_batch(db, crud.get(db, project, vector_store_id), body)
    worker.wake()
    return batches.batch_to_api(db, batch)


@router.get("/file_batches/{batch_id}")
def get_batch(
    vector_store_id: str, batch_id: str, response: Response, project: Project, db: DB
) -> FileBatchObject:
    response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return batches.batch_to_api(db, batches.get_batch(db, project, vector_store_id, batch_id))


@router.post("/file_batches/{batch_id}/cancel")
def cancel_batch(
    vector_store_id: str,
    batch_id: str,
    project: Project,
    db: DB,
    search: Search,
    worker: WorkerDep,
) -> FileBatchObject:
    batch = batches.get_batch(db, project, vector_store_id, batch_id)
    cancelled = batches.cancel_batch(db, batch)
    worker.wake()  # its ingestions in flight stop at once
    for file_id in cancelled:
        search.remove_file(vector_store_id, file_id)
    return batches.batch_to_api(db, batch)


@router.get("/file_batches/{batch_id}/files")
def list_batch_files(
    vector_store_id: str,
    batch_id: str,
    project: Project,
    db: DB,
    page: Listing,
    filter: StatusFilter = None,
) -> ListPage[VectorStoreFileObject]:
    batches.get_batch(db, project, vector_store_id, batch_id)
    where = {"project": project, "batch_id": batch_id}
    if filter:
        where["status"] = filter
    return paginate(db, VectorStoreFile, where, page, crud.file_to_api)
