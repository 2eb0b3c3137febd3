"""The withdrawal register and attestation compliance rates (operators and auditors),
as JSON, CSV and a page, on both databases."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import sign_up_contributor
from tests.functional.withdrawal_world import Sold, ok, register_key, sold, withdraw

from fairtrain.compliance import reports
from fairtrain.ids import utcnow
from fairtrain.withdrawal import notices
from fairtrain.withdrawal.models import Notice

__all__ = ["sold"]


def _attest(sold: Sold, notice_id: str, key: Any) -> None:
    feed = ok(sold.buyer.client.get("/api/v1/notices"))["notices"]
    body = next(n["body"] for n in feed if n["id"] == notice_id)
    document = notices.attestation_document(body, deleted_at=utcnow())
    ok(
        sold.buyer.client.post(
            f"/api/v1/notices/{notice_id}/attestation",
            json={"jws": notices.sign_attestation(document, key)},
            headers=sold.buyer.headers(),
        )
    )


def test_the_register_follows_each_notice_to_its_attestation(
    sold: Sold, db: Session, make_client: Any
) -> None:
    empty = ok(sold.operator.client.get("/api/v1/compliance/withdrawal-register"))
    assert empty["notices"] == [] and empty["attestation_compliance"]["totals"]["rate"] is None

    key = register_key(sold.buyer)
    first = withdraw(sold.contributor, asset_ids=[sold.assets[0]])
    register = ok(sold.operator.client.get("/api/v1/compliance/withdrawal-register"))
    [row] = register["notices"]
    assert row["withdrawal_id"] == first["id"] and row["licence_id"] == sold.licence_id
    assert row["state"] == "notified" and row["attested_at"] is None and row["assets"] == 1
    assert row["organisation"] == "Retraining Labs" and row["in_time"] is False
    totals = register["attestation_compliance"]["totals"]
    assert totals["open"] == 1 and totals["rate"] is None  # nothing is due yet

    _attest(sold, row["notice_id"], key)
    rates = ok(sold.operator.client.get("/api/v1/compliance/attestation-compliance"))
    [buyer] = rates["organisations"]
    assert (buyer["notices"], buyer["attested_in_time"], buyer["rate"]) == (1, 1, 1.0)

    # A second withdrawal the buyer never attests: once its deadline passes it is
    # overdue and the in-time rate halves.
    withdraw(sold.contributor, asset_ids=[sold.assets[1]])
    late = db.scalars(select(Notice).where(Notice.attested_at.is_(None))).one()
    later = reports.attestation_compliance(db, late.deadline_at + timedelta(days=1))
    assert later["totals"] == {
        "notices": 2, "attested_in_time": 1, "attested_late": 0, "overdue": 1, "open": 0,
        "suspended": 0, "rate": 0.5,
    }  # fmt: skip

    # CSV (as an auditor would download it) and the page.
    text = sold.operator.client.get("/api/v1/compliance/withdrawal-register?format=csv")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(text.text)))
    assert [r["state"] for r in parsed] == ["notified", "attested"]  # newest first
    assert set(parsed[0]) == set(reports.WITHDRAWAL_REGISTER_COLUMNS)
    page = sold.operator.client.get("/api/v1/compliance/withdrawal-register?format=html")
    assert page.status_code == 200 and "Attestation compliance" in page.text
    assert "50.0 %" not in page.text and "Retraining Labs" in page.text  # not yet due now
    rates_csv = sold.operator.client.get("/api/v1/compliance/attestation-compliance?format=csv")
    assert rates_csv.status_code == 200 and "Retraining Labs" in rates_csv.text

    # Nobody else reads them; a bad format is refused with a code.
    for path in ("withdrawal-register", "attestation-compliance"):
        refused = sold.contributor.client.get(f"/api/v1/compliance/{path}")
        assert refused.status_code == 403, refused.text
        assert sold.buyer.client.get(f"/api/v1/compliance/{path}").status_code == 403
    bad = sold.operator.client.get("/api/v1/compliance/withdrawal-register?format=pdf")
    assert bad.status_code == 422 and bad.json()["code"]
    stranger = sign_up_contributor(make_client())
    assert stranger.client.get("/api/v1/compliance/withdrawal-register").status_code == 403
