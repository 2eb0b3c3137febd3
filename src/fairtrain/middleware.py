"""ASGI middleware: request ids and access logs, security headers, request body limits."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fairtrain.logs import REQUEST_ID
from fairtrain.metrics import HTTP_LATENCY

__all__ = [
    "SECURITY_HEADERS",
    "BodyLimitMiddleware",
    "RequestContextMiddleware",
    "loggable_path",
]

log = logging.getLogger("fairtrain.http")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Paths that carry a credential: a counterparty's invite token is their only key, and a
# signed download link is half of a licence holder's.
_CREDENTIAL_PATH = re.compile(r"^(/(?:api/v1/)?invites/|/api/v1/downloads/)[^/]+")


def loggable_path(path: str) -> str:
    """The request path as the access log may keep it: invite and download tokens
    replaced."""
    return _CREDENTIAL_PATH.sub(r"\1[token]", path)


SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


class RequestContextMiddleware:
    """Gives every request an id (kept from X-Request-ID when sane), logs it, adds headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra: Iterable[tuple[str, str]] = [
                    *SECURITY_HEADERS.items(),
                    ("x-request-id", request_id),
                ]
                for name, value in extra:
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            # The matched route's template (Starlette records it in the scope), so ids in
            # paths never become label values.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_LATENCY.labels(
                str(scope.get("method")), route, str(status_holder["status"])
            ).observe(elapsed)
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope.get("method"),
                        "path": loggable_path(str(scope.get("path", ""))),
                        "status": status_holder["status"],
                        "duration_ms": round(elapsed * 1000, 2),
                    }
                },
            )
            REQUEST_ID.reset(token)


class BodyLimitMiddleware:
    """Refuses request bodies over a limit, declared or streamed, except on upload paths.

    Uploads stream to the vault with their own per-modality limits.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        seen = 0
        detail = f"The request body is larger than the {limit:,} bytes accepted here."
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            body = json.dumps(
                {
                    "type": "https://fairtrain.org/problems/payload_too_large",
                    "title": "Payload too large",
                    "status": 413,
                    "code": "payload_too_large",
                    "detail": detail,
                    "instance": scope.get("path", ""),
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException passes through FastAPI's body parsing unchanged.
                    raise HTTPException(status_code=413, detail=detail)
            return message

        await self.app(scope, limited_receive, send)
