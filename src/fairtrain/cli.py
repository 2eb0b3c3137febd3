"""The ``fairtrain`` command: the product's front door for operators and scripts."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fairtrain import __version__
from fairtrain.accounts import service as accounts
from fairtrain.accounts.models import UserKind
from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.audit.cli import app as audit_app
from fairtrain.bootstrap import InsecureConfiguration, prepare_settings
from fairtrain.catalog.cli import app as catalog_app
from fairtrain.client.cli import data_app
from fairtrain.compliance.cli import app as compliance_app
from fairtrain.config import Mode, Settings, get_settings, reset_settings_cache
from fairtrain.consent.cli import app as consent_app
from fairtrain.db import make_engine, make_session_factory, session_scope
from fairtrain.delivery.cli import exports_app
from fairtrain.delivery.cli import trace as trace_command
from fairtrain.errors import DomainError
from fairtrain.ledger.cli import app as ledger_app
from fairtrain.licensing.cli import app as licensing_app
from fairtrain.memory import configure_malloc
from fairtrain.privacy.cli import app as privacy_app
from fairtrain.vault.cli import app as vault_app
from fairtrain.withdrawal.cli import app as notices_app
from fairtrain.withdrawal.cli import withdraw_command

__all__ = ["app"]

app = typer.Typer(
    name="fairtrain",
    help="fairtrain: license your own data for AI training on terms you set.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
db_app = typer.Typer(help="Database schema: apply migrations.", no_args_is_help=True)
users_app = typer.Typer(help="Create accounts from the command line.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(catalog_app, name="catalog")
app.add_typer(compliance_app, name="compliance")
app.add_typer(consent_app, name="consent")
app.add_typer(data_app, name="data")
app.add_typer(exports_app, name="exports")
app.add_typer(licensing_app, name="licences")
app.add_typer(ledger_app, name="ledger")
app.add_typer(privacy_app, name="privacy")
app.add_typer(vault_app, name="vault")
app.add_typer(notices_app, name="notices")
app.command("withdraw")(withdraw_command)
# One command, not a group: `fairtrain trace FILES…` (the watermark layer's core, fed from
# the database; `--candidates` keeps its offline form).
app.command("trace")(trace_command)

console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"fairtrain {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """fairtrain: license your own data for AI training on terms you set."""


def _passwords(settings: Settings) -> PasswordPolicy:
    return PasswordPolicy(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (safe to run from several processes at once)."""
    from fairtrain.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine, revision)
    engine.dispose()
    console.print(f"Database at revision [bold]{revision}[/bold].")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Login e-mail address.")],
    kind: Annotated[UserKind, typer.Option(help="operator or auditor.")],
    display_name: Annotated[str, typer.Option("--name", help="Display name.")],
    password: Annotated[
        str | None,
        typer.Option(
            help="Password; read from FAIRTRAIN_NEW_PASSWORD or prompted when omitted.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create an operator or auditor account (contributors and buyers sign up themselves)."""
    settings = get_settings()
    secret = password or os.environ.get("FAIRTRAIN_NEW_PASSWORD")
    if secret is None:
        secret = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(settings.effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = accounts.create_staff_user(
                session,
                _passwords(settings),
                kind=kind,
                email=email,
                password=secret,
                display_name=display_name,
                actor="system:cli",
            )
            result = {"id": user.id, "email": user.email, "kind": str(user.kind)}
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    finally:
        engine.dispose()
    if as_json:
        console.print_json(json.dumps(result))
    else:
        console.print(f"Created {result['kind']} {result['email']} ({result['id']}).")


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Demo mode: local SQLite, demo accounts, dev keys.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn).")] = 1,
) -> None:
    """Serve the web app and the API."""
    import uvicorn

    from fairtrain.demo import seed_demo, seed_marketplace
    from fairtrain.migrate import upgrade
    from fairtrain.runtime import Runtime

    if demo:
        os.environ["FAIRTRAIN_MODE"] = Mode.DEMO.value
        reset_settings_cache()
    try:
        settings = prepare_settings(get_settings())
    except InsecureConfiguration as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    # Before any thread starts (the seeding's models, uvicorn's pool, in-process workers).
    configure_malloc(settings.malloc_arena_max, settings.malloc_mmap_threshold)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    if demo:
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            logins = seed_demo(session, _passwords(settings))
        with console.status("Preparing the demo marketplace (first start only)…"):
            seed_marketplace(sessions, settings, Runtime(settings))
        table = Table(title=f"fairtrain demo on http://{host}:{port}")
        for column in ("role", "e-mail", "password"):
            table.add_column(column)
        for login in logins:
            table.add_row(login.role, login.email, login.password)
        console.print(table)
    engine.dispose()
    if settings.memory_trace_path is not None:
        from fairtrain.memory import MemoryTrace

        # Before the app is imported, so its allocations are traced too.
        MemoryTrace(
            settings.memory_trace_path,
            settings.memory_trace_every_seconds,
            settings.memory_trace_frames,
        ).start()
    uvicorn.run(
        "fairtrain.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        # fairtrain's own access log (middleware) keeps invite tokens out of its paths.
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def upload(
    files: Annotated[
        list[Path], typer.Argument(help="Files to upload (type is read from the bytes).")
    ],
    server: Annotated[
        str, typer.Option(envvar="FAIRTRAIN_SERVER", help="The server's base URL.")
    ] = "http://127.0.0.1:8000",
    email: Annotated[
        str | None, typer.Option(envvar="FAIRTRAIN_EMAIL", help="Your login e-mail.")
    ] = None,
    state_file: Annotated[
        Path,
        typer.Option(help="Where unfinished resumable uploads are remembered."),
    ] = Path("~/.cache/fairtrain/uploads.json"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the assets as JSON.")] = False,
) -> None:
    """Upload your files with a progress bar; large files resume after an interruption.

    The password is read from FAIRTRAIN_PASSWORD or prompted for.
    """
    import httpx
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from fairtrain.client.uploads import UploadClient, UploadFailed, UploadState

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        err_console.print(f"[red]Not a readable file:[/red] {', '.join(missing)}")
        raise typer.Exit(code=2)
    login = email or typer.prompt("E-mail")
    secret = os.environ.get("FAIRTRAIN_PASSWORD") or typer.prompt("Password", hide_input=True)
    results: list[dict[str, object]] = []
    failures = 0
    with httpx.Client(base_url=server, timeout=httpx.Timeout(60.0, connect=10.0)) as http:
        client = UploadClient(http, state=UploadState(state_file.expanduser()))
        try:
            client.log_in(login, secret)
        except (UploadFailed, httpx.HTTPError) as error:
            err_console.print(f"[red]Cannot log in:[/red] {error}")
            raise typer.Exit(code=2) from error
        columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=err_console, disable=as_json) as progress:
            for file in files:
                task = progress.add_task(file.name, total=file.stat().st_size)
                try:
                    asset = client.upload(file, partial(progress.advance, task))
                except (UploadFailed, httpx.HTTPError) as error:
                    failures += 1
                    err_console.print(f"[red]{file.name} refused:[/red] {error}")
                    results.append({"file": str(file), "error": str(error)})
                    continue
                results.append({"file": str(file), "asset": asset})
    if as_json:
        console.print_json(json.dumps(results))
    else:
        for result in results:
            asset_info = result.get("asset")
            if isinstance(asset_info, dict):
                console.print(
                    f"{result['file']}: asset {asset_info['id']} "
                    f"({asset_info['modality']}, {asset_info['state']})"
                )
    if failures:
        raise typer.Exit(code=1)


backup_app = typer.Typer(
    help="Backups: the database, the vault's ciphertext, and the keys (kept apart).",
    no_args_is_help=True,
)
app.add_typer(backup_app, name="backup")


@backup_app.command("create")
def backup_create(
    out: Annotated[Path, typer.Argument(help="An empty directory for the backup.")],
    keys: Annotated[
        Path, typer.Option("--keys", help="An empty directory elsewhere for the keys.")
    ],
) -> None:
    """Copy the database (consistently, while serving), then every vault object, into OUT;
    the key-encryption and signing keys into --keys (store them apart from the backup)."""
    from fairtrain.backup import create_backup

    try:
        summary = create_backup(get_settings(), out, keys)
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    console.print(
        f"Backed up the database ({summary.database}) and {summary.objects} vault object(s), "
        f"{summary.bytes:,} bytes, to {out}; keys to {keys}."
    )


@backup_app.command("verify")
def backup_verify(
    backup: Annotated[Path, typer.Argument(help="A backup directory.")],
    keys: Annotated[Path | None, typer.Option("--keys", help="Its keys directory.")] = None,
) -> None:
    """Check every file of a backup against its manifest (and the keys, if given)."""
    from fairtrain.backup import verify_backup

    problems = verify_backup(backup, keys)
    for problem in problems:
        err_console.print(f"[red]{problem}[/red]")
    if problems:
        raise typer.Exit(code=1)
    console.print("The backup is complete and unchanged.")


@backup_app.command("restore")
def backup_restore(
    backup: Annotated[Path, typer.Argument(help="A backup directory.")],
    keys: Annotated[Path, typer.Option("--keys", help="Its keys directory.")],
) -> None:
    """Restore into the empty database, store and key files the settings name, then
    check the platform (audit chain, every blob decrypts …). Exit 1 on any finding."""
    from datetime import timedelta

    from fairtrain.backup import restore_backup
    from fairtrain.cli_support import cli_session
    from fairtrain.consistency import check_platform
    from fairtrain.vault.backends import backend_from_url
    from fairtrain.vault.keys import KeyRing

    settings = get_settings()
    try:
        summary = restore_backup(settings, backup, keys)
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    with cli_session(settings) as session:
        report = check_platform(
            session,
            backend_from_url(settings.effective_vault_url),
            KeyRing.from_settings(settings),
            grace=timedelta(0),
        )
    for finding in report.findings:
        err_console.print(f"[red]{finding.check}[/red] {finding.detail}")
    console.print(
        f"Restored the database and {summary.objects} vault object(s); "
        f"{'every check passed' if report.ok else 'PROBLEMS found'}."
    )
    if not report.ok:
        raise typer.Exit(code=1)


@app.command()
def check(
    grace_minutes: Annotated[
        int, typer.Option(help="Ignore jobs, uploads and objects younger than this.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Check the platform is whole: audit chain, ledger balance, every blob, orphans,
    jobs and assets nothing will finish, the catalogue, licences. Exit 1 on any finding."""
    from datetime import timedelta

    from fairtrain.cli_support import cli_session
    from fairtrain.consistency import check_platform
    from fairtrain.vault.backends import backend_from_url
    from fairtrain.vault.keys import KeyRing

    settings = get_settings()
    with cli_session(settings) as session:
        report = check_platform(
            session,
            backend_from_url(settings.effective_vault_url),
            KeyRing.from_settings(settings),
            grace=timedelta(minutes=grace_minutes),
        )
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "findings": [{"check": f.check, "detail": f.detail} for f in report.findings],
                }
            )
        )
    else:
        for finding in report.findings:
            err_console.print(f"[red]{finding.check}[/red] {finding.detail}")
        counted = ", ".join(f"{n} {what}" for what, n in report.checked.items())
        console.print(f"{'OK' if report.ok else 'PROBLEMS'}: checked {counted}.")
    if not report.ok:
        raise typer.Exit(code=1)


@app.command()
def worker(
    workers: Annotated[int, typer.Option(help="Worker threads in this process.")] = 2,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this process's Prometheus metrics on 127.0.0.1:PORT."),
    ] = None,
) -> None:
    """Run background-job workers against FAIRTRAIN_JOBS_URL (Redis at scale)."""
    from fairtrain.audit.keys import platform_signing_key
    from fairtrain.audit.service import sign_checkpoints_every
    from fairtrain.consent.expiry import expiry_task
    from fairtrain.jobs.queue import JobQueue
    from fairtrain.runtime import Runtime
    from fairtrain.tasks import register_all

    settings = get_settings()
    configure_malloc(settings.malloc_arena_max, settings.malloc_mmap_threshold)
    register_all()
    engine = make_engine(settings.effective_database_url)
    sessions = make_session_factory(engine)
    sign_checkpoints_every(
        sessions, platform_signing_key(settings), settings.audit_checkpoint_every
    )
    queue = JobQueue(settings.effective_jobs_url, sessions, Runtime(settings))
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from fairtrain.metrics import REGISTRY

        start_http_server(metrics_port, addr="127.0.0.1", registry=REGISTRY)
    resumed = queue.resume()
    console.print(f"Resumed {len(resumed)} unfinished job(s); {workers} worker(s) running.")
    expiry = expiry_task(settings, sessions)
    if expiry is not None:
        expiry.start()
    try:
        queue.run_worker(workers)
    finally:
        if expiry is not None:
            expiry.stop()


stack_app = typer.Typer(
    help="A multi-process deployment on this machine (PostgreSQL, Redis, moto S3).",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


@stack_app.command("up")
def stack_up(
    directory: Annotated[
        Path, typer.Option("--dir", help="Keys, data and each process's log go here.")
    ] = Path("var/stack"),
    postgres: Annotated[
        str, typer.Option(help="An admin URL of the PostgreSQL server (a fresh database is made).")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    redis: Annotated[str, typer.Option(help="The Redis database the queue lives in.")] = (
        "redis://127.0.0.1:6379/0"
    ),
    api_port: Annotated[
        list[int] | None, typer.Option(help="A port for one API process (repeat; default 2).")
    ] = None,
    workers: Annotated[int, typer.Option(help="fairtrain worker processes.")] = 2,
    keep: Annotated[bool, typer.Option(help="Keep the database when stopping.")] = False,
) -> None:
    """Start moto S3, API processes and workers on a fresh database; Ctrl-C stops them."""
    import signal as signals
    import time

    from fairtrain.stack import Stack

    stack = Stack(
        directory.resolve(),
        postgres_url=postgres,
        redis_url=redis,
        api_ports=tuple(api_port or ()),
        workers=workers,
        keep_database=keep,
    )
    signals.signal(signals.SIGTERM, signals.default_int_handler)
    with console.status("Starting the stack…"):
        stack.start()
    try:
        table = Table(title=f"fairtrain stack (database {stack.database})")
        table.add_column("process")
        table.add_column("pid / address")
        for process in stack.processes:
            table.add_row(process.name, str(process.popen.pid))
        for url in stack.api_urls:
            table.add_row("API", url)
        table.add_row("S3", f"http://127.0.0.1:{stack.s3_port}")
        console.print(table)
        console.print(f"Logs in {directory / 'logs'}. Ctrl-C stops everything.")
        while all(process.popen.poll() is None for process in stack.processes):
            time.sleep(1)
        err_console.print("[red]A process of the stack exited; stopping the rest.[/red]")
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":  # pragma: no cover
    app()
