"""The shared edge: problem documents, HTML errors, request ids, security headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fairtrain.middleware import SECURITY_HEADERS, loggable_path


def test_unknown_api_path_is_a_problem_document(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["type"].endswith("/not_found")
    assert body["instance"] == "/api/v1/nothing-here"
    assert body["request_id"] == response.headers["x-request-id"]


def test_the_same_error_renders_as_a_page_for_browsers(client: TestClient) -> None:
    response = client.get("/nothing-here", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "not_found" in response.text
    assert 'role="alert"' in response.text


def test_wrong_method_has_a_code(client: TestClient) -> None:
    response = client.put("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_request_id_is_kept_when_sane_and_replaced_when_not(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"x-request-id": "abc12345-trace"})
    assert kept.headers["x-request-id"] == "abc12345-trace"
    replaced = client.get("/healthz", headers={"x-request-id": "<script>"})
    assert replaced.headers["x-request-id"] != "<script>"
    assert len(replaced.headers["x-request-id"]) == 32


def test_security_headers_on_every_response(client: TestClient) -> None:
    for path in ("/", "/healthz", "/api/v1/nothing"):
        response = client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (path, name)


def test_openapi_lists_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/accounts/contributors" in spec["paths"]
    assert spec["info"]["title"] == "fairtrain"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/invites/s3cr3t-T0ken_", "/invites/[token]"),
        ("/invites/s3cr3t/answer", "/invites/[token]/answer"),
        ("/api/v1/invites/s3cr3t/part", "/api/v1/invites/[token]/part"),
        ("/api/v1/assets/ast_1/invites/inv_2", "/api/v1/assets/ast_1/invites/inv_2"),
        ("/assets/ast_1", "/assets/ast_1"),
    ],
)
def test_invite_tokens_are_kept_out_of_logged_paths(path: str, logged: str) -> None:
    assert loggable_path(path) == logged
