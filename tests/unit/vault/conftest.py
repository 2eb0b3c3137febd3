"""Vault fixtures: a temporary SQLite database, a KEK, and both storage backends.

The S3 backend runs against moto's real HTTP server on loopback (no mocked boto3), one
server for the session and a fresh bucket per test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from mypy_boto3_s3 import S3Client
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import fairtrain.models  # registers every core table (audit among them) on Base.metadata
from fairtrain.db import Base, make_engine, make_session_factory
from fairtrain.ids import new_id
from fairtrain.vault import models as vault_models
from fairtrain.vault.backends import BlobBackend, LocalDirectoryBackend, S3Backend
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.service import reset_default_keyring

_REGISTERED = (fairtrain.models, vault_models)
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        # moto accepts any credentials; boto3 needs some to sign requests.
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3_bucket(s3_client: S3Client) -> str:
    bucket = new_id("bkt").replace("_", "-")
    s3_client.create_bucket(Bucket=bucket)
    return bucket


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
