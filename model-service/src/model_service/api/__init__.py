"""The router aggregator: /v1 (behind the optional API key) and the open operational routes."""

from fastapi import APIRouter, Depends

from .deps import require_api_key
from .openapi import error
from .routes import chat, completions, health, metrics, models

v1_router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses={
    401: error("Missing or wrong API key (when MODEL_SERVICE_API_KEY is set)")})
v1_router.include_router(chat.router)
v1_router.include_router(completions.router)
v1_router.include_router(models.router)

api_router = APIRouter()
api_router.include_router(v1_router)
api_router.include_router(health.router)
api_router.include_router(metrics.router)
