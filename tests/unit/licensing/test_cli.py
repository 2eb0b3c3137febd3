"""``fairtrain licences …`` and ``fairtrain catalog …`` against a dev-mode data directory:
agreements verify offline (and tampered ones do not), upkeep commands act on the
configured database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from fairtrain.accounts import service as accounts
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.audit.keys import key_id, platform_signing_key, public_key_pem
from fairtrain.catalog import campaigns
from fairtrain.catalog.models import Campaign
from fairtrain.cli import app
from fairtrain.config import get_settings, reset_settings_cache
from fairtrain.db import make_engine, make_session_factory
from fairtrain.licensing.agreement import (
    AgreementTerms,
    agreement_file,
    build_agreement,
    sign_agreement,
)
from fairtrain.migrate import upgrade

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "data"
    data.mkdir()
    database = f"sqlite:///{data / 'cli.db'}"
    engine = make_engine(database)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(data))
    monkeypatch.setenv("FAIRTRAIN_DATABASE_URL", database)
    monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
    reset_settings_cache()
    yield data
    reset_settings_cache()


def _agreement(tmp_path: Path) -> tuple[Path, Path]:
    settings = get_settings()
    key = platform_signing_key(settings)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    document = build_agreement(
        AgreementTerms(
            licence_iri="https://fairtrain.example/licences/lic_1",
            platform_iri="https://fairtrain.example",
            buyer_iri="https://fairtrain.example/orgs/org_1",
            version_iri="https://fairtrain.example/dataset-versions/dsv_1",
            purpose="speech_recognition",
            territory="DE",
            starts_at=start,
            ends_at=start + timedelta(days=365),
            total=Decimal("12.00"),
            currency="EUR",
            banned=frozenset({"voice_cloning", "face_recognition"}),
            sublicensing=False,
            deletion_days=30,
        )
    )
    path = tmp_path / "agreement.json"
    jws = sign_agreement(document, key)
    path.write_text(json.dumps(agreement_file(document, jws, key_id(key.public_key()))))
    pem = tmp_path / "platform.pem"
    pem.write_bytes(public_key_pem(key.public_key()))
    return path, pem


def test_an_agreement_verifies_offline_and_a_tampered_one_does_not(
    data_dir: Path, tmp_path: Path
) -> None:
    path, pem = _agreement(tmp_path)
    good = runner.invoke(app, ["licences", "verify-agreement", str(path), "--public-key", str(pem)])
    assert good.exit_code == 0 and "VALID" in good.output, good.output
    document = json.loads(path.read_text())
    document["agreement"]["permission"][0]["constraint"][1]["rightOperand"] = ["US"]
    path.write_text(json.dumps(document))
    bad = runner.invoke(app, ["licences", "verify-agreement", str(path), "--public-key", str(pem)])
    assert bad.exit_code == 1 and "agreement_mismatch" in bad.output
    path.write_text("{not json")
    broken = runner.invoke(app, ["licences", "verify-agreement", str(path), "--public-key",
                                 str(pem)])  # fmt: skip
    assert broken.exit_code == 1 and "agreement_unreadable" in broken.output


def test_upkeep_commands_act_on_the_configured_database(data_dir: Path) -> None:
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    cheap = PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1)
    with make_session_factory(engine)() as session, session.begin():
        org, _ = accounts.register_buyer_org(
            session, cheap, org_name="Upkeep Org", email="upkeep@example.org",
            password="quartz-lantern-orbit-meadow-41", display_name="Up Keep", jurisdiction="DE",
        )  # fmt: skip
        campaign = campaigns.create_campaign(
            session, settings, org_id=org.id, created_by="system:test", actor="system:test",
            title="Old request", description="", modality="image", language=None,
            purpose="fine_tuning", territory="DE", term_days=365, currency="EUR",
            price_per_unit_minor=100, target_units=5, targets=None,
            deadline=datetime.now(UTC) + timedelta(days=1),
        )  # fmt: skip
        # Time passes: the deadline is now behind us.
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id)
            .values(deadline=datetime.now(UTC) - timedelta(hours=1))
        )
    engine.dispose()
    closed = runner.invoke(app, ["catalog", "close-expired", "--json"])
    assert closed.exit_code == 0 and json.loads(closed.output) == {"closed": [campaign.id]}
    again = runner.invoke(app, ["catalog", "close-expired", "--json"])
    assert json.loads(again.output) == {"closed": []}
    refreshed = runner.invoke(app, ["catalog", "refresh", "--json"])
    assert refreshed.exit_code == 0 and json.loads(refreshed.output) == {"refreshed": 0}
    expired = runner.invoke(app, ["licences", "expire", "--json"])
    assert expired.exit_code == 0 and json.loads(expired.output) == {"expired": []}
