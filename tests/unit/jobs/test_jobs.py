"""Jobs: enqueued after commit only, run once, retried, resumed after a crash, and run by
real Huey consumers over SQLite storage and over Redis."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tests.conftest import make_test_settings

from fairtrain.audit.service import verify_stored_chain
from fairtrain.db import Base, make_engine, make_session_factory
from fairtrain.errors import InvalidInput
from fairtrain.jobs.models import Job, JobState
from fairtrain.jobs.queue import JobQueue
from fairtrain.jobs.registry import job_handler
from fairtrain.jobs.service import enqueue_job, resume_stuck_jobs, run_job
from fairtrain.models import metadata
from fairtrain.runtime import Runtime

CALLS: list[dict[str, Any]] = []


@job_handler("test.record")
def record(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    CALLS.append(payload)
    if payload.get("fail_times", 0) >= len([c for c in CALLS if c == payload]):
        raise RuntimeError("transient failure")


@job_handler("test.refuse")
def refuse(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    raise InvalidInput("This input can never be processed.", code="corrupt_media")


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs-test.db'}")
    assert metadata is Base.metadata
    metadata.create_all(engine)
    CALLS.clear()
    return make_session_factory(engine)


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return Runtime(make_test_settings(tmp_path, f"sqlite:///{tmp_path / 'jobs-test.db'}"))


def test_dispatch_happens_only_after_commit(sessions: sessionmaker[Session]) -> None:
    dispatched: list[str] = []
    with sessions() as session:
        enqueue_job(session, dispatched.append, kind="test.record", subject="t:1", payload={"n": 1})
        session.rollback()
    assert dispatched == []
    with sessions() as session:
        job = enqueue_job(
            session, dispatched.append, kind="test.record", subject="t:1", payload={"n": 1}
        )
        assert dispatched == []
        session.commit()
    assert dispatched == [job.id]


def test_retry_then_success_and_audit(sessions: sessionmaker[Session], runtime: Runtime) -> None:
    with sessions() as session:
        job = enqueue_job(
            session,
            lambda _id: None,
            kind="test.record",
            subject="t:2",
            payload={"fail_times": 1},
        )
        session.commit()
    assert run_job(sessions, job.id, runtime) is JobState.QUEUED  # first attempt failed, will retry
    assert run_job(sessions, job.id, runtime) is JobState.SUCCEEDED
    assert run_job(sessions, job.id, runtime) is None  # already final: never runs twice
    with sessions() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and stored.attempts == 2 and stored.finished_at is not None
        assert verify_stored_chain(session)[0]


def test_refused_input_fails_at_once_without_retry(
    sessions: sessionmaker[Session], runtime: Runtime
) -> None:
    with sessions() as session:
        job = enqueue_job(session, lambda _id: None, kind="test.refuse", subject="t:3", payload={})
        session.commit()
    assert run_job(sessions, job.id, runtime) is JobState.FAILED
    with sessions() as session:
        stored = session.get(Job, job.id)
        assert stored is not None
        assert stored.attempts == 1
        assert stored.last_error is not None and stored.last_error.startswith("corrupt_media")


def test_dedupe_key_enqueues_once_while_pending(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        first = enqueue_job(
            session,
            lambda _id: None,
            kind="test.record",
            subject="t:4",
            payload={},
            dedupe_key="asset-1",
        )
        second = enqueue_job(
            session,
            lambda _id: None,
            kind="test.record",
            subject="t:4",
            payload={},
            dedupe_key="asset-1",
        )
        session.commit()
    assert first.id == second.id


def test_jobs_left_running_by_a_dead_worker_are_resumed(
    sessions: sessionmaker[Session], runtime: Runtime
) -> None:
    queue = JobQueue("immediate", sessions, runtime)
    with sessions() as session:
        job = enqueue_job(
            session, lambda _id: None, kind="test.record", subject="t:5", payload={"n": 5}
        )
        session.commit()
        # Simulate a worker that claimed the job and was killed.
        stored = session.get(Job, job.id)
        assert stored is not None
        stored.state = JobState.RUNNING
        session.commit()
    assert queue.resume() == []  # its heartbeat is fresh: a live process may be running it
    taken = resume_stuck_jobs(sessions, queue.dispatch, running_for=timedelta(seconds=-1))
    assert taken == [job.id]
    with sessions() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and stored.state == JobState.SUCCEEDED


def _wait_final(sessions: sessionmaker[Session], job_id: str, seconds: float = 20) -> JobState:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with sessions() as session:
            state = session.scalar(select(Job.state).where(Job.id == job_id))
        if state in (JobState.SUCCEEDED, JobState.FAILED):
            return JobState(state)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {seconds}s")


@pytest.mark.parametrize(
    "backend",
    ["sqlite", "redis"],
)
def test_real_consumer_runs_jobs(
    backend: str, sessions: sessionmaker[Session], tmp_path: Path, runtime: Runtime
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.db'}"
    else:
        url = "redis://127.0.0.1:6379/15"
    queue = JobQueue(url, sessions, runtime)
    if backend == "redis":
        queue.huey.storage.flush_queue()
    queue.start_consumer(workers=2)
    try:
        marker = secrets.token_hex(4)
        with sessions() as session:
            job = enqueue_job(
                session,
                queue.dispatch,
                kind="test.record",
                subject="t:6",
                payload={"marker": marker},
            )
            session.commit()
        assert _wait_final(sessions, job.id) is JobState.SUCCEEDED
        assert {"marker": marker} in CALLS
    finally:
        queue.close()


@job_handler("test.slow")
def slow(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    time.sleep(float(payload["seconds"]))


def test_a_running_job_keeps_its_lease_and_a_dead_ones_is_taken_over(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The process running a job touches it every quarter lease; a job nobody touched
    for a lease is re-queued by any live process's reaper and finishes."""
    settings = make_test_settings(tmp_path, f"sqlite:///{tmp_path / 'jobs-test.db'}")
    runtime = Runtime(settings.model_copy(update={"jobs_lease_seconds": 1.0}))
    with sessions() as session:
        job = enqueue_job(
            session, lambda _id: None, kind="test.slow", subject="t:7", payload={"seconds": 1.6}
        )
        session.commit()
    outcome: list[JobState | None] = []
    worker = threading.Thread(target=lambda: outcome.append(run_job(sessions, job.id, runtime)))
    worker.start()
    time.sleep(0.2)
    with sessions() as session:
        claimed = session.get(Job, job.id)
        assert claimed is not None and claimed.state == JobState.RUNNING
        at_claim = claimed.updated_at
    time.sleep(0.9)
    with sessions() as session:
        beating = session.get(Job, job.id)
        assert beating is not None and beating.state == JobState.RUNNING
        assert beating.updated_at > at_claim  # touched while it runs
    worker.join()
    assert outcome == [JobState.SUCCEEDED]
    # A job claimed by a process that then died: nobody touches it any more.
    with sessions() as session:
        dead = enqueue_job(
            session, lambda _id: None, kind="test.record", subject="t:8", payload={"n": 8}
        )
        session.commit()
        row = session.get(Job, dead.id)
        assert row is not None
        row.state = JobState.RUNNING
        session.commit()
    queue = JobQueue(f"sqlite:///{tmp_path / 'huey.db'}", sessions, runtime)
    queue.start_consumer(workers=1)
    try:
        assert _wait_final(sessions, dead.id, seconds=15) == JobState.SUCCEEDED
    finally:
        queue.close()
