"""Withdrawal over HTTP on both databases: it stops new licences at once, publishes new
dataset versions, issues a withdrawn receipt and a notice per licensee; notices reach a
real receiver on loopback (signed, verified), are retried with backoff when it fails and
dead-lettered in the end; the feed, acknowledgements, attestations (forged ones refused)
and the deadlines (reminder, escalation, suspension)."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import sign_up_buyer, sign_up_contributor
from tests.functional.webhook_receiver import Receiver, receiver
from tests.functional.withdrawal_world import (
    Sold,
    dataset_body,
    ok,
    register_key,
    register_webhook,
    sold,
    withdraw,
)

from fairtrain.audit.models import AuditEvent
from fairtrain.consent.models import ConsentReceiptRecord
from fairtrain.ids import utcnow
from fairtrain.licensing.models import Licence, LicenceState
from fairtrain.withdrawal import notices, webhooks
from fairtrain.withdrawal.models import DeliveryState, Notice, WebhookDelivery, WebhookEndpoint

__all__ = ["receiver", "sold"]


def test_withdrawal_reaches_the_buyer(sold: Sold, receiver: Receiver, db: Session) -> None:
    receiver.secret = register_webhook(sold.buyer, receiver.url)
    key = register_key(sold.buyer)
    gone = sold.assets[0]

    made = withdraw(sold.contributor, asset_ids=[gone])
    # A new version of the dataset, without the asset, recorded as excluded for it.
    assert len(made["dataset_versions"]) == 1
    new_version = made["dataset_versions"][0]
    versions = ok(sold.buyer.client.get(f"/api/v1/datasets/{sold.dataset_id}/versions"))
    assert versions[0]["id"] == new_version and versions[0]["reason"] == "withdrawal"
    items = ok(sold.buyer.client.get(f"/api/v1/dataset-versions/{new_version}/items"))
    assert gone not in {i["asset_id"] for i in items} and len(items) == len(sold.assets) - 1
    # A withdrawn consent receipt.
    receipt = db.get(ConsentReceiptRecord, made["receipt_ids"][0])
    assert receipt is not None and receipt.status == "ConsentWithdrawn"
    assert receipt.event == "withdrawal"
    # No new licence can include it: the old version cannot be quoted any more.
    stale = sold.buyer.client.post(
        f"/api/v1/dataset-versions/{sold.version_id}/quotes", headers=sold.buyer.headers()
    )
    assert stale.status_code == 409 and stale.json()["code"] == "version_superseded"
    # The signed webhook arrived and verified; the notice states the obligation.
    receiver.wait_for(1)
    event = receiver.verified[0]
    assert event["type"] == "withdrawal.notice"
    data = event["data"]
    assert data["asset_ids"] == [gone] and data["licence_id"] == sold.licence_id
    assert data["new_version_id"] == new_version
    assert data["obligation"]["trained_models"] == "remove at next retraining"
    assert data["obligation"]["delete_copies_within_days"] == 30
    assert receiver.headers[0]["webhook-id"].startswith("msg_")
    # The feed has it too; asking with the cursor it gave returns nothing newer.
    page = ok(sold.buyer.client.get("/api/v1/notices"))
    assert [n["id"] for n in page["notices"]] == [data["notice_id"]]
    again = ok(sold.buyer.client.get("/api/v1/notices", params={"cursor": page["next_cursor"]}))
    assert again["notices"] == [] and again["next_cursor"] == page["next_cursor"]
    bad_cursor = sold.buyer.client.get("/api/v1/notices", params={"cursor": "nonsense!"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["code"] == "invalid_cursor"

    # Withdrawing twice is idempotent: the same withdrawal, no second notice.
    assert withdraw(sold.contributor, 200, asset_ids=[gone])["id"] == made["id"]
    assert len(ok(sold.buyer.client.get("/api/v1/notices"))["notices"]) == 1

    status = ok(sold.contributor.client.get("/api/v1/withdrawals"))[0]["buyers"]
    assert [(b["buyer"], b["state"]) for b in status] == [("Retraining Labs", "notified")]

    notice_id = data["notice_id"]
    ok(
        sold.buyer.client.post(
            f"/api/v1/notices/{notice_id}/acknowledge", headers=sold.buyer.headers()
        )
    )
    status = ok(sold.contributor.client.get("/api/v1/withdrawals"))[0]["buyers"]
    assert status[0]["state"] == "acknowledged"

    document = notices.attestation_document(data, deleted_at=utcnow())
    forged = notices.sign_attestation(document, Ed25519PrivateKey.generate())
    refused = sold.buyer.client.post(
        f"/api/v1/notices/{notice_id}/attestation",
        json={"jws": forged},
        headers=sold.buyer.headers(),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "attestation_wrong_key"
    header, payload, signature = notices.sign_attestation(document, key).split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    refused = sold.buyer.client.post(
        f"/api/v1/notices/{notice_id}/attestation",
        json={"jws": tampered},
        headers=sold.buyer.headers(),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "attestation_signature"
    other = notices.sign_attestation(document | {"asset_ids": sold.assets}, key)
    refused = sold.buyer.client.post(
        f"/api/v1/notices/{notice_id}/attestation",
        json={"jws": other},
        headers=sold.buyer.headers(),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "attestation_mismatch"
    attested = ok(
        sold.buyer.client.post(
            f"/api/v1/notices/{notice_id}/attestation",
            json={"jws": notices.sign_attestation(document, key)},
            headers=sold.buyer.headers(),
        )
    )
    assert attested["state"] == "attested"
    status = ok(sold.contributor.client.get("/api/v1/withdrawals"))[0]["buyers"]
    assert status[0]["state"] == "attested" and status[0]["attested_at"]


def test_bad_withdrawals_are_refused(sold: Sold, make_client: Any) -> None:
    both = sold.contributor.client.post(
        "/api/v1/withdrawals",
        json={"asset_ids": sold.assets[:1], "everything": True},
        headers=sold.contributor.headers(),
    )
    assert both.status_code == 422 and both.json()["code"] == "invalid_withdrawal"
    stranger = sign_up_contributor(make_client(), name="Not The Owner")
    theirs = stranger.client.post(
        "/api/v1/withdrawals", json={"asset_ids": sold.assets[:1]}, headers=stranger.headers()
    )
    assert theirs.status_code == 404 and theirs.json()["code"] == "asset_not_found"
    purpose = sold.contributor.client.post(
        "/api/v1/withdrawals",
        json={"asset_ids": sold.assets[:1], "purpose": "astrology"},
        headers=sold.contributor.headers(),
    )
    assert purpose.status_code == 422 and purpose.json()["code"] == "unknown_purpose"
    buyer = sold.buyer.client.post(
        "/api/v1/withdrawals", json={"everything": True}, headers=sold.buyer.headers()
    )
    assert buyer.status_code == 403
    # Nothing was half-written by any of them.
    assert ok(sold.contributor.client.get("/api/v1/withdrawals")) == []
    assert ok(sold.buyer.client.get("/api/v1/notices"))["notices"] == []


def test_one_purpose_or_one_buyer_only(sold: Sold, make_client: Any) -> None:
    asset = sold.assets[1]
    made = withdraw(sold.contributor, asset_ids=[asset], purpose="fine_tuning")
    assert len(made["dataset_versions"]) == 1 and len(made["buyers"]) == 1
    # Still offered for evaluation, no longer for fine-tuning.
    evaluation = ok(
        sold.buyer.client.post(
            "/api/v1/datasets", json=dataset_body("model_evaluation"), headers=sold.buyer.headers()
        ),
        201,
    )
    assert evaluation["latest_version"]["item_count"] == len(sold.assets)
    tuning = ok(
        sold.buyer.client.post(
            "/api/v1/datasets", json=dataset_body("fine_tuning"), headers=sold.buyer.headers()
        ),
        201,
    )
    excluded = ok(
        sold.buyer.client.get(
            f"/api/v1/dataset-versions/{tuning['latest_version']['id']}/exclusions"
        )
    )
    assert [(e["asset_id"], e["code"]) for e in excluded] == [(asset, "withdrawn")]

    # Withdrawn from one buyer only: another buyer still gets it, this one does not.
    other = sign_up_buyer(make_client(), org_name="Other Buyer")
    third = sold.assets[2]
    made = withdraw(sold.contributor, asset_ids=[third], org_id=sold.buyer.org_id)
    assert len(made["buyers"]) == 1
    theirs = ok(
        other.client.post(
            "/api/v1/datasets", json=dataset_body("model_evaluation"), headers=other.headers()
        ),
        201,
    )
    assert theirs["latest_version"]["item_count"] == len(sold.assets)
    mine = ok(
        sold.buyer.client.post(
            "/api/v1/datasets", json=dataset_body("model_evaluation"), headers=sold.buyer.headers()
        ),
        201,
    )
    assert mine["latest_version"]["item_count"] == len(sold.assets) - 1
    unknown = sold.contributor.client.post(
        "/api/v1/withdrawals",
        json={"asset_ids": [third], "org_id": "org_nobody"},
        headers=sold.contributor.headers(),
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "org_not_found"


def test_failing_receivers_are_retried_then_dead_lettered(
    sold: Sold, receiver: Receiver, db: Session, app: Any
) -> None:
    settings = app.state.settings
    settings.webhook_timeout_seconds = 0.3
    receiver.hang_for = 1.0
    receiver.secret = register_webhook(sold.buyer, receiver.url)
    # A timeout, a 500, a wrong status (a redirect), then success.
    receiver.script = ["hang", 500, 302]
    made = withdraw(sold.contributor, asset_ids=[sold.assets[0]])
    assert made["buyers"][0]["state"] == "notified"  # the withdrawal did not wait for it
    delivery = db.scalars(select(WebhookDelivery)).one()
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 1
    assert delivery.last_status is None and "no answer" in (delivery.last_error or "")
    first_retry = delivery.next_attempt_at
    assert first_retry is not None
    # Not due yet: nothing is sent.
    assert webhooks.deliver_due(db, settings, now=first_retry - timedelta(seconds=1)) == 0
    moment = first_retry
    for expected_status in (500, 302):
        assert webhooks.deliver_due(db, settings, now=moment) == 1
        db.refresh(delivery)
        assert delivery.last_status == expected_status
        assert delivery.next_attempt_at is not None
        # Backoff doubles: 30 s, 60 s, 120 s …
        assert delivery.next_attempt_at - moment == timedelta(
            seconds=settings.webhook_backoff_seconds * 2 ** (delivery.attempts - 1)
        )
        moment = delivery.next_attempt_at
    assert webhooks.deliver_due(db, settings, now=moment) == 1
    db.refresh(delivery)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 4
    assert len(receiver.verified) == 1
    assert len({h["webhook-id"] for h in receiver.headers}) == 1

    # A receiver that never answers 2xx ends dead-lettered, visible to operators.
    settings.webhook_max_attempts = 2
    receiver.script = [500, 500]
    withdraw(sold.contributor, asset_ids=[sold.assets[1]])
    dead = db.scalars(
        select(WebhookDelivery).where(WebhookDelivery.state == DeliveryState.PENDING)
    ).one()
    assert webhooks.deliver_due(db, settings, now=utcnow() + timedelta(hours=1)) == 1
    db.refresh(dead)
    assert dead.state == DeliveryState.DEAD
    listed = ok(sold.operator.client.get("/api/v1/webhook-deliveries"))
    assert [d["id"] for d in listed] == [dead.id] and listed[0]["last_status"] == 500
    assert sold.buyer.client.get("/api/v1/webhook-deliveries").status_code == 403
    # The feed has both notices whatever the webhooks did.
    assert len(ok(sold.buyer.client.get("/api/v1/notices"))["notices"]) == 2


def test_deadlines_remind_escalate_and_suspend(sold: Sold, db: Session, app: Any) -> None:
    settings = app.state.settings
    made = withdraw(sold.contributor, everything=True)
    assert sorted(made["asset_ids"]) == sorted(sold.assets)
    notice = db.get(Notice, made["buyers"][0]["notice_id"])
    assert notice is not None
    deadline = notice.deadline_at
    early = notices.escalate(db, settings, now=deadline - timedelta(days=10))
    assert early.reminded == [] and early.escalated == []
    near = notices.escalate(db, settings, now=deadline - timedelta(days=3))
    assert near.reminded == [notice.id] and near.escalated == []
    late = notices.escalate(db, settings, now=deadline + timedelta(hours=1))
    assert late.reminded == [] and late.escalated == [notice.id] and late.suspended == []
    assert ok(sold.operator.client.get("/api/v1/notices/escalated"))[0]["id"] == notice.id
    gone = notices.escalate(db, settings, now=deadline + timedelta(days=15))
    assert gone.suspended == [sold.licence_id]
    licence = db.get(Licence, sold.licence_id)
    assert licence is not None and licence.state == LicenceState.SUSPENDED
    assert notices.escalate(db, settings, now=deadline + timedelta(days=20)).suspended == []
    db.commit()
    status = ok(sold.contributor.client.get("/api/v1/withdrawals"))[0]["buyers"]
    assert status[0]["state"] == "overdue"


def test_the_signing_secret_is_shown_once_and_kept_only_sealed(
    sold: Sold, receiver: Receiver, db: Session
) -> None:
    secret = register_webhook(sold.buyer, receiver.url)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    endpoint = db.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.org_id == sold.buyer.org_id)
    ).one()
    # Neither the secret nor its key is in the row or in the audit log: a reader of the
    # database alone cannot forge notices to the buyer.
    for column in WebhookEndpoint.__table__.columns:
        value = getattr(endpoint, column.key)
        raw = value if isinstance(value, bytes) else str(value).encode()
        assert key not in raw and secret.encode() not in raw, column.key
    for payload in db.scalars(select(AuditEvent.payload)):
        assert secret not in str(payload)
    # The platform still signs with it (the receiver verifies with the secret shown once).
    receiver.secret = secret
    withdraw(sold.contributor, asset_ids=[sold.assets[0]])
    receiver.wait_for(1)
    assert receiver.verified[0]["type"] == "withdrawal.notice"


def test_a_signing_secret_that_does_not_open_dead_letters_the_delivery(
    sold: Sold, receiver: Receiver, db: Session, app: Any
) -> None:
    receiver.secret = register_webhook(sold.buyer, receiver.url)
    endpoint = db.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.org_id == sold.buyer.org_id)
    ).one()
    endpoint.sealed_secret = endpoint.sealed_secret[:-1] + bytes([endpoint.sealed_secret[-1] ^ 1])
    db.commit()
    # The withdrawal goes through; its notice cannot be signed, so nothing is sent and the
    # delivery is dead at once (retrying cannot help), with the reason for operators.
    made = withdraw(sold.contributor, asset_ids=[sold.assets[0]])
    assert made["buyers"][0]["state"] == "notified"
    delivery = db.scalars(select(WebhookDelivery)).one()
    assert delivery.state == DeliveryState.DEAD and delivery.attempts == 1
    assert "signing secret does not open" in (delivery.last_error or "")
    assert receiver.hits == 0
    # Another round attempts nothing more, and raises nothing.
    assert webhooks.deliver_due(db, app.state.settings, now=utcnow() + timedelta(days=1)) == 0
    assert len(ok(sold.buyer.client.get("/api/v1/notices"))["notices"]) == 1
