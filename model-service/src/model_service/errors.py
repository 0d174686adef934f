"""One error shape for every failure: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .openai.common.protocol import ErrorInfo, ErrorResponse

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class APIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> ErrorResponse:
        return error_body(self.status, self.message, param=self.param, code=self.code)


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> ErrorResponse:
    return ErrorResponse(error=ErrorInfo(message=message, type=_TYPES.get(status, "server_error" if status >= 500
                                                                           else "invalid_request_error"),
                                         param=param, code=code))


def encode_json(content) -> str:
    """JSON with every non-ASCII character escaped: an error may quote what the client sent, and a
    lone surrogate (legal in JSON) has no UTF-8 form, so it must travel as its \\uXXXX escape."""
    return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


class ErrorJSONResponse(JSONResponse):
    def render(self, content) -> bytes:
        return encode_json(content).encode("ascii")


def error_response(exc: APIError) -> JSONResponse:
    return ErrorJSONResponse(exc.body().model_dump(), status_code=exc.status, headers=exc.headers)


_UNION_MEMBER_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _is_field(part) -> bool:
    """False for the union-member tags pydantic puts into a location ('str', 'list[TextContentPart]')."""
    return not isinstance(part, str) or (part not in _UNION_MEMBER_TAGS and "[" not in part and part != "body")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    # The deepest error is the precise one: a union reports a type mismatch for each member it tried.
    first = max(errors, key=lambda e: len(e.get("loc", ())), default={})
    loc = [str(p) for p in first.get("loc", ()) if _is_field(p)]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON", None
    msg = first.get("msg", "invalid request")
    if first.get("type") == "missing":
        msg = "field required"
    return (f"{param}: {msg}" if param else msg), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(APIError(400, message, param=param, code="invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return error_response(APIError(exc.status_code, message, headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(APIError(500, "internal server error", code="internal_error"))
