"""The manifest names every file with its digest, and verification names each file that
is bad, missing or extra."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fairtrain.audit.chain import canonical_json
from fairtrain.delivery import (
    ExportDescription,
    ExportItem,
    export_dataset,
    manifest_digest,
    verify_export,
)
from fairtrain.delivery.manifest import read_manifest
from fairtrain.errors import InvalidInput


@pytest.fixture
def export_dir(tmp_path: Path, items: list[ExportItem], description: ExportDescription) -> Path:
    out = tmp_path / "export"
    export_dataset(items, description, out)
    return out


def test_manifest_lists_every_file_and_the_shards_keys(
    export_dir: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    manifest = read_manifest(export_dir)
    on_disk = sorted(
        p.relative_to(export_dir).as_posix()
        for p in export_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert [entry["path"] for entry in manifest["files"]] == on_disk
    for entry in manifest["files"]:
        data = (export_dir / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
    assert manifest["dataset_version_id"] == description.version_id
    assert manifest["licence_id"] == description.licence_id
    assert manifest["created_at"] == "2026-03-01T12:00:00.000000Z"
    assert manifest["item_count"] == len(items)
    for kind in ("parquet", "webdataset"):
        keys = [k for s in manifest["shards"] if s["format"] == kind for k in s["keys"]]
        assert keys == [item.key for item in items]
    assert manifest["withdrawn"] == []


def test_manifest_is_canonical_json_with_a_stable_digest(export_dir: Path) -> None:
    raw = (export_dir / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    assert canonical_json(manifest) == raw
    assert manifest_digest(manifest) == hashlib.sha256(raw).hexdigest()


def test_an_intact_export_verifies(export_dir: Path) -> None:
    check = verify_export(export_dir)
    assert check.ok
    assert check.checked == len(read_manifest(export_dir)["files"])
    assert check.problems() == []


def test_a_flipped_byte_is_named(export_dir: Path) -> None:
    shard = next((export_dir / "data").glob("*.parquet"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    check = verify_export(export_dir)
    assert not check.ok
    relative = shard.relative_to(export_dir).as_posix()
    assert check.mismatched == (relative,)
    assert (check.missing, check.extra) == ((), ())
    assert check.problems() == [f"{relative}: contents differ from the manifest"]


def test_a_truncated_file_is_named(export_dir: Path) -> None:
    card = export_dir / "README.md"
    card.write_bytes(card.read_bytes()[:-1])
    assert verify_export(export_dir).mismatched == ("README.md",)


def test_missing_and_extra_files_are_named(export_dir: Path) -> None:
    tar = next((export_dir / "webdataset").glob("*.tar"))
    tar.unlink()
    (export_dir / "data" / "notes.txt").write_text("not part of the export")
    check = verify_export(export_dir)
    assert check.missing == (tar.relative_to(export_dir).as_posix(),)
    assert check.extra == ("data/notes.txt",)
    assert check.mismatched == ()


def test_a_manifest_path_that_leaves_the_directory_is_refused(export_dir: Path) -> None:
    manifest = read_manifest(export_dir)
    manifest["files"].append({"path": "../outside.txt", "sha256": "0" * 64, "size": 1})
    (export_dir / "manifest.json").write_bytes(canonical_json(manifest))
    check = verify_export(export_dir)
    assert check.unsafe == ("../outside.txt",)
    assert not check.ok


def test_a_directory_without_a_manifest_is_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        verify_export(tmp_path)
    assert refused.value.code == "export_manifest_missing"
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(InvalidInput) as refused:
        verify_export(tmp_path)
    assert refused.value.code == "export_manifest_invalid"
