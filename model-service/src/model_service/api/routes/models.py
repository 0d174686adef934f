from fastapi import APIRouter

from ...protocol import ModelCard, ModelList
from ..deps import ManagerDep

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList)
async def list_models(manager: ManagerDep) -> ModelList:
    return ModelList(data=[ModelCard(id=manager.model_name, max_model_len=manager.max_model_len)])
