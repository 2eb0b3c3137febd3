"""Fixtures shared by the whole suite: settings, migrated databases (SQLite and PostgreSQL),
per-test savepoint isolation, the app and HTTP clients.

PostgreSQL is the machine's server on 127.0.0.1:5432 (trust auth, database ``test``);
each test session works in a schema of its own so concurrent runs never collide.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import uvicorn
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from mypy_boto3_s3 import S3Client
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from fairtrain.app import create_app
from fairtrain.config import Mode, Settings
from fairtrain.db import make_engine
from fairtrain.ids import new_id
from fairtrain.migrate import upgrade

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_URL = os.environ.get(
    "FAIRTRAIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


REGION = "us-east-1"


def make_test_settings(
    data_dir: Path, database_url: str, *, vault_url: str | None = None
) -> Settings:
    return Settings(
        mode=Mode.DEV,
        data_dir=data_dir,
        database_url=database_url,
        vault_url=vault_url,
        secret_key=SecretStr(secrets.token_urlsafe(48)),
        # Cheap argon2 so tests create users quickly; production keeps the defaults.
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        # Jobs run synchronously right after the enqueueing transaction commits.
        jobs_url="immediate",
    )


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("sqlite") / "fairtrain.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    schema = f"ft_test_{secrets.token_hex(4)}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Every test that takes this runs twice: on SQLite and on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    result: Engine = request.getfixturevalue(name)
    return result


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """An outer transaction rolled back after the test: nothing leaks between tests."""
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    # Each commit() inside the app releases a SAVEPOINT of the outer transaction.
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


# -- S3: moto's real HTTP server on loopback, one per test session, a bucket per test --


def free_port() -> int:
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
        port = free_port()
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
def settings(tmp_path: Path, engine: Engine, request: pytest.FixtureRequest) -> Settings:
    """SQLite runs with the local vault; PostgreSQL with the S3 vault (moto), so both
    deployment shapes are exercised by every test that uses the app."""
    vault_url = None
    if engine.dialect.name == "postgresql":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        vault_url = f"s3://{bucket}?endpoint={endpoint}&region={REGION}"
    return make_test_settings(tmp_path / "data", str(engine.url), vault_url=vault_url)


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    application.state.sessions = session_factory
    application.state.jobs.sessions = session_factory
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def make_client(app):  # type: ignore[no-untyped-def]
    """More independent browsers/clients on the same app (each with its own cookies)."""
    clients: list[TestClient] = []

    def factory() -> TestClient:
        test_client = TestClient(app, base_url="http://testserver")
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield factory
    for test_client in clients:
        test_client.__exit__(None, None, None)


# -- a real server on loopback (browser tests, the upload CLI) ----------------------------


@pytest.fixture(scope="session")
def live_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The live server's settings (its database is migrated): browser tests use them to
    create what only the CLI creates, such as an operator."""
    data_dir = tmp_path_factory.mktemp("browser")
    settings = make_test_settings(data_dir, f"sqlite:///{data_dir / 'fairtrain.db'}")
    settings = settings.model_copy(update={"jobs_url": f"sqlite:///{data_dir / 'jobs.db'}"})
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture(scope="session")
def live_server(live_settings: Settings) -> Iterator[str]:
    app = create_app(live_settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
