"""Domain errors, raised by services and mapped to HTTP once, at the edge.

Every error carries a stable machine-readable ``code`` (snake_case, never reworded once
published), a human ``detail`` sentence and the HTTP status it maps to. Services never
raise ``HTTPException``; ``app.py`` renders these as RFC 9457 problem+json for the API and
as an HTML page for the web UI.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationRequired",
    "Conflict",
    "DomainError",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "UnsupportedMedia",
]


class DomainError(Exception):
    """Base class: a refusal the caller can act on."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        pointer: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        # JSON pointer (RFC 6901) or dotted path to the offending part of the input.
        self.pointer = pointer
        self.extra = extra or {}


class InvalidInput(DomainError):
    status = 422
    default_code = "invalid_input"


class AuthenticationRequired(DomainError):
    status = 401
    default_code = "authentication_required"


class Forbidden(DomainError):
    status = 403
    default_code = "forbidden"


class NotFound(DomainError):
    status = 404
    default_code = "not_found"


class Conflict(DomainError):
    status = 409
    default_code = "conflict"


class Gone(DomainError):
    status = 410
    default_code = "gone"


class PayloadTooLarge(DomainError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMedia(DomainError):
    status = 415
    default_code = "unsupported_media_type"


class RateLimited(DomainError):
    status = 429
    default_code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code, extra={"retry_after": retry_after})
        self.retry_after = retry_after
