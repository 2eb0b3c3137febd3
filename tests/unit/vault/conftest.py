"""Vault fixtures: a temporary SQLite database, a KEK, and both storage backends.

The S3 backend runs against moto's real HTTP server on loopback (no mocked boto3): the
server and a fresh bucket per test come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy_boto3_s3 import S3Client
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import fairtrain.models  # registers every core table (audit among them) on Base.metadata
from fairtrain.db import Base, make_engine, make_session_factory
from fairtrain.vault import models as vault_models
from fairtrain.vault.backends import BlobBackend, LocalDirectoryBackend, S3Backend
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.service import reset_default_keyring

_REGISTERED = (fairtrain.models, vault_models)


@pytest.fixture
def s3_backend(s3_client: S3Client, s3_bucket: str) -> S3Backend:
    return S3Backend(s3_bucket, prefix="vault/", part_size=5 << 20, client=s3_client)


@pytest.fixture
def local_backend(tmp_path: Path) -> LocalDirectoryBackend:
    return LocalDirectoryBackend(tmp_path / "vault")


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> BlobBackend:
    name = "local_backend" if request.param == "local" else "s3_backend"
    chosen: BlobBackend = request.getfixturevalue(name)
    return chosen


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session
        session.rollback()


@pytest.fixture
def kek_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "kek.b64"


@pytest.fixture
def keyring(kek_path: Path) -> Iterator[KeyRing]:
    yield KeyRing.from_file(kek_path, create=True)
    # Service functions share a process-wide data key cache; start every test clean.
    reset_default_keyring()
