"""/v1/models: the models this server routes, in OpenAI's shape (server/models_catalog.py)."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import CatalogDep, Project
from server.protocol.model_list import ModelList, ModelObject
from server.routers.json_route import JSONRoute

router = APIRouter(prefix="/v1/models", tags=["models"], route_class=JSONRoute)


@router.get("")
async def list_models(project: Project, catalog: CatalogDep) -> ModelList:
    return ModelList(data=[ModelObject(**entry.to_api()) for entry in await catalog.served()])


# `:path`: names such as `ollama_chat/llama3.1` or `Qwen/Qwen2.5-7B` hold slashes.
@router.get("/{model_id:path}")
async def get_model(model_id: str, project: Project, catalog: CatalogDep) -> ModelObject:
    return ModelObject(**(await catalog.get(model_id)).to_api())
