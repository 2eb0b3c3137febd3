"""The audit log over HTTP: auditors page through it, people see their own events."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from tests.factories import login, sign_up_contributor

from fairtrain.audit.chain import GENESIS_HASH
from fairtrain.audit.models import AuditEvent
from fairtrain.demo import DEMO_LOGINS, seed_demo


def _auditor(app, db: Session, client: TestClient):  # type: ignore[no-untyped-def]
    seed_demo(db, app.state.passwords)
    db.commit()
    auditor = next(d for d in DEMO_LOGINS if d.role == "auditor")
    return login(client, auditor.email, auditor.password)


def test_auditor_pages_through_a_valid_chain(app, db: Session, make_client) -> None:  # type: ignore[no-untyped-def]
    auditor = _auditor(app, db, make_client())
    first = auditor.client.get("/api/v1/audit/events", params={"limit": 3}).json()
    assert [e["seq"] for e in first["events"]] == [1, 2, 3]
    assert first["events"][0]["prev_hash"] == GENESIS_HASH
    assert first["events"][1]["prev_hash"] == first["events"][0]["hash"]
    second = auditor.client.get(
        "/api/v1/audit/events", params={"after_seq": first["next_after_seq"], "limit": 3}
    ).json()
    assert second["events"][0]["seq"] == 4
    status = auditor.client.get("/api/v1/audit/status").json()
    assert status["ok"] is True
    assert status["events"] >= 5  # four demo accounts and the auditor's login


def test_status_reports_the_first_tampered_event(app, db: Session, make_client) -> None:  # type: ignore[no-untyped-def]
    auditor = _auditor(app, db, make_client())
    db.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(action="account.tampered"))
    db.commit()
    status = auditor.client.get("/api/v1/audit/status").json()
    assert status == {
        "ok": False,
        "events": status["events"],
        "first_bad_seq": 3,
        "problem": "event hash does not match its fields",
    }


def test_people_see_only_events_about_themselves(client: TestClient, make_client) -> None:  # type: ignore[no-untyped-def]
    me = sign_up_contributor(client)
    other = sign_up_contributor(make_client())
    events = client.get("/api/v1/me/audit-events").json()["events"]
    assert events
    refs = {f"user:{me.user_id}"}
    for event in events:
        assert event["actor"] in refs or event["subject"] in refs
        assert f"user:{other.user_id}" not in (event["actor"], event["subject"])
