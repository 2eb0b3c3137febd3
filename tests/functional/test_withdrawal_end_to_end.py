"""The issue's "must show", end to end on both databases (SQLite with the local vault,
PostgreSQL with S3): a contributor withdraws → a new dataset version without the asset →
the signed webhook is received and verified by a receiver on loopback → the buyer
client's ``fairtrain data sync`` deletes the item from the pulled copy and attests →
the contributor's dashboard shows "attested" → erasure leaves no plaintext and no
decryptable ciphertext of the asset anywhere (a scan of the vault and the data dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.functional.delivery_world import loopback, ready_export
from tests.functional.webhook_receiver import Receiver, receiver
from tests.functional.withdrawal_world import (
    TEXTS,
    Sold,
    ok,
    register_key,
    register_webhook,
    sold,
    withdraw,
)
from typer.testing import CliRunner

from fairtrain.cli import app as cli
from fairtrain.client.delivery import FairtrainClient, verify
from fairtrain.client.sync import state_file
from fairtrain.delivery.manifest import read_manifest
from fairtrain.ingest.models import Asset
from fairtrain.vault.models import BlobState, VaultBlob

__all__ = ["loopback", "receiver", "sold"]

MARKER = b"rye bread on Tuesdays"  # only in the withdrawn note (TEXTS[0])


def _api_key(sold: Sold) -> str:
    key = ok(
        sold.buyer.client.post(
            f"/api/v1/orgs/{sold.buyer.org_id}/api-keys",
            json={"name": "training cluster",
                  "scopes": ["downloads:read", "notices:read", "attestations:write"]},
            headers=sold.buyer.headers(),
        ),
        201,
    )  # fmt: skip
    return str(key["secret"])


def _held_keys(dest: Path) -> set[str]:
    return {key for shard in read_manifest(dest)["shards"] for key in shard["keys"]}


def _scan(app: Any, db: Session, root: Path) -> list[str]:
    """Where the marker can still be read: any stored object or file on disk in
    plaintext, or any blob that still decrypts to something containing it."""
    vault = app.state.runtime.vault
    found: list[str] = []
    for stored in vault.backend.iter_objects():
        with vault.backend.open(stored.key) as source:
            if MARKER in source.read():
                found.append(f"object {stored.key}")
    for path in root.rglob("*"):
        if path.is_file() and MARKER in path.read_bytes():
            found.append(f"file {path}")
    for blob in db.scalars(select(VaultBlob).where(VaultBlob.state == BlobState.STORED)):
        if MARKER in b"".join(vault.open_blob(db, blob.id)):
            found.append(f"decryptable blob {blob.id}")
    return found


def test_withdrawal_end_to_end(
    sold: Sold, receiver: Receiver, loopback: str, app: Any, db: Session, tmp_path: Path
) -> None:
    assert MARKER in TEXTS[0].encode()
    gone = sold.assets[0]
    api_key = _api_key(sold)
    receiver.secret = register_webhook(sold.buyer, receiver.url)
    signing = register_key(sold.buyer)
    key_file = tmp_path / "attestation-key.pem"
    key_file.write_bytes(
        signing.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # The buyer pulled the licence's export before the withdrawal.
    ready_export(sold.buyer, sold.licence_id)
    dest = tmp_path / "buyer" / "notes"
    with FairtrainClient(loopback, api_key=api_key) as client:
        client.pull(sold.licence_id, dest)
    assert gone in _held_keys(dest)

    # 1. The contributor withdraws: a new version of the dataset without the asset.
    made = withdraw(sold.contributor, asset_ids=[gone])
    [new_version] = made["dataset_versions"]
    items = ok(sold.buyer.client.get(f"/api/v1/dataset-versions/{new_version}/items"))
    assert gone not in {item["asset_id"] for item in items}
    assert made["buyers"][0]["state"] == "notified"

    # 2. The signed webhook arrived and the receiver verified it.
    receiver.wait_for(1)
    assert receiver.refused == 0
    assert receiver.verified[0]["data"]["asset_ids"] == [gone]

    # 3. The buyer client syncs: the item is deleted from the copy, and attested.
    result = CliRunner().invoke(
        cli,
        ["data", "sync", str(dest), "--signing-key", str(key_file), "--server", loopback,
         "--api-key", api_key, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert gone not in _held_keys(dest)
    assert [w["key"] for w in read_manifest(dest)["withdrawn"]] == [gone]
    assert verify(dest).ok
    assert state_file(dest).exists() and not (dest / state_file(dest).name).exists()
    assert not any(MARKER in p.read_bytes() for p in dest.rglob("*") if p.is_file())
    # Again: nothing new to do.
    again = CliRunner().invoke(
        cli,
        ["data", "sync", str(dest), "--signing-key", str(key_file), "--server", loopback,
         "--api-key", api_key, "--json"],
    )  # fmt: skip
    assert again.exit_code == 0 and '"notices": []' in again.output.replace("\n", "")

    # 4. The contributor's dashboard shows the buyer attested.
    [status] = ok(sold.contributor.client.get("/api/v1/withdrawals"))[0]["buyers"]
    assert status["state"] == "attested" and status["buyer"] == "Retraining Labs"
    earned = ok(sold.contributor.client.get("/api/v1/me/earnings"))["earnings"]
    by_asset = {e["asset_id"]: e["withdrawal"] for e in earned}
    assert by_asset[gone] == "attested" and by_asset[sold.assets[1]] is None
    sheet = sold.contributor.client.get("/api/v1/me/earnings", params={"format": "csv"}).text
    assert sheet.splitlines()[0].endswith(",withdrawal") and ",attested" in sheet

    # 5. Erasure: no plaintext and no decryptable ciphertext of the asset anywhere.
    before = _scan(app, db, app.state.settings.data_dir)
    assert before, "the scan must find the asset before it is erased"
    erased = sold.contributor.client.delete(
        f"/api/v1/assets/{gone}", headers=sold.contributor.headers()
    )
    assert erased.status_code == 200, erased.text
    db.expire_all()
    asset = db.get(Asset, gone)
    assert asset is not None and asset.state == "erased" and asset.blob_id is None
    assert _scan(app, db, app.state.settings.data_dir) == []
    # The other notes are still readable: the scan is not blind.
    content = sold.contributor.client.get(f"/api/v1/assets/{sold.assets[1]}/content")
    assert content.status_code == 200 and content.content
