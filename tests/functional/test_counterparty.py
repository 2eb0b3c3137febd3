"""Counterparty consent end to end through HTTP, on SQLite + local vault and PostgreSQL +
S3: a chat partner and the other side of a call are invited, see only their own part,
consent (the redaction job runs and their part is shared), withdraw (hidden again); the
receipts verify offline and the audit log verifies after every step."""

from __future__ import annotations

import io
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session
from tests import media_factory
from tests.factories import Actor, sign_up_contributor
from tests.functional.traces import assert_no_trace

from fairtrain.audit.service import verify_stored_chain
from fairtrain.consent.models import CounterpartyInvite
from fairtrain.consent.receipts import verify_receipt_document
from fairtrain.privacy.chat import WITHHELD

ADA_SAYS = "are we still on for tomorrow?"
BEN_SAYS = "yes! call me on +44 7700 900123"


@pytest.fixture
def ada(make_client: Any) -> Actor:
    # The contributor's name in media_factory's chat exports.
    return sign_up_contributor(make_client(), name="Ada Okafor")


def upload(actor: Actor, data: bytes, name: str) -> dict[str, Any]:
    response = actor.client.post(
        "/api/v1/uploads", content=data, params={"filename": name}, headers=actor.headers()
    )
    assert response.status_code == 201, response.text
    return dict(actor.client.get(f"/api/v1/assets/{response.json()['id']}").json())


def asset(actor: Actor, asset_id: str) -> dict[str, Any]:
    return dict(actor.client.get(f"/api/v1/assets/{asset_id}").json())


def redacted(actor: Actor, asset_id: str) -> bytes:
    response = actor.client.get(f"/api/v1/assets/{asset_id}/content?version=redacted")
    assert response.status_code == 200, response.text
    return response.content


def set_terms(actor: Actor, asset_id: str) -> None:
    response = actor.client.put(
        f"/api/v1/assets/{asset_id}/policy", json={"template": "default"}, headers=actor.headers()
    )
    assert response.status_code == 200, response.text


def invite(actor: Actor, asset_id: str, part: str, **extra: Any) -> tuple[dict[str, Any], str]:
    response = actor.client.post(
        f"/api/v1/assets/{asset_id}/invites", json={"part": part, **extra}, headers=actor.headers()
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["link"].startswith("http://127.0.0.1:8000/invites/")
    return body, body["link"].rsplit("/", 1)[1]


def receipt_of(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/invites/{token}/receipt")
    assert response.status_code == 200, response.text
    key = client.get("/api/v1/signing-key").text.encode()
    return verify_receipt_document(response.json(), key)


def chain_ok(db: Session) -> None:
    db.expire_all()
    assert verify_stored_chain(db) == (True, None, None)


def test_a_chat_partner_consents_and_withdraws(
    ada: Actor, make_client: Any, app: Any, db: Session
) -> None:
    chat = upload(ada, media_factory.WHATSAPP_ANDROID.encode(), "chat.txt")
    asset_id = chat["id"]
    parts = chat["privacy_report"]["counterparties"]
    assert [(p["part"], p["messages"], p["included"]) for p in parts] == [
        ("chat_sender:Ben Stone", 1, False)
    ]
    refused = ada.client.post(
        f"/api/v1/assets/{asset_id}/invites",
        json={"part": "chat_sender:Ben Stone"},
        headers=ada.headers(),
    )
    assert refused.status_code == 409 and refused.json()["code"] == "asset_without_terms"
    unknown = ada.client.post(
        f"/api/v1/assets/{asset_id}/invites",
        json={"part": "chat_sender:Nobody Here"},
        headers=ada.headers(),
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_part"
    approved = ada.client.post(f"/api/v1/assets/{asset_id}/approve", headers=ada.headers())
    assert approved.status_code == 200 and approved.json()["state"] == "listed"

    created, token = invite(ada, asset_id, "chat_sender:Ben Stone", name="Ben", email="b@x.org")
    assert created["status"] == "pending" and created["name"] == "Ben"
    again = ada.client.post(
        f"/api/v1/assets/{asset_id}/invites",
        json={"part": "chat_sender:Ben Stone"},
        headers=ada.headers(),
    )
    assert again.status_code == 409 and again.json()["code"] == "part_already_invited"
    listed = ada.client.get(f"/api/v1/assets/{asset_id}/invites").json()
    assert [(i["id"], i["status"]) for i in listed["invites"]] == [(created["id"], "pending")]
    assert listed["parts"] == [
        {"id": "chat_sender:Ben Stone", "kind": "chat_sender", "label": "Ben Stone",
         "included": False}
    ]  # fmt: skip
    chain_ok(db)

    ben = make_client()  # no account: the link is all he has
    view = ben.get(f"/api/v1/invites/{token}")
    assert view.status_code == 200, view.text
    shown = view.json()
    assert shown["status"] == "pending" and shown["modality"] == "chat"
    assert shown["part"] == "Your 1 message in a chat, as you wrote them."
    assert shown["invited_by"] == "Ada Okafor"
    assert shown["terms"]["explanation"] and shown["terms"]["risk_notes"]
    assert "Ben" not in str(shown) and "b@x.org" not in str(shown)
    part = ben.get(f"/api/v1/invites/{token}/part")
    assert part.status_code == 200 and part.headers["content-type"].startswith("text/plain")
    assert BEN_SAYS in part.text
    assert ADA_SAYS not in part.text and "station" not in part.text
    assert receipt_of(ben, token)["dpv:hasConsentStatus"].endswith("#ConsentRequested")
    before = redacted(ada, asset_id).decode()
    assert WITHHELD in before and "call me on" not in before

    consented = ben.post(f"/api/v1/invites/{token}/answer", json={"consent": True})
    assert consented.status_code == 200, consented.text
    assert consented.json()["status"] == "consented"
    after = asset(ada, asset_id)
    assert after["state"] == "listed"  # the new redacted version is the listed one
    report = after["privacy_report"]
    assert report["included_by_consent"] == ["chat_sender:Ben Stone"]
    assert report["redaction_version"] == 2 and report["withheld_messages"] == 0
    assert report["counterparties"][0]["included"] is True
    shared = redacted(ada, asset_id).decode()
    assert "[PARTICIPANT_1]: yes! call me on" in shared and WITHHELD not in shared
    assert "7700" not in shared and "Ben" not in shared  # still redacted within
    given = receipt_of(ben, token)
    assert given["dpv:hasConsentStatus"] == "https://w3id.org/dpv#ConsentGiven"
    assert given["counterpartyOf"] == f"http://127.0.0.1:8000/assets/{asset_id}"
    assert given["dpv:hasDataSubject"] == f"counterparty:{created['id']}"
    twice = ben.post(f"/api/v1/invites/{token}/answer", json={"consent": False})
    assert twice.status_code == 409 and twice.json()["code"] == "invite_answered"
    chain_ok(db)

    withdrawn = ben.post(f"/api/v1/invites/{token}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    hidden = redacted(ada, asset_id).decode()
    assert WITHHELD in hidden and "call me on" not in hidden
    report = asset(ada, asset_id)["privacy_report"]
    assert report["included_by_consent"] == [] and report["redaction_version"] == 3
    assert receipt_of(ben, token)["dpv:hasConsentStatus"].endswith("#ConsentWithdrawn")
    assert ben.post(f"/api/v1/invites/{token}/withdraw").json()["code"] == "invite_not_consented"
    gone = ben.get(f"/api/v1/invites/{token}/part")
    assert gone.status_code == 409 and gone.json()["code"] == "invite_answered"
    assert ben.get(f"/api/v1/invites/{token}").json()["status"] == "withdrawn"
    not_again = ada.client.post(
        f"/api/v1/assets/{asset_id}/invites",
        json={"part": "chat_sender:Ben Stone"},
        headers=ada.headers(),
    )
    assert not_again.status_code == 409 and not_again.json()["code"] == "counterparty_declined"
    assert_no_trace(app, db)


def test_the_other_side_of_a_call_is_unmuted_only_after_consent(
    ada: Actor, make_client: Any, tmp_path: Path, app: Any, db: Session
) -> None:
    call = media_factory.two_party_call(tmp_path)
    original, rate = soundfile.read(call)
    left, right = original[:, 0], original[:, 1]
    asset_id = upload(ada, call.read_bytes(), "call.wav")["id"]
    chosen = ada.client.post(
        f"/api/v1/assets/{asset_id}/identify", json={"audio_channel": 0}, headers=ada.headers()
    )
    assert chosen.status_code == 200, chosen.text
    parts = asset(ada, asset_id)["privacy_report"]["counterparties"]
    assert [(p["part"], p["label"]) for p in parts] == [("audio_channel:1", "the right channel")]
    assert parts[0]["speech_seconds"] > 0.5
    set_terms(ada, asset_id)
    _, token = invite(ada, asset_id, "audio_channel:1")

    other = make_client()
    part = other.get(f"/api/v1/invites/{token}/part")
    assert part.status_code == 200 and part.headers["content-type"] == "audio/flac"
    theirs, part_rate = soundfile.read(io.BytesIO(part.content))
    assert part_rate == rate and theirs.ndim == 1
    assert _correlation(theirs, right) > 0.99  # their own voice
    assert _correlation(theirs, left) < 0.5  # and not the contributor's
    before, _ = soundfile.read(io.BytesIO(redacted(ada, asset_id)))
    assert before.ndim == 1 and _correlation(before, left) > 0.99

    answered = other.post(f"/api/v1/invites/{token}/answer", json={"consent": True})
    assert answered.status_code == 200, answered.text
    both, _ = soundfile.read(io.BytesIO(redacted(ada, asset_id)))
    assert both.ndim == 2 and both.shape[1] == 2
    assert _correlation(both[:, 0], left) > 0.99 and _correlation(both[:, 1], right) > 0.99
    report = asset(ada, asset_id)["privacy_report"]
    assert report["included_channels"] == [1] and report["removed_speech"] == []
    chain_ok(db)

    assert other.post(f"/api/v1/invites/{token}/withdraw").status_code == 200
    again, _ = soundfile.read(io.BytesIO(redacted(ada, asset_id)))
    assert again.ndim == 1 and _correlation(again, left) > 0.99
    assert asset(ada, asset_id)["privacy_report"]["removed_speech"]
    assert_no_trace(app, db)


def test_another_voice_in_a_mono_recording_is_heard_only_after_consent(
    ada: Actor, make_client: Any, tmp_path: Path, app: Any, db: Session
) -> None:
    path = media_factory.two_speaker_mono(tmp_path)
    original, rate = soundfile.read(path)
    asset_id = upload(ada, path.read_bytes(), "two-voices.wav")["id"]
    [part] = asset(ada, asset_id)["privacy_report"]["counterparties"]
    assert (part["part"], part["label"]) == ("speaker:2", "speaker 2")
    start, end = part["segments"][0]
    middle = slice(int((start + 0.3) * rate), int((end - 0.3) * rate))
    set_terms(ada, asset_id)
    _, token = invite(ada, asset_id, "speaker:2")
    other = make_client()
    shown = other.get(f"/api/v1/invites/{token}/part")
    assert shown.status_code == 200 and shown.headers["content-type"] == "audio/flac"
    theirs, _ = soundfile.read(io.BytesIO(shown.content))
    assert np.abs(theirs[: int((start - 0.1) * rate)]).max() == 0.0  # not the contributor
    assert _correlation(theirs[middle], original[middle]) > 0.99  # their own voice
    before, _ = soundfile.read(io.BytesIO(redacted(ada, asset_id)))
    assert np.abs(before[middle]).max() == 0.0
    assert other.post(f"/api/v1/invites/{token}/answer", json={"consent": True}).status_code == 200
    after, _ = soundfile.read(io.BytesIO(redacted(ada, asset_id)))
    assert _correlation(after[middle], original[middle]) > 0.99
    assert asset(ada, asset_id)["privacy_report"]["included_speakers"] == [2]
    assert other.post(f"/api/v1/invites/{token}/withdraw").status_code == 200
    again, _ = soundfile.read(io.BytesIO(redacted(ada, asset_id)))
    assert np.abs(again[middle]).max() == 0.0
    assert_no_trace(app, db)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    size = min(len(a), len(b))
    return float(np.corrcoef(a[:size], b[:size])[0, 1])


def test_a_refusal_keeps_the_part_hidden_and_is_receipted(
    ada: Actor, make_client: Any, db: Session
) -> None:
    asset_id = upload(ada, media_factory.WHATSAPP_IOS.encode(), "chat.txt")["id"]
    set_terms(ada, asset_id)
    _, token = invite(ada, asset_id, "chat_sender:Ben Stone")
    ben = make_client()
    answered = ben.post(f"/api/v1/invites/{token}/answer", json={"consent": False})
    assert answered.status_code == 200 and answered.json()["status"] == "refused"
    assert receipt_of(ben, token)["dpv:hasConsentStatus"].endswith("#ConsentRefused")
    assert WITHHELD in redacted(ada, asset_id).decode()
    assert asset(ada, asset_id)["privacy_report"]["redaction_version"] == 1  # no job needed
    chain_ok(db)


def test_tokens_open_only_their_own_invite(ada: Actor, make_client: Any, db: Session) -> None:
    first = upload(ada, media_factory.WHATSAPP_ANDROID.encode(), "a.txt")["id"]
    second = upload(ada, media_factory.WHATSAPP_IOS.encode(), "b.txt")["id"]
    set_terms(ada, first)
    set_terms(ada, second)
    first_invite, _ = invite(ada, first, "chat_sender:Ben Stone")
    second_invite, token = invite(ada, second, "chat_sender:Ben Stone")
    anyone = make_client()
    for wrong in ("x", token[:-1], token + "A", "A" * 43, "A" * 500):
        response = anyone.get(f"/api/v1/invites/{wrong}")
        assert response.status_code == 404 and response.json()["code"] == "invite_not_found"
    assert anyone.post(f"/api/v1/invites/{token[:-2]}/answer", json={"consent": True}).json()[
        "code"
    ] == ("invite_not_found")
    # Another asset's invite is never reachable through this asset's address.
    crossed = ada.client.delete(
        f"/api/v1/assets/{first}/invites/{second_invite['id']}", headers=ada.headers()
    )
    assert crossed.status_code == 404 and crossed.json()["code"] == "invite_not_found"
    stranger = sign_up_contributor(make_client(), name="Someone Else")
    assert stranger.client.get(f"/api/v1/assets/{first}/invites").status_code == 404
    assert (
        stranger.client.delete(
            f"/api/v1/assets/{first}/invites/{first_invite['id']}", headers=stranger.headers()
        ).status_code
        == 404
    )
    revoked = ada.client.delete(
        f"/api/v1/assets/{second}/invites/{second_invite['id']}", headers=ada.headers()
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    response = anyone.get(f"/api/v1/invites/{token}")
    assert response.status_code == 410 and response.json()["code"] == "invite_revoked"
    twice = ada.client.delete(
        f"/api/v1/assets/{second}/invites/{second_invite['id']}", headers=ada.headers()
    )
    assert twice.status_code == 409 and twice.json()["code"] == "invite_answered"
    # A revoked invite may be followed by a new one for the same person.
    invite(ada, second, "chat_sender:Ben Stone")
    chain_ok(db)


def test_an_unanswered_invite_expires_with_a_receipt(
    ada: Actor, make_client: Any, db: Session
) -> None:
    asset_id = upload(ada, media_factory.WHATSAPP_ANDROID.encode(), "chat.txt")["id"]
    set_terms(ada, asset_id)
    created, token = invite(ada, asset_id, "chat_sender:Ben Stone")
    row = db.get(CounterpartyInvite, created["id"])
    assert row is not None
    assert row.expires_at - row.created_at == timedelta(days=14)
    row.expires_at = row.created_at - timedelta(seconds=1)  # fourteen days pass
    db.commit()
    ben = make_client()
    for method, path, body in (
        ("GET", "", None),
        ("GET", "/part", None),
        ("POST", "/answer", {"consent": True}),
    ):
        response = ben.request(method, f"/api/v1/invites/{token}{path}", json=body)
        assert response.status_code == 410 and response.json()["code"] == "invite_expired"
    assert receipt_of(ben, token)["dpv:hasConsentStatus"].endswith("#ConsentExpired")
    statuses = [i["status"] for i in ada.client.get(f"/api/v1/assets/{asset_id}/invites").json()[
        "invites"
    ]]  # fmt: skip
    assert statuses == ["expired"]
    invite(ada, asset_id, "chat_sender:Ben Stone")  # an expired invite can be made again
    chain_ok(db)


def test_invite_tokens_never_reach_the_logs(
    ada: Actor, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    asset_id = upload(ada, media_factory.WHATSAPP_ANDROID.encode(), "chat.txt")["id"]
    set_terms(ada, asset_id)
    _, token = invite(ada, asset_id, "chat_sender:Ben Stone", name="Ben Secret")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("fairtrain")
    logger.addHandler(handler)
    try:
        ben = make_client()
        ben.get(f"/invites/{token}")
        ben.get(f"/api/v1/invites/{token}/part")
        ben.post(f"/api/v1/invites/{token}/answer", json={"consent": True})
    finally:
        logger.removeHandler(handler)
    paths = [r.fields["path"] for r in records if hasattr(r, "fields") and "path" in r.fields]
    assert "/invites/[token]" in paths and "/api/v1/invites/[token]/part" in paths
    logged = " ".join(str(r.__dict__) for r in records)
    assert token not in logged and "Ben Secret" not in logged


# --- pages ------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def test_the_pages_invite_show_only_their_part_and_take_the_answer(
    ada: Actor, make_client: Any, db: Session
) -> None:
    asset_id = upload(ada, media_factory.WHATSAPP_ANDROID.encode(), "chat.txt")["id"]
    page = ada.client.get(f"/assets/{asset_id}").text
    assert "People in this chat" in page and "Ben Stone" in page
    assert "Choose your terms below first" in page
    set_terms(ada, asset_id)
    page = ada.client.get(f"/assets/{asset_id}").text
    created = ada.client.post(
        f"/assets/{asset_id}/invites",
        data={"part": "chat_sender:Ben Stone", "name": "Ben", "email": "",
              "csrf_token": _csrf(page)},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    link = re.search(r'<code class="secret" id="invite-link">([^<]+)</code>', created.text)
    assert link, "the link is shown once"
    token = link.group(1).rsplit("/", 1)[1]
    page = ada.client.get(f"/assets/{asset_id}").text
    assert token not in page and "pending" in page and "Take this invite back" in page

    ben = make_client()
    shown = ben.get(f"/invites/{token}")
    assert shown.status_code == 200
    assert "Ada Okafor asks for your consent" in shown.text
    assert BEN_SAYS.replace("!", "!") in shown.text
    assert ADA_SAYS not in shown.text and "station" not in shown.text
    assert "In plain words" in shown.text and "Before you agree" in shown.text
    assert f"/api/v1/invites/{token}/receipt" in shown.text
    forged = ben.post(
        f"/invites/{token}/answer", data={"consent": "yes", "csrf_token": "forged"},
        follow_redirects=False,
    )  # fmt: skip
    assert forged.status_code == 403
    yes = ben.post(
        f"/invites/{token}/answer",
        data={"consent": "yes", "csrf_token": _csrf(shown.text)},
        follow_redirects=False,
    )
    assert yes.status_code == 303 and yes.headers["location"] == f"/invites/{token}"
    after = ben.get(f"/invites/{token}").text
    assert "You consented on" in after and "Withdraw my consent" in after
    assert "included, by their consent" in ada.client.get(f"/assets/{asset_id}").text
    again = ben.post(f"/invites/{token}/answer", data={"consent": "no", "csrf_token": _csrf(after)})
    assert again.status_code == 409 and "already answered" in again.text
    withdrawn = ben.post(
        f"/invites/{token}/withdraw", data={"csrf_token": _csrf(after)}, follow_redirects=False
    )
    assert withdrawn.status_code == 303
    final = ben.get(f"/invites/{token}").text
    assert "You withdrew your consent on" in final and BEN_SAYS not in final
    chain_ok(db)


def test_a_revoked_invite_page_says_so(ada: Actor, make_client: Any) -> None:
    asset_id = upload(ada, media_factory.WHATSAPP_ANDROID.encode(), "chat.txt")["id"]
    set_terms(ada, asset_id)
    created, token = invite(ada, asset_id, "chat_sender:Ben Stone")
    page = ada.client.get(f"/assets/{asset_id}").text
    revoked = ada.client.post(
        f"/assets/{asset_id}/invites/{created['id']}/revoke",
        data={"csrf_token": _csrf(page)},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    shown = make_client().get(f"/invites/{token}", headers={"Accept": "text/html"})
    assert shown.status_code == 410 and "took it back" in shown.text


def test_new_terms_invalidate_consents_given_under_the_old_ones(
    ada: Actor, make_client: Any, app: Any, db: Session
) -> None:
    asset_id = upload(ada, media_factory.WHATSAPP_ANDROID.encode(), "chat.txt")["id"]
    set_terms(ada, asset_id)
    _, token = invite(ada, asset_id, "chat_sender:Ben Stone")
    ben = make_client()
    assert ben.post(f"/api/v1/invites/{token}/answer", json={"consent": True}).status_code == 200
    assert "call me on" in redacted(ada, asset_id).decode()
    changed = ada.client.put(
        f"/api/v1/assets/{asset_id}/policy",
        json={"template": "commercial_training"},
        headers=ada.headers(),
    )
    assert changed.status_code == 200, changed.text
    hidden = redacted(ada, asset_id).decode()
    assert WITHHELD in hidden and "call me on" not in hidden
    response = ben.get(f"/api/v1/invites/{token}")
    assert response.status_code == 410 and response.json()["code"] == "invite_invalidated"
    assert receipt_of(ben, token)["dpv:hasConsentStatus"].endswith("#ConsentInvalidated")
    listed = ada.client.get(f"/api/v1/assets/{asset_id}/invites").json()["invites"]
    assert [i["status"] for i in listed] == ["invalidated"]
    fresh, new_token = invite(ada, asset_id, "chat_sender:Ben Stone")  # asked again
    assert fresh["policy_id"] == changed.json()["id"]
    shown = ben.get(f"/api/v1/invites/{new_token}").json()
    assert shown["terms"]["policy_id"] == changed.json()["id"]
    assert_no_trace(app, db)


def test_a_face_in_a_photo_is_unblurred_only_after_consent(
    ada: Actor, make_client: Any, tmp_path: Path, app: Any, db: Session
) -> None:
    photo = (
        media_factory.two_faces_picture()
    )  # the larger face is the contributor's, the other is not
    path = tmp_path / "astronaut.png"
    photo.save(path)
    asset_id = upload(ada, path.read_bytes(), "astronaut.png")["id"]
    [part] = asset(ada, asset_id)["privacy_report"]["counterparties"]
    assert part["kind"] == "face" and part["label"] == "face 1"
    x1, y1, x2, y2 = (int(v) for v in part["ref"].split(","))
    set_terms(ada, asset_id)
    _, token = invite(ada, asset_id, part["part"])
    them = make_client()
    crop = them.get(f"/api/v1/invites/{token}/part")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(crop.content)) as face:
        width, height = face.size
    grow_x, grow_y = (x2 - x1) // 4, (y2 - y1) // 4
    assert width <= x2 - x1 + 2 * grow_x and height <= y2 - y1 + 2 * grow_y  # the face only
    assert width * height < 0.2 * photo.width * photo.height
    original = np.asarray(photo)[y1:y2, x1:x2]

    def face_in_shared() -> np.ndarray:
        with Image.open(io.BytesIO(redacted(ada, asset_id))) as shared:
            return np.asarray(shared.convert("RGB"))[y1:y2, x1:x2]

    assert not np.array_equal(face_in_shared(), original)  # blurred
    assert them.post(f"/api/v1/invites/{token}/answer", json={"consent": True}).status_code == 200
    assert np.array_equal(face_in_shared(), original)  # lossless PNG: exactly the face
    assert asset(ada, asset_id)["privacy_report"]["faces_blurred"] == 0
    assert them.post(f"/api/v1/invites/{token}/withdraw").status_code == 200
    assert not np.array_equal(face_in_shared(), original)
    assert_no_trace(app, db)
