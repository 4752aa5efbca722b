"""/v1/assistants"""

from __future__ import annotations

from fastapi import APIRouter

from server.crud import assistants as crud
from server.crud.pagination import paginate
from server.deps import DB, Embeddings, Listing, Project
from server.models import Assistant
from server.protocol.assistants import AssistantCreate, AssistantObject, AssistantUpdate
from server.protocol.common import Deleted, ListPage
from server.routers.json_route import JSONRoute

router = APIRouter(prefix="/v1/assistants", tags=["assistants"], route_class=JSONRoute)


@router.post("")
def create_assistant(
    body: AssistantCreate, project: Project, db: DB, models: Embeddings
) -> AssistantObject:
    return crud.to_api(crud.create(db, project, body, models))


@router.get("")
def list_assistants(project: Project, db: DB, page: Listing) -> ListPage[AssistantObject]:
    return paginate(db, Assistant, {"project": project}, page, crud.to_api)


@router.get("/{assistant_id}")
def get_assistant(assistant_id: str, project: Project, db: DB) -> AssistantObject:
    return crud.to_api(crud.get(db, project, assistant_id))


@router.post("/{assistant_id}")
def update_assistant(
    assistant_id: str, body: AssistantUpdate, project: Project, db: DB, models: Embeddings
) -> AssistantObject:
    row = crud.get(db, project, assistant_id)
    return crud.to_api(crud.update(db, row, project, body, models))


@router.delete("/{assistant_id}")
def delete_assistant(assistant_id: str, project: Project, db: DB) -> Deleted:
    crud.delete(db, crud.get(db, project, assistant_id))
    return Deleted(id=assistant_id, object="assistant.deleted")
