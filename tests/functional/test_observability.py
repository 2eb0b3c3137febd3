"""Operations endpoints: readiness checks the database, the vault's store and the job
queue; ``/metrics`` (operators, or the metrics token) exposes request latency by route
template, job durations and failures, queue depth and jobs by state."""

from __future__ import annotations

import shutil
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker
from tests.factories import sign_up_contributor, sign_up_staff

from fairtrain.app import create_app
from fairtrain.config import Settings
from fairtrain.jobs.models import Job, JobState
from fairtrain.jobs.service import enqueue_job, run_job


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_readyz_checks_database_store_and_queue(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "store": "ok", "queue": "ok"}


def test_readyz_says_which_dependency_is_down(settings: Settings, client: TestClient) -> None:
    if settings.vault_url is not None:  # the S3 store: stop answering by losing its bucket
        client.app.state.runtime.vault.backend.bucket = "no-such-bucket-here"  # type: ignore[attr-defined]
    else:
        # The local store: its directory replaced by a file.
        shutil.rmtree(settings.data_dir / "vault", ignore_errors=True)
        (settings.data_dir / "vault").write_text("not a directory")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready" and "store" in body["detail"]
    assert body["checks"]["database"] == "ok" and body["checks"]["store"].startswith("unavailable")


def test_metrics_for_operators_and_the_token_only(
    settings: Settings, session_factory: sessionmaker[Session], db: Session, make_client: Any
) -> None:
    tokened = settings.model_copy(update={"metrics_token": SecretStr("scrape-" + "x" * 30)})
    app = create_app(tokened)
    app.state.sessions = session_factory
    app.state.jobs.sessions = session_factory
    with TestClient(app, base_url="http://testserver") as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/api/v1/assets/ast_nothing").status_code in (401, 404)
        assert anonymous.get("/metrics").status_code == 401
        wrong = anonymous.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        contributor = sign_up_contributor(anonymous)
        assert contributor.client.get("/metrics").status_code == 403
        contributor.client.cookies.clear()
        # A job that fails (its kind has no handler) counts as a failure and a duration.
        job = enqueue_job(db, lambda _: None, kind="no_such_kind", subject="test", payload={})
        db.commit()
        run_job(session_factory, job.id, app.state.runtime)
        assert db.get(Job, job.id).state == JobState.QUEUED  # type: ignore[union-attr]
        scraped = anonymous.get("/metrics", headers={"Authorization": "Bearer scrape-" + "x" * 30})
        assert scraped.status_code == 200, scraped.text
        assert scraped.headers["content-type"].startswith("text/plain")
        families = _families(scraped.text)
        latency = families["fairtrain_http_request_duration_seconds"]
        routes = {s.labels["route"] for s in latency.samples if s.name.endswith("_count")}
        assert "/healthz" in routes and "/api/v1/assets/{asset_id}" in routes
        assert not any("ast_nothing" in route for route in routes)  # templates, not ids
        failures = families["fairtrain_job_failures"]
        assert any(
            s.labels == {"kind": "no_such_kind", "final": "false"} and s.value >= 1
            for s in failures.samples
        )
        durations = families["fairtrain_job_duration_seconds"]
        assert any(s.labels.get("outcome") == "retrying" for s in durations.samples)
        assert families["fairtrain_queue_depth"].samples[0].value == 0
        jobs = families["fairtrain_jobs"]
        assert any(
            s.labels == {"kind": "no_such_kind", "state": "queued"} and s.value == 1
            for s in jobs.samples
        )
    operator = sign_up_staff(make_client(), db, app.state.passwords, "operator")
    assert operator.client.get("/metrics").status_code == 200
