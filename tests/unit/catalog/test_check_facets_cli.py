"""``fairtrain catalog check-facets``: says whether the maintained counts agree, exits 1
when they do not, and recounts them with ``--repair``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairtrain.catalog.models import CatalogFacet
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
    monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
    reset_settings_cache()
    yield data
    reset_settings_cache()


def test_check_facets_reports_and_repairs_a_wrong_count(data_dir: Path) -> None:
    ok = runner.invoke(app, ["catalog", "check-facets", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == {"ok": True, "mismatches": [], "repaired_cells": None}
    engine = make_engine(get_settings().effective_database_url)
    with make_session_factory(engine)() as session, session.begin():
        # A count for entries that do not exist (as a lost write would leave it).
        session.add(
            CatalogFacet(
                cell="0" * 64, modality="audio", language="en", age_band=None, gender=None,
                region=None, quality_ok=True, exact=True, permit_mask=1, ban_mask=0,
                territories=None, not_after=None, term_days=None, currency="EUR",
                priced=True, entries=2, duration_ms=5000,
            )
        )  # fmt: skip
    engine.dispose()
    wrong = runner.invoke(app, ["catalog", "check-facets", "--json"])
    assert wrong.exit_code == 1
    [mismatch] = json.loads(wrong.output)["mismatches"]
    assert (mismatch["expected_entries"], mismatch["counted_entries"]) == (0, 2)
    assert mismatch["values"]["modality"] == "audio"
    repaired = runner.invoke(app, ["catalog", "check-facets", "--repair"])
    assert repaired.exit_code == 0 and "Recounted" in repaired.output
    again = runner.invoke(app, ["catalog", "check-facets"])
    assert again.exit_code == 0 and "agree" in again.output
