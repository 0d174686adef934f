"""The fake-engine tier: the real app, serving layer and tokenizer over a ScriptedEngine (engine.py). No model
weights are loaded, so these tests take milliseconds; the end-to-end paths stay in the real-model tests."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from transformers import AutoTokenizer

from model_service.config import Settings
from model_service.main import create_app
from model_service.model_manager import ModelManager

from .engine import Script, ScriptedEngine


@pytest.fixture(scope="session")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture
def fake(model_dir, tokenizer):
    """fake(script=..., max_queue=..., **settings) -> (app, engine): a fresh app per call."""
    def build(script: Script | None = None, max_queue: int = 64, **settings):
        engine = ScriptedEngine(script, max_queue=max_queue)
        engine.start()
        config = Settings(model_path=model_dir, **settings)
        return create_app(config, manager=ModelManager(config, engine=engine, tokenizer=tokenizer)), engine
    return build


@pytest.fixture
def anyio_backend():
    return "asyncio"


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://model", timeout=10)


class LiveServer:
    """The app on a real socket (uvicorn in a thread), for what ASGITransport cannot do: a client that leaves."""

    def __init__(self, app) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
