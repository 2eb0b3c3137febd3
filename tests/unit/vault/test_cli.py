"""``fairtrain vault …`` commands, run against a dev data directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from fairtrain.config import get_settings, reset_settings_cache
from fairtrain.db import Base, make_engine, make_session_factory
from fairtrain.vault.backends import LocalDirectoryBackend, backend_from_url
from fairtrain.vault.cli import app
from fairtrain.vault.keys import KeyRing, retired_kek_paths
from fairtrain.vault.service import open_blob, reset_default_keyring, store_blob

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    reset_default_keyring()
    engine = make_engine(get_settings().effective_database_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield tmp_path
    reset_default_keyring()
    reset_settings_cache()


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(get_settings().effective_database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _store(data: bytes) -> tuple[str, str]:
    settings = get_settings()
    backend = backend_from_url(settings.effective_vault_url)
    with _session() as session:
        blob = store_blob(
            session,
            backend,
            owner="user:usr_cli",
            stream=[data],
            media_type="text/plain",
            max_bytes=1000,
            keyring=KeyRing.from_settings(settings),
        )
        session.commit()
        return blob.id, blob.storage_key


def test_rotate_kek(data_dir: Path) -> None:
    blob_id, _ = _store(b"hello")
    old = KeyRing.from_settings(get_settings()).current.id
    result = runner.invoke(app, ["rotate-kek", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["keys_rewrapped"] == 1
    assert report["retired_removed"] == [old]
    assert report["kek_id"] != old
    assert retired_kek_paths(get_settings().effective_kek_path) == []
    with _session() as session:
        backend = backend_from_url(get_settings().effective_vault_url)
        ring = KeyRing.from_settings(get_settings())
        assert b"".join(open_blob(session, backend, blob_id, keyring=ring)) == b"hello"
    plain = runner.invoke(app, ["rotate-kek"])
    assert plain.exit_code == 0
    assert "1 data key(s) re-wrapped" in plain.output


def test_verify(data_dir: Path) -> None:
    _store(b"good")
    ok = runner.invoke(app, ["verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == {"checked": 1, "failures": []}
    bad_id, key = _store(b"bad")
    backend = backend_from_url(get_settings().effective_vault_url)
    assert isinstance(backend, LocalDirectoryBackend)
    (backend.root / key).write_bytes(b"garbage")
    failed = runner.invoke(app, ["verify"])
    assert failed.exit_code == 1
    assert bad_id in failed.output
    assert "2 blob(s) checked, 1 failed." in failed.output


def test_orphans(data_dir: Path) -> None:
    _store(b"owned")
    backend = backend_from_url(get_settings().effective_vault_url)
    backend.put("blobs/zz/blb_stray", [b"stray"])
    listed = runner.invoke(app, ["orphans", "--grace-minutes", "-1", "--json"])
    assert json.loads(listed.output) == {"orphans": ["blobs/zz/blb_stray"], "deleted": False}
    assert backend.exists("blobs/zz/blb_stray")
    young = runner.invoke(app, ["orphans"])
    assert "0 orphan object(s) found." in young.output
    swept = runner.invoke(app, ["orphans", "--delete", "--grace-minutes", "-1"])
    assert swept.exit_code == 0
    assert "1 orphan object(s) deleted." in swept.output
    assert not backend.exists("blobs/zz/blb_stray")
