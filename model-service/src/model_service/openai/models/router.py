from fastapi import APIRouter

from ...api.deps import ManagerDep
from ..common.protocol import ModelCard, ModelList

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList)
async def list_models(manager: ManagerDep) -> ModelList:
    return ModelList(data=[ModelCard(id=manager.model_name, max_model_len=manager.max_model_len)])
