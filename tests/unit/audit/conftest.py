"""Audit fixtures: a temporary SQLite database, a signing key, a small signed export.

``write_log`` appends events through the real ``append_event`` path; ``built_export`` is
a module-wide export (events 1..12, checkpoints at 5 and 12) that tamper tests copy and
alter, so hypothesis never rebuilds the database per example.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from tests.unit.audit.audit_helpers import make_database, write_log

from fairtrain.audit.checkpoint import create_checkpoint
from fairtrain.audit.export import export_log
from fairtrain.db import make_session_factory


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_database(tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def built_export(tmp_path_factory: pytest.TempPathFactory, signing_key: Ed25519PrivateKey) -> Path:
    """A verified export of 12 events with checkpoints at tree sizes 5 and 12."""
    workdir = tmp_path_factory.mktemp("audit-export")
    engine = make_database(workdir)
    with make_session_factory(engine)() as session, session.begin():
        write_log(session, 5)
        create_checkpoint(session, signing_key)
        write_log(session, 7, start=6)
        create_checkpoint(session, signing_key)
        export_log(session, workdir / "export", signing_key.public_key())
    engine.dispose()
    return workdir / "export"


@pytest.fixture
def export_copy(built_export: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(built_export, target)
    return target
