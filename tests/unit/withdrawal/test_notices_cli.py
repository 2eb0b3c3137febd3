"""``fairtrain notices …`` against a dev-mode data directory: both periodic commands run
on the configured database, say what they did, and do nothing when nothing is due."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairtrain.cli import app
from fairtrain.config import reset_settings_cache
from fairtrain.db import make_engine
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
