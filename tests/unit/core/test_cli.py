"""The command line: version, migrations, staff accounts, refusal to serve insecurely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.factories import STRONG_PASSWORD
from typer.testing import CliRunner

from fairtrain import __version__
from fairtrain.accounts.models import User
from fairtrain.cli import app
from fairtrain.config import reset_settings_cache
from fairtrain.db import make_engine, make_session_factory

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FAIRTRAIN_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("FAIRTRAIN_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("FAIRTRAIN_ARGON2_PARALLELISM", "1")
    reset_settings_cache()
    yield tmp_path
    reset_settings_cache()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "users", "audit"):
        assert command in result.output


def test_db_upgrade_then_users_create(cli_env: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    # Twice is harmless.
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "users",
            "create",
            "--kind",
            "operator",
            "--email",
            "Ops@Example.org",
            "--name",
            "Ops Person",
            "--password",
            STRONG_PASSWORD,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["email"] == "ops@example.org"
    engine = make_engine(f"sqlite:///{cli_env / 'fairtrain.db'}")
    with make_session_factory(engine)() as session:
        user = session.scalar(select(User).where(User.email == "ops@example.org"))
        assert user is not None and user.kind == "operator"
    engine.dispose()


def test_users_create_refuses_weak_password_and_contributors(cli_env: Path) -> None:
    runner.invoke(app, ["db", "upgrade"])
    weak = runner.invoke(
        app,
        [
            "users",
            "create",
            "--kind",
            "auditor",
            "--email",
            "a@example.org",
            "--name",
            "A",
            "--password",
            "password1",
        ],
    )
    assert weak.exit_code == 2
    assert "weak_password" in weak.output
    wrong_kind = runner.invoke(
        app,
        [
            "users",
            "create",
            "--kind",
            "contributor",
            "--email",
            "c@example.org",
            "--name",
            "C",
            "--password",
            STRONG_PASSWORD,
        ],
    )
    assert wrong_kind.exit_code == 2
    assert "invalid_kind" in wrong_kind.output


def test_serve_refuses_insecure_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRTRAIN_MODE", "production")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FAIRTRAIN_SECRET_KEY", "change-me")
    reset_settings_cache()
    try:
        result = runner.invoke(app, ["serve", "--port", "18999"])
    finally:
        reset_settings_cache()
    assert result.exit_code == 2
    assert "FAIRTRAIN_SECRET_KEY" in result.output
