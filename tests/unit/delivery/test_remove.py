"""Withdrawals applied to a delivered copy: exactly the named rows and members go, the
rest is byte-for-byte what it was, and the result still loads and verifies."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from tests.unit.delivery.delivery_helpers import (
    by_key,
    parquet_rows,
    row_bytes,
    source_bytes,
    tar_samples,
)

from fairtrain.delivery import (
    ExportDescription,
    ExportFormat,
    ExportItem,
    ExportLimits,
    export_dataset,
    remove_items,
    verify_export,
)
from fairtrain.delivery.manifest import read_manifest
from fairtrain.errors import Conflict

# Several shards of each kind, and large items stored as file copies.
LIMITS = ExportLimits(
    max_embedded_bytes=40_000, row_group_rows=2, parquet_shard_bytes=60_000, tar_shard_items=4
)


@pytest.fixture
def export_dir(tmp_path: Path, items: list[ExportItem], description: ExportDescription) -> Path:
    out = tmp_path / "export"
    export_dataset(items, description, out, limits=LIMITS)
    return out


def _snapshot(export_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(export_dir).as_posix(): p.read_bytes()
        for p in export_dir.rglob("*")
        if p.is_file()
    }


def test_removing_items_removes_exactly_their_rows_and_members(
    export_dir: Path, items: list[ExportItem]
) -> None:
    large = next(item for item in items if item.size > LIMITS.max_embedded_bytes)
    small = [item for item in items if item.size <= LIMITS.max_embedded_bytes][:2]
    gone = {large.key, *(item.key for item in small)}
    before = read_manifest(export_dir)
    touched = {s["path"] for s in before["shards"] if gone & set(s["keys"])}
    files_before = _snapshot(export_dir)

    removal = remove_items(export_dir, [*gone, "ast_not_in_this_export"])

    assert set(removal.removed) == gone
    assert removal.absent == ("ast_not_in_this_export",)
    kept = {key: item for key, item in by_key(items).items() if key not in gone}
    rows = parquet_rows(export_dir)
    assert sorted(row["key"] for row in rows) == sorted(kept)
    for row in rows:
        assert row_bytes(export_dir, row) == source_bytes(kept[row["key"]])
    samples = tar_samples(export_dir)
    assert set(samples) == set(kept)
    assert not (export_dir / "media" / f"{large.key}.{large.extension}").exists()
    receipts = json.loads((export_dir / "consent-receipts.json").read_text())
    assert [r["key"] for r in receipts["receipts"]] == [i.key for i in items if i.key in kept]

    after = _snapshot(export_dir)
    rewritten = touched | {"consent-receipts.json", "croissant.json", "manifest.json"}
    for path, data in files_before.items():
        if path not in rewritten:
            assert after[path] == data, f"{path} changed but held none of the items"
    manifest = removal.manifest
    assert manifest == read_manifest(export_dir)
    assert manifest["item_count"] == len(kept)
    assert [w["key"] for w in manifest["withdrawn"]] == sorted(gone)
    assert all(not gone & set(s["keys"]) for s in manifest["shards"])
    assert verify_export(export_dir).ok


def test_the_pruned_export_still_loads_everywhere(
    export_dir: Path, items: list[ExportItem], tmp_path: Path
) -> None:
    gone = [items[0].key, items[5].key]
    remove_items(export_dir, gone)
    files = sorted(str(p) for p in (export_dir / "data").glob("*.parquet"))
    loaded = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert loaded.num_rows == len(items) - 2
    assert set(loaded["key"]).isdisjoint(gone)
    croissant = json.loads((export_dir / "croissant.json").read_text())
    digests = {e["path"]: e["sha256"] for e in read_manifest(export_dir)["files"]}
    for entry in croissant["distribution"]:
        if entry["@type"] == "cr:FileObject":
            assert entry["sha256"] == digests[entry["contentUrl"]]
    assert "dateModified" in croissant


def test_row_groups_of_a_rewritten_shard_stay_bounded(
    export_dir: Path, items: list[ExportItem]
) -> None:
    remove_items(export_dir, [items[1].key])
    for path in (export_dir / "data").glob("*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        assert all(metadata.row_group(i).num_rows <= 2 for i in range(metadata.num_row_groups))


def test_emptying_a_shard_keeps_its_name_and_it_still_loads(
    export_dir: Path, items: list[ExportItem]
) -> None:
    first = read_manifest(export_dir)["shards"][0]
    names_before = sorted(p.name for p in (export_dir / "data").glob("*.parquet"))
    remove_items(export_dir, first["keys"])
    assert sorted(p.name for p in (export_dir / "data").glob("*.parquet")) == names_before
    assert len(parquet_rows(export_dir)) == len(items) - len(first["keys"])
    assert verify_export(export_dir).ok


def test_removing_absent_keys_changes_nothing(export_dir: Path) -> None:
    before = _snapshot(export_dir)
    removal = remove_items(export_dir, ["ast_unknown", "ast_other"])
    assert removal.removed == ()
    assert removal.absent == ("ast_other", "ast_unknown")
    assert _snapshot(export_dir) == before


def test_removing_twice_is_a_no_op_the_second_time(
    export_dir: Path, items: list[ExportItem]
) -> None:
    remove_items(export_dir, [items[2].key])
    before = _snapshot(export_dir)
    again = remove_items(export_dir, [items[2].key])
    assert (again.removed, again.absent) == ((), (items[2].key,))
    assert _snapshot(export_dir) == before


def test_a_modified_shard_is_not_blessed_with_a_new_digest(
    export_dir: Path, items: list[ExportItem]
) -> None:
    shard = next(s for s in read_manifest(export_dir)["shards"] if items[0].key in s["keys"])
    path = export_dir / shard["path"]
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(Conflict) as refused:
        remove_items(export_dir, [items[0].key])
    assert refused.value.code == "export_file_modified"


def test_removal_from_a_webdataset_only_export(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    out = tmp_path / "tars"
    export_dataset(items, description, out, formats=[ExportFormat.WEBDATASET], limits=LIMITS)
    removal = remove_items(out, [items[-1].key])
    assert removal.removed == (items[-1].key,)
    assert set(tar_samples(out)) == {item.key for item in items[:-1]}
    assert verify_export(out).ok
