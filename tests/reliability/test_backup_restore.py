"""Backup and restore, tested as an operator would run them: a platform with real data
(the demo marketplace: processed assets, receipts, a paid licence) is backed up with
``fairtrain backup create``, restored into an empty deployment with ``fairtrain backup
restore``, and then the audit log verifies, every blob decrypts, and what was there is
there — on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.audit.keys import key_id, platform_signing_key, public_key_pem
from fairtrain.audit.models import AuditEvent
from fairtrain.cli import app
from fairtrain.config import Mode, Settings, reset_settings_cache
from fairtrain.consent.models import ConsentReceiptRecord
from fairtrain.consent.receipts import receipt_file, verify_receipt_document
from fairtrain.db import make_engine, make_session_factory, session_scope
from fairtrain.demo import seed_demo, seed_marketplace
from fairtrain.ingest.models import Asset
from fairtrain.licensing.models import Licence
from fairtrain.migrate import upgrade
from fairtrain.runtime import Runtime
from fairtrain.vault.service import open_blob

runner = CliRunner()
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


@dataclass
class Deployment:
    data_dir: Path
    database_url: str

    def settings(self) -> Settings:
        return Settings(mode=Mode.DEV, data_dir=self.data_dir, database_url=self.database_url)

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
        monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(self.data_dir))
        monkeypatch.setenv("FAIRTRAIN_DATABASE_URL", self.database_url)
        monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
        monkeypatch.delenv("FAIRTRAIN_KEK_PATH", raising=False)
        reset_settings_cache()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployments(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Deployment, Deployment]]:
    """The live deployment and an empty one to restore into (another database)."""
    made: list[str] = []
    if request.param == "sqlite":
        live = Deployment(tmp_path / "live", f"sqlite:///{tmp_path / 'live' / 'fairtrain.db'}")
        empty = Deployment(tmp_path / "new", f"sqlite:///{tmp_path / 'new' / 'fairtrain.db'}")
    else:
        schema = f"ft_backup_{secrets.token_hex(3)}"
        database = f"ft_restore_{secrets.token_hex(3)}"
        admin = make_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        made += [schema, database]
        options = f"?options=-csearch_path%3D{schema}"
        live = Deployment(tmp_path / "live", f"{POSTGRES}/test{options}")
        empty = Deployment(tmp_path / "new", f"{POSTGRES}/{database}{options}")
    live.data_dir.mkdir()
    empty.data_dir.mkdir()
    yield live, empty
    if made:
        reset_settings_cache()
        admin = make_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{made[0]}" CASCADE'))
            connection.execute(text(f'DROP DATABASE "{made[1]}" WITH (FORCE)'))
        admin.dispose()


def _populate(live: Deployment) -> dict[str, int]:
    settings = live.settings()
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        seed_demo(session, PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1))
    assert seed_marketplace(sessions, settings, Runtime(settings))
    with sessions() as session:
        counts = {
            "assets": int(session.scalar(select(func.count()).select_from(Asset)) or 0),
            "licences": int(session.scalar(select(func.count()).select_from(Licence)) or 0),
            "events": int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0),
        }
    engine.dispose()
    return counts


def test_a_restored_backup_verifies_and_decrypts(
    deployments: tuple[Deployment, Deployment], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live, empty = deployments
    counts = _populate(live)
    backup, keys = tmp_path / "backup", tmp_path / "offsite-keys"
    live.env(monkeypatch)
    together = runner.invoke(app, ["backup", "create", str(backup), "--keys", str(backup / "k")])
    assert together.exit_code == 2 and "keys_with_backup" in together.output
    made = runner.invoke(app, ["backup", "create", str(backup), "--keys", str(keys)])
    assert made.exit_code == 0, made.output
    assert not list(backup.rglob("kek.b64")), "the key-encryption key must not be in the backup"
    assert runner.invoke(app, ["backup", "verify", str(backup), "--keys", str(keys)]).exit_code == 0

    empty.env(monkeypatch)
    restored = runner.invoke(app, ["backup", "restore", str(backup), "--keys", str(keys)])
    assert restored.exit_code == 0, restored.output
    assert "every check passed" in restored.output
    settings = empty.settings()
    engine = make_engine(settings.effective_database_url)
    try:
        with make_session_factory(engine)() as session:
            assert (
                int(session.scalar(select(func.count()).select_from(Asset)) or 0)
                == counts["assets"]
            )
            assert (
                int(session.scalar(select(func.count()).select_from(Licence)) or 0)
                == counts["licences"]
            )
            runtime = Runtime(settings)
            for asset in session.scalars(select(Asset)):
                for blob_id in (asset.blob_id, asset.redacted_blob_id):
                    if blob_id:
                        assert b"".join(
                            open_blob(
                                session,
                                runtime.vault.backend,
                                blob_id,
                                keyring=runtime.vault.keyring,
                            )
                        )
            restored_key = platform_signing_key(settings).public_key()
            pem = public_key_pem(restored_key)
            record = session.scalars(select(ConsentReceiptRecord)).first()
            assert record is not None
            signed = receipt_file(record.receipt, record.jws, key_id(restored_key))
            verify_receipt_document(signed, pem)  # the restored key is the one that signed
    finally:
        engine.dispose()
    # Restoring again onto what is now a populated deployment is refused, changing nothing.
    again = runner.invoke(app, ["backup", "restore", str(backup), "--keys", str(keys)])
    assert again.exit_code == 2 and "restore_target_not_empty" in again.output
    # A tampered backup is refused before anything is written.
    victim = next(p for p in (backup / "vault").rglob("*") if p.is_file())
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    check = runner.invoke(app, ["backup", "verify", str(backup)])
    assert check.exit_code == 1 and "has changed" in check.output
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["objects"] > 0
