"""A sold dataset of short texts for the withdrawal tests: one contributor's three notes,
licensed by one buyer for fine-tuning; helpers to register webhooks and attestation keys
and to withdraw."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session
from tests.factories import Actor, list_asset, sign_up_buyer, sign_up_contributor, sign_up_staff

from fairtrain.audit.keys import public_key_pem

__all__ = ["TEXTS", "Sold", "buy", "dataset_body", "ok", "register_key", "register_webhook",
           "sold", "withdraw"]  # fmt: skip

TEXTS = [
    "The bakery on the corner sells rye bread on Tuesdays and small cakes on Fridays.",
    "Our allotment grew more beans this year than we could eat, so we gave them away.",
    "The ferry leaves the harbour at seven and returns when the tide comes back in.",
]


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def dataset_body(purpose: str = "fine_tuning") -> dict[str, Any]:
    return {
        "name": f"Everyday text for {purpose}",
        "purpose": purpose,
        "territory": "DE",
        "term_days": 365,
        "currency": "EUR",
        "selection": {"modality": ["text"]},
    }


def buy(buyer: Actor, operator: Actor, body: dict[str, Any]) -> tuple[str, str]:
    """Build, quote, order, pay: (dataset id, licence id)."""
    dataset = ok(buyer.client.post("/api/v1/datasets", json=body, headers=buyer.headers()), 201)
    version = dataset["latest_version"]["id"]
    quote = ok(
        buyer.client.post(f"/api/v1/dataset-versions/{version}/quotes", headers=buyer.headers()),
        201,
    )
    order = ok(
        buyer.client.post(
            f"/api/v1/quotes/{quote['id']}/orders",
            headers=buyer.headers() | {"Idempotency-Key": secrets.token_hex(8)},
        ),
        201,
    )
    licence = ok(
        operator.client.post(
            f"/api/v1/orders/{order['id']}/confirm-payment",
            json={"reference": order["invoice_number"]},
            headers=operator.headers(),
        )
    )
    return str(dataset["id"]), str(licence["id"])


@dataclass
class Sold:
    contributor: Actor
    buyer: Actor
    operator: Actor
    assets: list[str]
    dataset_id: str
    licence_id: str
    version_id: str


@pytest.fixture
def sold(make_client: Any, db: Session, app: Any) -> Sold:
    contributor = sign_up_contributor(make_client(), name="Ada Withdraw")
    assets = [
        list_asset(contributor, text.encode(), f"note{i}.txt") for i, text in enumerate(TEXTS)
    ]
    buyer = sign_up_buyer(make_client(), org_name="Retraining Labs")
    operator = sign_up_staff(make_client(), db, app.state.passwords, "operator")
    dataset_id, licence_id = buy(buyer, operator, dataset_body())
    dataset = ok(buyer.client.get(f"/api/v1/datasets/{dataset_id}"))
    assert dataset["latest_version"]["item_count"] == len(assets)
    return Sold(
        contributor,
        buyer,
        operator,
        assets,
        dataset_id,
        licence_id,
        dataset["latest_version"]["id"],
    )


def register_webhook(buyer: Actor, url: str) -> str:
    body = ok(
        buyer.client.post(
            f"/api/v1/orgs/{buyer.org_id}/webhooks", json={"url": url}, headers=buyer.headers()
        ),
        201,
    )
    assert body["secret"].startswith("whsec_")
    listed = ok(buyer.client.get(f"/api/v1/orgs/{buyer.org_id}/webhooks"))
    assert [e["secret"] for e in listed] == [None]  # shown once only
    return str(body["secret"])


def register_key(buyer: Actor) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    ok(
        buyer.client.post(
            f"/api/v1/orgs/{buyer.org_id}/attestation-keys",
            json={"public_key_pem": public_key_pem(key.public_key()).decode()},
            headers=buyer.headers(),
        ),
        201,
    )
    return key


def withdraw(contributor: Actor, status: int = 201, **body: Any) -> dict[str, Any]:
    return ok(
        contributor.client.post("/api/v1/withdrawals", json=body, headers=contributor.headers()),
        status,
    )
