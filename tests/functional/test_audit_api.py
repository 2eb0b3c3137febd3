"""The audit log over HTTP: auditors page through it, people see their own events."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from tests.factories import login, sign_up_contributor

from fairtrain.audit.chain import GENESIS_HASH
from fairtrain.audit.checkpoint import create_checkpoint
from fairtrain.audit.keys import platform_signing_key
from fairtrain.audit.models import AuditCheckpoint, AuditEvent
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
    # No checkpoint yet: the default check is the whole log.
    assert status == {
        "ok": False,
        "events": status["events"],
        "first_bad_seq": 3,
        "problem": "event hash does not match its fields",
        "scope": "full",
        "verified_from_seq": 1,
        "checkpoint_tree_size": None,
    }


def _checkpointed(app, db: Session, make_client):  # type: ignore[no-untyped-def]
    """An auditor, a signed checkpoint over the log so far, and three events after it."""
    auditor = _auditor(app, db, make_client())
    checkpoint = create_checkpoint(db, platform_signing_key(app.state.settings))
    db.commit()
    for _ in range(3):
        sign_up_contributor(make_client())
    return auditor, checkpoint.tree_size


def _status(auditor, **params: str):  # type: ignore[no-untyped-def]
    response = auditor.client.get("/api/v1/audit/status", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_default_status_starts_at_the_latest_signed_checkpoint(
    app, db: Session, make_client
) -> None:  # type: ignore[no-untyped-def]
    auditor, size = _checkpointed(app, db, make_client)
    status = _status(auditor)
    assert status["ok"] is True and status["events"] > size
    assert status["scope"] == "since_checkpoint"
    assert status["verified_from_seq"] == size and status["checkpoint_tree_size"] == size
    assert _status(auditor, scope="full") | {"events": 0} == {
        "ok": True,
        "events": 0,
        "first_bad_seq": None,
        "problem": None,
        "scope": "full",
        "verified_from_seq": 1,
        "checkpoint_tree_size": None,
    }
    refused = auditor.client.get("/api/v1/audit/status", params={"scope": "some"})
    assert refused.status_code == 422 and refused.json()["code"]


def test_an_edit_after_the_checkpoint_or_of_the_event_it_signed_is_found(
    app, db: Session, make_client
) -> None:  # type: ignore[no-untyped-def]
    auditor, size = _checkpointed(app, db, make_client)
    for seq in (size + 2, size):
        original = db.get(AuditEvent, seq)
        assert original is not None
        action = original.action
        db.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(action="x.tampered"))
        db.commit()
        status = _status(auditor)
        assert (status["ok"], status["first_bad_seq"]) == (False, seq)
        assert status["problem"] == "event hash does not match its fields"
        db.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(action=action))
        db.commit()
        assert _status(auditor)["ok"] is True


def test_a_rewritten_prefix_breaks_the_signed_hash_and_a_field_edit_needs_the_full_check(
    app, db: Session, make_client
) -> None:  # type: ignore[no-untyped-def]
    auditor, size = _checkpointed(app, db, make_client)
    # An edit inside the signed prefix that recomputes no hash is outside the default
    # check's scope (it says where it started); the full check finds it.
    db.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(action="x.tampered"))
    db.commit()
    status = _status(auditor)
    assert status["ok"] is True and status["verified_from_seq"] == size > 2
    full = _status(auditor, scope="full")
    assert (full["ok"], full["first_bad_seq"]) == (False, 2)
    # Rewriting the signed event's hash (as recomputing the chain after an edit would)
    # contradicts the signature.
    db.execute(update(AuditEvent).where(AuditEvent.seq == size).values(hash="0" * 64))
    db.commit()
    status = _status(auditor)
    assert (status["ok"], status["first_bad_seq"]) == (False, size)
    assert status["problem"] == "event hash differs from the one the latest checkpoint signed"


def test_a_forged_checkpoint_is_refused(app, db: Session, make_client) -> None:  # type: ignore[no-untyped-def]
    auditor, size = _checkpointed(app, db, make_client)
    checkpoint = db.get(AuditCheckpoint, size)
    assert checkpoint is not None
    db.execute(
        update(AuditCheckpoint).where(AuditCheckpoint.tree_size == size).values(root_hash="f" * 64)
    )
    db.commit()
    status = _status(auditor)
    assert (status["ok"], status["first_bad_seq"]) == (False, size)
    assert status["problem"] == "the latest checkpoint's signature does not verify"


def test_people_see_only_events_about_themselves(client: TestClient, make_client) -> None:  # type: ignore[no-untyped-def]
    me = sign_up_contributor(client)
    other = sign_up_contributor(make_client())
    events = client.get("/api/v1/me/audit-events").json()["events"]
    assert events
    refs = {f"user:{me.user_id}"}
    for event in events:
        assert event["actor"] in refs or event["subject"] in refs
        assert f"user:{other.user_id}" not in (event["actor"], event["subject"])
