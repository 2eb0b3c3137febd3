"""A multi-process deployment on one machine: the shape of a real one, for trying and
testing it (``fairtrain stack up``, ``tests/stack``).

It uses the machine's PostgreSQL (a fresh database, dropped at the end) and Redis (a
queue of its own name in it), starts moto's S3 server on loopback for the vault, two
``fairtrain serve`` processes on two ports and two ``fairtrain worker`` processes. They
share nothing but the database, the bucket and the queue, as separate machines would;
both API processes run the migrations at start-up, and PostgreSQL's advisory lock in
``migrate.upgrade`` lets one apply them while the other waits. It runs in production
mode, with a secret key, a vault key-encryption key and a signing key written for it.

moto is a development dependency (``uv sync`` installs it); production uses real S3.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fairtrain.audit.keys import write_signing_key
from fairtrain.vault.keys import generate_kek_file

__all__ = ["Stack", "StackProcess", "free_port"]

BUCKET = "fairtrain-stack"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class StackProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path


@dataclass
class Stack:
    """Start with :meth:`start` (or ``with Stack(...) as stack``), stop with :meth:`stop`."""

    directory: Path
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    api_ports: tuple[int, ...] = ()
    workers: int = 2
    worker_threads: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    keep_database: bool = False
    processes: list[StackProcess] = field(default_factory=list)
    database: str = ""
    s3_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    worker_metrics_ports: list[int] = field(default_factory=list)

    @property
    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.api_ports]

    @property
    def database_url(self) -> str:
        url = make_url(self.postgres_url).set(database=self.database)
        return url.render_as_string(hide_password=False)

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- starting -----------------------------------------------------------------------

    def start(self, *, timeout: float = 120.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.api_ports:
            self.api_ports = (free_port(), free_port())
        self.database = f"ft_stack_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{self.database}"')
        self.s3_port = free_port()
        self._spawn(
            "s3",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
            os.environ | self._aws_env(),
        )
        self._wait_for(f"http://127.0.0.1:{self.s3_port}/moto-api/", timeout)
        self._make_bucket()
        self.env = self._fairtrain_env()
        for index, port in enumerate(self.api_ports):
            self._spawn(
                f"api-{index + 1}",
                [sys.executable, "-m", "fairtrain.cli", "serve", "--port", str(port)],
                self.env,
            )
        for url in self.api_urls:
            self._wait_for(f"{url}/readyz", timeout)
        self.add_workers(self.workers, timeout=timeout)

    def add_workers(self, count: int, *, timeout: float = 120.0) -> list[StackProcess]:
        """Start ``count`` more ``fairtrain worker`` processes; wait until they serve."""
        started = []
        for _ in range(count):
            port = free_port()
            self.worker_metrics_ports.append(port)
            command = [sys.executable, "-m", "fairtrain.cli", "worker", "--workers",
                       str(self.worker_threads), "--metrics-port", str(port)]  # fmt: skip
            name = f"worker-{len(self.worker_metrics_ports)}"
            started.append(self._spawn(name, command, self.env))
        for port in self.worker_metrics_ports[-count:] if count else []:
            self._wait_for(f"http://127.0.0.1:{port}/metrics", timeout)
        return started

    def stop_processes(self, stopping: list[StackProcess]) -> None:
        """SIGTERM these processes and wait for them (e.g. workers between runs)."""
        for process in stopping:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in stopping:
            try:
                process.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=5)
            process.log.close()
            self.processes.remove(process)

    def _admin(self, statement: str) -> None:
        engine = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def _aws_env(self) -> dict[str, str]:
        # moto accepts any credentials; boto3 insists that some exist.
        return {
            "AWS_ACCESS_KEY_ID": "stack",
            "AWS_SECRET_ACCESS_KEY": "stack",
            "AWS_DEFAULT_REGION": REGION,
        }

    def _make_bucket(self) -> None:
        import boto3

        # The same placeholder credentials as the processes (moto accepts any).
        aws = self._aws_env()
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.s3_port}",
            region_name=REGION,
            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=BUCKET)
        client.close()

    def _fairtrain_env(self) -> dict[str, str]:
        keys = self.directory / "keys"
        keys.mkdir(exist_ok=True, mode=0o700)
        kek, signing = keys / "kek", keys / "signing.pem"
        if not kek.exists():
            generate_kek_file(kek)
        if not signing.exists():
            write_signing_key(signing)
        queue = self.database.removeprefix("ft_")
        separator = "&" if "?" in self.redis_url else "?"
        env = {key: value for key, value in os.environ.items() if not key.startswith("FAIRTRAIN_")}
        return env | self._aws_env() | {
            "FAIRTRAIN_MODE": "production",
            "FAIRTRAIN_DATA_DIR": str(self.directory / "data"),
            "FAIRTRAIN_DATABASE_URL": self.database_url,
            "FAIRTRAIN_VAULT_URL": (
                f"s3://{BUCKET}?endpoint=http://127.0.0.1:{self.s3_port}&region={REGION}"
            ),
            "FAIRTRAIN_JOBS_URL": f"{self.redis_url}{separator}queue={queue}",
            "FAIRTRAIN_JOBS_IN_PROCESS": "false",
            "FAIRTRAIN_SECRET_KEY": secrets.token_urlsafe(48),
            "FAIRTRAIN_KEK_PATH": str(kek),
            "FAIRTRAIN_SIGNING_KEY_PATH": str(signing),
            "FAIRTRAIN_BASE_URL": self.api_urls[0],
        } | self.extra_env  # fmt: skip

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> StackProcess:
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        path = logs / f"{name}.log"
        log = path.open("ab")
        popen = subprocess.Popen(  # noqa: S603  # our own interpreter and module
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.directory
        )
        process = StackProcess(name, popen, log, path)
        self.processes.append(process)
        return process

    def _wait_for(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.popen.poll() is not None:
                    tail = process.log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{process.name} exited early:\n{tail}")
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")

    # -- running commands against it ------------------------------------------------------

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``fairtrain ARGS`` with the stack's settings (e.g. creating an operator)."""
        return subprocess.run(  # noqa: S603  # our own interpreter and module
            [sys.executable, "-m", "fairtrain.cli", *args],
            env=self.env, capture_output=True, text=True, check=False, cwd=self.directory,
        )  # fmt: skip

    # -- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM to every process (workers first, the store last), then the database."""
        self.stop_processes(list(reversed(self.processes)))
        if self.database and not self.keep_database:
            self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.database = ""
