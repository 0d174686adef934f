from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..deps import ManagerDep

router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    """The body of /health (documentation only: the route builds it as a dict)."""

    status: Literal["ready", "not_loaded", "loading", "failed"]
    model: str
    error: str | None = None


@router.get("/health", response_model=HealthStatus, responses={
    503: {"model": HealthStatus, "description": "Not ready: loading, not loaded yet (lazy) or failed; see Retry-After"}})
async def health(manager: ManagerDep) -> JSONResponse:
    """200 only when the model is loaded and the generation loop runs; 503 otherwise."""
    if manager.is_ready():
        return JSONResponse({"status": "ready", "model": manager.model_name})
    state = manager.state.value
    if state == "ready":  # loaded, but the generation loop has died
        state = "failed"
    body = {"status": state, "model": manager.model_name}
    if manager.error:
        body["error"] = manager.error
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
