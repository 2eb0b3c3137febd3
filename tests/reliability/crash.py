"""Crash-safety trials: a real ``fairtrain serve`` process, killed with SIGKILL at a random
moment of an operation, restarted, and then held to the platform's invariants
(``fairtrain.consistency.check_platform``) plus what the operation promised (an
acknowledged upload exists; a paid order has its licence; …).

The server runs the embedded shape (in-process jobs) against SQLite or the machine's
PostgreSQL (a schema of its own per trial), with the local vault.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from fairtrain.config import Mode, Settings
from fairtrain.consistency import Report, check_platform
from fairtrain.db import make_engine, make_session_factory
from fairtrain.jobs.models import FINAL_STATES, Job
from fairtrain.vault.backends import backend_from_url
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.service import sweep_orphans

__all__ = ["Platform", "platform", "trials"]

POSTGRES_URL = os.environ.get(
    "FAIRTRAIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def trials() -> int:
    """Trials per operation and database: 1 in `make test`, more in `make soak`."""
    return int(os.environ.get("FAIRTRAIN_CRASH_TRIALS", "1"))


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Platform:
    """One data directory and database, and the server process serving them."""

    data_dir: Path
    database_url: str
    secret: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    log: list[Path] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)
    _log_handle: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return os.environ | {
            "FAIRTRAIN_MODE": "dev",
            "FAIRTRAIN_DATA_DIR": str(self.data_dir),
            "FAIRTRAIN_DATABASE_URL": self.database_url,
            "FAIRTRAIN_SECRET_KEY": self.secret,
            "FAIRTRAIN_ARGON2_TIME_COST": "1",
            "FAIRTRAIN_ARGON2_MEMORY_KIB": "1024",
            "FAIRTRAIN_ARGON2_PARALLELISM": "1",
            "FAIRTRAIN_AUDIT_CHECKPOINT_EVERY": "25",
            "FAIRTRAIN_JOBS_LEASE_SECONDS": "4",
        }

    def settings(self) -> Settings:
        return Settings(
            mode=Mode.DEV,
            data_dir=self.data_dir,
            database_url=self.database_url,
            secret_key=SecretStr(self.secret),
        )

    def start(self) -> None:
        self.port = _free_port()
        log = self.data_dir / f"server-{len(self.log)}.log"
        self.log.append(log)
        self._close_log()
        self._log_handle = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fairtrain.cli", "serve", "--port", str(self.port)],
            env=self.env(),
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        # Generous: on a machine loaded by other work a cold start has taken 40 s.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def client(self) -> httpx.Client:
        """An HTTP client to the server, closed with the platform."""
        made = httpx.Client(base_url=self.base_url, timeout=60)
        self.clients.append(made)
        return made

    def close(self) -> None:
        self.stop()
        self._close_log()
        for made in self.clients:
            made.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def engine(self) -> Engine:
        return make_engine(self.database_url)

    def wait_for_jobs(self, timeout: float = 60) -> None:
        """Until every job has reached a final state (the restarted server resumes them)."""
        engine = self.engine()
        try:
            deadline = time.monotonic() + timeout
            finals = [s.value for s in FINAL_STATES]
            while time.monotonic() < deadline:
                with make_session_factory(engine)() as session:
                    pending = session.scalar(
                        select(func.count()).select_from(Job).where(Job.state.not_in(finals))
                    )
                if not pending:
                    return
                time.sleep(0.2)
            raise AssertionError(f"{pending} job(s) never reached a final state")
        finally:
            engine.dispose()

    def recover_and_check(self) -> tuple[Report, list[str]]:
        """The documented recovery, with the server stopped: sweep orphaned ciphertext
        of uploads that were cut off, then check every invariant."""
        self.stop()
        settings = self.settings()
        backend = backend_from_url(settings.effective_vault_url)
        engine = self.engine()
        try:
            with make_session_factory(engine)() as session, session.begin():
                swept = sweep_orphans(session, backend, grace=timedelta(0))
            with make_session_factory(engine)() as session:
                report = check_platform(
                    session, backend, KeyRing.from_settings(settings), grace=timedelta(0)
                )
            return report, swept
        finally:
            engine.dispose()


@contextmanager
def platform(tmp: Path, database: str) -> Iterator[Platform]:
    """A fresh platform on ``database`` ("sqlite" or "postgres")."""
    data_dir = tmp / f"platform-{secrets.token_hex(3)}"
    data_dir.mkdir()
    schema = None
    if database == "postgres":
        schema = f"ft_crash_{secrets.token_hex(4)}"
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{data_dir / 'fairtrain.db'}"
    running = Platform(data_dir=data_dir, database_url=url, secret=secrets.token_urlsafe(48))
    try:
        yield running
    finally:
        running.close()
        if schema is not None:
            admin = make_engine(POSTGRES_URL)
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def kill_at_random(target: Platform, rng: random.Random, longest: float) -> float:
    """Kill the server after a random delay in [0, longest) seconds; returns the delay."""
    delay = rng.random() * longest
    time.sleep(delay)
    target.kill()
    return delay


def quiet(call: Any, *args: Any, **kwargs: Any) -> httpx.Response | None:
    """A request the kill may cut off: its response, or None when the connection died."""
    try:
        response: httpx.Response = call(*args, **kwargs)
        return response
    except httpx.HTTPError:
        return None
