"""Enqueueing, running and resuming jobs.

A job row is written in the caller's transaction; the queue message is sent only after
commit (``after_commit``), so a worker never sees a job whose data was rolled back. The
queue (Huey: SQLite embedded, Redis at scale) carries only job ids; the database row is
the truth, so a lost message is recovered by ``resume_stuck_jobs``.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from fairtrain.runtime import Runtime

from fairtrain.audit.service import append_event
from fairtrain.db import after_commit
from fairtrain.errors import DomainError, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.jobs.models import FINAL_STATES, Job, JobState
from fairtrain.jobs.registry import handler_for
from fairtrain.metrics import JOB_DURATION, JOB_FAILURES

__all__ = ["LEASE", "enqueue_job", "get_job", "resume_stuck_jobs", "run_job"]

log = logging.getLogger("fairtrain.jobs")
Dispatcher = Callable[[str], None]


def enqueue_job(
    session: Session,
    dispatch: Dispatcher,
    *,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    owner: str | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 3,
) -> Job:
    if dedupe_key is not None:
        existing = session.scalar(
            select(Job).where(
                Job.kind == kind,
                Job.dedupe_key == dedupe_key,
                Job.state.in_([JobState.QUEUED, JobState.RUNNING]),
            )
        )
        if existing is not None:
            return existing
    now = utcnow()
    job = Job(
        id=new_id("job"),
        kind=kind,
        subject=subject,
        dedupe_key=dedupe_key,
        payload=payload,
        state=JobState.QUEUED,
        attempts=0,
        max_attempts=max_attempts,
        owner=owner,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    append_event(
        session,
        actor="system",
        action="job.enqueued",
        subject=f"job:{job.id}",
        payload={"kind": kind, "for": subject},
    )
    job_id = job.id
    after_commit(session, lambda: dispatch(job_id))
    return job


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("No such job.", code="job_not_found")
    return job


def _claim(sessions: sessionmaker[Session], job_id: str) -> dict[str, Any] | None:
    """Move a queued job to running, atomically; None when another worker has it."""
    with sessions() as session, session.begin():
        claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.QUEUED)
            .values(state=JobState.RUNNING, attempts=Job.attempts + 1, updated_at=utcnow())
        )
        if claimed.rowcount != 1:
            return None
        job = session.get(Job, job_id)
        assert job is not None
        return {
            "kind": job.kind,
            "payload": dict(job.payload),
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            "subject": job.subject,
        }


# A running job's row is touched every lease/4 by the process running it; a job whose
# row has not been touched for a lease (FAIRTRAIN_JOBS_LEASE_SECONDS) belongs to a process
# that died, and any live process puts it back in the queue (handlers are idempotent, so
# running it again is safe).
LEASE = timedelta(seconds=45)


@contextmanager
def _heartbeat(sessions: sessionmaker[Session], job_id: str, lease: timedelta) -> Iterator[None]:
    stop = threading.Event()
    every = lease.total_seconds() / 4

    def beat() -> None:
        while not stop.wait(every):
            try:
                with sessions() as session, session.begin():
                    session.execute(
                        update(Job)
                        .where(Job.id == job_id, Job.state == JobState.RUNNING)
                        .values(updated_at=utcnow())
                    )
            except Exception:  # a missed beat only delays nothing; never kill the job
                log.warning("job heartbeat failed", extra={"fields": {"job": job_id}})

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)


def run_job(sessions: sessionmaker[Session], job_id: str, runtime: Runtime) -> JobState | None:
    """Run one job in its own transaction; record the outcome in another."""
    claim = _claim(sessions, job_id)
    if claim is None:
        return None
    lease = timedelta(seconds=runtime.settings.jobs_lease_seconds)
    with _heartbeat(sessions, job_id, lease):
        return _run_claimed(sessions, job_id, claim, runtime)


def _run_claimed(
    sessions: sessionmaker[Session], job_id: str, claim: dict[str, Any], runtime: Runtime
) -> JobState:
    error: str | None = None
    permanent = False
    started = time.perf_counter()
    try:
        with sessions() as session, session.begin():
            handler_for(claim["kind"])(session, claim["payload"], runtime)
            job = session.get(Job, job_id)
            assert job is not None
            job.state = JobState.SUCCEEDED
            job.updated_at = job.finished_at = utcnow()
            job.last_error = None
            append_event(
                session,
                actor="system",
                action="job.succeeded",
                subject=f"job:{job_id}",
                payload={"kind": claim["kind"]},
            )
        JOB_DURATION.labels(claim["kind"], "succeeded").observe(time.perf_counter() - started)
        return JobState.SUCCEEDED
    except DomainError as exc:
        # The input itself is refused (e.g. a corrupt upload): retrying cannot help.
        error, permanent = f"{exc.code}: {exc.detail}", True
    except Exception:  # a crash in a handler must not kill the worker
        error = traceback.format_exc(limit=5)
        log.exception("job failed", extra={"fields": {"job": job_id, "kind": claim["kind"]}})
    final = permanent or claim["attempts"] >= claim["max_attempts"]
    outcome = "failed" if final else "retrying"
    JOB_DURATION.labels(claim["kind"], outcome).observe(time.perf_counter() - started)
    JOB_FAILURES.labels(claim["kind"], str(final).lower()).inc()
    with sessions() as session, session.begin():
        job = session.get(Job, job_id)
        assert job is not None
        job.state = JobState.FAILED if final else JobState.QUEUED
        job.last_error = error
        job.updated_at = utcnow()
        if final:
            job.finished_at = job.updated_at
        append_event(
            session,
            actor="system",
            action="job.failed" if final else "job.retrying",
            subject=f"job:{job_id}",
            payload={"kind": claim["kind"], "attempt": claim["attempts"]},
        )
    return JobState.FAILED if final else JobState.QUEUED


def resume_stuck_jobs(
    sessions: sessionmaker[Session],
    dispatch: Dispatcher,
    *,
    running_for: timedelta = LEASE,
    queued_for: timedelta = timedelta(0),
) -> list[str]:
    """Re-queue jobs left running by a dead process, and re-dispatch queued ones.

    A job 'running' whose heartbeat is older than ``running_for`` belonged to a process
    that died. Queued jobs untouched for ``queued_for`` are dispatched again (at start-up
    all of them; a second dispatch of a job already in the queue is harmless: only one
    worker can claim it).
    """
    now = utcnow()
    with sessions() as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.state == JobState.RUNNING, Job.updated_at < now - running_for)
            .values(state=JobState.QUEUED, updated_at=now - queued_for - timedelta(seconds=1))
        )
        pending = list(
            session.scalars(
                select(Job.id).where(
                    Job.state == JobState.QUEUED, Job.updated_at <= now - queued_for
                )
            )
        )
    for job_id in pending:
        dispatch(job_id)
    return pending


def is_final(state: JobState) -> bool:
    return state in FINAL_STATES
