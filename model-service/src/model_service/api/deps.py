"""The app-level FastAPI dependencies (settings, manager, metrics, the API key), as Annotated aliases; each
endpoint's serving class is looked up by its own router."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ..config import Settings
from ..errors import APIError
from ..metrics import ServiceMetrics
from ..model_manager import ModelManager


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_manager(request: Request) -> ModelManager:
    return request.app.state.manager


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


def require_api_key(request: Request, settings: SettingsDep) -> None:
    """When MODEL_SERVICE_API_KEY is set, /v1 needs `Authorization: Bearer <key>`."""
    if settings.api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = settings.api_key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise APIError(401, "missing or invalid API key: send `Authorization: Bearer <key>`",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
