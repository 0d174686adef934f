"""All model-service settings, from environment variables prefixed MODEL_SERVICE_."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .prepare_model import DEFAULT_OUT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODEL_SERVICE_", env_file=None, extra="ignore")

    model_path: Path = DEFAULT_OUT
    model_name: str | None = None  # default: the model directory's name
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    trust_remote_code: bool = False
    # Weight quantization (CPU): none; int8 (dynamic int8 matmuls everywhere: fast, but costs quality
    # on small models); int8-head (only the LM head: most of the gain at 1 row, a small quality cost).
    # Measured: docs/benchmarks-model-service.md. Both load fp32 weights first.
    quantization: Literal["none", "int8", "int8-head"] = "none"
    # Forward pass: auto = the lean Llama-family runner where it covers the model, else transformers'.
    runner: Literal["auto", "lean", "transformers"] = "auto"
    # KV of earlier prompts and answers kept for reuse (tokens; 0 turns the prefix cache off), in
    # blocks of prefix_cache_block tokens. About 46 KB per token for SmolLM2-135M in fp32.
    prefix_cache_tokens: int = Field(16384, ge=0)
    prefix_cache_block: int = Field(16, ge=1, le=1024)
    host: str = "127.0.0.1"
    port: int = 6006
    api_key: SecretStr | None = None
    max_batch_size: int = Field(32, ge=1)
    max_queue: int = Field(256, ge=0)
    max_model_len: int | None = Field(None, ge=16)  # default: the model's context length
    # max_tokens of a request that names none; at most what the context leaves after the prompt
    default_max_tokens: int = Field(1024, ge=1)
    # /v1/completions' max_tokens when a request names none: 16, as OpenAI documents for that endpoint
    completions_default_max_tokens: int = Field(16, ge=1)
    # Sampling defaults for a request that sets none; unset: the model directory's generation_config.json
    # decides, else greedy with no penalties (see generation_defaults.py).
    default_temperature: float | None = Field(None, ge=0.0, le=2.0)
    default_top_p: float | None = Field(None, gt=0.0, le=1.0)
    default_repetition_penalty: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    default_frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    default_presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    max_n: int = Field(4, ge=1)  # choices one request may ask for (`n`); each is a sequence in the batch
    # New (padded) prompt tokens prefilled in one pass, between two decoding steps of the running
    # streams; a longer prompt is prefilled in chunks. Default: 512 on CPU, 4096 on CUDA.
    max_prefill_tokens: int | None = Field(None, ge=64)
    max_kv_tokens: int = Field(65536, ge=256)
    load: Literal["eager", "lazy"] = "eager"
    # continuous: batch every request in one loop (native transformers models); serial: one
    # model.generate at a time, for remote-code models with their own cache (ChatGLM3-6B);
    # auto: serial when trust_remote_code is on, else continuous.
    engine: Literal["auto", "continuous", "serial"] = "auto"
    log_level: str = "info"
    # json: one JSON object per line, with the trace id (logs.py); text: plain lines
    log_format: Literal["text", "json"] = "text"
    torch_threads: int | None = None  # default: torch's own choice (all cores)

    @property
    def served_model_name(self) -> str:
        return self.model_name or self.model_path.name


@lru_cache
def get_settings() -> Settings:
    return Settings()
