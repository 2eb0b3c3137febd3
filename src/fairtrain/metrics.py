"""Prometheus metrics: request latency by route template, job durations and failures,
queue depth and jobs by state.

Each process keeps its own counters (``REGISTRY``); an API process serves them with the
database's and queue's gauges at ``GET /metrics``, a ``fairtrain worker`` process on its
own loopback port (``--metrics-port``). Labels are route *templates* and job kinds, never
ids, so the number of series stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fairtrain.jobs.models import Job

__all__ = [
    "HTTP_LATENCY",
    "JOB_DURATION",
    "JOB_FAILURES",
    "REGISTRY",
    "JobsCollector",
    "exposition",
]

REGISTRY = CollectorRegistry()

HTTP_LATENCY = Histogram(
    "fairtrain_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
JOB_DURATION = Histogram(
    "fairtrain_job_duration_seconds",
    "Time a background job ran, by kind and outcome (succeeded, retrying, failed).",
    ["kind", "outcome"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
JOB_FAILURES = Counter(
    "fairtrain_job_failures_total",
    "Job runs that failed, by kind and whether the failure was final (no retry left).",
    ["kind", "final"],
    registry=REGISTRY,
)


class JobsCollector(Collector):
    """Read at each scrape: messages waiting in the queue, and job rows by state."""

    def __init__(
        self, sessions: Callable[[], sessionmaker[Session]], pending: Callable[[], int]
    ) -> None:
        self.sessions = sessions  # looked up at each scrape (tests swap the factory)
        self.pending = pending

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "fairtrain_queue_depth", "Job messages waiting in the queue (Huey pending count)."
        )
        depth.add_metric([], float(self.pending()))
        yield depth
        states = GaugeMetricFamily(
            "fairtrain_jobs", "Background jobs in the database, by kind and state.",
            labels=["kind", "state"],
        )  # fmt: skip
        with self.sessions()() as session:
            rows = session.execute(
                select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
            )
            for kind, state, number in rows:
                states.add_metric([kind, str(state)], float(number))
        yield states


def exposition(extra: CollectorRegistry | None = None) -> bytes:
    """The text format of this process's metrics (and of ``extra``'s collectors)."""
    body = generate_latest(REGISTRY)
    return body + generate_latest(extra) if extra is not None else body
