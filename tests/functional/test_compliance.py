"""Data-subject rights and compliance reports through HTTP: a person's archive holds
everything about them (and nothing about anyone else), with files that match what was
uploaded and receipts that verify; operators and auditors read the records of processing
and the licence register."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from sqlalchemy.orm import Session
from tests.factories import Actor, list_asset, sign_up_buyer, sign_up_contributor, sign_up_staff
from tests.media_factory import png_bytes

from fairtrain.audit.keys import platform_signing_key, public_key_pem
from fairtrain.audit.service import verify_stored_chain
from fairtrain.consent.receipts import verify_receipt_document


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def sold(make_client: Any, db: Session, app: Any) -> dict[str, Any]:
    """Ada lists two photos, a buyer licenses them, Bob lists one nobody buys."""
    ada = sign_up_contributor(make_client(), name="Ada Archive")
    photos = [png_bytes(size=(160, 120), seed=s) for s in (81, 82)]
    assets = [list_asset(ada, data, f"{i}.png") for i, data in enumerate(photos)]
    bob = sign_up_contributor(make_client(), name="Bob Elsewhere", jurisdiction="FR")
    bobs = list_asset(bob, png_bytes(size=(160, 120), seed=83), "b.png")
    buyer = sign_up_buyer(make_client(), org_name="Archive Buyers")
    operator = sign_up_staff(make_client(), db, app.state.passwords, "operator")
    dataset = _ok(buyer.client.post(
        "/api/v1/datasets",
        json={"name": "Photos", "purpose": "fine_tuning", "territory": "US",
              "selection": {"modality": ["image"]}},
        headers=buyer.headers()), 201)  # fmt: skip
    version = dataset["latest_version"]["id"]
    quote = _ok(buyer.client.post(f"/api/v1/dataset-versions/{version}/quotes",
                                  headers=buyer.headers()), 201)  # fmt: skip
    order = _ok(buyer.client.post(f"/api/v1/quotes/{quote['id']}/orders",
                                  headers=buyer.headers() | {"Idempotency-Key": "archive-0001"}),
                201)  # fmt: skip
    licence = _ok(operator.client.post(f"/api/v1/orders/{order['id']}/confirm-payment",
                                       json={"reference": order["invoice_number"]},
                                       headers=operator.headers()))  # fmt: skip
    return {"ada": ada, "photos": photos, "assets": assets, "bob": bob, "bobs": bobs,
            "buyer": buyer, "operator": operator, "licence": licence}  # fmt: skip


def _archive(person: Actor) -> zipfile.ZipFile:
    response = person.client.get("/api/v1/me/data-export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def test_the_archive_holds_everything_about_the_person_and_no_one_else(
    sold: dict[str, Any], db: Session, app: Any
) -> None:
    archive = _archive(sold["ada"])
    names = set(archive.namelist())
    account = json.loads(archive.read("account.json"))
    assert account["id"] == sold["ada"].user_id and account["email"] == sold["ada"].email
    index = json.loads(archive.read("assets/index.json"))
    assert {a["id"] for a in index} == set(sold["assets"])
    for asset_id, data in zip(sold["assets"], sold["photos"], strict=True):
        assert archive.read(f"assets/{asset_id}/original.png") == data
        assert f"assets/{asset_id}/redacted.png" in names
        terms = json.loads(archive.read(f"assets/{asset_id}/terms.json"))
        assert terms[0]["document"]["type"] == "Set"
    pem = public_key_pem(platform_signing_key(app.state.settings).public_key())
    receipts = [n for n in names if n.startswith("receipts/")]
    assert len(receipts) >= 2
    for name in receipts:
        verify_receipt_document(json.loads(archive.read(name)), pem)
    licences = json.loads(archive.read("licences.json"))
    assert {e["licence_id"] for e in licences} == {sold["licence"]["id"]}
    assert all(e["buyer"] == "Archive Buyers" for e in licences)
    statement = json.loads(archive.read("statement.json"))
    assert statement["balances"] == [{"currency": "EUR", "amount_minor": 200}]
    events = json.loads(archive.read("audit_events.json"))
    subjects = {e["subject"] for e in events}
    assert {f"asset:{a}" for a in sold["assets"]} <= subjects
    assert f"asset:{sold['bobs']}" not in subjects
    whole = b"".join(archive.read(n) for n in names)
    assert sold["bob"].email.encode() not in whole and sold["bobs"].encode() not in whole
    manifest = json.loads(archive.read("manifest.json"))["files"]
    for entry in manifest:
        assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
    assert verify_stored_chain(db) == (True, None, None)
    mine = sold["ada"].client.get("/api/v1/me/audit-events").json()["events"]
    assert any(e["action"] == "subject_access.exported" for e in mine)


def test_an_erased_asset_leaves_no_file_in_the_archive(sold: dict[str, Any]) -> None:
    bob = sold["bob"]
    _ok(bob.client.delete(f"/api/v1/assets/{sold['bobs']}", headers=bob.headers()))
    archive = _archive(bob)
    assert not [n for n in archive.namelist() if n.startswith(f"assets/{sold['bobs']}/") and
                n.endswith(".png")]  # fmt: skip
    index = json.loads(archive.read("assets/index.json"))
    assert index[0]["state"] == "erased"


def test_buyers_staff_get_their_account_too(sold: dict[str, Any]) -> None:
    archive = _archive(sold["buyer"])
    assert json.loads(archive.read("account.json"))["kind"] == "buyer"
    assert json.loads(archive.read("assets/index.json")) == []


def test_operators_read_the_records_of_processing_and_the_licence_register(
    sold: dict[str, Any], make_client: Any
) -> None:
    operator = sold["operator"]
    record = _ok(operator.client.get("/api/v1/compliance/records-of-processing"))
    licensing = record["activities"][1]
    assert licensing["recipients"] == [
        {"organisation": "Archive Buyers", "jurisdiction": "NL", "active_licences": 1}
    ]
    assert licensing["transfers_outside_eea"]["active licences by territory"] == {"US": 1}
    assert licensing["personal_data"]["assets by kind (not erased)"]["image"] == 3
    page = operator.client.get("/api/v1/compliance/records-of-processing?format=html")
    assert page.status_code == 200 and "Archive Buyers" in page.text
    register = operator.client.get("/api/v1/compliance/licence-register?format=csv")
    rows = list(csv.DictReader(io.StringIO(register.text)))
    assert [r["licence_id"] for r in rows] == [sold["licence"]["id"]]
    assert rows[0]["items"] == "3" and rows[0]["territory"] == "US"  # Ada's two, Bob's one
    for outsider in (sold["ada"], sold["buyer"]):
        refused = outsider.client.get("/api/v1/compliance/licence-register")
        assert refused.status_code == 403
    assert make_client().get("/api/v1/me/data-export").status_code == 401
