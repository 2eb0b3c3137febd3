"""Accounts end to end over HTTP, on SQLite and PostgreSQL: sign-up, login, sessions, keys,
and every kind of bad input refused with a code, nothing written, the audit log intact."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.factories import (
    STRONG_PASSWORD,
    adult_birthday,
    login,
    sign_up_buyer,
    sign_up_contributor,
    unique_email,
)

from fairtrain.accounts.models import ApiKey, User
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain


def counts(db: Session) -> tuple[int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(User)) or 0,
        db.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


def assert_problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    return body


def contributor_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "email": unique_email("c"),
        "password": STRONG_PASSWORD,
        "display_name": "Kim Contributor",
        "date_of_birth": "1990-01-01",
        "adult_attestation": True,
        "jurisdiction": "US-IL",
    }
    body.update(overrides)
    return body


def test_contributor_signup_login_me_and_audit(client: TestClient, db: Session) -> None:
    actor = sign_up_contributor(client, jurisdiction="us-il")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["kind"] == "contributor"
    assert me.json()["jurisdiction"] == "US-IL"
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert "account.contributor_registered" in actions
    assert "auth.session_started" in actions
    assert verify_stored_chain(db) == (True, None, None)
    assert actor.user_id.startswith("usr_") and len(actor.user_id) > 20


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"adult_attestation": False}, 422, "adult_attestation_required"),
        ({"date_of_birth": "2099-01-01"}, 422, "invalid_date_of_birth"),
        ({"password": "password123"}, 422, "weak_password"),
        ({"password": "short"}, 422, "weak_password"),
        ({"jurisdiction": "XX"}, 422, "unknown_jurisdiction"),
        ({"jurisdiction": "US-ZZ"}, 422, "unknown_jurisdiction"),
        ({"email": "not-an-address"}, 422, "invalid_email"),
        ({"display_name": "   "}, 422, "invalid_name"),
        ({"surprise": 1}, 422, "unknown_field"),
    ],
)
def test_bad_signups_are_refused_and_write_nothing(
    client: TestClient, db: Session, overrides: dict[str, object], status: int, code: str
) -> None:
    before = counts(db)
    response = client.post("/api/v1/accounts/contributors", json=contributor_body(**overrides))
    assert_problem(response, status, code)
    assert counts(db) == before
    assert verify_stored_chain(db)[0]


def test_under_18_refused_on_the_day_before_the_18th_birthday(
    client: TestClient, db: Session
) -> None:
    today = date.today()
    almost = adult_birthday(today, 18).toordinal() + 1
    body = contributor_body(date_of_birth=date.fromordinal(almost).isoformat())
    before = counts(db)
    assert_problem(client.post("/api/v1/accounts/contributors", json=body), 422, "under_age")
    assert counts(db) == before
    exactly = contributor_body(date_of_birth=adult_birthday(today, 18).isoformat())
    assert client.post("/api/v1/accounts/contributors", json=exactly).status_code == 201


def test_duplicate_email_is_a_conflict_case_insensitively(client: TestClient, db: Session) -> None:
    body = contributor_body()
    assert client.post("/api/v1/accounts/contributors", json=body).status_code == 201
    before = counts(db)
    again = dict(body, email=str(body["email"]).upper())
    assert_problem(client.post("/api/v1/accounts/contributors", json=again), 409, "email_taken")
    assert counts(db) == before


def test_malformed_json_and_missing_fields(client: TestClient) -> None:
    response = client.post(
        "/api/v1/accounts/contributors",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 422, "malformed_json")
    body = assert_problem(
        client.post("/api/v1/accounts/contributors", json={"email": "a@example.org"}),
        422,
        "missing_field",
    )
    assert body["pointer"].startswith("/")


def test_oversized_body_refused_before_parsing(client: TestClient, db: Session) -> None:
    before = counts(db)
    huge = b'{"email": "' + b"a" * 2_000_000 + b'"}'
    response = client.post(
        "/api/v1/accounts/contributors", content=huge, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")
    assert counts(db) == before


def test_wrong_password_is_throttled(client: TestClient, db: Session) -> None:
    actor = sign_up_contributor(client)
    client.cookies.clear()
    for _ in range(5):
        response = client.post(
            "/api/v1/auth/login", json={"email": actor.email, "password": "wrong-password-x"}
        )
        assert_problem(response, 401, "invalid_credentials")
    # Locked now, even with the right password.
    locked = client.post(
        "/api/v1/auth/login", json={"email": actor.email, "password": STRONG_PASSWORD}
    )
    assert_problem(locked, 429, "login_throttled")
    assert int(locked.headers["retry-after"]) > 0
    assert verify_stored_chain(db)[0]


def test_unknown_user_login_looks_like_wrong_password(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.org", "password": "whatever-pass"}
    )
    assert_problem(response, 401, "invalid_credentials")


def test_logout_and_revocation_take_effect_at_once(client: TestClient, make_client) -> None:  # type: ignore[no-untyped-def]
    actor = sign_up_contributor(client)
    token = client.cookies.get("ft_session")
    assert client.post("/api/v1/auth/logout", headers=actor.headers()).status_code == 204
    replay = make_client()
    replay.cookies.set("ft_session", token)
    assert_problem(replay.get("/api/v1/me"), 401, "session_expired")

    # Revoking another of my sessions from this one ends it immediately.
    phone = make_client()
    login(phone, actor.email)
    laptop = login(make_client(), actor.email)
    sessions = laptop.client.get("/api/v1/me/sessions").json()
    other = next(s for s in sessions if not s["current"])
    response = laptop.client.delete(f"/api/v1/me/sessions/{other['id']}", headers=laptop.headers())
    assert response.status_code == 204
    assert_problem(phone.get("/api/v1/me"), 401, "session_expired")


def test_csrf_required_for_cookie_authenticated_writes(client: TestClient) -> None:
    actor = sign_up_contributor(client)
    assert_problem(client.post("/api/v1/auth/logout"), 403, "csrf_failed")
    assert_problem(
        client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "0" * 64}), 403, "csrf_failed"
    )
    assert client.get("/api/v1/me").status_code == 200  # still logged in
    assert client.post("/api/v1/auth/logout", headers=actor.headers()).status_code == 204


def test_buyer_org_members_and_api_keys(client: TestClient, make_client, db: Session) -> None:  # type: ignore[no-untyped-def]
    admin = sign_up_buyer(client)
    assert admin.org_id
    member_email = unique_email("member")
    response = client.post(
        f"/api/v1/orgs/{admin.org_id}/members",
        json={"email": member_email, "password": STRONG_PASSWORD, "display_name": "Mo Member"},
        headers=admin.headers(),
    )
    assert response.status_code == 201, response.text
    member = login(make_client(), member_email)
    assert member.org_id == admin.org_id
    # A member reads the organisation but cannot manage keys.
    assert member.client.get(f"/api/v1/orgs/{admin.org_id}").status_code == 200
    assert_problem(
        member.client.post(
            f"/api/v1/orgs/{admin.org_id}/api-keys",
            json={"name": "ci", "scopes": ["catalog:read"]},
            headers=member.headers(),
        ),
        403,
        "not_org_admin",
    )
    created = client.post(
        f"/api/v1/orgs/{admin.org_id}/api-keys",
        json={"name": "training cluster", "scopes": ["catalog:read", "downloads:read"]},
        headers=admin.headers(),
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    key_id = created.json()["id"]
    # Only a hash is stored.
    stored = db.get(ApiKey, key_id)
    assert stored is not None and secret not in (stored.secret_hash, stored.prefix)
    listed = client.get(f"/api/v1/orgs/{admin.org_id}/api-keys").json()
    assert "secret" not in listed[0]

    bot = make_client()
    bearer = {"Authorization": f"Bearer {secret}"}
    assert bot.get(f"/api/v1/orgs/{admin.org_id}", headers=bearer).status_code == 200
    assert_problem(bot.get("/api/v1/me", headers=bearer), 401, "not_a_person")
    # Keys cannot manage keys, even of their own organisation.
    assert_problem(
        bot.post(
            f"/api/v1/orgs/{admin.org_id}/api-keys",
            json={"name": "x", "scopes": ["catalog:read"]},
            headers=bearer,
        ),
        403,
        "not_org_admin",
    )
    revoked = client.delete(
        f"/api/v1/orgs/{admin.org_id}/api-keys/{key_id}", headers=admin.headers()
    )
    assert revoked.status_code == 204
    assert_problem(bot.get(f"/api/v1/orgs/{admin.org_id}", headers=bearer), 401, "invalid_api_key")
    assert_problem(
        bot.get(f"/api/v1/orgs/{admin.org_id}", headers={"Authorization": "Basic abc"}),
        401,
        "invalid_authorization",
    )
    assert verify_stored_chain(db)[0]


def test_api_key_scopes_validated(client: TestClient) -> None:
    admin = sign_up_buyer(client)
    response = client.post(
        f"/api/v1/orgs/{admin.org_id}/api-keys",
        json={"name": "x", "scopes": ["everything"]},
        headers=admin.headers(),
    )
    assert_problem(response, 422, "unknown_scope")


def test_last_admin_cannot_be_removed(client: TestClient) -> None:
    admin = sign_up_buyer(client)
    response = client.delete(
        f"/api/v1/orgs/{admin.org_id}/members/{admin.user_id}", headers=admin.headers()
    )
    assert_problem(response, 409, "last_admin")


def test_removed_member_is_logged_out_at_once(client: TestClient, make_client) -> None:  # type: ignore[no-untyped-def]
    admin = sign_up_buyer(client)
    email = unique_email("m")
    client.post(
        f"/api/v1/orgs/{admin.org_id}/members",
        json={"email": email, "password": STRONG_PASSWORD, "display_name": "Short Stay"},
        headers=admin.headers(),
    )
    member = login(make_client(), email)
    assert member.client.get("/api/v1/me").status_code == 200
    response = client.delete(
        f"/api/v1/orgs/{admin.org_id}/members/{member.user_id}", headers=admin.headers()
    )
    assert response.status_code == 204
    assert_problem(member.client.get("/api/v1/me"), 401, "session_expired")


def test_profile_is_optional_generalised_and_audited(client: TestClient, db: Session) -> None:
    sign_up_contributor(client, jurisdiction="US-IL")
    empty = client.get("/api/v1/me/profile").json()
    assert empty["shown_to_buyers"] == {
        "age_band": None,
        "gender": None,
        "accent": None,
        "region": None,
        "languages": [],
    }
    me = client.get("/api/v1/me").json()
    csrf = {"X-CSRF-Token": me["csrf_token"]}
    updated = client.put(
        "/api/v1/me/profile",
        json={
            "share_age_band": True,
            "gender": "non-binary",
            "accent": " Chicago  English ",
            "share_region": True,
            "languages": ["en", "es-MX"],
        },
        headers=csrf,
    )
    assert updated.status_code == 200, updated.text
    shown = updated.json()["shown_to_buyers"]
    assert shown["age_band"] in ("25-34", "35-44")  # born 1991, a band and never a date
    assert shown["region"] == "US"  # the country only, never the state
    assert shown["accent"] == "Chicago English"
    last = db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert last is not None and last.action == "profile.updated"
    assert "Chicago" not in str(last.payload)  # the log records the change, not the values
    bad = client.put("/api/v1/me/profile", json={"languages": ["english please"]}, headers=csrf)
    assert_problem(bad, 422, "invalid_language")
    assert_problem(
        client.put("/api/v1/me/profile", json={"gender": "x"}, headers=csrf), 422, "invalid_gender"
    )
