"""Tracing leaks against the platform's records, on both databases: two licences received
the same pictures, each with its own marks; a leaked copy (as delivered, or halved and
re-encoded) names the licence it came from and its organisation, never the other one; a
picture nobody was delivered names nobody. Then the `fairtrain trace` and `fairtrain
exports shred-ended` commands against a committed database."""

from __future__ import annotations

import base64
import io
import json
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session
from starlette.testclient import TestClient
from tests import media_factory
from tests.conftest import make_test_settings
from tests.factories import list_asset, sign_up_buyer, sign_up_contributor, sign_up_staff
from tests.functional.delivery_world import DATASET, Delivery, buy, licensed, ok
from typer.testing import CliRunner

from fairtrain.app import create_app
from fairtrain.cli import app as cli
from fairtrain.client.delivery import FairtrainClient
from fairtrain.config import reset_settings_cache
from fairtrain.db import make_engine
from fairtrain.delivery.keys import watermark_key, watermark_secret
from fairtrain.delivery.tracing import trace_leak
from fairtrain.licensing.models import Licence, LicenceState
from fairtrain.migrate import upgrade

__all__ = ["licensed"]

runner = CliRunner()


def _pull(client: TestClient, api_key: str, licence_id: str, dest: Path) -> Path:
    client.headers["Authorization"] = f"Bearer {api_key}"
    FairtrainClient("http://testserver", http=client, poll_interval=0.01).pull(licence_id, dest)
    return dest


def _member(dest: Path, asset_id: str, extension: str) -> bytes:
    for shard in sorted((dest / "webdataset").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name == f"{asset_id}.{extension}":
                    body = tar.extractfile(member)
                    assert body is not None
                    return body.read()
    raise AssertionError(f"{asset_id}.{extension} is not in {dest}")


def _halved_jpeg(data: bytes) -> bytes:
    """The attack the watermark was built to survive: half size, JPEG at 75."""
    with Image.open(io.BytesIO(data)) as opened:
        picture = opened.convert("RGB")
    small = picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=75)
    return out.getvalue()


def _ours_and_a_rivals(licensed: Delivery, make_client: Any, tmp_path: Path) -> tuple[Path, str]:
    """A rival organisation licenses the same dataset; both copies are pulled. Our copy's
    directory, and the rival's licence."""
    rival = sign_up_buyer(make_client(), org_name="Rival Labs")
    theirs = buy(rival, licensed.operator, DATASET)
    rival_key = ok(
        rival.client.post(
            f"/api/v1/orgs/{rival.org_id}/api-keys",
            json={"name": "rival", "scopes": ["downloads:read"]},
            headers=rival.headers(),
        ),
        201,
    )["secret"]
    ours = _pull(make_client(), licensed.api_key, licensed.licence_id, tmp_path / "ours")
    _pull(make_client(), rival_key, theirs, tmp_path / "theirs")
    return ours, theirs


def test_a_leak_names_the_licence_and_organisation_it_came_from(
    licensed: Delivery, db: Session, app: Any, make_client: Any, tmp_path: Path
) -> None:
    ours, theirs = _ours_and_a_rivals(licensed, make_client, tmp_path)

    cat = licensed.assets["cat"]
    leaked = tmp_path / "leak"
    leaked.mkdir()
    exact = leaked / "cat.png"
    exact.write_bytes(_member(ours, cat, "png"))
    halved = leaked / "cat-small.jpg"
    halved.write_bytes(_halved_jpeg(exact.read_bytes()))
    stranger = leaked / "stranger.png"
    stranger.write_bytes(media_factory.png_bytes(size=(320, 240), seed=7))

    report = trace_leak(db, app.state.settings, [exact, halved])
    assert report.verdict.licence_id == licensed.licence_id
    assert report.organisations[licensed.licence_id] == "Garden Vision Labs"
    assert [f.matched_by for f in report.files] == ["exact_copy", "fingerprint"]
    assert [f.result.licence_id for f in report.files] == [licensed.licence_id] * 2
    assert all(f.assets == (cat,) for f in report.files)
    # The other licence that received the same picture is a candidate, and is not named.
    assert set(report.verdict.combined) == {licensed.licence_id, theirs}
    assert report.verdict.combined[theirs] > 1e-3
    document = report.as_dict()
    assert document["verdict"]["organisation"] == "Garden Vision Labs"
    assert document["files"][0]["identical_to"] == [licensed.licence_id]

    # A picture no licence received: every image delivery is scored, nobody is named.
    unknown = trace_leak(db, app.state.settings, [stranger], batch=1)
    assert unknown.verdict.licence_id is None
    assert unknown.files[0].matched_by == "every_delivery"
    assert unknown.files[0].candidates == 4  # two pictures in each of two licences


def _scrubbed_shard(shard: Path, target: Path) -> list[str]:
    """The shard's samples in its order, each replaced by random bytes: no mark, no
    matching digest or fingerprint is left, only the keys and the order. Its keys."""
    keys: list[str] = []
    with tarfile.open(shard) as source, tarfile.open(target, "w") as sink:
        for number, member in enumerate(source):
            if member.name.endswith(".json") and member.name.count(".") == 1:
                continue
            body = random.Random(number).randbytes(2048)
            info = tarfile.TarInfo(member.name)
            info.size = len(body)
            sink.addfile(info, io.BytesIO(body))
            keys.append(member.name.split(".", 1)[0])
    return keys


def test_a_leaked_shard_is_traced_sample_by_sample_and_by_its_order(
    licensed: Delivery, db: Session, app: Any, make_client: Any, tmp_path: Path
) -> None:
    ours, theirs = _ours_and_a_rivals(licensed, make_client, tmp_path)
    assets = set(licensed.assets.values())

    # The whole WebDataset shard, as a licensee would re-upload it.
    (shard,) = sorted((ours / "webdataset").glob("*.tar"))
    report = trace_leak(db, app.state.settings, [shard])
    assert report.verdict.licence_id == licensed.licence_id
    assert report.organisations[licensed.licence_id] == "Garden Vision Labs"
    assert len(report.files) == len(assets)  # the description members are not samples
    assert all(f.result.path.startswith(f"{shard}:") for f in report.files)
    assert {a for f in report.files for a in f.assets} == assets
    assert report.order is not None
    per_candidate = report.order.details["per_candidate"]
    assert per_candidate[licensed.licence_id] == {
        "items_compared": len(assets),
        "items_not_delivered": 0,
        "inversions": 0,
    }
    assert set(per_candidate) == {licensed.licence_id, theirs}

    # The Parquet shard: one sample per row, the same answer.
    (table,) = sorted((ours / "data").glob("*.parquet"))
    from_rows = trace_leak(db, app.state.settings, [table])
    assert from_rows.verdict.licence_id == licensed.licence_id
    assert [f.result.path for f in from_rows.files] == [
        f"{table}:row {n}" for n in range(len(assets))
    ]
    assert from_rows.order is not None
    assert from_rows.order.details["per_candidate"][licensed.licence_id]["inversions"] == 0

    # Every sample scrubbed of its content: only the keys and their order are left, and
    # the order alone is our delivery's exactly (p = 1/6!, not enough to name anyone).
    scrubbed = tmp_path / "scrubbed.tar"
    keys = _scrubbed_shard(shard, scrubbed)
    assert set(keys) == assets
    bare = trace_leak(db, app.state.settings, [scrubbed])
    assert bare.order is not None
    ranked = {s.licence_id: s.p_value for s in bare.order.scores}
    assert ranked[licensed.licence_id] == pytest.approx(1 / 720)
    assert bare.order.details["per_candidate"][licensed.licence_id]["inversions"] == 0
    assert bare.as_dict()["order"]["method"] == "sample_order"

    # A broken shard is one unusable sample, not a crash.
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    unusable = trace_leak(db, app.state.settings, [broken])
    assert unusable.verdict.licence_id is None
    assert unusable.files[0].result.error is not None
    assert "cannot be read" in unusable.files[0].result.error


def test_the_trace_and_shred_commands_run_against_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands open their own connection, so this world is committed to a database
    file of its own (not the per-test savepoint of the other tests)."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    settings = make_test_settings(tmp_path / "data", url)
    app = create_app(settings)
    with TestClient(app) as client:
        owner = sign_up_contributor(client, name="Lena Park")
        cat = list_asset(owner, media_factory.png_bytes(size=(480, 320), seed=3), "cat.png")
        buyer = sign_up_buyer(TestClient(app), org_name="Command Line Labs")
        with app.state.sessions() as session:
            operator = sign_up_staff(TestClient(app), session, app.state.passwords, "operator")
        licence_id = buy(buyer, operator, DATASET | {"selection": {"modality": ["image"]}})
        key = ok(
            buyer.client.post(
                f"/api/v1/orgs/{buyer.org_id}/api-keys",
                json={"name": "k", "scopes": ["downloads:read"]},
                headers=buyer.headers(),
            ),
            201,
        )["secret"]
        pulled = _pull(TestClient(app), key, licence_id, tmp_path / "pulled")
    leak = tmp_path / "leak.jpg"
    leak.write_bytes(_halved_jpeg(_member(pulled, cat, "png")))

    assert settings.secret_key is not None
    for name, value in {
        "FAIRTRAIN_MODE": "dev",
        "FAIRTRAIN_DATA_DIR": str(settings.data_dir),
        "FAIRTRAIN_DATABASE_URL": url,
        "FAIRTRAIN_SECRET_KEY": settings.secret_key.get_secret_value(),
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    try:
        traced = runner.invoke(cli, ["trace", str(leak), "--json"])
        assert traced.exit_code == 0, traced.output
        verdict = json.loads(traced.output)["verdict"]
        assert verdict["licence_id"] == licence_id
        assert verdict["organisation"] == "Command Line Labs"
        assert verdict["confidence"] > 0.999999
        table = runner.invoke(cli, ["trace", str(leak)])
        assert table.exit_code == 0 and "Command Line Labs" in table.output

        # Offline, with the candidates' keys in a file: the watermark layer's own form.
        secret = watermark_secret(settings)
        candidates = tmp_path / "candidates.json"
        candidates.write_text(
            json.dumps(
                {licence_id: base64.b64encode(watermark_key(secret, licence_id, cat)).decode()}
            )
        )
        offline = runner.invoke(cli, ["trace", str(leak), "--candidates", str(candidates)])
        assert offline.exit_code == 0, offline.output
        missing = runner.invoke(cli, ["trace", str(tmp_path / "nothing.png")])
        assert missing.exit_code == 2

        kept = runner.invoke(cli, ["exports", "shred-ended", "--json"])
        assert kept.exit_code == 0 and json.loads(kept.output) == {"shredded": {}}
        with app.state.sessions() as session, session.begin():
            licence = session.get(Licence, licence_id)
            assert licence is not None
            licence.state = LicenceState.SUSPENDED
        shredded = runner.invoke(cli, ["exports", "shred-ended", "--json"])
        assert shredded.exit_code == 0, shredded.output
        assert list(json.loads(shredded.output)["shredded"]) == [licence_id]
    finally:
        reset_settings_cache()
