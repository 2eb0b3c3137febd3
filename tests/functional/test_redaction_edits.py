"""The contributor edits a redaction before approving (their face, their voice, their own
details left in, more taken out) and sees what is still there: API and preview page."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests import media_factory
from tests.factories import Actor, sign_up_contributor
from tests.functional.traces import assert_no_trace

from fairtrain.audit.models import AuditEvent

TEXT = "Hi, I am Ada Okafor. Call me on +44 7700 900123 or find me at the old mill.\n"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def ada(make_client: Any) -> Actor:
    return sign_up_contributor(make_client(), name="Ada Okafor")


def upload(actor: Actor, data: bytes, name: str) -> dict[str, Any]:
    response = actor.client.post(
        "/api/v1/uploads", content=data, params={"filename": name}, headers=actor.headers()
    )
    assert response.status_code == 201, response.text
    return dict(actor.client.get(f"/api/v1/assets/{response.json()['id']}").json())


def edit(actor: Actor, asset_id: str, **body: Any) -> Any:
    return actor.client.put(
        f"/api/v1/assets/{asset_id}/redaction", json=body, headers=actor.headers()
    )


def shared(actor: Actor, asset_id: str) -> bytes:
    response = actor.client.get(f"/api/v1/assets/{asset_id}/content?version=redacted")
    assert response.status_code == 200, response.text
    return response.content


def test_own_details_are_left_in_and_more_is_taken_out(ada: Actor, app: Any, db: Session) -> None:
    asset = upload(ada, TEXT.encode(), "note.txt")
    report = asset["privacy_report"]
    assert "phone number removed" in asset["residual_risk"]["summary"]
    assert "+44 7700 900123" not in shared(ada, asset["id"]).decode()
    name = next(s for s in report["spans"] if TEXT[s[0] : s[1]] == "Ada Okafor")
    mill = TEXT.index("old mill")
    done = edit(
        ada, asset["id"], keep_spans=[name[:2]], redact_spans=[[mill, mill + len("old mill")]]
    )
    assert done.status_code == 200, done.text
    text = shared(ada, asset["id"]).decode()
    assert "Ada Okafor" in text and "old mill" not in text and "[REDACTED_1]" in text
    assert "+44 7700 900123" not in text
    after = ada.client.get(f"/api/v1/assets/{asset['id']}").json()
    assert after["privacy_report"]["unredacted_by_you"] == 1
    assert after["privacy_report"]["edits"]["keep_spans"] == [name[:2]]
    assert "1 item left in by you" in after["residual_risk"]["summary"]
    assert "1 item you marked removed" in after["residual_risk"]["summary"]
    events = db.scalars(
        select(AuditEvent.action).where(AuditEvent.subject == f"asset:{asset['id']}")
    ).all()
    assert "asset.redaction_edited" in events and "asset.redacted_again" in events
    # The same edits again (the span is now listed as left in): accepted, nothing changes.
    assert edit(ada, asset["id"], keep_spans=[name[:2]]).status_code == 200
    assert_no_trace(app, db)


def test_bad_edits_are_refused_with_a_code(ada: Actor) -> None:
    asset = upload(ada, TEXT.encode(), "note.txt")
    cases = [
        ({"keep_spans": [[0, 2]]}, 422, "unknown_span"),
        ({"redact_spans": [[5, 3]]}, 422, "invalid_span"),
        ({"redact_spans": [[0, 100_000]]}, 422, "invalid_span"),
        ({"own_face": "none"}, 422, "invalid_edits"),
        ({"own_speaker": 2}, 422, "invalid_edits"),
    ]
    for body, status, code in cases:
        response = edit(ada, asset["id"], **body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert edit(ada, asset["id"], colour="red").status_code == 422
    approved = ada.client.post(f"/api/v1/assets/{asset['id']}/approve", headers=ada.headers())
    assert approved.status_code == 200
    late = edit(ada, asset["id"], redact_spans=[[0, 2]])
    assert (late.status_code, late.json()["code"]) == (409, "asset_not_reviewable")


def _region(data: bytes, box: list[int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))[y1:y2, x1:x2]


def test_the_contributor_picks_their_face_and_marks_an_area(
    ada: Actor, tmp_path: Path, app: Any, db: Session
) -> None:
    picture = media_factory.two_faces_picture()
    data = io.BytesIO()
    picture.save(data, format="PNG")
    asset = upload(ada, data.getvalue(), "two.png")
    large, small = asset["privacy_report"]["faces"]
    assert large["own"] and "your face is visible" in asset["residual_risk"]["summary"]
    assert asset["residual_risk"]["summary"].startswith("1 face blurred")
    page = ada.client.get(f"/assets/{asset['id']}").text
    assert "Your face (left as it is" in page and "none of them is me" in page
    large_ref, small_ref = (",".join(map(str, f["box"])) for f in (large, small))
    assert f'name="own_face" value="{large_ref}" checked' in page
    assert f'name="own_face" value="{small_ref}">' in page
    assert "1 face blurred" in page and "your face is visible" in page
    original = np.asarray(picture)
    badge = [20, 400, 200, 480]
    done = edit(ada, asset["id"], own_face=",".join(map(str, small["box"])), blur_boxes=[badge])
    assert done.status_code == 200, done.text
    after = ada.client.get(f"/api/v1/assets/{asset['id']}").json()
    assert after["privacy_report"]["own_face_chosen"] is True
    assert [p["ref"] for p in after["privacy_report"]["counterparties"]] == [
        ",".join(map(str, large["box"]))
    ]
    content = shared(ada, asset["id"])
    x1, y1, x2, y2 = small["box"]
    assert np.array_equal(_region(content, small["box"]), original[y1:y2, x1:x2])
    x1, y1, x2, y2 = large["box"]
    assert not np.array_equal(_region(content, large["box"]), original[y1:y2, x1:x2])
    assert "1 area you marked blurred" in after["residual_risk"]["summary"]
    unknown = edit(ada, asset["id"], own_face="1,1,30,30")
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_part")
    outside = edit(ada, asset["id"], blur_boxes=[[0, 0, 5000, 10]])
    assert (outside.status_code, outside.json()["code"]) == (422, "invalid_box")
    assert_no_trace(app, db)


def test_the_contributor_says_which_voice_is_theirs(
    ada: Actor, tmp_path: Path, app: Any, db: Session
) -> None:
    path = media_factory.two_speaker_mono(tmp_path)
    asset = upload(ada, path.read_bytes(), "two-voices.wav")
    report, risk = asset["privacy_report"], asset["residual_risk"]
    assert report["speakers"] == 2 and report["contributor_speaker"] == 1
    assert "1 other voice muted" in risk["summary"] and "voice is identifiable" in risk["summary"]
    assert [p["part"] for p in report["counterparties"]] == ["speaker:2"]
    page = ada.client.get(f"/assets/{asset['id']}").text
    assert "What is still there" in page and "voices were told apart" in page
    assert 'name="own_speaker" value="2"' in page
    form = {"own_speaker": "2", "csrf_token": _CSRF.search(page).group(1)}  # type: ignore[union-attr]
    posted = ada.client.post(f"/assets/{asset['id']}/redaction", data=form, follow_redirects=False)
    assert posted.status_code == 303
    after = ada.client.get(f"/api/v1/assets/{asset['id']}").json()["privacy_report"]
    assert after["contributor_speaker"] == 2
    assert [p["part"] for p in after["counterparties"]] == ["speaker:1"]
    too_many = edit(ada, asset["id"], own_speaker=3)
    assert (too_many.status_code, too_many.json()["code"]) == (422, "invalid_speaker")
    assert_no_trace(app, db)


def test_the_preview_page_edits_text_and_shows_the_residual_risk(ada: Actor) -> None:
    asset = upload(ada, TEXT.encode(), "note.txt")
    page = ada.client.get(f"/assets/{asset['id']}").text
    assert "What is still there" in page and "phone number removed" in page
    assert "Edit the redaction" in page and "Ada Okafor" in page
    name = next(s for s in asset["privacy_report"]["spans"] if TEXT[s[0] : s[1]] == "Ada Okafor")
    form = {
        "keep_span": f"{name[0]}-{name[1]}",
        "redact_text": "old mill",
        "csrf_token": _CSRF.search(page).group(1),  # type: ignore[union-attr]
    }
    posted = ada.client.post(f"/assets/{asset['id']}/redaction", data=form, follow_redirects=False)
    assert posted.status_code == 303
    text = shared(ada, asset["id"]).decode()
    assert "Ada Okafor" in text and "old mill" not in text
    page = ada.client.get(f"/assets/{asset['id']}").text
    assert "checked" in page and "old mill" in page  # the edits are shown as made
    missing = {"redact_text": "not in the text", "csrf_token": _CSRF.search(page).group(1)}  # type: ignore[union-attr]
    refused = ada.client.post(f"/assets/{asset['id']}/redaction", data=missing)
    assert refused.status_code == 422 and "does not occur" in refused.text
