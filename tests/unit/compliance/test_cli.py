"""``fairtrain compliance …`` against a dev-mode data directory."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairtrain.accounts import service as accounts
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.cli import app
from fairtrain.config import get_settings, reset_settings_cache
from fairtrain.db import make_engine, make_session_factory
from fairtrain.migrate import upgrade

runner = CliRunner()


@pytest.fixture
def user_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    data = tmp_path / "data"
    data.mkdir()
    database = f"sqlite:///{data / 'cli.db'}"
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(data))
    monkeypatch.setenv("FAIRTRAIN_DATABASE_URL", database)
    monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
    reset_settings_cache()
    engine = make_engine(database)
    upgrade(engine)
    cheap = PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1)
    with make_session_factory(engine)() as session, session.begin():
        user = accounts.register_contributor(
            session, cheap, email="posted@example.org", password="quartz-lantern-orbit-meadow-41",
            display_name="By Post", date_of_birth=date(1980, 2, 2), adult_attestation=True,
            jurisdiction="IE",
        )  # fmt: skip
        found = user.id
    engine.dispose()
    yield found
    reset_settings_cache()


def test_a_request_by_post_is_answered_with_the_same_archive(user_id: str, tmp_path: Path) -> None:
    out = tmp_path / "archive.zip"
    done = runner.invoke(app, ["compliance", "subject-access", user_id, "-o", str(out)])
    assert done.exit_code == 0, done.output
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("account.json"))["email"] == "posted@example.org"
    missing = runner.invoke(app, ["compliance", "subject-access", "usr_nobody", "-o",
                                  str(tmp_path / "x.zip")])  # fmt: skip
    assert missing.exit_code == 2 and "user_not_found" in missing.output
    assert get_settings().effective_database_url.startswith("sqlite")


def test_reports_print(user_id: str) -> None:
    record = runner.invoke(app, ["compliance", "records-of-processing"])
    assert record.exit_code == 0
    assert json.loads(record.output)["activities"][0]["data_subjects"]["contributor"] == 1
    register = runner.invoke(app, ["compliance", "licence-register"])
    assert register.exit_code == 0 and register.output.startswith("licence_id,organisation")
    withdrawals = runner.invoke(app, ["compliance", "withdrawal-register"])
    assert withdrawals.exit_code == 0 and withdrawals.output.startswith("notice_id,withdrawal_id")
    rates = runner.invoke(app, ["compliance", "withdrawal-register", "--json"])
    assert rates.exit_code == 0
    assert json.loads(rates.output)["attestation_compliance"]["totals"]["notices"] == 0
