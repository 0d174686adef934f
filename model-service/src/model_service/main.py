"""Application factory."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .api import api_router
from .config import Settings, get_settings
from .errors import install_error_handlers
from .metrics import ServiceMetrics
from .middleware import RequestContextMiddleware
from .model_manager import ModelManager
from .openai.chat_completion.serving import OpenAIServingChat
from .openai.common.openapi import install_openapi
from .openai.completion.serving import OpenAIServingCompletion
from .openai.router import v1_router
from .tracing import Tracing

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, manager: ModelManager | None = None,
               metrics: ServiceMetrics | None = None, tracing: Tracing | None = None) -> FastAPI:
    """Build the app. Tests pass their own `manager` (with a swapped engine) to skip loading, and their own
    `tracing` (an in-memory exporter); the default traces only when an OTLP endpoint is configured."""
    settings = settings or get_settings()
    metrics = metrics or ServiceMetrics(settings.served_model_name)
    manager = manager or ModelManager(settings, listener=metrics)
    tracing = tracing or Tracing()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.load == "eager":
            await asyncio.get_running_loop().run_in_executor(None, manager.load)
        yield
        manager.shutdown()
        tracing.shutdown()

    app = FastAPI(title="llm-relay model-service", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.manager = manager
    app.state.serving_chat = OpenAIServingChat(manager, metrics, tracing)
    app.state.serving_completion = OpenAIServingCompletion(manager, metrics, tracing)
    install_error_handlers(app)
    app.include_router(v1_router)
    app.include_router(api_router)
    install_openapi(app)
    app.add_middleware(RequestContextMiddleware,
                       on_status=lambda status: metrics.requests.labels(status=str(status)).inc(),
                       counted_paths=("/v1/chat/completions", "/v1/completions"))
    tracing.instrument(app)  # outermost: its server span covers the whole request
    return app
