"""Loads the model and tokenizer once, starts the engine, and reports the state."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import threading
import time

from .config import Settings
from .engine.base import Engine, EngineLimits, EngineListener
from .engine.continuous import ContinuousBatchingEngine
from .engine.grammar import GrammarCompiler
from .engine.llama_runner import LlamaFamilyRunner
from .engine.prefix_cache import PrefixCache
from .engine.quantization import quantize_modules
from .engine.serial import SerialGenerateEngine
from .model_info import ModelInfo
from .precision import select_dtype

log = logging.getLogger(__name__)


class ModelState(str, enum.Enum):
    NOT_LOADED = "not_loaded"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ModelManager:
    """Owns the model, the tokenizer and the engine. Thread-safe: it loads exactly once."""

    def __init__(self, settings: Settings, listener: EngineListener | None = None,
                 engine: Engine | None = None, tokenizer=None) -> None:
        self.settings = settings
        self.listener = listener
        self.engine: Engine | None = engine
        self.tokenizer = tokenizer
        self._grammars: GrammarCompiler | None = None
        self._grammars_error: str | None = None
        # Known before loading, so /v1/models (which the gateway learns limits from) is right when lazy.
        self.max_model_len: int = _max_model_len(settings, _context_in_config(settings))
        # an engine handed in (tests, a fake) brings its model, if it has one; the load sets it otherwise
        self.model_info = ModelInfo.of(getattr(engine, "model", None), settings)
        self.state = ModelState.READY if engine is not None else ModelState.NOT_LOADED
        self.error: str | None = None
        self._lock = threading.Lock()
        self._loaded = threading.Event()
        if engine is not None:
            self._loaded.set()

    @property
    def model_name(self) -> str:
        return self.settings.served_model_name

    @property
    def grammars(self) -> GrammarCompiler:
        """The grammar compiler for this model's tokenizer (built at load; its cache is shared by
        every request). Raises RuntimeError when the tokenizer cannot drive constrained decoding."""
        if self._grammars is None:
            with self._lock:
                if self._grammars is None and self._grammars_error is None and self.tokenizer is not None:
                    self._build_grammars(self.tokenizer, None)
        if self._grammars is None:
            raise RuntimeError(f"constrained decoding is not available for this model: {self._grammars_error}")
        return self._grammars

    def _build_grammars(self, tokenizer, vocab_size: int | None) -> None:
        try:
            self._grammars = GrammarCompiler(tokenizer, vocab_size=vocab_size)
        except Exception as exc:  # e.g. a slow (Python) tokenizer: the rest of the API still works
            log.warning("constrained decoding unavailable: %s", exc)
            self._grammars_error = str(exc)

    def is_ready(self) -> bool:
        return self.state is ModelState.READY and self.engine is not None and self.engine.stats().loop_alive

    def load(self) -> None:
        """Load synchronously (call from a worker thread); later calls return at once."""
        with self._lock:
            if self.state in (ModelState.READY, ModelState.LOADING):
                return
            self.state = ModelState.LOADING
        try:
            self._load()
            self.state = ModelState.READY
        except Exception as exc:
            log.exception("model failed to load")
            self.error = str(exc)
            self.state = ModelState.FAILED
        finally:
            self._loaded.set()

    async def ensure_loaded(self) -> None:
        if self.state is ModelState.NOT_LOADED:
            threading.Thread(target=self.load, name="model-loader", daemon=True).start()
        await asyncio.get_running_loop().run_in_executor(None, self._loaded.wait)

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # progress bars are noise in a service log

        s = self.settings
        if not (s.model_path / "config.json").is_file():
            raise FileNotFoundError(f"no model directory at {s.model_path} (run `make model`)")
        if s.torch_threads:
            torch.set_num_threads(s.torch_threads)
        device = s.device if s.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = select_dtype(s.dtype, device, s.quantization)
        started = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(s.model_path, trust_remote_code=s.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            s.model_path, dtype=dtype, trust_remote_code=s.trust_remote_code
        ).to(device).eval()
        self.max_model_len = _max_model_len(s, _context(lambda name: getattr(model.config, name, None)))
        self.model_info = ModelInfo.of(model, s)  # before the runner may release the model's weights
        limits = EngineLimits(max_batch_size=s.max_batch_size, max_queue=s.max_queue,
                              max_model_len=self.max_model_len,
                              max_prefill_tokens=s.max_prefill_tokens or (4096 if device == "cuda" else 512),
                              max_kv_tokens=s.max_kv_tokens)
        kind = s.engine if s.engine != "auto" else ("serial" if s.trust_remote_code else "continuous")
        engine, runner = ENGINES[kind](self, model, tokenizer, limits)
        self._build_grammars(tokenizer, getattr(model.config, "vocab_size", None))
        engine.start()
        self.tokenizer, self.engine = tokenizer, engine
        log.info("model %s loaded on %s (%s, quantization %s) in %.1f s, context %d, %s engine, %s forward, "
                 "prefix cache %d tokens", self.model_name, device, dtype, s.quantization,
                 time.perf_counter() - started, self.max_model_len, kind, runner, s.prefix_cache_tokens)

    def _continuous_engine(self, model, tokenizer, limits: EngineLimits) -> tuple[Engine, str]:
        """Continuous batching over the lean runner (or the model's own forward): the default."""
        s = self.settings
        forward, runner = self._forward_pass(model)
        prefix_cache = PrefixCache(s.prefix_cache_tokens, s.prefix_cache_block) if s.prefix_cache_tokens else None
        return ContinuousBatchingEngine(model, tokenizer, limits, self.listener, forward=forward,
                                        prefix_cache=prefix_cache), runner

    def _serial_engine(self, model, tokenizer, limits: EngineLimits) -> tuple[Engine, str]:
        """transformers' generate, one request at a time: models whose remote code the batcher cannot drive."""
        model = quantize_modules(model, self.settings.quantization)
        return SerialGenerateEngine(model, tokenizer, limits, self.listener), "transformers"

    def _forward_pass(self, model):
        """The lean runner where it covers the model (and the settings allow), else the model itself."""
        s = self.settings
        why_not = LlamaFamilyRunner.supports(model)
        if s.runner == "lean" and why_not:
            raise ValueError(f"MODEL_SERVICE_RUNNER=lean: {why_not}")
        if s.runner == "transformers" or why_not:
            if why_not:
                log.info("transformers forward: the lean runner does not cover this model (%s)", why_not)
            return quantize_modules(model, s.quantization), "transformers"
        runner = LlamaFamilyRunner(model, s.quantization)
        LlamaFamilyRunner.release_source_weights(model)  # the engine only calls the runner from now on
        return runner, "lean"

    def shutdown(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()


def _context(get) -> int:
    """The model's context length from its config (`get`: attribute name -> value or None)."""
    return get("max_position_embeddings") or get("seq_length") or get("n_positions") or 8192


def _context_in_config(settings: Settings) -> int:
    try:
        return _context(json.loads((settings.model_path / "config.json").read_text()).get)
    except (OSError, ValueError, AttributeError):  # no usable config there yet: loading will report it
        return settings.max_model_len or 8192


def _max_model_len(settings: Settings, context: int) -> int:
    return min(settings.max_model_len or context, context)


# MODEL_SERVICE_ENGINE -> how that engine is built from the loaded model (Settings validates the names)
ENGINES = {
    "continuous": ModelManager._continuous_engine,
    "serial": ModelManager._serial_engine,
}
