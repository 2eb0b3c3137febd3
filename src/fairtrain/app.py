"""Builds the ASGI app: settings, database, routers, pages, middleware and error handlers."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from sqlalchemy import text
from sqlalchemy.orm import Session

from fairtrain import __version__
from fairtrain.accounts.api import router as accounts_router
from fairtrain.accounts.models import UserKind
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.audit.api import router as audit_router
from fairtrain.audit.keys import platform_signing_key
from fairtrain.audit.service import sign_checkpoints_every
from fairtrain.bootstrap import prepare_settings
from fairtrain.catalog.api import router as catalog_router
from fairtrain.catalog.campaign_api import router as campaign_router
from fairtrain.compliance.api import router as compliance_router
from fairtrain.config import Settings, get_settings
from fairtrain.consent.api import router as consent_router
from fairtrain.consent.expiry import expiry_task
from fairtrain.datasets.api import router as datasets_router
from fairtrain.db import make_engine, make_session_factory
from fairtrain.delivery.api import router as delivery_router
from fairtrain.deps import SessionDep, get_principal
from fairtrain.errors import AuthenticationRequired, Forbidden
from fairtrain.ingest.api import router as ingest_router
from fairtrain.ingest.service import UploadContext
from fairtrain.ingest.sniff import Limits, inspect
from fairtrain.jobs.queue import JobQueue
from fairtrain.ledger.api import router as ledger_router
from fairtrain.licensing.api import router as licensing_router
from fairtrain.logs import configure_logging
from fairtrain.metrics import JobsCollector, exposition
from fairtrain.middleware import BodyLimitMiddleware, RequestContextMiddleware
from fairtrain.problems import PROBLEM_RESPONSES, problem_response, register_error_handlers
from fairtrain.runtime import Runtime
from fairtrain.tasks import register_all
from fairtrain.web.asset_pages import router as asset_pages_router
from fairtrain.web.buyer_pages import router as buyer_pages_router
from fairtrain.web.contributor_pages import router as contributor_pages_router
from fairtrain.web.invite_pages import router as invite_pages_router
from fairtrain.web.operator_pages import router as operator_pages_router
from fairtrain.web.org_pages import router as org_pages_router
from fairtrain.web.pages import router as pages_router
from fairtrain.web.withdrawal_pages import router as withdrawal_pages_router
from fairtrain.withdrawal.api import router as withdrawal_router

__all__ = ["UPLOAD_PREFIXES", "create_app", "route_inventory"]

WEB_DIR = Path(__file__).parent / "web"
# Paths whose bodies stream to the vault under per-modality limits instead of the JSON limit.
UPLOAD_PREFIXES = ("/api/v1/uploads",)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = prepare_settings(settings or get_settings())
    configure_logging()
    register_all()  # every job handler, so in-process jobs can run any kind

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs: JobQueue = app.state.jobs
        # Consent whose end date passed is expired by whichever process runs workers.
        expiry = None
        if settings.jobs_in_process and not jobs.immediate:
            jobs.resume()
            jobs.start_consumer(settings.jobs_in_process_workers)
            expiry = expiry_task(settings, app.state.sessions)
            if expiry is not None:
                expiry.start()
        try:
            yield
        finally:
            if expiry is not None:
                expiry.stop()
            jobs.close()
            app.state.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="fairtrain",
        version=__version__,
        summary="License your own data for AI training on terms you set, read, check and withdraw.",
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    engine = make_engine(settings.effective_database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
    # Every Nth audit event signs a Merkle checkpoint in the same transaction; the audit
    # status checks the latest one against the platform's public key.
    signing_key = platform_signing_key(settings)
    sign_checkpoints_every(app.state.sessions, signing_key, settings.audit_checkpoint_every)
    app.state.audit_public_key = signing_key.public_key()
    runtime = Runtime(settings)
    app.state.runtime = runtime
    app.state.jobs = JobQueue(settings.effective_jobs_url, app.state.sessions, runtime)
    app.state.upload_context = upload_context(settings, runtime, app.state.jobs.dispatch)
    app.state.open_blob = runtime.vault.open_blob
    app.state.passwords = PasswordPolicy(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    templates.env.globals["version"] = __version__
    app.state.templates = templates

    register_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_json_body_bytes,
        exempt_prefixes=UPLOAD_PREFIXES,
    )
    app.add_middleware(RequestContextMiddleware)

    app.include_router(accounts_router, responses=PROBLEM_RESPONSES)
    app.include_router(audit_router, responses=PROBLEM_RESPONSES)
    app.include_router(catalog_router, responses=PROBLEM_RESPONSES)
    app.include_router(campaign_router, responses=PROBLEM_RESPONSES)
    app.include_router(datasets_router, responses=PROBLEM_RESPONSES)
    app.include_router(licensing_router, responses=PROBLEM_RESPONSES)
    app.include_router(compliance_router, responses=PROBLEM_RESPONSES)
    app.include_router(delivery_router, responses=PROBLEM_RESPONSES)
    app.include_router(consent_router, responses=PROBLEM_RESPONSES)
    app.include_router(ingest_router, responses=PROBLEM_RESPONSES)
    app.include_router(ledger_router, responses=PROBLEM_RESPONSES)
    app.include_router(withdrawal_router, responses=PROBLEM_RESPONSES)
    app.include_router(pages_router)
    app.include_router(org_pages_router)
    app.include_router(asset_pages_router)
    app.include_router(invite_pages_router)
    app.include_router(buyer_pages_router)
    app.include_router(contributor_pages_router)
    app.include_router(operator_pages_router)
    app.include_router(withdrawal_pages_router)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")

    @app.get("/healthz", tags=["operations"], summary="The process is up.")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database, the vault's store and the job queue answer.",
        responses={503: PROBLEM_RESPONSES[401] | {"description": "Not ready."}},
    )
    def readyz(request: Request) -> Response:
        checks = readiness(request.app)
        failing = [name for name, state in checks.items() if state != "ok"]
        if failing:
            return problem_response(
                request,
                status=503,
                code="not_ready",
                detail=f"Not answering: {', '.join(failing)}.",
                extra={"checks": checks},
            )
        return JSONResponse({"status": "ready", **checks})

    jobs_metrics = CollectorRegistry()
    jobs_metrics.register(JobsCollector(lambda: app.state.sessions, app.state.jobs.pending))

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of this process (operators, or the metrics token).",
        response_class=PlainTextResponse,
        responses={401: PROBLEM_RESPONSES[401], 403: PROBLEM_RESPONSES[403]},
    )
    async def metrics(request: Request, session: SessionDep) -> Response:
        if not _metrics_token_presented(request, settings):
            principal = await get_principal(request, session, settings)
            if not principal.is_authenticated:
                raise AuthenticationRequired(
                    "Log in as an operator or send the metrics token.", code="login_required"
                )
            if principal.kind != UserKind.OPERATOR:
                raise Forbidden("Only operators read the metrics.", code="role_forbidden")
        body = await anyio.to_thread.run_sync(exposition, jobs_metrics)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app


def readiness(app: FastAPI) -> dict[str, str]:
    """Each dependency a request may need, "ok" or why not (the error's class only:
    details may carry addresses)."""
    checks: dict[str, str] = {}
    probes: dict[str, Callable[[], object]] = {
        "database": lambda: _select_one(app),
        "store": lambda: app.state.runtime.vault.backend.check(),
        "queue": lambda: app.state.jobs.check(),
    }
    for name, probe in probes.items():
        try:
            probe()
        except Exception as error:  # any failure means "not ready", never a crash
            checks[name] = f"unavailable ({type(error).__name__})"
        else:
            checks[name] = "ok"
    return checks


def _select_one(app: FastAPI) -> None:
    with app.state.sessions() as session:
        session.execute(text("SELECT 1"))


def _metrics_token_presented(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is None:
        return False
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), expected)


def upload_context(
    settings: Settings, runtime: Runtime, dispatch: Callable[[str], None]
) -> UploadContext:
    """How uploads are stored and checked in this process (the vault, the sniffer)."""
    vault = runtime.vault
    limits = Limits.from_settings(settings)

    def delete_blob(session: Session, blob_id: str) -> None:
        vault.delete_blob(session, blob_id)

    return UploadContext(
        store_blob=vault.store_blob,
        delete_blob=delete_blob,
        inspect=partial(inspect, limits=limits),
        scratch_dir=settings.data_dir / "scratch",
        max_upload_bytes=settings.max_upload_bytes,
        dispatch=dispatch,
    )


def route_inventory(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, including routes of included routers.

    The authorisation matrix test and the API docs test both start from this list, so a
    new route cannot go unchecked or undocumented.
    """
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for context in contexts:
            path = getattr(context, "path", None)
            methods = getattr(context, "methods", None) or set()
            if path is None or path.startswith("/static"):
                continue
            for method in methods:
                # HEAD is checked as part of its GET, unless it is a route of its own.
                if method != "HEAD" or "GET" not in methods:
                    found.add((method, path))
    return sorted(found, key=lambda item: (item[1], item[0]))
