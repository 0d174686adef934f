"""Pure ASGI middleware (BaseHTTPMiddleware would buffer streams and hide disconnects)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """Takes X-Request-Id from the client (or makes one), echoes it, and counts response statuses."""

    def __init__(self, app: ASGIApp, on_status=None, counted_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.on_status = on_status
        self.counted_paths = counted_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        counted = self.on_status is not None and scope["path"] in self.counted_paths

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
                if counted:
                    self.on_status(message["status"])
            await send(message)

        await self.app(scope, receive, send_with_id)
