"""``fairtrain trace FILES... --candidates candidates.json``: which licence leaked these?

The core of the command: the candidate licences are given explicitly, as a JSON object
mapping each licence id to its watermark key in base64. Runs offline on local files.

Exit status: 0 when the files are attributed to a licence, 1 when they are not, 2 when
the input is unusable.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fairtrain.delivery.trace import TraceResult, Verdict, trace_files, verdict
from fairtrain.delivery.watermark import MIN_KEY_BYTES
from fairtrain.errors import DomainError

__all__ = ["app", "load_candidates", "run_trace"]

app = typer.Typer(
    help="Trace leaked files back to the licence they were delivered under.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


class CandidatesUnusable(Exception):
    """The candidates file cannot be used; the message says why."""


def load_candidates(path: Path) -> dict[str, bytes]:
    """``{"licence id": "base64 key", ...}`` → licence id → key bytes."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CandidatesUnusable(f"Cannot read {path}: {error}") from error
    if not isinstance(document, dict) or not document:
        raise CandidatesUnusable(
            f"{path} must be a JSON object mapping licence ids to base64 keys."
        )
    candidates: dict[str, bytes] = {}
    for licence_id, encoded in document.items():
        if not isinstance(encoded, str):
            raise CandidatesUnusable(f"The key of {licence_id} must be a base64 string.")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise CandidatesUnusable(f"The key of {licence_id} is not valid base64.") from error
        if len(key) < MIN_KEY_BYTES:
            raise CandidatesUnusable(
                f"The key of {licence_id} is {len(key)} bytes; at least {MIN_KEY_BYTES} needed."
            )
        candidates[licence_id] = key
    return candidates


def _show(results: list[TraceResult], overall: Verdict) -> None:
    table = Table("file", "kind", "licence", "p-value", "method", "note")
    for result in results:
        detection = result.detection
        table.add_row(
            result.path,
            result.kind,
            result.licence_id or "—",
            f"{detection.p_value:.2g}" if detection else "",
            result.method or "",
            result.error or (f"copy of {result.duplicate_of}" if result.duplicate_of else ""),
        )
    console.print(table)
    if overall.licence_id:
        console.print(
            f"[bold]Verdict:[/bold] licence [green]{overall.licence_id}[/green] "
            f"(false-attribution probability {overall.p_value:.2g}, "
            f"{overall.files_with_evidence} of {overall.files} files analysed)"
        )
    else:
        console.print(
            f"[bold]Verdict:[/bold] no licence can be named (best combined p-value "
            f"{overall.p_value:.2g}; the threshold is 1e-06)."
        )
    if overall.conflicting:
        console.print(
            "[yellow]Files point to different licences: "
            f"{', '.join(sorted(overall.attributed))}.[/yellow]"
        )


def run_trace(
    files: list[Path], candidates: dict[str, bytes], *, as_json: bool
) -> tuple[list[TraceResult], Verdict]:
    """Trace ``files`` and print the results; what the integrator's command calls once
    it has loaded the candidates from the database."""
    if as_json or len(files) < 2:
        results = trace_files(files, candidates)
    else:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("Tracing", total=len(files))
            results = trace_files(files, candidates, progress=lambda _: progress.advance(task))
    overall = verdict(results)
    if as_json:
        print(
            json.dumps(
                {"files": [r.as_dict() for r in results], "verdict": overall.as_dict()},
                ensure_ascii=False,
            )
        )
    else:
        _show(results, overall)
    return results, overall


@app.command("trace")
def trace(
    files: Annotated[list[Path], typer.Argument(metavar="FILES...", help="Leaked files.")],
    candidates_file: Annotated[
        Path,
        typer.Option(
            "--candidates",
            help="JSON object: licence id → base64 watermark key of each candidate licence.",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the default is a table).")
    ] = False,
) -> None:
    """Say which candidate licence each file (picture, video, recording, text) was
    delivered under, with the probability that the attribution is wrong."""
    try:
        candidates = load_candidates(candidates_file)
        _, overall = run_trace(files, candidates, as_json=as_json)
    except CandidatesUnusable as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    raise typer.Exit(code=0 if overall.licence_id else 1)


if __name__ == "__main__":
    app()
