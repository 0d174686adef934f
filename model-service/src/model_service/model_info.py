"""What serving needs to know of the loaded model, read once when it loads: serving never reaches into
the engine's model (whatever the engine is: the continuous batcher, transformers' generate, a fake)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import Settings
from .generation_defaults import GenerationDefaults


@dataclass(frozen=True)
class ModelInfo:
    # transformers' model_type ("llama", "chatglm", ...): picks the tool-call dialect
    model_type: str | None = None
    # ids the model scores (its output layer may be padded past the tokenizer); None: the tokenizer's size
    vocab_size: int | None = None
    # what a request that leaves sampling out gets, for every endpoint
    generation: GenerationDefaults = field(default_factory=GenerationDefaults)

    @classmethod
    def of(cls, model, settings: Settings) -> "ModelInfo":
        """From a transformers model (its config and generation_config), or None (settings alone)."""
        config = getattr(model, "config", None)
        scored = getattr(config, "vocab_size", None) or getattr(config, "padded_vocab_size", None)
        return cls(model_type=getattr(config, "model_type", None),
                   vocab_size=scored if isinstance(scored, int) else None,
                   generation=GenerationDefaults.resolve(getattr(model, "generation_config", None), settings))
