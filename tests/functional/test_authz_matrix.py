"""The authorisation matrix: every route of the app × every role × own vs another tenant.

The test enumerates the app's routes at run time and fails when one is missing from
MATRIX, so a new route cannot ship unchecked. For each route it asks as every role:
allowed roles must get a success (< 400, and never a redirect to the login page); every
other role must be refused (401/403/404 or, for pages, a redirect to /login). For routes
that address a tenant's object, each allowed tenant role then asks for the *other*
tenant's object and must be refused: the Neon-style breach (any user reading any other
user's calls) is what this proves impossible.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from sqlalchemy.orm import Session
from tests.factories import STRONG_PASSWORD, login, unique_email
from tests.functional.authz_world import ROLES, Caller, World, build_world

from fairtrain.app import route_inventory
from fairtrain.audit.keys import public_key_pem
from fairtrain.ledger import service as ledger
from fairtrain.withdrawal import notices as notice_service

EVERYONE = frozenset(ROLES)
PERSONS = frozenset({"contributor", "buyer_admin", "buyer_member", "operator", "auditor"})
ORG_READERS = frozenset({"buyer_admin", "buyer_member", "api_key", "operator"})
ORG_ADMIN = frozenset({"buyer_admin"})
TENANT_ROLES = frozenset({"contributor", "buyer_admin", "buyer_member", "api_key"})

Builder = Callable[[World, Caller, str], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    allow: frozenset[str]
    build: Builder = field(default=lambda world, caller, tenant: {})
    # Addresses an object owned by a tenant: also probe the other tenant's object.
    tenant_scoped: bool = False
    # Roles that may legitimately reach another tenant's object (contributors read any
    # open campaign): not probed for leaks.
    shared_with: frozenset[str] = frozenset()


def _org(world: World, caller: Caller, tenant: str) -> str:
    org_id = world.tenant(tenant).buyer_admin.org_id
    assert org_id
    return org_id


def _contributor_body() -> dict[str, Any]:
    return {
        "email": unique_email("m"),
        "password": STRONG_PASSWORD,
        "display_name": "Matrix Person",
        "date_of_birth": "1988-08-08",
        "adult_attestation": True,
        "jurisdiction": "FR",
    }


def _session_id(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    # A fresh extra session, so deleting it leaves the caller logged in: the caller's own
    # when asking as a person for "own", else the named tenant's contributor's.
    owner = (
        caller
        if (tenant == "own" and caller.role in PERSONS)
        else (world.tenant(tenant).contributor)
    )
    assert owner.email
    fresh = login(world.extra["make_client"](), owner.email)
    sessions = fresh.client.get("/api/v1/me/sessions").json()
    current = next(s for s in sessions if s["current"])
    return {"path_params": {"session_id": current["id"]}}


def _new_member(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    admin = world.tenant(tenant).buyer_admin
    email = unique_email("gone")
    response = admin.request(
        "POST",
        f"/api/v1/orgs/{admin.org_id}/members",
        json={"email": email, "password": STRONG_PASSWORD, "display_name": "Leaving Soon"},
    )
    assert response.status_code == 201, response.text
    return {"path_params": {"org_id": admin.org_id, "user_id": response.json()["user_id"]}}


def _new_key(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    admin = world.tenant(tenant).buyer_admin
    response = admin.request(
        "POST",
        f"/api/v1/orgs/{admin.org_id}/api-keys",
        json={"name": "disposable", "scopes": ["catalog:read"]},
    )
    assert response.status_code == 201, response.text
    return {"path_params": {"org_id": admin.org_id, "key_id": response.json()["id"]}}


def _login_form(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    return {
        "data": {
            "email": world.own.contributor.email,
            "password": STRONG_PASSWORD,
            "csrf_token": caller.page_csrf("/login"),
        }
    }


def _signup_form(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    body = _contributor_body()
    body["adult_attestation"] = "yes"
    body["csrf_token"] = caller.page_csrf("/signup")
    return {"data": body}


def _buyer_signup_form(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    return {
        "data": {
            "org_name": "Form Org",
            "email": unique_email("bf"),
            "password": STRONG_PASSWORD,
            "display_name": "Form Buyer",
            "jurisdiction": "DK",
            "csrf_token": caller.page_csrf("/signup/buyer"),
        }
    }


CONTRIBUTOR = frozenset({"contributor"})
BUYERS = frozenset({"buyer_admin", "buyer_member", "api_key"})
CATALOG_READERS = BUYERS | {"operator"}
SPENDERS = frozenset({"buyer_admin", "api_key"})
ASSET_READERS = frozenset({"contributor", "operator"})


def _png() -> bytes:
    # A fresh image each time: identical bytes would be flagged as duplicates.
    image = Image.new("RGB", (64, 48), tuple(secrets.randbelow(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _asset(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """An asset of the tenant's contributor (the caller's own when it is that contributor)."""
    owner = world.tenant(tenant).contributor
    response = owner.request(
        "POST", "/api/v1/uploads", content=_png(), params={"filename": "matrix.png"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return {"path_params": {"asset_id": body["id"], "job_id": body["job_id"]}}


def _chat_asset(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A chat whose senders do not carry the owner's name: it waits for "which one is you"."""
    owner = world.tenant(tenant).contributor
    chat = (
        "12/01/2024, 10:00 - Zed Quux: hello there, are we still meeting tomorrow\n"
        "12/01/2024, 10:01 - Yan Blop: yes, at the station at nine\n"
    )
    response = owner.request(
        "POST", "/api/v1/uploads", content=chat.encode(), params={"filename": "chat.txt"}
    )
    assert response.status_code == 201, response.text
    asset = owner.request("GET", f"/api/v1/assets/{response.json()['id']}").json()
    assert asset["state_code"] == "chat_sender_needed", asset
    return {"path_params": {"asset_id": asset["id"]}, "json": {"chat_sender": "Zed Quux"}}


def _listed_asset(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """An approved asset (which gives it the default terms)."""
    spec = _asset(world, caller, tenant)
    owner = world.tenant(tenant).contributor
    asset_id = spec["path_params"]["asset_id"]
    approved = owner.request("POST", f"/api/v1/assets/{asset_id}/approve")
    assert approved.status_code == 200, approved.text
    return spec


def _ending_asset(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """An asset whose terms end in a month, and a renewal of them to a year."""
    spec = _asset(world, caller, tenant)
    owner = world.tenant(tenant).contributor
    soon = datetime.now(UTC) + timedelta(days=30)
    terms = {"allowed": ["academic_research"], "ends_at": soon.isoformat()}
    changed = owner.request("PUT", f"/api/v1/assets/{spec['path_params']['asset_id']}/policy",
                            json={"terms": terms})  # fmt: skip
    assert changed.status_code == 200, changed.text
    return {**spec, "json": {"until": (soon + timedelta(days=365)).isoformat()}}


def _receipt(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    _listed_asset(world, caller, tenant)
    owner = world.tenant(tenant).contributor
    receipts = owner.request("GET", "/api/v1/me/receipts").json()
    return {"path_params": {"receipt_id": receipts[0]["id"]}}


SAMPLE_POLICY = {
    "@context": "http://www.w3.org/ns/odrl.jsonld",
    "uid": "https://example.org/policy/1",
    "type": "Set",
    "permission": [
        {"action": "use", "constraint": [{"leftOperand": "purpose", "operator": "isA",
                                          "rightOperand": "dpv:AcademicResearch"}]}
    ],
}  # fmt: skip


def _tus_upload(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    owner = world.tenant(tenant).contributor
    response = owner.request(
        "POST",
        "/api/v1/uploads/tus",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1000"},
    )
    assert response.status_code == 201, response.text
    upload_id = response.headers["location"].rsplit("/", 1)[-1]
    return {"path_params": {"upload_id": upload_id}, "headers": {"Tus-Resumable": "1.0.0"}}


def _tus_patch(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    spec = _tus_upload(world, caller, tenant)
    spec["headers"] |= {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    spec["content"] = b"x" * 10
    return spec


def _chat_with_a_partner(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A listed chat of the tenant's contributor ("Zed Quux") with one partner to invite."""
    spec = _chat_asset(world, caller, tenant)
    owner = world.tenant(tenant).contributor
    asset_id = spec["path_params"]["asset_id"]
    for step in ("identify", "approve"):
        done = owner.request("POST", f"/api/v1/assets/{asset_id}/{step}", json=spec["json"])
        assert done.status_code == 200, done.text
    return {"path_params": {"asset_id": asset_id}}


def _invite(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A fresh invite of the tenant's contributor to the chat partner "Yan Blop"."""
    spec = _chat_with_a_partner(world, caller, tenant)
    owner = world.tenant(tenant).contributor
    asset_id = spec["path_params"]["asset_id"]
    made = owner.request(
        "POST", f"/api/v1/assets/{asset_id}/invites", json={"part": "chat_sender:Yan Blop"}
    )
    assert made.status_code == 201, made.text
    token = made.json()["link"].rsplit("/", 1)[1]
    return {"path_params": {"asset_id": asset_id, "invite_id": made.json()["id"], "token": token}}


def _consented_invite(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    spec = _invite(world, caller, tenant)
    token = spec["path_params"]["token"]
    answered = world.anonymous.request(
        "POST", f"/api/v1/invites/{token}/answer", json={"consent": True}
    )
    assert answered.status_code == 200, answered.text
    return spec


def _invite_form(spec: dict[str, Any], caller: Caller, data: dict[str, str]) -> dict[str, Any]:
    # Whoever holds the link answers on its page: the page's CSRF token, or the session's.
    token = spec["path_params"]["token"]
    csrf = caller.csrf or caller.page_csrf(f"/invites/{token}")
    return {**spec, "data": {**data, "csrf_token": csrf}}


def _logout_form(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    return {"data": {"csrf_token": caller.csrf or ""}}


def _deadline() -> str:
    return (datetime.now(UTC) + timedelta(days=30)).isoformat()


CAMPAIGN_BODY = {
    "title": "Photos of street signs",
    "modality": "image",
    "purpose": "fine_tuning",
    "territory": "DE",
    "price_per_unit_minor": 200,
    "target_units": 100,
}


def _campaign(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    admin = world.tenant(tenant).buyer_admin
    response = admin.request(
        "POST", "/api/v1/campaigns", json=CAMPAIGN_BODY | {"deadline": _deadline()}
    )
    assert response.status_code == 201, response.text
    return {"path_params": {"campaign_id": response.json()["id"]}}


def _submission_request(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """The caller's tenant's campaign, and the tenant's contributor's listed asset."""
    spec = _campaign(world, caller, "own")
    asset = _listed_asset(world, caller, tenant)["path_params"]["asset_id"]
    return {**spec, "json": {"asset_id": asset}}


def _submission(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A submission by the tenant's contributor to the tenant's buyer's campaign."""
    spec = _campaign(world, caller, tenant)
    asset = _listed_asset(world, caller, tenant)["path_params"]["asset_id"]
    owner = world.tenant(tenant).contributor
    campaign_id = spec["path_params"]["campaign_id"]
    response = owner.request(
        "POST", f"/api/v1/campaigns/{campaign_id}/submissions", json={"asset_id": asset}
    )
    assert response.status_code == 201, response.text
    return {"path_params": {"campaign_id": campaign_id, "submission_id": response.json()["id"]}}


DATASET_BODY = {
    "name": "Matrix images",
    "purpose": "fine_tuning",
    "territory": "DE",
    "selection": {"modality": ["image"]},
}


def _dataset(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    admin = world.tenant(tenant).buyer_admin
    response = admin.request("POST", "/api/v1/datasets", json=DATASET_BODY)
    assert response.status_code == 201, response.text
    body = response.json()
    return {"path_params": {"dataset_id": body["id"], "version_id": body["latest_version"]["id"]}}


OPERATOR = frozenset({"operator"})
IBAN = "DE89370400440532013000"


def _payout_details(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """The tenant's contributor has registered where to be paid."""
    owner = world.tenant(tenant).contributor
    response = owner.request(
        "PUT", "/api/v1/me/payout-details", json={"account_holder": "Matrix Payee", "iban": IBAN}
    )
    assert response.status_code == 200, response.text
    return {}


def _payable(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A paid licence leaves the tenant's contributor owed more than the payout minimum.

    Licence checkout is not an HTTP route of this piece: the sale is booked through the
    ledger's own lifecycle functions, as licensing books it.
    """
    _payout_details(world, caller, tenant)
    db: Session = world.extra["db"]
    side = world.tenant(tenant)
    assert side.buyer_admin.org_id and side.contributor.user_id
    order = f"ord_{secrets.token_hex(6)}"
    ledger.record_invoice(
        db,
        order_id=order,
        org_id=side.buyer_admin.org_id,
        currency="EUR",
        total_minor=2500,
        actor="system:test",
    )
    ledger.record_payment(
        db,
        order_id=order,
        org_id=side.buyer_admin.org_id,
        currency="EUR",
        total_minor=2500,
        contributor_shares={side.contributor.user_id: 2000},
        platform_fee_minor=500,
        actor="system:test",
    )
    db.commit()
    return {"json": {"currency": "EUR"}}


def _batch(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A payout batch, just sent to the bank."""
    _payable(world, caller, tenant)
    db: Session = world.extra["db"]
    batch = ledger.create_payout_batch(db, currency="EUR", minimum_minor=1000, actor="system:test")
    db.commit()
    return {"path_params": {"batch_id": batch.id}}


def _quotable(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A dataset of the tenant's buyer with one item in it (a freshly listed photo)."""
    _listed_asset(world, caller, tenant)
    return _dataset(world, caller, tenant)


def _quote(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    spec = _quotable(world, caller, tenant)
    admin = world.tenant(tenant).buyer_admin
    version_id = spec["path_params"]["version_id"]
    response = admin.request("POST", f"/api/v1/dataset-versions/{version_id}/quotes")
    assert response.status_code == 201, response.text
    return {"path_params": {"quote_id": response.json()["id"]}}


def _order(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    quote_id = _quote(world, caller, tenant)["path_params"]["quote_id"]
    admin = world.tenant(tenant).buyer_admin
    response = admin.request(
        "POST",
        f"/api/v1/quotes/{quote_id}/orders",
        headers={"Idempotency-Key": secrets.token_hex(16)},
    )
    assert response.status_code == 201, response.text
    return {"path_params": {"order_id": response.json()["id"]}, "json": {"reference": "M-1"}}


def _order_request(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    spec = _quote(world, caller, tenant)
    return {**spec, "headers": {"Idempotency-Key": secrets.token_hex(16)}}


def _licence(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    order_id = _order(world, caller, tenant)["path_params"]["order_id"]
    response = world.operator.request(
        "POST", f"/api/v1/orders/{order_id}/confirm-payment", json={"reference": "M-2"}
    )
    assert response.status_code == 200, response.text
    return {"path_params": {"licence_id": response.json()["id"]}}


def _export(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A ready export of a fresh licence of the tenant's buyer (jobs run at once)."""
    licence_id = _licence(world, caller, tenant)["path_params"]["licence_id"]
    admin = world.tenant(tenant).buyer_admin
    started = admin.request("POST", f"/api/v1/licences/{licence_id}/exports")
    assert started.status_code == 202, started.text
    export_id = started.json()["id"]
    status = admin.request("GET", f"/api/v1/licences/{licence_id}/exports/{export_id}").json()
    assert status["state"] == "ready", status
    token = status["files"][0]["url"].rsplit("/", 1)[1]
    return {"path_params": {"licence_id": licence_id, "export_id": export_id, "token": token}}


BUYER_PEOPLE = frozenset({"buyer_admin", "buyer_member"})
DATASET_FORM = {"name": "Matrix page images", "purpose": "fine_tuning", "territory": "DE",
                "modality": ["image"]}  # fmt: skip


def _page_form(fields: dict[str, Any]) -> Builder:
    """A page's form: the fields and the caller's CSRF token."""
    return lambda world, caller, tenant: {"data": {**fields, "csrf_token": caller.csrf or ""}}


def _with_form(build: Builder, **fields: Callable[[], str]) -> Builder:
    """An object's page form: ``build``'s path, the fields (made fresh each call) and the
    caller's CSRF token, posted as a form instead of JSON."""

    def built(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
        spec = build(world, caller, tenant)
        data = {name: make() for name, make in fields.items()}
        return {"path_params": spec.get("path_params", {}),
                "data": {**data, "csrf_token": caller.csrf or ""}}  # fmt: skip

    return built


def _submission_form(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    spec = _submission_request(world, caller, tenant)
    return {"path_params": spec["path_params"],
            "data": {**spec["json"], "csrf_token": caller.csrf or ""}}  # fmt: skip


def _notice(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A notice to the tenant's buyer: its contributor withdraws an asset it licensed."""
    licence_id = _licence(world, caller, tenant)["path_params"]["licence_id"]
    owner = world.tenant(tenant).contributor
    response = owner.request("POST", "/api/v1/withdrawals", json={"everything": True})
    assert response.status_code == 201, response.text
    notice = next(b for b in response.json()["buyers"] if b["licence_id"] == licence_id)
    return {"path_params": {"notice_id": notice["notice_id"]}}


def _attestation(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    """A notice and a deletion attestation signed by a key its buyer registered."""
    spec = _notice(world, caller, tenant)
    admin = world.tenant(tenant).buyer_admin
    key = Ed25519PrivateKey.generate()
    registered = admin.request(
        "POST",
        f"/api/v1/orgs/{admin.org_id}/attestation-keys",
        json={"public_key_pem": public_key_pem(key.public_key()).decode()},
    )
    assert registered.status_code == 201, registered.text
    feed = admin.request("GET", "/api/v1/notices").json()["notices"]
    body = next(n["body"] for n in feed if n["id"] == spec["path_params"]["notice_id"])
    document = notice_service.attestation_document(body, deleted_at=datetime.now(UTC))
    return {**spec, "json": {"jws": notice_service.sign_attestation(document, key)}}


def _webhook(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    admin = world.tenant(tenant).buyer_admin
    response = admin.request(
        "POST", f"/api/v1/orgs/{admin.org_id}/webhooks", json={"url": "http://127.0.0.1:9/hook"}
    )
    assert response.status_code == 201, response.text
    return {"path_params": {"org_id": admin.org_id, "endpoint_id": response.json()["id"]}}


def _key_body(world: World, caller: Caller, tenant: str) -> dict[str, Any]:
    pem = public_key_pem(Ed25519PrivateKey.generate().public_key()).decode()
    return {"path_params": {"org_id": _org(world, caller, tenant)}, "json": {"public_key_pem": pem}}


MATRIX: dict[tuple[str, str], Rule] = {
    # Operations and documentation: public by design.
    ("GET", "/healthz"): Rule(EVERYONE),
    ("GET", "/readyz"): Rule(EVERYONE),
    # Metrics: operators (and a scraper holding FAIRTRAIN_METRICS_TOKEN, tested apart).
    ("GET", "/metrics"): Rule(frozenset({"operator"})),
    ("GET", "/openapi.json"): Rule(EVERYONE),
    ("GET", "/api/docs"): Rule(EVERYONE),
    ("GET", "/docs/oauth2-redirect"): Rule(EVERYONE),
    # Accounts.
    ("POST", "/api/v1/accounts/contributors"): Rule(
        EVERYONE, lambda w, c, t: {"json": _contributor_body()}
    ),
    ("POST", "/api/v1/accounts/buyers"): Rule(
        EVERYONE,
        lambda w, c, t: {
            "json": {
                "org_name": "Matrix Org",
                "email": unique_email("b"),
                "password": STRONG_PASSWORD,
                "display_name": "Matrix Buyer",
                "jurisdiction": "BE",
            }
        },
    ),
    ("POST", "/api/v1/auth/login"): Rule(
        EVERYONE,
        lambda w, c, t: {"json": {"email": w.own.contributor.email, "password": STRONG_PASSWORD}},
    ),
    ("POST", "/api/v1/auth/logout"): Rule(PERSONS),
    ("GET", "/api/v1/me"): Rule(PERSONS),
    ("GET", "/api/v1/me/sessions"): Rule(PERSONS),
    ("DELETE", "/api/v1/me/sessions/{session_id}"): Rule(PERSONS, _session_id, tenant_scoped=True),
    ("GET", "/api/v1/orgs/{org_id}"): Rule(
        ORG_READERS,
        lambda w, c, t: {"path_params": {"org_id": _org(w, c, t)}},
        tenant_scoped=True,
    ),
    ("GET", "/api/v1/orgs/{org_id}/members"): Rule(
        ORG_READERS,
        lambda w, c, t: {"path_params": {"org_id": _org(w, c, t)}},
        tenant_scoped=True,
    ),
    ("POST", "/api/v1/orgs/{org_id}/members"): Rule(
        ORG_ADMIN,
        lambda w, c, t: {
            "path_params": {"org_id": _org(w, c, t)},
            "json": {
                "email": unique_email("n"),
                "password": STRONG_PASSWORD,
                "display_name": "New Member",
            },
        },
        tenant_scoped=True,
    ),
    ("DELETE", "/api/v1/orgs/{org_id}/members/{user_id}"): Rule(
        ORG_ADMIN, _new_member, tenant_scoped=True
    ),
    ("GET", "/api/v1/orgs/{org_id}/api-keys"): Rule(
        ORG_ADMIN,
        lambda w, c, t: {"path_params": {"org_id": _org(w, c, t)}},
        tenant_scoped=True,
    ),
    ("POST", "/api/v1/orgs/{org_id}/api-keys"): Rule(
        ORG_ADMIN,
        lambda w, c, t: {
            "path_params": {"org_id": _org(w, c, t)},
            "json": {"name": "matrix", "scopes": ["catalog:read"]},
        },
        tenant_scoped=True,
    ),
    ("DELETE", "/api/v1/orgs/{org_id}/api-keys/{key_id}"): Rule(
        ORG_ADMIN, _new_key, tenant_scoped=True
    ),
    ("GET", "/api/v1/me/profile"): Rule(frozenset({"contributor"})),
    ("PUT", "/api/v1/me/profile"): Rule(
        frozenset({"contributor"}),
        lambda w, c, t: {"json": {"share_age_band": True, "gender": "woman", "languages": ["en"]}},
    ),
    # Audit.
    ("GET", "/api/v1/audit/events"): Rule(frozenset({"operator", "auditor"})),
    ("GET", "/api/v1/audit/status"): Rule(frozenset({"operator", "auditor"})),
    ("GET", "/api/v1/me/audit-events"): Rule(PERSONS),
    # Terms: the taxonomy, templates and evaluation are public; an asset's terms are its
    # owner's to set and read (operators read).
    ("GET", "/api/v1/purposes"): Rule(EVERYONE),
    ("GET", "/api/v1/policy-templates"): Rule(EVERYONE),
    ("POST", "/api/v1/policies/evaluate"): Rule(
        EVERYONE,
        lambda w, c, t: {
            "json": {"policy": SAMPLE_POLICY, "request": {"purpose": "academic_research"}}
        },
    ),
    ("GET", "/api/v1/signing-key"): Rule(EVERYONE),
    ("GET", "/api/v1/me/receipts"): Rule(PERSONS),
    ("GET", "/api/v1/receipts/{receipt_id}"): Rule(CONTRIBUTOR, _receipt, tenant_scoped=True),
    ("POST", "/api/v1/policies/render"): Rule(
        EVERYONE, lambda w, c, t: {"json": {"policy": SAMPLE_POLICY, "modality": "audio"}}
    ),
    ("GET", "/api/v1/assets/{asset_id}/policy"): Rule(
        ASSET_READERS, _listed_asset, tenant_scoped=True
    ),
    ("GET", "/api/v1/assets/{asset_id}/policy/versions"): Rule(
        ASSET_READERS, _listed_asset, tenant_scoped=True
    ),
    ("PUT", "/api/v1/assets/{asset_id}/policy"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {**_asset(w, c, t), "json": {"template": "research_only"}},
        tenant_scoped=True,
    ),
    ("POST", "/api/v1/assets/{asset_id}/policy/renew"): Rule(
        CONTRIBUTOR, _ending_asset, tenant_scoped=True
    ),
    ("PUT", "/api/v1/me/policy"): Rule(
        CONTRIBUTOR, lambda w, c, t: {"json": {"template": "default", "asset_ids": []}}
    ),
    # Counterparty invites: the asset's owner manages them (not even operators read whom
    # they invited); the invite itself is reached with its link, which is the invited
    # person's credential, so those routes are open to whoever holds the token.
    ("POST", "/api/v1/assets/{asset_id}/invites"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {**_chat_with_a_partner(w, c, t), "json": {"part": "chat_sender:Yan Blop"}},
        tenant_scoped=True,
    ),
    ("GET", "/api/v1/assets/{asset_id}/invites"): Rule(CONTRIBUTOR, _invite, tenant_scoped=True),
    ("DELETE", "/api/v1/assets/{asset_id}/invites/{invite_id}"): Rule(
        CONTRIBUTOR, _invite, tenant_scoped=True
    ),
    ("GET", "/api/v1/invites/{token}"): Rule(EVERYONE, _invite),
    ("GET", "/api/v1/invites/{token}/part"): Rule(EVERYONE, _invite),
    ("GET", "/api/v1/invites/{token}/receipt"): Rule(EVERYONE, _invite),
    ("POST", "/api/v1/invites/{token}/answer"): Rule(
        EVERYONE, lambda w, c, t: {**_invite(w, c, t), "json": {"consent": True}}
    ),
    ("POST", "/api/v1/invites/{token}/withdraw"): Rule(EVERYONE, _consented_invite),
    ("GET", "/invites/{token}"): Rule(EVERYONE, _invite),
    ("POST", "/invites/{token}/answer"): Rule(
        EVERYONE, lambda w, c, t: _invite_form(_invite(w, c, t), c, {"consent": "no"})
    ),
    ("POST", "/invites/{token}/withdraw"): Rule(
        EVERYONE, lambda w, c, t: _invite_form(_consented_invite(w, c, t), c, {})
    ),
    ("POST", "/assets/{asset_id}/invites"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            **_chat_with_a_partner(w, c, t),
            "data": {"part": "chat_sender:Yan Blop", "csrf_token": c.csrf or ""},
        },
        tenant_scoped=True,
    ),
    ("POST", "/assets/{asset_id}/invites/{invite_id}/revoke"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {**_invite(w, c, t), "data": {"csrf_token": c.csrf or ""}},
        tenant_scoped=True,
    ),
    # Uploads and assets: a contributor's own; operators read for review; buyers never.
    ("POST", "/api/v1/uploads"): Rule(
        CONTRIBUTOR, lambda w, c, t: {"content": _png(), "params": {"filename": "m.png"}}
    ),
    ("POST", "/api/v1/uploads/form"): Rule(
        CONTRIBUTOR, lambda w, c, t: {"files": {"file": ("m.png", _png(), "image/png")}}
    ),
    ("GET", "/api/v1/assets"): Rule(CONTRIBUTOR),
    ("GET", "/api/v1/assets/{asset_id}"): Rule(ASSET_READERS, _asset, tenant_scoped=True),
    ("GET", "/api/v1/jobs/{job_id}"): Rule(ASSET_READERS, _asset, tenant_scoped=True),
    ("GET", "/api/v1/assets/{asset_id}/content"): Rule(ASSET_READERS, _asset, tenant_scoped=True),
    ("POST", "/api/v1/assets/{asset_id}/approve"): Rule(CONTRIBUTOR, _asset, tenant_scoped=True),
    ("POST", "/api/v1/assets/{asset_id}/identify"): Rule(
        CONTRIBUTOR, _chat_asset, tenant_scoped=True
    ),
    ("PUT", "/api/v1/assets/{asset_id}/redaction"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {**_asset(w, c, t), "json": {"own_face": "none"}},
        tenant_scoped=True,
    ),
    ("DELETE", "/api/v1/assets/{asset_id}"): Rule(CONTRIBUTOR, _asset, tenant_scoped=True),
    ("OPTIONS", "/api/v1/uploads/tus"): Rule(EVERYONE),
    ("POST", "/api/v1/uploads/tus"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {"headers": {"Tus-Resumable": "1.0.0", "Upload-Length": "100"}},
    ),
    ("HEAD", "/api/v1/uploads/tus/{upload_id}"): Rule(CONTRIBUTOR, _tus_upload, tenant_scoped=True),
    ("PATCH", "/api/v1/uploads/tus/{upload_id}"): Rule(CONTRIBUTOR, _tus_patch, tenant_scoped=True),
    ("DELETE", "/api/v1/uploads/tus/{upload_id}"): Rule(
        CONTRIBUTOR, _tus_upload, tenant_scoped=True
    ),
    ("GET", "/assets"): Rule(CONTRIBUTOR),
    ("POST", "/assets/upload"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            "files": {"file": ("m.png", _png(), "image/png")},
            "params": {"csrf_token": c.csrf or ""},
        },
    ),
    ("GET", "/assets/{asset_id}"): Rule(ASSET_READERS, _asset, tenant_scoped=True),
    ("POST", "/assets/{asset_id}/approve"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {**_asset(w, c, t), "data": {"csrf_token": c.csrf or ""}},
        tenant_scoped=True,
    ),
    ("POST", "/assets/{asset_id}/terms"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            **_asset(w, c, t),
            "data": {"template": "research_only", "price": "2.50", "csrf_token": c.csrf or ""},
        },
        tenant_scoped=True,
    ),
    ("POST", "/assets/{asset_id}/terms/edit"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            **_asset(w, c, t),
            "data": {"allowed": ["academic_research"], "csrf_token": c.csrf or ""},
        },
        tenant_scoped=True,
    ),
    ("POST", "/assets/{asset_id}/terms/renew"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            "path_params": _ending_asset(w, c, t)["path_params"],
            "data": {
                "until": (datetime.now(UTC) + timedelta(days=400)).date().isoformat(),
                "csrf_token": c.csrf or "",
            },
        },
        tenant_scoped=True,
    ),
    ("POST", "/assets/terms/bulk"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            "data": {
                "asset_ids": _asset(w, c, t)["path_params"]["asset_id"],
                "allowed": ["academic_research"],
                "csrf_token": c.csrf or "",
            },
        },
    ),
    ("POST", "/assets/{asset_id}/erase"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {**_asset(w, c, t), "data": {"csrf_token": c.csrf or ""}},
        tenant_scoped=True,
    ),
    ("POST", "/assets/{asset_id}/redaction"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            **_asset(w, c, t),
            "data": {"own_face": "none", "csrf_token": c.csrf or ""},
        },
        tenant_scoped=True,
    ),
    ("POST", "/assets/{asset_id}/identify"): Rule(
        CONTRIBUTOR,
        lambda w, c, t: {
            "path_params": _chat_asset(w, c, t)["path_params"],
            "data": {"chat_sender": "Zed Quux", "csrf_token": c.csrf or ""},
        },
        tenant_scoped=True,
    ),
    # The catalogue: buyers (in person or by key) and operators; never contributors.
    ("GET", "/api/v1/catalog"): Rule(CATALOG_READERS),
    ("GET", "/api/v1/catalog/{asset_id}"): Rule(CATALOG_READERS, _listed_asset),
    ("GET", "/api/v1/catalog/{asset_id}/preview"): Rule(CATALOG_READERS, _listed_asset),
    # Campaigns: buyers post and decide; contributors read open ones and answer.
    ("POST", "/api/v1/campaigns"): Rule(
        BUYERS, lambda w, c, t: {"json": CAMPAIGN_BODY | {"deadline": _deadline()}}
    ),
    ("GET", "/api/v1/campaigns"): Rule(BUYERS | CONTRIBUTOR),
    ("GET", "/api/v1/campaigns/{campaign_id}"): Rule(
        BUYERS | CONTRIBUTOR, _campaign, tenant_scoped=True, shared_with=CONTRIBUTOR
    ),
    ("POST", "/api/v1/campaigns/{campaign_id}/close"): Rule(BUYERS, _campaign, tenant_scoped=True),
    ("GET", "/api/v1/campaigns/{campaign_id}/submissions"): Rule(
        BUYERS, _campaign, tenant_scoped=True
    ),
    ("POST", "/api/v1/campaigns/{campaign_id}/submissions"): Rule(
        CONTRIBUTOR, _submission_request, tenant_scoped=True
    ),
    ("POST", "/api/v1/campaigns/{campaign_id}/submissions/{submission_id}/accept"): Rule(
        BUYERS, _submission, tenant_scoped=True
    ),
    ("POST", "/api/v1/campaigns/{campaign_id}/submissions/{submission_id}/reject"): Rule(
        BUYERS, _submission, tenant_scoped=True
    ),
    ("DELETE", "/api/v1/campaigns/{campaign_id}/submissions/{submission_id}"): Rule(
        CONTRIBUTOR, _submission, tenant_scoped=True
    ),
    ("GET", "/api/v1/me/submissions"): Rule(CONTRIBUTOR),
    # Datasets: one buyer organisation's; operators read.
    ("POST", "/api/v1/datasets"): Rule(BUYERS, lambda w, c, t: {"json": DATASET_BODY}),
    ("GET", "/api/v1/datasets"): Rule(BUYERS),
    ("GET", "/api/v1/datasets/{dataset_id}"): Rule(
        BUYERS | {"operator"}, _dataset, tenant_scoped=True
    ),
    ("POST", "/api/v1/datasets/{dataset_id}/versions"): Rule(BUYERS, _dataset, tenant_scoped=True),
    ("GET", "/api/v1/datasets/{dataset_id}/versions"): Rule(
        BUYERS | {"operator"}, _dataset, tenant_scoped=True
    ),
    ("GET", "/api/v1/dataset-versions/{version_id}"): Rule(
        BUYERS | {"operator"}, _dataset, tenant_scoped=True
    ),
    ("GET", "/api/v1/dataset-versions/{version_id}/items"): Rule(
        BUYERS | {"operator"}, _dataset, tenant_scoped=True
    ),
    ("GET", "/api/v1/dataset-versions/{version_id}/exclusions"): Rule(
        BUYERS | {"operator"}, _dataset, tenant_scoped=True
    ),
    # Ledger: a contributor's own money; payouts by operators in person; the trial
    # balance for operators and auditors. API keys never move money.
    ("GET", "/api/v1/me/statement"): Rule(CONTRIBUTOR),
    ("GET", "/api/v1/me/payout-details"): Rule(CONTRIBUTOR, _payout_details),
    ("PUT", "/api/v1/me/payout-details"): Rule(
        CONTRIBUTOR, lambda w, c, t: {"json": {"account_holder": "Matrix Payee", "iban": IBAN}}
    ),
    ("GET", "/api/v1/ledger/trial-balance"): Rule(frozenset({"operator", "auditor"})),
    ("POST", "/api/v1/payouts"): Rule(OPERATOR, _payable),
    ("GET", "/api/v1/payouts"): Rule(OPERATOR),
    ("GET", "/api/v1/payouts/{batch_id}"): Rule(OPERATOR, _batch),
    ("GET", "/api/v1/payouts/{batch_id}/export"): Rule(
        OPERATOR, lambda w, c, t: {**_batch(w, c, t), "params": {"format": "csv"}}
    ),
    ("POST", "/api/v1/payouts/{batch_id}/mark-paid"): Rule(OPERATOR, _batch),
    # Licensing: buyers quote and read; only admins (or keys with licences:write) spend;
    # operators confirm payments and read every organisation's orders and licences.
    ("POST", "/api/v1/dataset-versions/{version_id}/quotes"): Rule(
        BUYERS, _quotable, tenant_scoped=True
    ),
    ("GET", "/api/v1/quotes/{quote_id}"): Rule(BUYERS | OPERATOR, _quote, tenant_scoped=True),
    ("POST", "/api/v1/quotes/{quote_id}/orders"): Rule(
        SPENDERS, _order_request, tenant_scoped=True
    ),
    ("GET", "/api/v1/orders"): Rule(BUYERS | OPERATOR),
    ("GET", "/api/v1/orders/{order_id}"): Rule(BUYERS | OPERATOR, _order, tenant_scoped=True),
    ("POST", "/api/v1/orders/{order_id}/cancel"): Rule(SPENDERS, _order, tenant_scoped=True),
    ("POST", "/api/v1/orders/{order_id}/confirm-payment"): Rule(OPERATOR, _order),
    ("GET", "/api/v1/licences"): Rule(BUYERS),
    ("GET", "/api/v1/licences/{licence_id}"): Rule(BUYERS | OPERATOR, _licence, tenant_scoped=True),
    ("GET", "/api/v1/licences/{licence_id}/agreement"): Rule(
        BUYERS | OPERATOR, _licence, tenant_scoped=True
    ),
    ("POST", "/api/v1/licences/{licence_id}/renewals"): Rule(BUYERS, _licence, tenant_scoped=True),
    ("GET", "/api/v1/me/earnings"): Rule(CONTRIBUTOR),
    # Data-subject rights: every person their own archive; reports for operators/auditors.
    ("GET", "/api/v1/me/data-export"): Rule(PERSONS),
    ("GET", "/api/v1/compliance/records-of-processing"): Rule(frozenset({"operator", "auditor"})),
    ("GET", "/api/v1/compliance/licence-register"): Rule(frozenset({"operator", "auditor"})),
    ("GET", "/api/v1/compliance/withdrawal-register"): Rule(frozenset({"operator", "auditor"})),
    ("GET", "/api/v1/compliance/attestation-compliance"): Rule(frozenset({"operator", "auditor"})),
    # Delivery: the licence holder asks for exports and downloads them (keys need
    # downloads:read); operators read an export's status, never its files; a signed link
    # works only for the organisation it was made for.
    ("POST", "/api/v1/licences/{licence_id}/exports"): Rule(BUYERS, _licence, tenant_scoped=True),
    ("GET", "/api/v1/licences/{licence_id}/exports/{export_id}"): Rule(
        BUYERS | OPERATOR, _export, tenant_scoped=True
    ),
    ("GET", "/api/v1/downloads/{token}"): Rule(BUYERS, _export, tenant_scoped=True),
    # Withdrawal: contributors withdraw and follow; buyers read the feed, acknowledge and
    # attest (keys need notices:read / attestations:write); admins register webhooks and
    # attestation keys; operators see dead letters and escalations.
    ("POST", "/api/v1/withdrawals"): Rule(
        CONTRIBUTOR, lambda w, c, t: {"json": {"everything": True}}
    ),
    ("GET", "/api/v1/withdrawals"): Rule(CONTRIBUTOR),
    ("GET", "/api/v1/notices"): Rule(BUYERS),
    ("GET", "/api/v1/notices/escalated"): Rule(OPERATOR),
    ("POST", "/api/v1/notices/{notice_id}/acknowledge"): Rule(BUYERS, _notice, tenant_scoped=True),
    ("POST", "/api/v1/notices/{notice_id}/attestation"): Rule(
        BUYERS, _attestation, tenant_scoped=True
    ),
    ("POST", "/api/v1/orgs/{org_id}/webhooks"): Rule(
        ORG_ADMIN,
        lambda w, c, t: {
            "path_params": {"org_id": _org(w, c, t)},
            "json": {"url": "http://127.0.0.1:9/hook"},
        },
        tenant_scoped=True,
    ),
    ("GET", "/api/v1/orgs/{org_id}/webhooks"): Rule(
        ORG_ADMIN, lambda w, c, t: {"path_params": {"org_id": _org(w, c, t)}}, tenant_scoped=True
    ),
    ("DELETE", "/api/v1/orgs/{org_id}/webhooks/{endpoint_id}"): Rule(
        ORG_ADMIN, _webhook, tenant_scoped=True
    ),
    ("POST", "/api/v1/orgs/{org_id}/attestation-keys"): Rule(
        ORG_ADMIN, _key_body, tenant_scoped=True
    ),
    ("GET", "/api/v1/webhook-deliveries"): Rule(OPERATOR),
    # Pages.
    ("GET", "/"): Rule(EVERYONE),
    ("GET", "/login"): Rule(EVERYONE),
    ("POST", "/login"): Rule(EVERYONE, _login_form),
    ("GET", "/signup"): Rule(EVERYONE),
    ("POST", "/signup"): Rule(EVERYONE, _signup_form),
    ("POST", "/logout"): Rule(EVERYONE, _logout_form),
    ("GET", "/account"): Rule(PERSONS),
    ("GET", "/signup/buyer"): Rule(EVERYONE),
    ("POST", "/signup/buyer"): Rule(EVERYONE, _buyer_signup_form),
    ("GET", "/org"): Rule(frozenset({"buyer_admin", "buyer_member"})),
    ("POST", "/org/api-keys"): Rule(
        ORG_ADMIN,
        lambda w, c, t: {
            "data": {"name": "page key", "scopes": ["catalog:read"], "csrf_token": c.csrf or ""}
        },
    ),
    ("POST", "/org/api-keys/{key_id}/revoke"): Rule(
        ORG_ADMIN,
        lambda w, c, t: {**_new_key(w, c, t), "data": {"csrf_token": c.csrf or ""}},
        tenant_scoped=True,
    ),
    # Marketplace pages: the same policies as the API, for people in person (API keys
    # are sent to the login page).
    ("GET", "/catalogue"): Rule(BUYER_PEOPLE | OPERATOR),
    ("GET", "/datasets"): Rule(BUYER_PEOPLE),
    ("POST", "/datasets"): Rule(BUYER_PEOPLE, _page_form(DATASET_FORM)),
    ("GET", "/datasets/{dataset_id}"): Rule(BUYER_PEOPLE, _dataset, tenant_scoped=True),
    ("POST", "/datasets/{dataset_id}/rebuild"): Rule(
        BUYER_PEOPLE, _with_form(_dataset), tenant_scoped=True
    ),
    ("POST", "/datasets/{dataset_id}/quote"): Rule(
        BUYER_PEOPLE, _with_form(_quotable), tenant_scoped=True
    ),
    ("GET", "/quotes/{quote_id}"): Rule(BUYER_PEOPLE, _quote, tenant_scoped=True),
    ("POST", "/quotes/{quote_id}/order"): Rule(
        ORG_ADMIN,
        _with_form(_quote, idempotency_key=lambda: secrets.token_hex(16)),
        tenant_scoped=True,
    ),
    ("GET", "/orders"): Rule(BUYER_PEOPLE),
    ("GET", "/orders/{order_id}"): Rule(BUYER_PEOPLE, _order, tenant_scoped=True),
    ("GET", "/licences"): Rule(BUYER_PEOPLE),
    ("GET", "/licences/{licence_id}"): Rule(BUYER_PEOPLE, _licence, tenant_scoped=True),
    ("POST", "/licences/{licence_id}/export"): Rule(
        BUYER_PEOPLE, _with_form(_licence), tenant_scoped=True
    ),
    ("GET", "/me/licences"): Rule(CONTRIBUTOR),
    ("GET", "/me/earnings"): Rule(CONTRIBUTOR),
    ("POST", "/me/payout-details"): Rule(
        CONTRIBUTOR, _page_form({"account_holder": "Matrix Payee", "iban": IBAN})
    ),
    ("GET", "/campaigns"): Rule(CONTRIBUTOR),
    ("POST", "/campaigns/{campaign_id}/submit"): Rule(
        CONTRIBUTOR, _submission_form, tenant_scoped=True
    ),
    ("GET", "/operator/orders"): Rule(OPERATOR),
    ("POST", "/operator/orders/{order_id}/confirm"): Rule(
        OPERATOR, _with_form(_order, reference=lambda: "M-3")
    ),
    ("GET", "/operator/payouts"): Rule(OPERATOR),
    ("POST", "/operator/payouts"): Rule(OPERATOR, _with_form(_payable, currency=lambda: "EUR")),
    ("POST", "/operator/payouts/{batch_id}/mark-paid"): Rule(OPERATOR, _with_form(_batch)),
    ("GET", "/operator/trial-balance"): Rule(frozenset({"operator", "auditor"})),
    ("GET", "/me/withdrawals"): Rule(CONTRIBUTOR),
    ("POST", "/me/withdrawals"): Rule(CONTRIBUTOR, _page_form({"everything": "true"})),
    ("GET", "/operator/attestations"): Rule(OPERATOR),
}


def _is_refusal(response: Any) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    return response.status_code in (302, 303) and response.headers.get("location", "").endswith(
        "/login"
    )


def _send(caller: Caller, method: str, path: str, spec: dict[str, Any]) -> Any:
    spec = dict(spec)
    params = spec.pop("path_params", {})
    return caller.request(method, path.format(**params), **spec)


def test_every_route_is_in_the_matrix(app) -> None:  # type: ignore[no-untyped-def]
    served = set(route_inventory(app))
    missing = sorted(served - set(MATRIX))
    stale = sorted(set(MATRIX) - served)
    assert not missing, f"routes without an authorisation rule: {missing}"
    assert not stale, f"matrix rules for routes that no longer exist: {stale}"


@pytest.fixture
def world(make_client, db: Session, app) -> World:  # type: ignore[no-untyped-def]
    built = build_world(make_client, db, app.state.passwords)
    built.extra["make_client"] = make_client
    built.extra["db"] = db
    return built


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_authorisation(route: tuple[str, str], world: World) -> None:
    method, path = route
    rule = MATRIX[route]
    for role in ROLES:
        caller = world.caller(role, "own")
        response = _send(caller, method, path, rule.build(world, caller, "own"))
        if role in rule.allow:
            assert response.status_code < 400 and not _is_refusal(response), (
                f"{role} was refused {method} {path}: {response.status_code} {response.text[:300]}"
            )
        else:
            assert _is_refusal(response), (
                f"{role} was NOT refused {method} {path}: {response.status_code} "
                f"{response.text[:300]}"
            )
    if rule.tenant_scoped:
        for role in sorted((rule.allow & TENANT_ROLES) - rule.shared_with):
            caller = world.caller(role, "own")
            response = _send(caller, method, path, rule.build(world, caller, "other"))
            assert _is_refusal(response), (
                f"LEAK: {role} of tenant A reached tenant B's object via {method} {path}: "
                f"{response.status_code} {response.text[:300]}"
            )
