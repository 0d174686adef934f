"""What the OpenAPI document says the service answers, where FastAPI's defaults would not tell the truth.

FastAPI documents a 422 with its own validation shape for every route with a body; this service
answers 400 with ErrorResponse instead (errors.py), so the 422 is dropped. Streams and errors are
documented with the schemas the service really sends, and the request rules that protocol.py's
validators enforce beyond the field types are written into the request schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from ..chat_completion.protocol import ChatCompletionChunk
from .protocol import ErrorResponse

_REF = "#/components/schemas/{model}"


def error(description: str) -> dict[str, Any]:
    """A `responses=` entry for an error answered in the OpenAI error shape."""
    return {"model": ErrorResponse, "description": description}


def _stream_event(chunk_model: str) -> dict[str, Any]:
    """`data:` events each holding a chunk (an ErrorResponse when generation fails mid-stream), then
    `data: [DONE]`. Documented per event, as FastAPI documents its own event streams (`itemSchema`,
    with Open API 3.2's reading of `contentSchema` for the payload)."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": {"anyOf": [{"$ref": _REF.format(model=chunk_model)},
                                                 {"$ref": _REF.format(model="ErrorResponse")}]}},
                ],
            },
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0},
        },
    }


CHAT_STREAM_EVENT = _stream_event("ChatCompletionChunk")
# a text completion streams CompletionResponse objects (`usage` set in the last one only)
COMPLETION_STREAM_EVENT = _stream_event("CompletionResponse")

# Models that only the stream (not a route's response_model) refers to.
_STREAM_MODELS: tuple[type[BaseModel], ...] = (ChatCompletionChunk, ErrorResponse)


def install_openapi(app: FastAPI) -> None:
    """Replaces app.openapi with one that builds FastAPI's document and corrects it once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            _drop_validation_errors(schema)
            _add_models(schema, _STREAM_MODELS)
            _document_validators(schema["components"]["schemas"], getattr(app.state, "settings", None))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_validation_errors(schema: dict[str, Any]) -> None:
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _add_models(schema: dict[str, Any], models: tuple[type[BaseModel], ...]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        model_schema = model.model_json_schema(ref_template=_REF, mode="serialization")
        for name, definition in model_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, model_schema)


def _document_validators(components: dict[str, Any], settings=None) -> None:
    """The rules of ChatMessage._content_required and ChatCompletionRequest's _stop_list, _logit_bias and
    _top_logprobs_needs_logprobs, which pydantic cannot put in the JSON Schema itself."""
    message = components.get("ChatMessage")
    if message is not None:  # content may be null or absent only in an assistant message
        message["if"] = {"properties": {"role": {"const": "assistant"}}}
        message["else"] = {"required": ["content"], "properties": {"content": {"not": {"type": "null"}}}}
    request_schema = components.get("ChatCompletionRequest", {})
    request = request_schema.get("properties", {})
    if "n" in request and settings is not None:  # the most is this server's MODEL_SERVICE_MAX_N (400 past it)
        request["n"]["maximum"] = settings.max_n
    for branch in request.get("logit_bias", {}).get("anyOf", []):
        if branch.get("type") == "object":  # token ids as keys, each bias within [-100, 100]
            branch["propertyNames"] = {"pattern": "^[0-9]+$"}
            branch["additionalProperties"] = {"type": "number", "minimum": -100, "maximum": 100}
    if "top_logprobs" in request:  # a top_logprobs that is not null needs logprobs: true
        request_schema["if"] = {"required": ["top_logprobs"], "properties": {"top_logprobs": {"type": "integer"}}}
        request_schema["then"] = {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}}
    for branch in request.get("stop", {}).get("anyOf", []):
        if branch.get("type") == "array":
            branch["maxItems"] = 4
    _document_completion_request(components.get("CompletionRequest", {}).get("properties", {}))


def _document_completion_request(request: dict[str, Any]) -> None:
    """CompletionRequest's validators: one non-empty prompt, n=1, at most 4 stops, and the features it
    refuses (suffix, best_of > 1, logprobs, logit_bias, penalties)."""
    for branch in request.get("prompt", {}).get("anyOf", []):
        items = branch.get("items", {})
        if branch.get("type") == "array":
            branch["minItems"] = 1
            if items.get("type") in ("string", "array"):  # a list of prompts: only one is served
                branch["maxItems"] = 1
            if items.get("type") == "array":
                items["minItems"] = 1
    if "n" in request:
        request["n"].update(minimum=1, maximum=1)
    for branch in request.get("stop", {}).get("anyOf", []):
        if branch.get("type") == "array":
            branch["maxItems"] = 4
    for branch in request.get("best_of", {}).get("anyOf", []):
        if branch.get("type") == "integer":
            branch.update(minimum=1, maximum=1)
    for name in ("frequency_penalty", "presence_penalty"):
        for branch in request.get(name, {}).get("anyOf", []):
            if branch.get("type") == "number":
                branch.update(minimum=0, maximum=0)
    for name, refused in (("suffix", "string"), ("logprobs", "integer"), ("logit_bias", "object")):
        field = request.get(name, {})
        field["anyOf"] = [branch for branch in field.get("anyOf", []) if branch.get("type") != refused] \
            + ([{"type": "string", "maxLength": 0}] if refused == "string" else []) \
            + ([{"type": "object", "maxProperties": 0}] if refused == "object" else [])
