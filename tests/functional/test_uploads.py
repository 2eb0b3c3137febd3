"""Uploads end to end through HTTP: streamed, multipart and tus; refusals leave no trace.

Runs on SQLite with the local vault and on PostgreSQL with the S3 vault (moto's server).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from tests.factories import Actor, sign_up_buyer, sign_up_contributor
from tests.functional.traces import assert_no_trace, live_blob_ids

from fairtrain.ingest.models import Asset, AssetState, ResumableUpload, UploadSegment

TUS = {"Tus-Resumable": "1.0.0"}


def png(seed: int = 7, size: tuple[int, int] = (96, 64)) -> bytes:
    image = Image.new("RGB", size, (seed % 256, (seed * 37) % 256, (seed * 91) % 256))
    for x in range(0, size[0], 8):  # some structure, so it is not a flat colour
        for y in range(size[1]):
            image.putpixel((x, y), (255 - seed % 256, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"], body


def upload(actor: Actor, data: bytes, name: str = "photo.png") -> Any:
    return actor.client.post(
        "/api/v1/uploads", content=data, params={"filename": name}, headers=actor.headers()
    )


def asset_count(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Asset)) or 0


@pytest.fixture
def ada(make_client) -> Actor:  # type: ignore[no-untyped-def]
    return sign_up_contributor(make_client(), name="Ada Upload")


def test_raw_upload_is_sniffed_stored_encrypted_and_processed(
    ada: Actor, app: Any, db: Session
) -> None:
    data = png()
    response = upload(ada, data, name="holiday.wav")  # the name lies; the bytes decide
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["modality"] == "image"
    assert body["media_type"] == "image/png"
    assert body["display_name"] == "holiday.wav"
    assert body["size_bytes"] == len(data)
    assert body["media_info"]["width"] == 96 and body["media_info"]["height"] == 64
    assert body["job_id"]
    # Jobs run right after commit in tests: processing has finished.
    asset = ada.client.get(f"/api/v1/assets/{body['id']}").json()
    assert asset["state"] == "awaiting_review", asset
    assert asset["privacy_report"]["kind"] == "image"
    assert "fingerprint" not in asset["media_info"]
    job = ada.client.get(f"/api/v1/jobs/{body['job_id']}").json()
    assert job["state"] == "succeeded", job
    # The vault holds ciphertext only.
    backend = app.state.runtime.vault.backend
    for stored in backend.iter_objects():
        with backend.open(stored.key) as handle:
            raw = handle.read()
        assert data[:64] not in raw and b"IHDR" not in raw
    # The owner can read back the original bytes exactly.
    original = ada.client.get(f"/api/v1/assets/{body['id']}/content?version=original")
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-security-policy"].startswith("sandbox")
    assert_no_trace(app, db)


def test_form_upload_keeps_a_safe_display_name(ada: Actor, app: Any, db: Session) -> None:
    name = "../../etc/\u202egnp.exe"
    response = ada.client.post(
        "/api/v1/uploads/form",
        files={"file": (name, png(3), "application/x-msdownload")},
        headers=ada.headers(),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["display_name"] == "gnp.exe"  # no path, no bidi override
    assert body["media_type"] == "image/png"
    assert_no_trace(app, db)


def test_tus_upload_in_pieces_resumes_from_the_server_offset(
    ada: Actor, app: Any, db: Session
) -> None:
    data = png(11, size=(640, 480))
    name = base64.b64encode(b"big.png").decode()
    created = ada.client.post(
        "/api/v1/uploads/tus",
        headers={
            **TUS,
            **ada.headers(),
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"filename {name}",
        },
    )
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    piece = max(1, len(data) // 3)
    offset = 0
    asset_id = None
    while offset < len(data):
        # A client that lost its connection asks where to resume.
        head = ada.client.head(location, headers=TUS)
        assert head.status_code == 200 and int(head.headers["upload-offset"]) == offset
        response = ada.client.patch(
            location,
            content=data[offset : offset + piece],
            headers={
                **TUS,
                **ada.headers(),
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert response.status_code == 204, response.text
        offset = int(response.headers["upload-offset"])
        asset_id = response.headers.get("fairtrain-asset")
    assert asset_id
    asset = ada.client.get(f"/api/v1/assets/{asset_id}").json()
    assert asset["display_name"] == "big.png" and asset["size_bytes"] == len(data)
    original = ada.client.get(f"/api/v1/assets/{asset_id}/content?version=original")
    assert original.content == data
    # The segments were merged into one blob and deleted.
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(UploadSegment)) == 0
    assert_no_trace(app, db)


def test_tus_refuses_a_wrong_offset_and_terminate_deletes_segments(
    ada: Actor, app: Any, db: Session
) -> None:
    created = ada.client.post(
        "/api/v1/uploads/tus", headers={**TUS, **ada.headers(), "Upload-Length": "1000"}
    )
    location = created.headers["location"]
    patch_headers = {**TUS, **ada.headers(), "Content-Type": "application/offset+octet-stream"}
    first = ada.client.patch(
        location, content=b"a" * 100, headers={**patch_headers, "Upload-Offset": "0"}
    )
    assert first.status_code == 204
    wrong = ada.client.patch(
        location, content=b"b" * 100, headers={**patch_headers, "Upload-Offset": "0"}
    )
    assert_problem(wrong, 409, "upload_offset_mismatch")
    assert live_blob_ids(db)  # the first piece is stored, encrypted
    gone = ada.client.delete(location, headers={**TUS, **ada.headers()})
    assert gone.status_code == 204
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(ResumableUpload)) == 0
    assert ada.client.head(location, headers=TUS).status_code == 404
    assert_no_trace(app, db)


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "empty_file"),
        (b"MZ\x90\x00" + b"\x00" * 200, 415, "unsupported_type"),
        (png()[:60], 422, "truncated_media"),
    ],
    ids=["empty", "executable", "truncated-png"],
)
def test_refused_uploads_leave_no_trace(
    ada: Actor, app: Any, db: Session, data: bytes, status: int, code: str
) -> None:
    before = asset_count(db)
    response = upload(ada, data, name="refuse.jpg")
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert asset_count(db) == before
    assert_no_trace(app, db)


def test_only_contributors_upload_and_only_owners_see_originals(
    ada: Actor, make_client: Any, app: Any, db: Session
) -> None:
    asset_id = upload(ada, png(5)).json()["id"]
    other = sign_up_contributor(make_client(), name="Other Person")
    buyer = sign_up_buyer(make_client())
    for intruder in (other, buyer):
        for path in (
            f"/api/v1/assets/{asset_id}",
            f"/api/v1/assets/{asset_id}/content?version=original",
            f"/api/v1/assets/{asset_id}/content?version=redacted",
        ):
            assert intruder.client.get(path).status_code == 404
    assert upload(buyer, png(6)).status_code in (403, 404)
    anonymous = make_client().get(f"/api/v1/assets/{asset_id}")
    assert anonymous.status_code == 401


def test_erasing_an_asset_deletes_every_stored_version(ada: Actor, app: Any, db: Session) -> None:
    asset_id = upload(ada, png(9)).json()["id"]
    erased = ada.client.delete(f"/api/v1/assets/{asset_id}", headers=ada.headers())
    assert erased.status_code == 200, erased.text
    assert erased.json()["state"] == AssetState.ERASED
    content = ada.client.get(f"/api/v1/assets/{asset_id}/content?version=original")
    assert_problem(content, 404, "content_not_found")
    assert live_blob_ids(db) == set()
    assert list(app.state.runtime.vault.backend.iter_objects()) == []
    assert_no_trace(app, db)


def _statements_during(connection: Connection, action: Any) -> tuple[Any, int]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    try:
        result = action()
    finally:
        event.remove(connection, "before_cursor_execute", count)
    return result, len(seen)


def test_the_asset_list_costs_the_same_queries_for_one_asset_or_many(
    ada: Actor, connection: Connection
) -> None:
    """Each asset's latest job is read for the whole page at once, not one query each."""
    first = upload(ada, png(1)).json()["id"]
    listed, one = _statements_during(connection, lambda: ada.client.get("/api/v1/assets").json())
    assert [a["id"] for a in listed] == [first] and one > 0
    for seed in (2, 3, 4):
        assert upload(ada, png(seed)).status_code == 201
    listed, many = _statements_during(connection, lambda: ada.client.get("/api/v1/assets").json())
    assert len(listed) == 4 and many == one
    for asset in listed:  # the job each row names is the asset's own, as read one by one
        alone = ada.client.get(f"/api/v1/assets/{asset['id']}").json()
        assert asset["job_id"] and asset["job_id"] == alone["job_id"]
