"""One error shape for the whole app: RFC 9457 problem+json, or the same as an HTML page."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from fairtrain.errors import DomainError
from fairtrain.logs import REQUEST_ID

__all__ = [
    "PROBLEM_RESPONSES",
    "PROBLEM_TYPE_BASE",
    "Problem",
    "problem_response",
    "register_error_handlers",
]

PROBLEM_TYPE_BASE = "https://fairtrain.org/problems/"


class Problem(BaseModel):
    """RFC 9457 problem details, with fairtrain's stable machine-readable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    pointer: str | None = None
    request_id: str | None = None


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
    }


# Documented on every API route, so clients (and the schemathesis fuzzing) know the shape
# of every refusal.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem_doc("Not authenticated, or the credential has ended."),
    403: _problem_doc("Authenticated, but not allowed (or a CSRF token is missing)."),
    404: _problem_doc("Missing, or belonging to someone else."),
    405: _problem_doc("Method not allowed."),
    409: _problem_doc("Conflicts with the current state."),
    413: _problem_doc("The request body is too large."),
    422: _problem_doc("The input is invalid; `pointer` says where."),
    429: _problem_doc("Too many requests; see Retry-After."),
}

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}
_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
}


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    pointer: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        "instance": request.url.path,
    }
    if pointer:
        body["pointer"] = pointer
    request_id = REQUEST_ID.get()
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    if _wants_html(request):
        templates = request.app.state.templates
        return HTMLResponse(
            templates.get_template("error.html").render(problem=body, request=request),
            status_code=status,
            headers=headers,
        )
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _validation_code(errors: list[dict[str, Any]]) -> str:
    kinds = {str(error.get("type", "")) for error in errors}
    if "json_invalid" in kinds:
        return "malformed_json"
    if "extra_forbidden" in kinds:
        return "unknown_field"
    if "missing" in kinds:
        return "missing_field"
    return "invalid_input"


def _pointer(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        source, parts = parts[0], parts[1:]
        return ("/" if source == "body" else f"{source}:/") + "/".join(parts)
    return "/" + "/".join(parts)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = None
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        headers = {"Retry-After": str(retry_after)}
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        detail=exc.detail,
        pointer=exc.pointer,
        extra=dict(exc.extra),
        headers=headers,
    )


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [dict(e) for e in exc.errors()]
    code = _validation_code(errors)
    shaped = [
        {
            "pointer": _pointer(tuple(e.get("loc", ()))),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    first = shaped[0] if shaped else {"pointer": "/", "message": "invalid"}
    sentences = {
        "malformed_json": "The request body is not valid JSON.",
        "unknown_field": f"The field at {first['pointer']} is not accepted here.",
        "missing_field": f"The field at {first['pointer']} is required.",
    }
    detail = sentences.get(code, f"{first['pointer']}: {first['message']}")
    return problem_response(
        request,
        status=422,
        code=code,
        detail=detail,
        pointer=first["pointer"],
        extra={"errors": shaped},
    )


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "The request could not be served."
    if status == 404 and detail == "Not Found":
        detail = "There is nothing at this address."
    if status == 405:
        detail = "This address does not accept that method."
    return problem_response(
        request,
        status=status,
        code=code,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    return problem_response(
        request,
        status=500,
        code="internal_error",
        detail="Something went wrong on our side. Nothing was changed; please try again.",
    )


def register_error_handlers(app: Any) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
