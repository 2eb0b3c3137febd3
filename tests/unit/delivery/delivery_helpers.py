"""Builders for the delivery tests: export items from real generated media, the
description of a licensed version, and readers that compare an export with its source."""

from __future__ import annotations

import hashlib
import json
import secrets
import tarfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.dataset as pads
import soundfile
from PIL import Image

from fairtrain.delivery import (
    DeclaredPurpose,
    ExportDescription,
    ExportItem,
    KAnonymityReport,
    Modality,
    RepresentationGroup,
    RepresentationReport,
)
from fairtrain.delivery.items import JSON
from fairtrain.ids import new_id

# media_factory format -> (modality, extension) as delivered
SOURCES: dict[str, tuple[Modality, str]] = {
    "wav": (Modality.AUDIO, "wav"),
    "flac": (Modality.AUDIO, "flac"),
    "call": (Modality.AUDIO, "wav"),
    "png": (Modality.IMAGE, "png"),
    "jpeg": (Modality.IMAGE, "jpg"),
    "webp": (Modality.IMAGE, "webp"),
    "mp4": (Modality.VIDEO, "mp4"),
    "handwriting-pdf": (Modality.DOCUMENT, "pdf"),
    "plain-text": (Modality.TEXT, "txt"),
    "whatsapp-android": (Modality.CHAT, "txt"),
    "telegram": (Modality.CHAT, "json"),
}
MEDIA_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "json": "application/json",
}
AGE_BANDS = ["18-29", "30-44", "45-64"]


def opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def item_from_file(
    path: Path, modality: Modality, extension: str, index: int, key: str | None = None
) -> ExportItem:
    data = path.read_bytes()
    metadata: dict[str, JSON] = {
        "consent_receipt_sha256": secrets.token_hex(32),
        "policy_version": 1 + index % 3,
        "age_band": AGE_BANDS[index % 3],
        "gender": "female" if index % 2 else "male",
        "region": "EU-West",
        "quality": {"score": round(0.5 + index / 40, 3)},
    }
    if modality is Modality.AUDIO:
        info = soundfile.info(str(path))
        metadata |= {
            "duration_seconds": info.duration,
            "sample_rate": info.samplerate,
            "channels": info.channels,
            "language": "en",
        }
    elif modality is Modality.IMAGE:
        with Image.open(path) as picture:
            metadata |= {"width": picture.width, "height": picture.height}
    elif modality is Modality.VIDEO:
        metadata |= {"width": 320, "height": 240, "frame_rate": 6.0, "duration_seconds": 2.0}
    else:
        metadata["language"] = "en"
    return ExportItem(
        key=key or new_id("ast"),
        modality=modality,
        extension=extension,
        media_type=MEDIA_TYPES[extension],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        open=opener(path),
        metadata=metadata,
    )


def make_description(items: list[ExportItem], **changes: object) -> ExportDescription:
    modalities = tuple(m for m in Modality if any(item.modality is m for item in items))
    description = ExportDescription(
        dataset_id=new_id("dst"),
        dataset_name="Everyday voices, faces and notes",
        version_id=new_id("dsv"),
        version_number=3,
        licence_id=new_id("lic"),
        licensee="Acme Speech Labs",
        purpose=DeclaredPurpose(
            key="speech_recognition",
            label="Speech recognition",
            words="to train AI that turns speech into text",
        ),
        territory=("DE", "FR"),
        licence_start=datetime(2026, 1, 1, tzinfo=UTC),
        licence_end=datetime(2027, 1, 1, tzinfo=UTC),
        languages=("en",),
        modalities=modalities,
        item_count=len(items),
        contribution_units=float(len(items)),
        representation=RepresentationReport(
            groups=(
                RepresentationGroup("age_band", "18-29", 4, 4 / 11, 1 / 3, 4 / 11 - 1 / 3),
                RepresentationGroup("age_band", "30-44", 4, 4 / 11, 1 / 3, 4 / 11 - 1 / 3),
                RepresentationGroup("age_band", "45-64", 3, 3 / 11, 1 / 3, 3 / 11 - 1 / 3),
            ),
            divergence=0.061,
        ),
        k_anonymity=KAnonymityReport(
            k=5,
            quasi_identifiers=("age_band", "gender", "region"),
            generalisations=("Age generalised to bands.", "Postcode generalised to region."),
            records_suppressed=2,
        ),
        known_limits=("Recordings were made on phones in quiet rooms.",),
        collection_process=(
            "Contributors uploaded their own recordings, photos and notes.",
            "Each contributor set the terms of their licence before anything was listed.",
        ),
        platform_base_url="https://fairtrain.example",
        public_key_id="ab" * 32,
        created_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        collection_period=(
            datetime(2025, 6, 1, tzinfo=UTC),
            datetime(2026, 2, 1, tzinfo=UTC),
        ),
    )
    return replace(description, **changes)  # type: ignore[arg-type]


def source_bytes(item: ExportItem) -> bytes:
    with item.open() as handle:
        return handle.read()


def by_key(items: list[ExportItem]) -> dict[str, ExportItem]:
    return {item.key: item for item in items}


def parquet_rows(export_dir: Path) -> list[dict[str, Any]]:
    """Every row of the Parquet shards, read with pyarrow.dataset as a buyer would."""
    table = pads.dataset(str(export_dir / "data"), format="parquet").to_table()
    return list(table.to_pylist())


def row_bytes(export_dir: Path, row: dict[str, Any]) -> bytes:
    """The item's bytes as a Parquet row delivers them (embedded, or the file copy)."""
    if row["media_file"]:
        return (export_dir / row["media_file"]).read_bytes()
    media = row.get(row["modality"]) if row["modality"] != "text" else None
    if isinstance(media, dict):
        return bytes(media["bytes"])
    return str(row["text"]).encode("utf-8")


def tar_samples(export_dir: Path) -> dict[str, dict[str, bytes]]:
    """Members grouped by key, read with tarfile (the WebDataset layout)."""
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted((export_dir / "webdataset").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                key, suffix = member.name.split(".", 1)
                body = tar.extractfile(member)
                assert body is not None
                samples.setdefault(key, {})[suffix] = body.read()
    return samples


def expected_record(item: ExportItem) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "key": item.key,
                "modality": str(item.modality),
                "media_type": item.media_type,
                "extension": item.extension,
                "size": item.size,
                "sha256": item.sha256,
                "metadata": dict(item.metadata),
            }
        )
    )
