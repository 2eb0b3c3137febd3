"""The queue behind the jobs: Huey with SQLite storage (embedded), Redis (at scale), or
immediate execution (tests and one-shot CLI commands). Chosen by ``FAIRTRAIN_JOBS_URL``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from fairtrain.runtime import Runtime

from fairtrain.jobs.service import resume_stuck_jobs, run_job

log = logging.getLogger("fairtrain.jobs")

__all__ = ["JobQueue"]


class _InProcessConsumer(Consumer):  # type: ignore[misc]  # Huey is untyped
    """Workers inside the web process: signals stay with the web server (uvicorn), which
    would otherwise lose its graceful shutdown on SIGTERM."""

    def _set_signal_handlers(self) -> None:
        return None


class JobQueue:
    """One Huey instance per process, with a single task that runs a job row by id."""

    def __init__(self, jobs_url: str, sessions: sessionmaker[Session], runtime: Runtime) -> None:
        self.jobs_url = jobs_url
        self.sessions = sessions
        self.runtime = runtime
        self.huey = self._make_huey(jobs_url)
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None

        def run(job_id: str) -> None:
            run_job(self.sessions, job_id, self.runtime)

        # Huey's decorator is untyped; the task object is called with one job id.
        self._task: Callable[[str], object] = self.huey.task(name="fairtrain.run_job")(run)

    @staticmethod
    def _make_huey(url: str) -> Huey:
        if url == "immediate":
            return MemoryHuey("fairtrain", immediate=True)
        parsed = urlparse(url)
        if parsed.scheme == "sqlite":
            path = Path(parsed.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            return SqliteHuey("fairtrain", filename=str(path))
        if parsed.scheme in ("redis", "rediss"):
            # ?queue=NAME keeps deployments sharing one Redis database apart.
            query = parse_qs(parsed.query)
            names = query.pop("queue", [])
            rest = urlunparse(parsed._replace(query=urlencode(query, doseq=True)))
            name = f"fairtrain-{names[0]}" if names else "fairtrain"
            return RedisHuey(name, url=rest)
        raise ValueError(
            f"FAIRTRAIN_JOBS_URL must be sqlite:///path, redis://host:port/db or 'immediate', "
            f"not {url!r}"
        )

    def pending(self) -> int:
        """Messages waiting in the queue (0 when jobs run immediately)."""
        return 0 if self.immediate else int(self.huey.pending_count())

    def check(self) -> None:
        """Raise when the queue cannot be reached (readiness)."""
        if self.immediate:
            return
        conn = getattr(self.huey.storage, "conn", None)
        if conn is not None and hasattr(conn, "ping"):
            conn.ping()  # Redis
        else:
            self.huey.pending_count()  # SQLite: a query on its file

    @property
    def immediate(self) -> bool:
        return bool(self.huey.immediate)

    def dispatch(self, job_id: str) -> None:
        self._task(job_id)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.runtime.settings.jobs_lease_seconds)

    def resume(self) -> list[str]:
        """At start-up: every queued job again, and running ones whose process died."""
        return resume_stuck_jobs(self.sessions, self.dispatch, running_for=self.lease)

    def _start_reaper(self) -> None:
        """While this process runs workers: pick up, within a lease, the jobs of any
        process that died (and queued jobs whose message was lost)."""

        def reap() -> None:
            while not self._stopping.wait(self.lease.total_seconds() / 2):
                try:
                    resume_stuck_jobs(
                        self.sessions, self.dispatch, running_for=self.lease, queued_for=self.lease
                    )
                except Exception:  # the database may be briefly away; try next round
                    log.warning("resuming stuck jobs failed", exc_info=True)

        self._stopping.clear()
        self._reaper = threading.Thread(target=reap, name="jobs-reaper", daemon=True)
        self._reaper.start()

    def start_consumer(self, workers: int = 2) -> None:
        """Run workers in threads of this process (the embedded default)."""
        if self.immediate:
            return
        with self._lock:
            if self._consumer is None:
                self._consumer = _InProcessConsumer(
                    self.huey,
                    workers=workers,
                    worker_type="thread",
                    periodic=False,
                    initial_delay=0.05,
                    max_delay=1.0,
                )
                self._consumer.start()
                self._start_reaper()

    def stop_consumer(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._consumer is not None:
                self._consumer.stop(graceful=True)
                self._consumer = None

    def close(self) -> None:
        """Stop workers and release the queue's connections (Redis pool, SQLite handle)."""
        self.stop_consumer()
        storage = self.huey.storage
        pool = getattr(getattr(storage, "conn", None), "connection_pool", None)
        if pool is not None:
            pool.disconnect()
        elif hasattr(storage, "close"):
            storage.close()

    def run_worker(self, workers: int) -> None:
        """Blocking worker for ``fairtrain worker`` (signals handled by Huey)."""
        consumer = self.huey.create_consumer(workers=workers, worker_type="thread", periodic=False)
        self._start_reaper()
        try:
            consumer.run()
        finally:
            self._stopping.set()
