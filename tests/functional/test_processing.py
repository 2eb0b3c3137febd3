"""Processing end to end through HTTP: one real file of every accepted format goes from
upload to a redacted version awaiting its owner's review, on SQLite + local vault and
on PostgreSQL + S3 (moto); then approval, the "which part is yours" flow for chats and
calls, platform-wide duplicate flags, and rejection of media that only fails on decode.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import soundfile
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests import media_factory
from tests.factories import Actor, sign_up_contributor
from tests.functional.traces import assert_no_trace

from fairtrain.ingest.models import DuplicateFlag
from fairtrain.privacy.chat import WITHHELD


@pytest.fixture(scope="session")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {name: media_factory.make(name, root / name) for name in media_factory.FORMATS}


@pytest.fixture
def ada(make_client) -> Actor:  # type: ignore[no-untyped-def]
    # The name the chat exports in media_factory use for the contributor.
    return sign_up_contributor(make_client(), name="Ada Okafor")


def upload(actor: Actor, path: Path, name: str | None = None) -> dict[str, Any]:
    response = actor.client.post(
        "/api/v1/uploads",
        content=path.read_bytes(),
        params={"filename": name or path.name},
        headers=actor.headers(),
    )
    assert response.status_code == 201, response.text
    asset = actor.client.get(f"/api/v1/assets/{response.json()['id']}")
    assert asset.status_code == 200
    return dict(asset.json())


def redacted(actor: Actor, asset_id: str) -> bytes:
    response = actor.client.get(f"/api/v1/assets/{asset_id}/content?version=redacted")
    assert response.status_code == 200, response.text
    return response.content


EXPECTED_REDACTED = {
    "audio": "audio/flac",
    "image": ("image/png", "image/jpeg"),
    "video": "video/mp4",
    "document": "application/pdf",
    "chat": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
}


@pytest.mark.parametrize("fmt", sorted(set(media_factory.FORMATS) - {"call"}))
def test_every_format_reaches_review_with_a_redacted_version(
    fmt: str, ada: Actor, media_files: dict[str, Path], app: Any, db: Session
) -> None:
    _, modality, media_type = media_factory.FORMATS[fmt]
    asset = upload(ada, media_files[fmt])
    assert asset["modality"] == modality
    assert asset["media_type"] == media_type
    assert asset["state"] == "awaiting_review", asset
    assert asset["privacy_report"]["kind"] == modality
    content = redacted(ada, asset["id"])
    assert content
    if modality in ("audio", "image", "video"):
        assert asset["quality"], "media gets quality scores"
        for score in asset["quality"].values():
            assert set(score) == {"value", "unit", "ok", "advice"}
            assert score["ok"] or score["advice"], "a failed score says how to improve"
    if modality == "audio":
        samples, rate = soundfile.read(io.BytesIO(content))
        assert samples.ndim == 1 and rate > 0  # one voice: mono
    if modality == "image":
        with Image.open(io.BytesIO(content)) as image:
            assert not image.getexif() and "xmp" not in image.info
    if modality == "chat":
        text = content.decode()
        assert "[CONTRIBUTOR]" in text and WITHHELD in text
        assert "Ben" not in text and "Ada" not in text and "7700" not in text
    approved = ada.client.post(f"/api/v1/assets/{asset['id']}/approve", headers=ada.headers())
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "listed"
    assert_no_trace(app, db)


def test_a_photo_loses_its_location_and_faces(ada: Actor, tmp_path: Path) -> None:
    photo = media_factory.two_faces_picture()
    exif = photo.getexif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    path = tmp_path / "astronaut.jpg"
    photo.save(path, exif=exif)
    asset = upload(ada, path)
    report = asset["privacy_report"]
    assert report["faces_blurred"] == 1  # the smaller face; the largest is the contributor's
    assert [face["own"] for face in report["faces"]] == [True, False]
    assert {"exif", "gps"} <= set(report["metadata_removed"])
    x1, y1, x2, y2 = report["faces"][1]["box"]
    with Image.open(io.BytesIO(redacted(ada, asset["id"]))) as clean:
        assert not clean.getexif()
        face_after = clean.crop((x1, y1, x2, y2)).convert("L")
    face_before = photo.crop((x1, y1, x2, y2)).convert("L")
    # The blurred face keeps almost none of the original's detail.
    assert _detail(face_after) < 0.2 * _detail(face_before)


def _detail(image: Image.Image) -> float:
    import numpy as np

    pixels = np.asarray(image, dtype=float)
    return float(np.abs(np.diff(pixels, axis=0)).mean() + np.abs(np.diff(pixels, axis=1)).mean())


def test_a_call_waits_until_its_owner_names_their_channel(
    ada: Actor, media_files: dict[str, Path], app: Any, db: Session
) -> None:
    asset = upload(ada, media_files["call"])
    assert asset["state"] == "awaiting_review"
    assert asset["state_code"] == "audio_channel_needed"
    assert asset["privacy_report"]["identity_needed"] == {"audio_channel": [0, 1]}
    refused = ada.client.post(f"/api/v1/assets/{asset['id']}/approve", headers=ada.headers())
    assert refused.status_code == 409 and refused.json()["code"] == "asset_not_reviewable"
    wrong = ada.client.post(
        f"/api/v1/assets/{asset['id']}/identify", json={"audio_channel": 5}, headers=ada.headers()
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_identity"
    chosen = ada.client.post(
        f"/api/v1/assets/{asset['id']}/identify", json={"audio_channel": 0}, headers=ada.headers()
    )
    assert chosen.status_code == 200, chosen.text
    after = ada.client.get(f"/api/v1/assets/{asset['id']}").json()
    assert after["state"] == "awaiting_review" and after["state_code"] is None
    report = after["privacy_report"]
    assert report["call"] is True and report["kept_channel"] == 0
    assert report["removed_speech"], "the other party's speech times are shown"
    samples, _ = soundfile.read(io.BytesIO(redacted(ada, asset["id"])))
    assert samples.ndim == 1
    assert_no_trace(app, db)


def test_a_chat_from_someone_else_asks_which_sender_they_are(
    make_client: Any, media_files: dict[str, Path], app: Any, db: Session
) -> None:
    ben = sign_up_contributor(make_client(), name="B. S.")  # matches no sender by name
    asset = upload(ben, media_files["whatsapp-android"])
    assert asset["state_code"] == "chat_sender_needed"
    choices = asset["privacy_report"]["identity_needed"]
    assert choices == {"chat_sender": ["Ada Okafor", "Ben Stone"]}
    chosen = ben.client.post(
        f"/api/v1/assets/{asset['id']}/identify",
        json={"chat_sender": "Ben Stone"},
        headers=ben.headers(),
    )
    assert chosen.status_code == 200, chosen.text
    text = redacted(ben, asset["id"]).decode()
    assert "are we still on for tomorrow" not in text  # Ada's words are withheld
    assert "[CONTRIBUTOR]: yes! call me on" in text
    assert "7700" not in text  # his own number is redacted too
    assert_no_trace(app, db)


def test_the_same_picture_from_two_accounts_is_flagged_to_operators(
    ada: Actor, make_client: Any, tmp_path: Path, db: Session
) -> None:
    picture = media_factory.picture(size=(400, 300), seed=42)
    original = tmp_path / "mine.png"
    picture.save(original)
    copy = tmp_path / "copy.jpg"
    picture.resize((380, 285)).save(copy, quality=70)  # re-encoded and resized
    first = upload(ada, original)
    other = sign_up_contributor(make_client(), name="Someone Else")
    second = upload(other, copy)
    db.expire_all()
    flags = db.scalars(select(DuplicateFlag).where(DuplicateFlag.asset_id == second["id"])).all()
    assert [(f.duplicate_of, f.kind, f.same_owner) for f in flags] == [
        (first["id"], "image", False)
    ]
    assert flags[0].similarity >= 0.85
    unrelated = tmp_path / "different.png"
    media_factory.picture(size=(400, 300), seed=7).save(unrelated)
    third = upload(ada, unrelated)
    assert not db.scalars(select(DuplicateFlag).where(DuplicateFlag.asset_id == third["id"])).all()


def test_a_re_encoded_recording_is_flagged_as_the_same_audio(
    ada: Actor, media_files: dict[str, Path], db: Session
) -> None:
    first = upload(ada, media_files["wav"])
    second = upload(ada, media_files["mp3"])  # the same speech, re-encoded
    db.expire_all()
    flags = db.scalars(select(DuplicateFlag).where(DuplicateFlag.asset_id == second["id"])).all()
    assert {(f.duplicate_of, f.kind) for f in flags} == {(first["id"], "audio")}
    assert all(f.same_owner for f in flags)


def test_near_identical_texts_are_flagged(ada: Actor, tmp_path: Path, db: Session) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    (tmp_path / "a.txt").write_text(f"My diary. {words} The end.")
    (tmp_path / "b.txt").write_text(f"My diary! {words} The end, really.")
    first = upload(ada, tmp_path / "a.txt")
    second = upload(ada, tmp_path / "b.txt")
    db.expire_all()
    flags = db.scalars(select(DuplicateFlag).where(DuplicateFlag.asset_id == second["id"])).all()
    assert [(f.duplicate_of, f.kind) for f in flags] == [(first["id"], "text")]
