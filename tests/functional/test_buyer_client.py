"""The buyer client against a real server on loopback, on both databases: a pull broken
off half-way resumes with a range request; the copy verifies and loads with pyarrow,
Hugging Face datasets, webdataset and mlcroissant; every item is its redacted source with
this licence's mark (and not another's); a tampered file is refused, naming it."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import mlcroissant
import numpy as np
import pyarrow.dataset as pads
import pytest
import soundfile
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.functional.delivery_world import Delivery, licensed, loopback
from typer.testing import CliRunner
from webdataset.tariterators import group_by_keys, tar_file_expander

from fairtrain.cli import app as cli
from fairtrain.client.delivery import FairtrainClient, FileRefused, verify
from fairtrain.datasets.models import DatasetItem
from fairtrain.delivery.fingerprint import detect_audio
from fairtrain.delivery.keys import watermark_key, watermark_secret
from fairtrain.delivery.models import DeliveredItem, DownloadRecord
from fairtrain.delivery.watermark import detect_image, detect_video
from fairtrain.licensing.models import Licence

__all__ = ["licensed", "loopback"]

runner = CliRunner()


class Interrupted(Exception):
    """The buyer's machine stopped half-way (a Ctrl-C, a lost connection)."""


def _interrupt_after(fraction: float) -> Callable[[int, int], None]:
    seen = {"bytes": 0}

    def progress(received: int, total: int) -> None:
        seen["bytes"] += received
        if seen["bytes"] > total * fraction:
            raise Interrupted

    return progress


def _interrupted_pull(client: FairtrainClient, licence_id: str, dest: Path) -> Path:
    """Pull until a third of the bytes arrived; return the partial file left behind."""
    with pytest.raises(Interrupted):
        client.pull(licence_id, dest, progress=_interrupt_after(1 / 3))
    partials = list(dest.rglob("*.part"))
    assert len(partials) == 1, partials
    assert partials[0].stat().st_size > 0
    return partials[0]


def _redacted(delivery: Delivery, asset_id: str) -> bytes:
    owner = delivery.contributor
    response = owner.client.get(f"/api/v1/assets/{asset_id}/content")
    assert response.status_code == 200, response.text
    return response.content


def _psnr(a: bytes, b: bytes) -> float:
    with Image.open(io.BytesIO(a)) as x, Image.open(io.BytesIO(b)) as y:
        left = np.asarray(x.convert("RGB"), dtype=np.float64)
        right = np.asarray(y.convert("RGB"), dtype=np.float64)
    return float(10 * np.log10(255**2 / np.mean((left - right) ** 2)))


def _unmarked(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u00a0", " ")
    return re.sub(r"\[([A-Z][A-Z_]*?)_\d+\]", r"[\1]", text)


def _samples(dest: Path) -> dict[str, dict[str, Any]]:
    """WebDataset's own reader over the tar shards (streams opened and closed here)."""
    found: dict[str, dict[str, Any]] = {}
    for shard in sorted((dest / "webdataset").glob("*.tar")):
        with shard.open("rb") as stream:
            for sample in group_by_keys(tar_file_expander([{"url": str(shard), "stream": stream}])):
                found[sample["__key__"]] = sample
    return found


# mlcroissant runs on rdflib and pandas, which raise these two deprecations themselves.
_MLCROISSANT = (
    "ignore:ConjunctiveGraph is deprecated:DeprecationWarning",
    "ignore:The inplace keyword in DataFrame.reset_index is deprecated",
)


@pytest.mark.filterwarnings(_MLCROISSANT[0])
@pytest.mark.filterwarnings(_MLCROISSANT[1])
def test_a_broken_off_pull_resumes_and_the_copy_is_the_marked_redacted_source(
    licensed: Delivery, loopback: str, db: Session, app: Any, tmp_path: Path
) -> None:
    dest = tmp_path / "pulled"
    with FairtrainClient(loopback, api_key=licensed.api_key, poll_interval=0.05) as client:
        partial = _interrupted_pull(client, licensed.licence_id, dest)
        offset = partial.stat().st_size
        result = client.pull(licensed.licence_id, dest)
    relative = partial.relative_to(dest).as_posix().removesuffix(".part")
    assert result.resumed == {relative: offset}
    assert verify(dest).ok and not list(dest.rglob("*.part"))
    # The server was asked for the rest of that file only.
    records = db.scalars(select(DownloadRecord).where(DownloadRecord.path == relative)).all()
    size = (dest / relative).stat().st_size
    assert sorted(r.bytes_requested for r in records) == sorted([size, size - offset])

    delivered = {
        row.asset_id: row
        for row in db.scalars(
            select(DeliveredItem).where(DeliveredItem.export_id == result.export_id)
        )
    }
    licence = db.get(Licence, licensed.licence_id)
    assert licence is not None
    receipts = {
        item.asset_id: item.receipt_sha256
        for item in db.scalars(
            select(DatasetItem).where(DatasetItem.version_id == licence.version_id)
        )
    }

    # pyarrow reads the Parquet shards as they are.
    rows = pads.dataset(str(dest / "data"), format="parquet").to_table().to_pylist()
    assert sorted(r["key"] for r in rows) == sorted(delivered)
    for row in rows:
        assert row["sha256"] == delivered[row["key"]].sha256
        assert row["consent_receipt_sha256"] == receipts[row["key"]]
    # Hugging Face datasets too (raw bytes: decoding audio and video needs torch).
    files = sorted(str(p) for p in (dest / "data").glob("*.parquet"))
    loaded = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf")
    )
    for column, feature in (
        ("audio", datasets.Audio(decode=False)),
        ("image", datasets.Image(decode=False)),
        ("video", datasets.Video(decode=False)),
        ("document", datasets.Pdf(decode=False)),
    ):
        loaded = loaded.cast_column(column, feature)
    content: dict[str, bytes] = {}
    for row in loaded:
        modality = row["modality"]
        data = (
            row["text"].encode("utf-8")
            if modality in ("text", "chat")
            else bytes(row[modality]["bytes"])
        )
        content[row["key"]] = data
        assert len(data) == delivered[row["key"]].size
    # webdataset groups the same bytes by key.
    samples = _samples(dest)
    assert set(samples) == set(delivered)
    for key, sample in samples.items():
        item = json.loads(sample["json"])
        assert sample[item["extension"]] == content[key]
    # mlcroissant reads the records back.
    records = list(mlcroissant.Dataset(jsonld=str(dest / "croissant.json")).records("items"))
    assert sorted(r["items/key"].decode() for r in records) == sorted(delivered)

    a = licensed.assets
    ours = licensed.licence_id

    def keys(asset_id: str, *licences: str) -> dict[str, bytes]:
        secret = watermark_secret(app.state.settings)
        return {lic: watermark_key(secret, lic, asset_id) for lic in licences}

    # The PDF is the redacted version byte for byte (no mark survives in a scan).
    assert content[a["notes"]] == _redacted(licensed, a["notes"])
    # The letter: not one word changed; apostrophes, a few spaces and the numbering of
    # redaction placeholders are the licence's choice.
    marked = content[a["letter"]].decode("utf-8")
    redacted = _redacted(licensed, a["letter"]).decode("utf-8")
    assert marked != redacted
    assert _unmarked(marked) == _unmarked(redacted)
    # Pictures: close to the redacted picture, marked for this licence and no other.
    for name in ("cat", "coffee"):
        asset_id = a[name]
        assert _psnr(content[asset_id], _redacted(licensed, asset_id)) > 35
        found = detect_image(content[asset_id], keys(asset_id, ours, "lic_someone_else"))
        assert found.licence_id == ours, found
        alone = detect_image(content[asset_id], keys(asset_id, "lic_someone_else"))
        assert alone.licence_id is None
    # The recording: 21 dB under the voice, traceable.
    voice, rate = soundfile.read(io.BytesIO(content[a["voice"]]), dtype="float32")
    source, _ = soundfile.read(io.BytesIO(_redacted(licensed, a["voice"])), dtype="float32")
    snr = 10 * np.log10(np.sum(source**2) / np.sum((voice - source) ** 2))
    assert snr > 15, snr
    assert detect_audio(voice, rate, keys(a["voice"], ours, "lic_x")).licence_id == ours
    # The video.
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(content[a["clip"]])
    assert detect_video(clip, keys(a["clip"], ours, "lic_x")).licence_id == ours

    checked = runner.invoke(cli, ["data", "verify", str(dest)])
    assert checked.exit_code == 0, checked.output
    assert "match the manifest" in checked.output


def test_a_tampered_download_is_refused_naming_the_file(
    licensed: Delivery, loopback: str, tmp_path: Path
) -> None:
    dest = tmp_path / "pulled"
    with FairtrainClient(loopback, api_key=licensed.api_key, poll_interval=0.05) as client:
        partial = _interrupted_pull(client, licensed.licence_id, dest)
        # The bytes already on disk are altered before the pull resumes.
        damaged = bytearray(partial.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        partial.write_bytes(bytes(damaged))
        relative = partial.relative_to(dest).as_posix().removesuffix(".part")
        with pytest.raises(FileRefused) as refused:
            client.pull(licensed.licence_id, dest)
        assert refused.value.path == relative
        assert relative in str(refused.value) and "does not match the manifest" in str(
            refused.value
        )
        assert not partial.exists() and not (dest / relative).exists()
        assert not (dest / "manifest.json").exists()  # never a copy that looks complete
        # Pulled again, the file comes whole and the copy verifies.
        assert client.pull(licensed.licence_id, dest).resumed == {}
    assert verify(dest).ok

    # A file changed after the pull: verify names it, and a pull replaces it.
    shard = next((dest / "webdataset").glob("*.tar"))
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x01")
    checked = runner.invoke(cli, ["data", "verify", str(dest), "--json"])
    assert checked.exit_code == 1
    name = shard.relative_to(dest).as_posix()
    assert json.loads(checked.output)["mismatched"] == [name]
    pulled = runner.invoke(
        cli,
        ["data", "pull", licensed.licence_id, str(dest), "--server", loopback, "--json"],
        env={"FAIRTRAIN_API_KEY": licensed.api_key},
    )
    assert pulled.exit_code == 0, pulled.output
    summary = json.loads(pulled.output)
    assert name not in summary["kept"] and "README.md" in summary["kept"]
    assert verify(dest).ok


def test_a_rate_limited_pull_waits_and_a_refused_one_says_why(
    licensed: Delivery, loopback: str, tmp_path: Path, db: Session, app: Any
) -> None:
    # Four requests back to back, then one a second: seven files pass only if the client
    # waits out each 429 (it would give up otherwise).
    app.state.settings = app.state.settings.model_copy(
        update={"download_burst": 4, "download_requests_per_minute": 60}
    )
    pulled = runner.invoke(
        cli,
        ["data", "pull", licensed.licence_id, str(tmp_path / "slow"), "--server", loopback],
        env={"FAIRTRAIN_API_KEY": licensed.api_key},
    )
    assert pulled.exit_code == 0, pulled.output
    assert f"Verified 7 files of licence {licensed.licence_id}" in pulled.output
    assert verify(tmp_path / "slow").ok
    limited = db.scalar(select(func.count()).select_from(DownloadRecord))
    assert limited == 7  # every file once: refused requests are not counted

    licence = db.get(Licence, licensed.licence_id)
    assert licence is not None
    licence.state = "suspended"
    db.commit()
    refused = runner.invoke(
        cli,
        ["data", "pull", licensed.licence_id, str(tmp_path / "x"), "--server", loopback],
        env={"FAIRTRAIN_API_KEY": licensed.api_key},
    )
    assert refused.exit_code == 2
    assert "licence_not_active" in refused.output
    wrong_key = runner.invoke(
        cli,
        ["data", "pull", licensed.licence_id, str(tmp_path / "y"), "--server", loopback],
        env={"FAIRTRAIN_API_KEY": "ftk_not_a_key"},
    )
    assert wrong_key.exit_code == 2 and "invalid_api_key" in wrong_key.output
