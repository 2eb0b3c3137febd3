"""Opening leaked shards for tracing: samples in order, hostile members kept harmless."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fairtrain.delivery import leaked
from fairtrain.delivery.leaked import leaked_items, shard_kind


def _add(tar: tarfile.TarFile, name: str, body: bytes, kind: bytes = tarfile.REGTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(body) if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    tar.addfile(info, io.BytesIO(body) if kind == tarfile.REGTYPE else None)


def test_a_tar_shard_yields_its_samples_in_order_and_nothing_else(tmp_path: Path) -> None:
    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as tar:
        _add(tar, "ast_b.jpg", b"picture")
        _add(tar, "ast_b.json", b'{"key":"ast_b"}')  # the description, not a sample
        _add(tar, "ast_a.chat.json", b'{"messages":[]}')  # a chat is a sample
        _add(tar, "../../../etc/cron.d/evil.txt", b"payload")
        _add(tar, "link.txt", b"", tarfile.SYMTYPE)
        _add(tar, "folder", b"", tarfile.DIRTYPE)
    assert shard_kind(shard) == "webdataset"
    seen = []
    for item in leaked_items([shard]):
        assert item.path is not None and item.path.parent.name.startswith("fairtrain-leak-")
        seen.append(
            (item.label.split(":", 1)[1], item.key, item.path.suffix, item.path.read_bytes())
        )
    assert seen == [
        ("ast_b.jpg", "ast_b", ".jpg", b"picture"),
        ("ast_a.chat.json", "ast_a", ".json", b'{"messages":[]}'),
        ("../../../etc/cron.d/evil.txt", "evil", ".txt", b"payload"),
    ]
    assert not (tmp_path.parent / "etc").exists()


def test_an_oversized_member_and_a_broken_shard_are_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leaked, "MAX_MEMBER_BYTES", 4)
    shard = tmp_path / "big.tar"
    with tarfile.open(shard, "w") as tar:
        _add(tar, "ast_x.flac", b"too many bytes")
    (item,) = leaked_items([shard])
    assert item.path is None and item.key == "ast_x" and item.error and "too large" in item.error

    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(shard.read_bytes()[:700])
    items = list(leaked_items([truncated]))
    assert items[-1].path is None and items[-1].error and "cannot be read" in items[-1].error


def test_a_parquet_shard_yields_one_sample_per_row(tmp_path: Path) -> None:
    media = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "key": ["ast_2", "ast_1", "ast_3"],
            "extension": ["png", "txt", "mp4"],
            "image": pa.array([{"bytes": b"png!", "path": "a.png"}, None, None], type=media),
            "text": [None, "hello", None],
            "video": pa.array([None, None, {"bytes": None, "path": "media/x.mp4"}], type=media),
        }
    )
    shard = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(table, shard)
    assert shard_kind(shard) == "parquet"
    items = list(leaked_items([shard]))
    assert [(i.key, i.label.rsplit(":", 1)[1]) for i in items] == [
        ("ast_2", "row 0"),
        ("ast_1", "row 1"),
        ("ast_3", "row 2"),
    ]
    first, second, third = items
    assert first.path is not None and first.path.suffix == ".png"
    assert second.path is not None and second.path.suffix == ".txt"
    # A video too large to embed lives beside the shard, not in it.
    assert third.path is None and third.error == "the row holds no embedded sample"


def test_loose_files_pass_through_unchanged(tmp_path: Path) -> None:
    loose = tmp_path / "cat.jpg"
    loose.write_bytes(b"\xff\xd8\xff picture")
    (item,) = leaked_items([loose])
    assert item.path == loose and item.key is None and shard_kind(loose) is None
