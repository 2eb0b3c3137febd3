"""Outside demo/dev mode the app refuses to start with a missing or default secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from fairtrain.app import create_app
from fairtrain.bootstrap import InsecureConfiguration, prepare_settings
from fairtrain.config import Mode, Settings


def key_files(tmp_path: Path) -> dict[str, Path]:
    kek = tmp_path / "kek.b64"
    kek.write_text("x")
    signing = tmp_path / "signing.pem"
    signing.write_text("x")
    return {"kek_path": kek, "signing_key_path": signing}


def test_production_without_anything_names_every_missing_secret(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(InsecureConfiguration) as caught:
        create_app(settings)
    message = str(caught.value)
    assert "FAIRTRAIN_SECRET_KEY is not set" in message
    assert "FAIRTRAIN_KEK_PATH" in message
    assert "FAIRTRAIN_SIGNING_KEY_PATH" in message


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("change-me", "well-known default"),
        ("secret", "well-known default"),
        ("short-but-not-default", "shorter than 32"),
    ],
)
def test_default_or_weak_secret_refused(tmp_path: Path, secret: str, reason: str) -> None:
    settings = Settings(
        mode=Mode.PRODUCTION,
        data_dir=tmp_path,
        secret_key=SecretStr(secret),
        **key_files(tmp_path),  # type: ignore[arg-type]
    )
    with pytest.raises(InsecureConfiguration, match=reason):
        prepare_settings(settings)


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    settings = Settings(
        mode=Mode.PRODUCTION,
        data_dir=tmp_path,
        secret_key=SecretStr("s" * 40),
        kek_path=tmp_path / "nope.b64",
        signing_key_path=tmp_path / "nope.pem",
    )
    reasons = settings.insecure_reasons()
    assert any("missing file" in r and "nope.b64" in r for r in reasons)
    assert any("missing file" in r and "nope.pem" in r for r in reasons)


def test_production_with_real_secrets_starts(tmp_path: Path) -> None:
    settings = Settings(
        mode=Mode.PRODUCTION,
        data_dir=tmp_path,
        secret_key=SecretStr("a-long-random-secret-value-0123456789"),
        **key_files(tmp_path),  # type: ignore[arg-type]
    )
    assert prepare_settings(settings).insecure_reasons() == []


def test_demo_mode_creates_a_private_secret_once(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.DEMO, data_dir=tmp_path)
    first = prepare_settings(settings)
    second = prepare_settings(settings)
    assert first.secret_key is not None and second.secret_key is not None
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    secret_file = tmp_path / "keys" / "secret_key"
    assert secret_file.stat().st_mode & 0o077 == 0


def test_env_vars_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAIRTRAIN_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.effective_database_url == "postgresql+psycopg://u@h/db"
    assert settings.mode is Mode.DEV
    assert settings.effective_vault_url.startswith("file://")
