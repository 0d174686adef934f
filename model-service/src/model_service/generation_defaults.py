"""Sampling values a request leaves out: the deployment's settings, else the model's own
generation_config.json (as vLLM does), else greedy with no penalties."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings


@dataclass(frozen=True)
class GenerationDefaults:
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    @classmethod
    def resolve(cls, generation_config, settings: Settings) -> "GenerationDefaults":
        """`generation_config`: the model's transformers GenerationConfig, or None."""
        model = cls._from_model(generation_config)
        chosen = {
            "temperature": settings.default_temperature,
            "top_p": settings.default_top_p,
            "repetition_penalty": settings.default_repetition_penalty,
            "frequency_penalty": settings.default_frequency_penalty,
            "presence_penalty": settings.default_presence_penalty,
        }
        return cls(**{name: value if value is not None else getattr(model, name) for name, value in chosen.items()})

    @classmethod
    def _from_model(cls, config) -> "GenerationDefaults":
        if config is None:
            return cls()

        def number(name: str, neutral: float) -> float:
            value = getattr(config, name, None)
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else neutral

        # A config that does not sample (do_sample false or absent) means greedy, whatever temperature it
        # names: transformers' generate ignores temperature and top_p then too.
        sampling = bool(getattr(config, "do_sample", False))
        return cls(temperature=number("temperature", 1.0) if sampling else 0.0,
                   top_p=number("top_p", 1.0) if sampling else 1.0,
                   repetition_penalty=number("repetition_penalty", 1.0))
