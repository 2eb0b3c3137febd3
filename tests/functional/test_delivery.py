"""Delivering a licence over HTTP, on both databases (SQLite with the local vault,
PostgreSQL with the S3 vault on moto): the export job, signed links, range requests, the
rate limit, every refusal with its code, crypto-shredding, and a build that fails
leaving nothing behind."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from tests.factories import sign_up_buyer
from tests.functional.delivery_world import Delivery, buy, licensed, ok, ready_export

from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.delivery import service
from fairtrain.delivery.links import DownloadLink, link_secret, sign_link
from fairtrain.delivery.models import DeliveredItem, DownloadRecord, ExportFile, LicenceExport
from fairtrain.errors import Gone
from fairtrain.ids import new_id, utcnow
from fairtrain.ingest.models import Asset
from fairtrain.jobs.models import Job, JobState
from fairtrain.licensing import service as licensing
from fairtrain.licensing.models import Licence, LicenceState
from fairtrain.vault.models import BlobState, VaultBlob

__all__ = ["licensed"]


def _events(db: Session, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


def _links(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in status["files"]}


def test_an_export_is_built_marked_and_sealed_under_the_licences_own_key(
    licensed: Delivery, db: Session
) -> None:
    buyer = licensed.buyer
    status = ready_export(buyer, licensed.licence_id)
    assert status["item_count"] == 6 and status["withheld"] == [] and status["failure"] is None
    paths = set(_links(status))
    assert {"manifest.json", "README.md", "croissant.json", "consent-receipts.json",
            "training-content-summary.json"} <= paths  # fmt: skip
    assert any(p.startswith("data/") and p.endswith(".parquet") for p in paths)
    assert any(p.startswith("webdataset/") and p.endswith(".tar") for p in paths)
    # Asking again is idempotent: the same export, 200 instead of 202.
    again = buyer.client.post(
        f"/api/v1/licences/{licensed.licence_id}/exports", headers=buyer.headers()
    )
    assert again.status_code == 200 and again.json()["id"] == status["id"]

    methods = {
        row.asset_id: row.method
        for row in db.scalars(select(DeliveredItem).where(DeliveredItem.export_id == status["id"]))
    }
    a = licensed.assets
    assert methods == {
        a["cat"]: "image_spread_spectrum",
        a["coffee"]: "image_spread_spectrum",
        a["clip"]: "video_spread_spectrum",
        a["voice"]: "audio_spread_spectrum",
        a["letter"]: "text_variants",
        a["notes"]: "none",
    }
    # Every file is a vault blob of the licence's own data key, never a contributor's.
    owners = set(
        db.scalars(
            select(VaultBlob.owner)
            .join(ExportFile, ExportFile.blob_id == VaultBlob.id)
            .where(ExportFile.export_id == status["id"])
        )
    )
    assert owners == {f"licence:{licensed.licence_id}"}
    ready = _events(db, "delivery.export_ready")
    assert [e.payload["manifest_sha256"] for e in ready] == [status["manifest_sha256"]]
    assert ready[0].payload["methods"]["image_spread_spectrum"] == 2
    assert len(_events(db, "delivery.export_requested")) == 1
    assert verify_stored_chain(db) == (True, None, None)


def test_a_file_downloads_whole_or_by_range_and_each_link_is_audited_once(
    licensed: Delivery, db: Session
) -> None:
    buyer = licensed.buyer
    status = ready_export(buyer, licensed.licence_id)
    parquet = next(f for f in status["files"] if f["path"].endswith(".parquet"))
    whole = buyer.client.get(parquet["url"])
    assert whole.status_code == 200
    body = whole.content
    assert hashlib.sha256(body).hexdigest() == parquet["sha256"] and len(body) == parquet["size"]
    etag = f'"{parquet["sha256"]}"'
    assert whole.headers["etag"] == etag and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(parquet["size"])
    assert whole.headers["repr-digest"].startswith("sha-256=:")
    assert whole.headers["cache-control"] == "private, no-store"

    part = buyer.client.get(parquet["url"], headers={"Range": "bytes=10-99999", "If-Range": etag})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-99999/{parquet['size']}"
    assert part.content == body[10:100000]
    tail = buyer.client.get(parquet["url"], headers={"Range": f"bytes={len(body) - 7}-"})
    assert tail.status_code == 206 and tail.content == body[-7:]
    suffix = buyer.client.get(parquet["url"], headers={"Range": "bytes=-5"})
    assert suffix.status_code == 206 and suffix.content == body[-5:]
    # A changed file (another ETag) is sent whole, never glued onto an old head.
    stale = buyer.client.get(parquet["url"], headers={"Range": "bytes=10-", "If-Range": '"x"'})
    assert stale.status_code == 200 and stale.content == body
    outside = buyer.client.get(parquet["url"], headers={"Range": f"bytes={len(body)}-"})
    assert outside.status_code == 416 and outside.json()["code"] == "range_not_satisfiable"
    assert outside.headers["content-range"] == f"bytes */{len(body)}"

    # One audit event per link, however many range requests went through it.
    downloaded = _events(db, "delivery.file_downloaded")
    assert len(downloaded) == 1
    assert downloaded[0].payload["path"] == parquet["path"]
    assert downloaded[0].payload["sha256"] == parquet["sha256"]
    record = db.scalars(select(DownloadRecord)).one()
    assert record.requests == 6
    # A second link to the same file is a second download.
    fresh = _links(ok(buyer.client.get(f"/api/v1/licences/{licensed.licence_id}/exports/"
                                       f"{status['id']}")))[parquet["path"]]  # fmt: skip
    assert fresh["url"] != parquet["url"]
    assert buyer.client.get(fresh["url"]).content == body
    assert len(_events(db, "delivery.file_downloaded")) == 2
    # The whole chain still verifies.
    assert verify_stored_chain(db) == (True, None, None)


def test_links_are_refused_with_their_codes(
    licensed: Delivery, db: Session, app: Any, make_client: Any
) -> None:
    buyer = licensed.buyer
    status = ready_export(buyer, licensed.licence_id)
    readme = _links(status)["README.md"]
    settings = app.state.settings

    expired = sign_link(
        link_secret(settings),
        DownloadLink(licensed.licence_id, status["id"], "README.md",
                     utcnow() - timedelta(seconds=1), new_id("dlk")),
    )  # fmt: skip
    gone = buyer.client.get(f"/api/v1/downloads/{expired}")
    assert gone.status_code == 410 and gone.json()["code"] == "download_link_expired"

    token = readme["url"].rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert buyer.client.get(f"/api/v1/downloads/{forged}").json()["code"] == (
        "download_link_invalid"
    )
    # Another organisation's buyer holds a valid link: not found, as for any other tenant.
    stranger = sign_up_buyer(make_client(), org_name="Someone Else")
    other = stranger.client.get(readme["url"])
    assert other.status_code == 404 and other.json()["code"] == "download_link_invalid"
    # Another organisation cannot read the export or ask for one either.
    assert (
        stranger.client.get(
            f"/api/v1/licences/{licensed.licence_id}/exports/{status['id']}"
        ).status_code
        == 404
    )
    assert (
        stranger.client.post(
            f"/api/v1/licences/{licensed.licence_id}/exports", headers=stranger.headers()
        ).json()["code"]
        == "licence_not_found"
    )
    anonymous = make_client().get(readme["url"])
    assert anonymous.status_code == 401

    # A suspended licence: the link is refused, and so is a new export.
    licence = db.get(Licence, licensed.licence_id)
    assert licence is not None
    licence.state = LicenceState.SUSPENDED
    db.commit()
    refused = buyer.client.get(readme["url"])
    assert refused.status_code == 403 and refused.json()["code"] == "licence_not_active"
    again = buyer.client.post(
        f"/api/v1/licences/{licensed.licence_id}/exports", headers=buyer.headers()
    )
    assert again.status_code == 403 and again.json()["code"] == "licence_not_active"
    # An expired licence: the same.
    licence.state = LicenceState.ACTIVE
    db.commit()
    assert buyer.client.get(readme["url"]).status_code == 200
    licensing.expire_licences(db, actor="system:test", now=licence.ends_at + timedelta(seconds=1))
    db.commit()
    ended = buyer.client.get(readme["url"])
    assert ended.status_code == 403 and ended.json()["code"] == "licence_not_active"


def test_downloads_are_rate_limited_per_licence(licensed: Delivery, app: Any) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"download_burst": 2, "download_requests_per_minute": 1}
    )
    status = ready_export(licensed.buyer, licensed.licence_id)
    readme = _links(status)["README.md"]["url"]
    assert [licensed.buyer.client.get(readme).status_code for _ in range(2)] == [200, 200]
    limited = licensed.buyer.client.get(readme)
    assert limited.status_code == 429 and limited.json()["code"] == "download_rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60


def test_shredding_destroys_every_cached_export_of_a_licence(
    licensed: Delivery, db: Session, app: Any
) -> None:
    buyer = licensed.buyer
    first = ready_export(buyer, licensed.licence_id)
    readme = _links(first)["README.md"]
    shredded = service.shred_exports(
        db, licence_id=licensed.licence_id, actor="system:test", reason="asset_withdrawn"
    )
    db.commit()
    assert shredded == [first["id"]]
    blobs = db.scalars(
        select(VaultBlob)
        .join(ExportFile, ExportFile.blob_id == VaultBlob.id)
        .where(ExportFile.export_id == first["id"])
    ).all()
    assert blobs and {b.state for b in blobs} == {BlobState.SHREDDED}
    vault = app.state.runtime.vault
    with pytest.raises(Gone) as unreadable:
        b"".join(vault.open_blob(db, blobs[0].id))
    assert unreadable.value.code == "vault_key_destroyed"
    gone = buyer.client.get(readme["url"])
    assert gone.status_code == 410 and gone.json()["code"] == "export_shredded"
    # While the licence is active a new export can be asked for; it gets a fresh key.
    second = ready_export(buyer, licensed.licence_id)
    assert second["id"] != first["id"]
    assert buyer.client.get(_links(second)["README.md"]["url"]).status_code == 200

    # Once the licence has ended, `exports shred-ended` destroys the new one too.
    licence = db.get(Licence, licensed.licence_id)
    assert licence is not None
    licensing.expire_licences(db, actor="system:test", now=licence.ends_at + timedelta(seconds=1))
    ended = service.shred_ended_licences(db, actor="system:test")
    db.commit()
    assert ended == {licensed.licence_id: [second["id"]]}
    assert [e.payload["reason"] for e in _events(db, "delivery.exports_shredded")] == [
        "asset_withdrawn",
        "licence_expired",
    ]
    assert verify_stored_chain(db) == (True, None, None)


def _tamper(vault: Any, storage_key: str) -> None:
    """Flip one byte of a stored object, on either backend."""
    with vault.backend.open(storage_key) as source:
        data = bytearray(source.read())
    data[len(data) // 2] ^= 0x20
    vault.backend.put(storage_key, [bytes(data)])


# A picture is decrypted to scratch and marked; a document is streamed from the vault
# unhashed by the exporter (a source-checked item), so the vault's own check must refuse it.
@pytest.mark.parametrize("tampered", ["coffee", "notes"])
def test_a_build_that_fails_leaves_nothing_downloadable(
    licensed: Delivery, db: Session, app: Any, tampered: str
) -> None:
    asset = db.get(Asset, licensed.assets[tampered])
    assert asset is not None and asset.redacted_blob_id
    source = db.get(VaultBlob, asset.redacted_blob_id)
    assert source is not None
    _tamper(app.state.runtime.vault, source.storage_key)
    stored_before = sum(1 for _ in app.state.runtime.vault.backend.iter_objects())

    buyer = licensed.buyer
    started = ok(
        buyer.client.post(
            f"/api/v1/licences/{licensed.licence_id}/exports", headers=buyer.headers()
        ),
        202,
    )
    status = ok(buyer.client.get(f"/api/v1/licences/{licensed.licence_id}/exports/"
                                 f"{started['id']}"))  # fmt: skip
    assert status["state"] == "failed", status
    assert status["failure"]["code"] == "vault_integrity_error" and status["files"] == []
    assert db.scalar(select(func.count()).select_from(ExportFile)) == 0
    assert db.scalar(select(func.count()).select_from(DeliveredItem)) == 0
    # Every shard the build had stored was deleted with its rolled-back savepoint.
    owner = f"licence:{licensed.licence_id}"
    assert db.scalar(select(func.count()).where(VaultBlob.owner == owner)) == 0
    assert sum(1 for _ in app.state.runtime.vault.backend.iter_objects()) == stored_before
    failed = _events(db, "delivery.export_failed")
    assert [e.payload["code"] for e in failed] == ["vault_integrity_error"]
    # A failed export is not "open": asking again starts a new attempt.
    retry = buyer.client.post(
        f"/api/v1/licences/{licensed.licence_id}/exports", headers=buyer.headers()
    )
    assert retry.status_code == 202 and retry.json()["id"] != started["id"]
    export = db.get(LicenceExport, started["id"])
    assert export is not None and export.finished_at is not None


def test_items_withdrawn_or_erased_after_the_licence_are_withheld(
    licensed: Delivery, db: Session
) -> None:
    owner = licensed.contributor
    erased = owner.client.delete(
        f"/api/v1/assets/{licensed.assets['letter']}", headers=owner.headers()
    )
    assert erased.status_code == 200, erased.text
    status = ready_export(licensed.buyer, licensed.licence_id)
    assert status["item_count"] == 5
    assert status["withheld"] == [{"asset_id": licensed.assets["letter"], "code": "asset_erased"}]
    delivered = set(
        db.scalars(select(DeliveredItem.asset_id).where(DeliveredItem.export_id == status["id"]))
    )
    assert licensed.assets["letter"] not in delivered and len(delivered) == 5


def test_a_second_licence_of_the_same_items_gets_other_marks(
    licensed: Delivery, db: Session, make_client: Any
) -> None:
    from tests.functional.delivery_world import DATASET

    rival = sign_up_buyer(make_client(), org_name="Rival Labs")
    second = buy(rival, licensed.operator, DATASET)
    ours = ready_export(licensed.buyer, licensed.licence_id)
    theirs = ready_export(rival, second)
    rows = db.scalars(select(DeliveredItem)).all()
    by_export: dict[str, dict[str, str]] = {}
    for row in rows:
        by_export.setdefault(row.export_id, {})[row.asset_id] = row.sha256
    mine, other = by_export[ours["id"]], by_export[theirs["id"]]
    assert set(mine) == set(other)
    for asset_id, digest in mine.items():
        if asset_id == licensed.assets["notes"]:
            assert other[asset_id] == digest  # a PDF carries no mark
        else:
            assert other[asset_id] != digest, asset_id


def test_a_build_whose_worker_died_is_reported_building_then_resumed(
    licensed: Delivery, db: Session, app: Any
) -> None:
    # The export is asked for, and a worker claims its job and dies mid-build: the job
    # row says running, the export row still says requested, a scratch directory is left.
    export, created = service.start_export(
        db, lambda _: None, licence_id=licensed.licence_id, org_id=licensed.buyer.org_id or "",
        actor="system:test",
    )  # fmt: skip
    assert created
    db.execute(
        update(Job)
        .where(Job.id == export.job_id)
        .values(state=JobState.RUNNING, attempts=1, updated_at=utcnow() - timedelta(hours=1))
    )
    db.commit()
    leftovers = app.state.settings.data_dir / "scratch" / "exports" / export.id / "export"
    leftovers.mkdir(parents=True)
    (leftovers / "data.parquet").write_bytes(b"half a shard")
    path = f"/api/v1/licences/{licensed.licence_id}/exports/{export.id}"
    building = ok(licensed.buyer.client.get(path))
    assert building["state"] == "building" and building["files"] == []
    # Start-up resumes it (handlers are idempotent); the dead attempt's files are gone.
    assert app.state.jobs.resume() == [export.job_id]
    ready = ok(licensed.buyer.client.get(path))
    assert ready["state"] == "ready" and ready["item_count"] == 6
    assert not leftovers.exists()
    # Running the job again changes nothing: the export is ready.
    job = db.get(Job, export.job_id)
    assert job is not None and job.state == JobState.SUCCEEDED


def test_a_build_that_gave_up_is_failed_and_asking_again_starts_afresh(
    licensed: Delivery, db: Session
) -> None:
    export, _ = service.start_export(
        db, lambda _: None, licence_id=licensed.licence_id, org_id=licensed.buyer.org_id or "",
        actor="system:test",
    )  # fmt: skip
    db.execute(update(Job).where(Job.id == export.job_id).values(state=JobState.FAILED))
    db.commit()
    buyer = licensed.buyer
    failed = ok(buyer.client.get(f"/api/v1/licences/{licensed.licence_id}/exports/{export.id}"))
    assert failed["state"] == "failed" and failed["failure"]["code"] == "export_build_error"
    again = ok(
        buyer.client.post(
            f"/api/v1/licences/{licensed.licence_id}/exports", headers=buyer.headers()
        ),
        202,
    )
    assert again["id"] != export.id
    db.refresh(export)
    assert export.state == "failed" and export.failure_code == "export_build_error"


def test_a_buyer_who_names_one_format_gets_only_that_one(licensed: Delivery, db: Session) -> None:
    buyer = licensed.buyer
    url = f"/api/v1/licences/{licensed.licence_id}/exports"
    refused = buyer.client.post(url, headers=buyer.headers(), json={"formats": ["csv"]})
    assert refused.status_code == 422, refused.text
    started = buyer.client.post(url, headers=buyer.headers(), json={"formats": ["webdataset"]})
    assert started.status_code == 202, started.text
    assert started.json()["formats"] == ["webdataset"]
    status = ok(buyer.client.get(f"{url}/{started.json()['id']}"))
    assert status["state"] == "ready", status
    paths = set(_links(status))
    assert any(p.startswith("webdataset/") for p in paths)
    assert not any(p.startswith(("data/", "media/")) for p in paths)
    # The manifest lists no Parquet shard either, and the request's audit event says so.
    manifest = buyer.client.get(_links(status)["manifest.json"]["url"]).json()
    assert {shard["format"] for shard in manifest["shards"]} == {"webdataset"}
    assert [e.payload["formats"] for e in _events(db, "delivery.export_requested")] == [
        ["webdataset"]
    ]
    # Asking again for the same formats (or none) is the same export; for others, a 409.
    again = buyer.client.post(url, headers=buyer.headers(), json={"formats": ["webdataset"]})
    assert again.status_code == 200 and again.json()["id"] == status["id"]
    assert buyer.client.post(url, headers=buyer.headers()).json()["id"] == status["id"]
    other = buyer.client.post(url, headers=buyer.headers(), json={"formats": ["parquet"]})
    assert other.status_code == 409 and other.json()["code"] == "export_formats_differ"
