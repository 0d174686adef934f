"""The tool-call dialects, one per module, registered by name (as vLLM's tool_parsers are)."""

from __future__ import annotations

_DIALECTS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: a dialect with a `name` and the `model_types` (prefixes) it serves."""
    _DIALECTS[cls.name] = cls
    return cls


def dialects() -> dict[str, type]:
    return dict(_DIALECTS)


def dialect_for(model_type: str | None):
    """The dialect whose model types match `model_type`; Hermes, the default, for every other model."""
    for cls in _DIALECTS.values():
        if model_type and any(model_type.startswith(prefix) for prefix in cls.model_types):
            return cls()
    return _DIALECTS["hermes"]()
