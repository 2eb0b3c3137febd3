"""An export that cannot be completed leaves nothing behind: no output directory and no
half-written sibling; bad items are refused with a specific code."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pytest
from tests.unit.delivery.delivery_helpers import parquet_rows, source_bytes, tar_samples

from fairtrain.delivery import (
    ExportDescription,
    ExportFormat,
    ExportItem,
    ExportLimits,
    Modality,
    export_dataset,
    verify_export,
)
from fairtrain.errors import Conflict, InvalidInput

SMALL = ExportLimits(max_embedded_bytes=40_000)


class VaultReadFailed(Exception):
    pass


def _failing_open() -> BinaryIO:
    raise VaultReadFailed("vault unreachable")


class _TruncatedStream(io.BytesIO):
    """A stream that breaks after half its bytes, the way a dropped connection does."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= len(self.getbuffer()) // 2:
            raise VaultReadFailed("connection reset")
        return super().read(min(size if size and size > 0 else 4096, 4096))


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_an_item_that_cannot_be_opened_mid_way_leaves_nothing(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    broken = [*items[:6], replace(items[6], open=_failing_open), *items[7:]]
    with pytest.raises(VaultReadFailed):
        export_dataset(broken, description, tmp_path / "export", limits=SMALL)
    assert _leftovers(tmp_path) == []


def test_a_stream_cut_short_inside_a_large_item_leaves_nothing(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    video = next(item for item in items if item.modality is Modality.VIDEO)
    assert video.size > SMALL.max_embedded_bytes  # streamed into the tar, not embedded
    data = source_bytes(video)
    cut = replace(video, open=lambda: _TruncatedStream(data))
    with pytest.raises(VaultReadFailed):
        export_dataset(
            [cut if item is video else item for item in items],
            description,
            tmp_path / "export",
            limits=SMALL,
        )
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["embedded", "streamed"])
@pytest.mark.parametrize("change", ["flipped", "shorter", "longer"])
def test_bytes_that_differ_from_the_declared_ones_are_refused(
    tmp_path: Path,
    items: list[ExportItem],
    description: ExportDescription,
    where: str,
    change: str,
) -> None:
    limits = ExportLimits(max_embedded_bytes=1 << 30 if where == "embedded" else 1)
    target = items[0]
    data = bytearray(source_bytes(target))
    if change == "flipped":
        data[100] ^= 0xFF
    elif change == "shorter":
        del data[-10:]
    else:
        data += b"more"
    altered = replace(target, open=lambda: io.BytesIO(bytes(data)))
    with pytest.raises(InvalidInput) as refused:
        export_dataset([altered, *items[1:]], description, tmp_path / "export", limits=limits)
    assert refused.value.code == "export_item_mismatch"
    assert _leftovers(tmp_path) == []


class _Trickle(io.BytesIO):
    """A source that returns at most 1,000 bytes per read before its end (as a decrypting
    vault stream may): short reads are not the end of the item."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(min(size if size and size > 0 else 1000, 1000))


def test_short_reads_are_not_mistaken_for_the_end(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    trickling = [
        replace(item, open=lambda item=item: _Trickle(source_bytes(item))) for item in items
    ]
    out = tmp_path / "export"
    export_dataset(trickling, description, out, limits=ExportLimits(max_embedded_bytes=1))
    assert verify_export(out).ok
    samples = tar_samples(out)
    for item in items:
        suffix = "chat.json" if item.extension == "json" else item.extension
        assert samples[item.key][suffix] == source_bytes(item)
        assert (out / "media" / f"{item.key}.{item.extension}").read_bytes() == source_bytes(item)


def _one(item: ExportItem, **changes: object) -> ExportItem:
    return replace(item, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"key": "ast.with.dots"}, "export_item_key"),
        ({"key": "../escape"}, "export_item_key"),
        ({"extension": ".flac"}, "export_item_extension"),
        ({"sha256": "abc"}, "export_item_digest"),
        ({"metadata": {"policy_version": 1}}, "export_item_receipt"),
        ({"metadata": {"consent_receipt_sha256": "a" * 64}}, "export_item_policy_version"),
        (
            {"metadata": {"consent_receipt_sha256": "a" * 64, "policy_version": True}},
            "export_item_policy_version",
        ),
        (
            {
                "metadata": {
                    "consent_receipt_sha256": "a" * 64,
                    "policy_version": 1,
                    "sample_rate": "fast",
                }
            },
            "export_item_metadata",
        ),
    ],
)
def test_items_the_formats_cannot_carry_are_refused(
    tmp_path: Path,
    items: list[ExportItem],
    description: ExportDescription,
    change: dict[str, object],
    code: str,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        export_dataset(
            [*items[:3], _one(items[3], **change), *items[4:]], description, tmp_path / "x"
        )
    assert refused.value.code == code
    assert _leftovers(tmp_path) == []


def test_an_item_of_an_undeclared_modality_is_refused(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    audio_only = replace(description, modalities=(Modality.AUDIO,))
    with pytest.raises(InvalidInput) as refused:
        export_dataset(items, audio_only, tmp_path / "x")
    assert refused.value.code == "export_item_modality"


def test_text_that_is_not_utf8_is_refused(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    data = b"caf\xe9 au lait"
    latin = _one(
        next(item for item in items if item.modality is Modality.TEXT),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        open=lambda: io.BytesIO(data),
    )
    with pytest.raises(InvalidInput) as refused:
        export_dataset(
            [latin if item.modality is Modality.TEXT else item for item in items],
            description,
            tmp_path / "x",
        )
    assert refused.value.code == "export_item_not_text"


def test_duplicates_and_a_wrong_count_are_refused(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    with pytest.raises(InvalidInput) as refused:
        export_dataset([*items, items[0]], description, tmp_path / "x")
    assert refused.value.code == "export_item_duplicate"
    with pytest.raises(InvalidInput) as refused:
        export_dataset(items[:-1], description, tmp_path / "x")
    assert refused.value.code == "export_item_count"
    with pytest.raises(InvalidInput) as refused:
        export_dataset(items, description, tmp_path / "x", formats=[])
    assert refused.value.code == "export_formats"
    assert _leftovers(tmp_path) == []


def test_an_export_is_never_written_over_another(
    tmp_path: Path, items: list[ExportItem], description: ExportDescription
) -> None:
    out = tmp_path / "export"
    export_dataset(items, description, out, formats=[ExportFormat.PARQUET])
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(Conflict) as refused:
        export_dataset(items, description, out)
    assert refused.value.code == "export_exists"
    assert sorted(p.name for p in out.rglob("*")) == before
    assert len(parquet_rows(out)) == len(items)
