"""The operational routes (health, metrics), open without the API key; the OpenAI surface is openai/."""

from fastapi import APIRouter

from .routes import health, metrics

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(metrics.router)
