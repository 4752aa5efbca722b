"""tool_resources as stored and returned: validated file ids, vector store ids as given."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from server.crud import files
from server.errors import bad_request
from server.protocol.common import ToolResources


def dump_tool_resources(
    session: Session, project: str, resources: ToolResources | None, param: str = "tool_resources"
) -> dict[str, Any]:
    """Check the referenced files exist in this project and return the stored form."""
    if resources is None:
        return {}
    files.require_files(session, project, files.tool_resource_file_refs(resources, param))
    out: dict[str, Any] = {}
    if resources.code_interpreter is not None:
        out["code_interpreter"] = {"file_ids": list(resources.code_interpreter.file_ids)}
    if resources.file_search is not None:
        if resources.file_search.vector_stores:
            raise bad_request(
                "Creating vector stores through 'vector_stores' needs the file_search "
                "feature, which this server does not provide yet.",
                param=f"{param}.file_search.vector_stores",
            )
        out["file_search"] = {
            "vector_store_ids": list(resources.file_search.vector_store_ids or [])
        }
    return out
