"""tool_resources as stored and returned: file ids and vector store ids checked to exist,
and the `vector_stores` helper turned into real stores."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from retrieval.embedding import EmbeddingModels
from server.crud import files, vector_stores
from server.errors import bad_request
from server.protocol.common import ToolResources
from server.protocol.vector_stores import VectorStoreCreate


def dump_tool_resources(
    session: Session,
    project: str,
    resources: ToolResources | None,
    models: EmbeddingModels,
    param: str = "tool_resources",
) -> dict[str, Any]:
    """Check the referenced files exist in this project and return the stored form
    (stores the `vector_stores` helper makes take their embedding model from `models`)."""
    if resources is None:
        return {}
    files.require_files(session, project, files.tool_resource_file_refs(resources, param))
    out: dict[str, Any] = {}
    if resources.code_interpreter is not None:
        out["code_interpreter"] = {"file_ids": list(resources.code_interpreter.file_ids)}
    if resources.file_search is not None:
        search = resources.file_search
        where = f"{param}.file_search"
        if search.vector_store_ids and search.vector_stores:
            raise bad_request(
                "Give either 'vector_store_ids' or 'vector_stores', not both.",
                param=f"{where}.vector_stores",
            )
        store_ids = list(search.vector_store_ids or [])
        vector_stores.require_stores(session, project, store_ids, f"{where}.vector_store_ids")
        for i, raw in enumerate(search.vector_stores or []):
            # The helper's stores take file_ids, chunking_strategy and metadata; they are
            # made in the caller's transaction, so a failed create leaves none behind.
            try:
                body = VectorStoreCreate.model_validate(raw)
            except ValidationError as exc:
                raise bad_request(
                    f"Invalid vector store: {exc.errors()[0]['msg']}",
                    param=f"{where}.vector_stores[{i}]",
                ) from None
            prefix = f"{where}.vector_stores[{i}]."
            store = vector_stores.create(
                session, project, body, models, commit=False, param_prefix=prefix
            )
            store_ids.append(store.id)
        out["file_search"] = {"vector_store_ids": store_ids}
    return out
