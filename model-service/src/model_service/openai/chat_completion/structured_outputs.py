"""`response_format` → the request's grammar constraint (OpenAI's structured outputs)."""

from __future__ import annotations

from ...engine.constraints import Constraint
from ...engine.grammar import SchemaError
from ...errors import APIError
from ...model_manager import ModelManager
from .protocol import ResponseFormat


def response_format_constraint(response_format: ResponseFormat | None, manager: ModelManager,
                               max_array_items: int | None = None) -> Constraint | None:
    """None for plain text; otherwise a fresh constraint for this request (its unbounded arrays capped at
    `max_array_items` when given). A schema the grammar cannot enforce is a 400 naming what is wrong: never a
    silent fallback to unconstrained text."""
    if response_format is None or response_format.type == "text":
        return None
    try:
        grammars = manager.grammars
    except RuntimeError as exc:
        raise APIError(400, f"response_format: {exc}", param="response_format",
                       code="unsupported_response_format") from None
    if response_format.type == "json_object":
        return grammars.json_object_constraint()
    try:
        return grammars.json_schema_constraint(response_format.json_schema.schema_, max_array_items)
    except SchemaError as exc:
        code = "unsupported_schema_feature" if exc.unsupported else "invalid_schema"
        raise APIError(400, f"response_format.json_schema.schema: {exc}", param="response_format",
                       code=code) from None
