"""FastAPI dependencies, as Annotated aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ..config import Settings
from ..errors import APIError
from ..metrics import ServiceMetrics
from ..model_manager import ModelManager
from ..serving_chat import OpenAIServingChat
from ..serving_completion import OpenAIServingCompletion


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_manager(request: Request) -> ModelManager:
    return request.app.state.manager


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


def get_serving_chat(request: Request) -> OpenAIServingChat:
    return request.app.state.serving_chat


def get_serving_completion(request: Request) -> OpenAIServingCompletion:
    return request.app.state.serving_completion


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
ServingChatDep = Annotated[OpenAIServingChat, Depends(get_serving_chat)]
ServingCompletionDep = Annotated[OpenAIServingCompletion, Depends(get_serving_completion)]


def require_api_key(request: Request, settings: SettingsDep) -> None:
    """When MODEL_SERVICE_API_KEY is set, /v1 needs `Authorization: Bearer <key>`."""
    if settings.api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = settings.api_key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise APIError(401, "missing or invalid API key: send `Authorization: Bearer <key>`",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
