"""The withdrawal pages over HTTP on both databases: a contributor withdraws one item
from a form and follows the buyer's answer; a refused form writes nothing; an operator
sees the attestation go overdue."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.functional.withdrawal_world import Sold, sold

from fairtrain.withdrawal import notices
from fairtrain.withdrawal.models import Notice, Withdrawal

__all__ = ["sold"]


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_a_contributor_withdraws_from_the_page_and_an_operator_sees_it_overdue(
    sold: Sold, db: Session, app: Any
) -> None:
    page = sold.contributor.client.get("/me/withdrawals")
    assert page.status_code == 200 and "You have not withdrawn anything." in page.text
    for asset_id in sold.assets:
        assert f'value="{asset_id}"' in page.text

    # Nothing chosen: refused with its code, nothing written.
    refused = sold.contributor.client.post("/me/withdrawals", data={"csrf_token": _csrf(page.text)})
    assert refused.status_code == 422 and "invalid_withdrawal" in refused.text
    assert _count(db, Withdrawal) == 0 and _count(db, Notice) == 0
    # Without the CSRF token: refused too.
    forged = sold.contributor.client.post("/me/withdrawals", data={"asset_id": sold.assets[0]})
    assert forged.status_code == 403 and _count(db, Withdrawal) == 0

    done = sold.contributor.client.post(
        "/me/withdrawals",
        data={"asset_id": sold.assets[0], "csrf_token": _csrf(refused.text)},
    )
    assert done.status_code == 200, done.text
    assert "Withdrawn." in done.text and "Retraining Labs" in done.text
    assert "<strong>notified</strong>" in done.text
    assert f'value="{sold.assets[0]}"' not in done.text  # no longer offered
    assert _count(db, Notice) == 1

    overdue_page = sold.operator.client.get("/operator/attestations")
    assert overdue_page.status_code == 200 and "No attestation is overdue." in overdue_page.text
    notice = db.scalars(select(Notice)).one()
    notices.escalate(db, app.state.settings, now=notice.deadline_at + timedelta(hours=1))
    overdue_page = sold.operator.client.get("/operator/attestations")
    assert notice.id in overdue_page.text and "<strong>overdue</strong>" in overdue_page.text
    mine = sold.contributor.client.get("/me/withdrawals")
    assert "<strong>overdue</strong>" in mine.text

    # Other people are refused.
    assert sold.buyer.client.get("/me/withdrawals").status_code == 403
    assert sold.contributor.client.get("/operator/attestations").status_code == 403
