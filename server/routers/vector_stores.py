"""/v1/vector_stores: create, list, retrieve, update, delete, and search."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlmodel import Session

from retrieval.embedding import EmbeddingModelUnavailable, UnknownEmbeddingModel
from retrieval.filters import InvalidFilter, validate_filters
from retrieval.fusion import query_weights
from retrieval.records import SearchTrace
from server.crud import vector_stores as crud
from server.crud.pagination import paginate
from server.deps import DB, Listing, Project, Search, WorkerDep
from server.errors import APIError, bad_request
from server.models import VectorStore
from server.protocol.common import Deleted, ListPage
from server.protocol.inspect import ScoredResult, SearchTraceObject
from server.protocol.vector_stores import (
    SearchRequest,
    SearchResult,
    SearchResultsPage,
    TextContent,
    VectorStoreCreate,
    VectorStoreObject,
    VectorStoreUpdate,
)
from server.routers.json_route import JSONRoute
from server.slow_work import run_slow
from server.tools.search_service import SearchService

router = APIRouter(prefix="/v1/vector_stores", tags=["vector stores"], route_class=JSONRoute)


@router.post("")
def create_vector_store(
    body: VectorStoreCreate, project: Project, db: DB, search: Search, worker: WorkerDep
) -> VectorStoreObject:
    row = crud.create(db, project, body, search.models)
    if body.file_ids:
        worker.wake()
    return crud.to_api_one(db, row)


@router.get("")
def list_vector_stores(project: Project, db: DB, page: Listing) -> ListPage[VectorStoreObject]:
    listed = paginate(db, VectorStore, {"project": project}, page, lambda row: row)
    stats = crud.stats(db, [row.id for row in listed.data])
    return ListPage(
        data=[crud.to_api(row, stats[row.id]) for row in listed.data],
        first_id=listed.first_id,
        last_id=listed.last_id,
        has_more=listed.has_more,
    )


@router.get("/{vector_store_id}")
def get_vector_store(vector_store_id: str, project: Project, db: DB) -> VectorStoreObject:
    return crud.to_api_one(db, crud.get(db, project, vector_store_id))


@router.post("/{vector_store_id}")
def update_vector_store(
    vector_store_id: str, body: VectorStoreUpdate, project: Project, db: DB
) -> VectorStoreObject:
    row = crud.update(db, crud.get(db, project, vector_store_id), body)
    return crud.to_api_one(db, row)


@router.delete("/{vector_store_id}")
def delete_vector_store(
    vector_store_id: str, project: Project, db: DB, search: Search, worker: WorkerDep
) -> Deleted:
    crud.delete_store(db, crud.get(db, project, vector_store_id))
    worker.wake()  # its ingestions in flight stop at once (server/tools/ingestion.py)
    search.remove_store(vector_store_id)
    return Deleted(id=vector_store_id, object="vector_store.deleted")


@router.post("/{vector_store_id}/search")
async def search_vector_store(
    vector_store_id: str,
    body: SearchRequest,
    request: Request,
    project: Project,
    db: DB,
    search: Search,
) -> SearchResultsPage:
    """On the slow-work pool (server/slow_work.py): embedding the query can take a while."""
    return await run_slow(request, _search, vector_store_id, body, search, project, db)


def _search(
    vector_store_id: str, body: SearchRequest, search: SearchService, project: str, db: Session
) -> SearchResultsPage:
    queries, trace = _run_search(vector_store_id, body, search, project, db)
    return SearchResultsPage(
        search_query=queries,
        data=[
            SearchResult(
                file_id=c.file_id,
                filename=c.filename,
                score=round(c.score, 6),
                attributes=c.attributes,
                content=[TextContent(text=c.text)],
            )
            for c in trace.results
        ],
    )


@router.post("/{vector_store_id}/search_trace")
async def search_vector_store_trace(
    vector_store_id: str,
    body: SearchRequest,
    request: Request,
    project: Project,
    db: DB,
    search: Search,
) -> SearchTraceObject:
    """Extension: the same search as /search, answered with its split scores: each
    result's and every candidate's vector and keyword scores and ranks, and the fused
    score (the standard answer's schema allows no extra fields)."""
    return await run_slow(request, _search_trace, vector_store_id, body, search, project, db)


def _search_trace(
    vector_store_id: str, body: SearchRequest, search: SearchService, project: str, db: Session
) -> SearchTraceObject:
    queries, trace = _run_search(vector_store_id, body, search, project, db)
    options = body.ranking_options
    return SearchTraceObject(
        search_query=queries,
        ranking_options={
            "ranker": options.ranker if options else "auto",
            "score_threshold": options.score_threshold if options else 0.0,
            # Each query's weight on the vector score in the fused one (keyword: 1 minus it).
            "vector_weights": [round(float(w), 6) for w in query_weights(queries)],
        },
        data=[
            ScoredResult(
                file_id=c.file_id,
                filename=c.filename,
                score=round(c.score, 6),
                attributes=c.attributes,
                content=[TextContent(text=c.text)],
                chunk_id=c.chunk_id,
                vector_score=round(c.vector_score, 6),
                keyword_score=round(c.keyword_score, 6),
                vector_rank=c.vector_rank,
                keyword_rank=c.keyword_rank,
            )
            for c in trace.results
        ],
        candidates=[c.to_dict() for c in trace.candidates],
    )


def _run_search(
    vector_store_id: str, body: SearchRequest, search: SearchService, project: str, db: Session
) -> tuple[list[str], SearchTrace]:
    """The search both /search and /search_trace answer (their answers differ in shape)."""
    row = crud.get(db, project, vector_store_id)
    if crud.is_expired(row):
        raise bad_request(f"Vector store {vector_store_id} has expired.", param="vector_store_id")
    queries = [body.query] if isinstance(body.query, str) else list(body.query)
    if not any(q.strip() for q in queries):
        raise bad_request("'query' must not be empty.", param="query")
    try:
        validate_filters(body.filters)
    except InvalidFilter as exc:
        raise bad_request(str(exc), param=exc.param) from None
    options = body.ranking_options
    try:
        trace = search.search(
            [(row.id, row.embedding_model)],
            queries,
            max_num_results=body.max_num_results,
            score_threshold=options.score_threshold if options else 0.0,
            filters=body.filters,
            ranker=options.ranker if options else "auto",
        )
    except UnknownEmbeddingModel as exc:
        # The store's model is no longer offered (the operator took it off the list).
        raise bad_request(str(exc), param="vector_store_id") from None
    except EmbeddingModelUnavailable as exc:
        raise APIError(500, str(exc), type="server_error", code="server_error") from None
    crud.touch(db, [row.id])
    return queries, trace
