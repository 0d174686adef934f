"""/v1: the OpenAI endpoints, behind the optional API key."""

from fastapi import APIRouter, Depends

from ..api.deps import require_api_key
from .chat_completion import router as chat_completion
from .common.openapi import error
from .completion import router as completion
from .models import router as models

v1_router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses={
    401: error("Missing or wrong API key (when MODEL_SERVICE_API_KEY is set)")})
v1_router.include_router(chat_completion.router)
v1_router.include_router(completion.router)
v1_router.include_router(models.router)
