"""Operators' delivery commands: ``fairtrain trace FILES…`` names the licence a leak came
from; ``fairtrain exports shred-ended`` destroys the cached exports of ended licences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fairtrain.bootstrap import InsecureConfiguration, prepare_settings
from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session, err_console
from fairtrain.config import get_settings
from fairtrain.delivery import service
from fairtrain.delivery.trace_cli import CandidatesUnusable, load_candidates, run_trace
from fairtrain.delivery.tracing import LeakTrace, trace_leak
from fairtrain.delivery.watermark import ATTRIBUTION_P_VALUE
from fairtrain.errors import DomainError

__all__ = ["exports_app", "trace"]

console = Console()
exports_app = typer.Typer(
    help="Exports of licences: destroy the cached files of licences that ended.",
    no_args_is_help=True,
)


def _show(report: LeakTrace) -> None:
    table = Table("file", "kind", "licence", "organisation", "confidence", "found by", "note")
    for file in report.files:
        result = file.result
        detection = result.detection
        note = result.error or (f"copy of {result.duplicate_of}" if result.duplicate_of else "")
        table.add_row(
            result.path,
            result.kind,
            result.licence_id or "—",
            report.organisations.get(result.licence_id or "", ""),
            f"{detection.confidence:.6f}" if detection and result.licence_id else "",
            file.matched_by.replace("_", " "),
            note,
        )
    console.print(table)
    if report.order is not None:
        placed = report.order.details.get("per_candidate", {})
        best = report.order.scores[0].licence_id if report.order.scores else None
        compared = placed.get(best, {}).get("items_compared", 0) if best else 0
        console.print(
            f"Sample order: {compared} samples compared with each licence's delivered "
            f"order; best {best or '—'} (p-value {report.order.p_value:.2g})"
        )
    overall = report.verdict
    if overall.licence_id:
        console.print(
            f"[bold]Verdict:[/bold] licence [green]{overall.licence_id}[/green] of "
            f"{report.organisations.get(overall.licence_id, '?')}, confidence "
            f"{1 - overall.p_value:.6f} (false-attribution probability {overall.p_value:.2g}; "
            f"{overall.files_with_evidence} of {overall.files} files analysed)"
        )
    else:
        console.print(
            f"[bold]Verdict:[/bold] no licence can be named (best combined p-value "
            f"{overall.p_value:.2g}; the threshold is {ATTRIBUTION_P_VALUE:g})."
        )
    if overall.conflicting:
        console.print(
            "[yellow]Files point to different licences: "
            f"{', '.join(sorted(overall.attributed))}.[/yellow]"
        )


def _trace_offline(files: list[Path], candidates_file: Path, *, as_json: bool) -> None:
    """The watermark layer's own command: candidates from a file, no database."""
    try:
        _, overall = run_trace(files, load_candidates(candidates_file), as_json=as_json)
    except CandidatesUnusable as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    raise typer.Exit(code=0 if overall.licence_id else 1)


def trace(
    files: Annotated[list[Path], typer.Argument(metavar="FILES...", help="Leaked files.")],
    candidates_file: Annotated[
        Path | None,
        typer.Option(
            "--candidates",
            help="Offline: a JSON object of licence id → base64 watermark key, instead of "
            "the platform's database.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Name the licence that leaked files (pictures, videos, recordings, texts) were
    delivered under, its organisation and the confidence, from the platform's records of
    what each licence received. Exit 0 when attributed, 1 when not, 2 on unusable input."""
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        err_console.print(f"[red]Not a readable file:[/red] {', '.join(missing)}")
        raise typer.Exit(code=2)
    if candidates_file is not None:
        _trace_offline(files, candidates_file, as_json=as_json)
    try:
        settings = prepare_settings(get_settings())
    except InsecureConfiguration as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    with cli_session(settings) as session:
        if as_json or len(files) < 2:
            report = trace_leak(session, settings, files)
        else:
            with Progress(console=err_console, transient=True) as progress:
                task = progress.add_task("Tracing", total=len(files))
                report = trace_leak(
                    session, settings, files, progress=lambda _: progress.advance(task)
                )
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        _show(report)
    raise typer.Exit(code=0 if report.verdict.licence_id else 1)


@exports_app.command("shred-ended")
def shred_ended_command(as_json: JsonOption = False) -> None:
    """Crypto-shred the cached exports of every licence that is no longer active
    (expired, suspended, or past its end): run it daily, after ``fairtrain licences
    expire``. Each licence's export key is destroyed and audited."""
    with cli_session() as session:
        shredded = service.shred_ended_licences(session, actor=CLI_ACTOR)
    if as_json:
        console.print_json(json.dumps({"shredded": shredded}))
        return
    total = sum(len(ids) for ids in shredded.values())
    console.print(f"{total} export(s) of {len(shredded)} licence(s) shredded.")
