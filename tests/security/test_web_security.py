"""Web security: cookie flags, session fixation, secrets never logged, unguessable ids."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from tests.factories import STRONG_PASSWORD, sign_up_buyer, sign_up_contributor

from fairtrain.logs import JsonFormatter

ID_RE = re.compile(r"^[a-z]{3}_[a-z2-7]{26}$")


def test_session_cookie_flags(client: TestClient) -> None:
    actor = sign_up_contributor(client)
    response = client.post(
        "/api/v1/auth/login", json={"email": actor.email, "password": STRONG_PASSWORD}
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie


def _issued_token(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r"ft_session=([^;]+)", response.headers["set-cookie"])
    assert found
    return found.group(1)


def test_login_always_issues_a_new_session(client: TestClient, make_client) -> None:  # type: ignore[no-untyped-def]
    """Session fixation: a token planted before login is never adopted."""
    actor = sign_up_contributor(client)
    victim = make_client()
    planted = "attacker-chosen-token"
    response = victim.post(
        "/api/v1/auth/login",
        json={"email": actor.email, "password": STRONG_PASSWORD},
        headers={"Cookie": f"ft_session={planted}"},
    )
    assert response.status_code == 200
    assert _issued_token(response) != planted
    again = make_client().post(
        "/api/v1/auth/login", json={"email": actor.email, "password": STRONG_PASSWORD}
    )
    assert _issued_token(again) != _issued_token(response)


def test_no_secret_reaches_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = sign_up_buyer(client)
    created = client.post(
        f"/api/v1/orgs/{admin.org_id}/api-keys",
        json={"name": "k", "scopes": ["catalog:read"]},
        headers=admin.headers(),
    ).json()
    client.get(
        f"/api/v1/orgs/{admin.org_id}", headers={"Authorization": f"Bearer {created['secret']}"}
    )
    client.post("/api/v1/auth/login", json={"email": admin.email, "password": "wrong-guess-123"})
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert caplog.records, "expected access log records"
    for secret in (
        STRONG_PASSWORD,
        "wrong-guess-123",
        created["secret"],
        client.cookies.get("ft_session") or "<none>",
        admin.csrf,
    ):
        assert secret not in text


def test_secret_fields_are_redacted_by_the_formatter() -> None:
    record = logging.LogRecord("fairtrain", logging.INFO, __file__, 1, "x", None, None)
    record.fields = {"password": "hunter2-long", "path": "/x"}  # type: ignore[attr-defined]
    line = JsonFormatter().format(record)
    assert "hunter2-long" not in line
    assert "[redacted]" in line


def test_exposed_ids_are_unguessable(client: TestClient) -> None:
    admin = sign_up_buyer(client)
    key = client.post(
        f"/api/v1/orgs/{admin.org_id}/api-keys",
        json={"name": "k", "scopes": ["catalog:read"]},
        headers=admin.headers(),
    ).json()
    sessions = client.get("/api/v1/me/sessions").json()
    for value in (admin.user_id, admin.org_id, key["id"], sessions[0]["id"]):
        assert ID_RE.match(value), value


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orgs/org_1",
        "/api/v1/orgs/1",
        "/api/v1/orgs/org_aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/api/v1/orgs/..%2f..%2fetc%2fpasswd",
    ],
)
def test_guessed_ids_find_nothing(client: TestClient, path: str) -> None:
    sign_up_buyer(client)
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] in ("org_not_found", "not_found")
