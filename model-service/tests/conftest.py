"""Fixtures: the real model-service, started as a process on a free port with the small real model."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # the shared process launcher (tests/stack.py)

from stack import free_port, start_model_service  # noqa: E402

MODEL_DIR = REPO / "models" / "smollm2-135m-instruct"
API_KEY = "ms-test-key"


def pytest_configure(config):
    if not (MODEL_DIR / "config.json").is_file():
        raise pytest.UsageError(f"{MODEL_DIR} is missing: run `make model` first")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return MODEL_DIR


@pytest.fixture(scope="session")
def server():
    """The service as users run it: API key on, a short context to make over-long prompts cheap. In float32
    (as tests/stack.py starts every tier's): tests here compare exactly (a stream in a batch answers as it does
    alone, logprobs equal the model's), which fp32 holds on every CPU; bf16 on an AMX CPU rounds by batch shape
    (measured: 2 of 8 greedy streams changed words once batched). bf16 numerics are tested in tests/engine."""
    env = {"MODEL_SERVICE_API_KEY": API_KEY, "MODEL_SERVICE_MAX_MODEL_LEN": "1024",
           "MODEL_SERVICE_MAX_BATCH_SIZE": "32", "MODEL_SERVICE_DTYPE": "float32"}
    with start_model_service(free_port(), env, timeout_s=180) as process:
        yield process


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture
def async_client(server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120) as c:
        yield c
