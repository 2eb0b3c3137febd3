"""``fairtrain notices …`` and ``fairtrain withdraw`` against a dev-mode data directory:
the periodic commands say what they did and do nothing when nothing is due; a withdrawal
made for a contributor is idempotent and refuses bad input with its code."""

from __future__ import annotations

import json
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
    reset_settings_cache()
    yield data
    reset_settings_cache()


def test_deliver_and_escalate_with_nothing_due(data_dir: Path) -> None:
    delivered = runner.invoke(app, ["notices", "deliver", "--json"])
    assert delivered.exit_code == 0, delivered.output
    assert json.loads(delivered.output) == {"attempted": 0}
    escalated = runner.invoke(app, ["notices", "escalate", "--json"])
    assert escalated.exit_code == 0, escalated.output
    assert json.loads(escalated.output) == {"reminded": [], "escalated": [], "suspended": []}
    plain = runner.invoke(app, ["notices", "escalate"])
    assert plain.exit_code == 0 and "0 reminded, 0 escalated" in plain.output
    assert "0 webhook delivery" in runner.invoke(app, ["notices", "deliver"]).output


def test_withdraw_on_behalf_of_a_contributor(data_dir: Path) -> None:
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    cheap = PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1)
    with make_session_factory(engine)() as session, session.begin():
        accounts.register_contributor(
            session, cheap, email="letter@example.org", password="quartz-lantern-orbit-meadow-41",
            display_name="By Letter", date_of_birth=date(1980, 1, 1), adult_attestation=True,
            jurisdiction="DE",
        )  # fmt: skip
    engine.dispose()
    made = runner.invoke(
        app, ["withdraw", "--owner", "Letter@example.org", "--everything", "--json"]
    )
    assert made.exit_code == 0, made.output
    body = json.loads(made.output)
    assert body["created"] is True and body["assets"] == [] and body["notices"] == []
    again = runner.invoke(app, ["withdraw", "--owner", "letter@example.org", "--everything"])
    assert again.exit_code == 0 and "Already withdrawn" in again.output
    unknown = runner.invoke(app, ["withdraw", "--owner", "nobody@example.org", "--everything"])
    assert unknown.exit_code == 2 and "user_not_found" in unknown.output
    both = runner.invoke(
        app, ["withdraw", "--owner", "letter@example.org", "--everything", "--asset", "ast_x"]
    )
    assert both.exit_code == 2 and "invalid_withdrawal" in both.output
