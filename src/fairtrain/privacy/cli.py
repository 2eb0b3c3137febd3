"""``fairtrain privacy …``: scan text for personal data; redact any supported file.

Both run locally on the given file, with the same detectors and redactors the upload
pipeline uses, and need no server or database.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fairtrain.errors import DomainError

__all__ = ["app"]

app = typer.Typer(
    help="Find and remove personal data: scan text, redact pictures, recordings, videos, "
    "chats and documents.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


def _refuse(error: DomainError) -> typer.Exit:
    err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
    return typer.Exit(code=2)


@app.command("scan-text")
def scan_text(
    source: Annotated[
        str, typer.Argument(metavar="[FILE|-]", help="A UTF-8 file, or - for stdin.")
    ] = "-",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the default is a table).")
    ] = False,
    language: Annotated[str, typer.Option(help="Language of the text.")] = "en",
) -> None:
    """Print the personal data found (start, end, entity_type, score) and the redacted text."""
    from fairtrain.privacy.text import detect, redact

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        err_console.print(f"[red]Cannot read {source}: {error}[/red]")
        raise typer.Exit(code=2) from error
    try:
        spans = detect(text, language)
    except DomainError as error:
        raise _refuse(error) from error
    result = redact(text, spans)
    found = [
        {"start": s.start, "end": s.end, "entity_type": s.entity_type, "score": round(s.score, 3)}
        for s in result.spans
    ]
    if as_json:
        print(json.dumps({"spans": found, "redacted": result.text}, ensure_ascii=False))
        return
    for span in result.spans:
        console.print(
            f"{span.start:>6}-{span.end:<6} {span.entity_type:<16} "
            f"{span.score:.2f}  {text[span.start : span.end]!r}"
        )
    console.print("\n" + result.text)


def _inspect(path: Path) -> tuple[str, str]:
    from fairtrain.config import get_settings
    from fairtrain.ingest.sniff import Limits, inspect

    found = inspect(path, limits=Limits.from_settings(get_settings()))
    return found.modality, found.media_type


def _redact(
    path: Path,
    out: Path,
    modality: str,
    me: str | None,
    channel: int | None,
    own_face: str | None = None,
    speaker: int | None = None,
) -> dict[str, Any]:
    from fairtrain.privacy import media

    if modality == "image":
        return media.redact_image(path, out, own_face=own_face)[1]
    if modality == "video":
        return media.redact_video(path, out, speaker=speaker)[1]
    if modality == "audio":
        return media.redact_audio(path, out, channel=channel, speaker=speaker)[1]
    if modality == "document":
        from fairtrain.ingest.pipeline import redact_document

        return redact_document(path, out)[1]
    text = path.read_text(encoding="utf-8")
    if modality == "chat":
        from fairtrain.ingest.chats import parse_chat
        from fairtrain.ingest.pipeline import format_chat
        from fairtrain.privacy.chat import redact_chat

        transcript = parse_chat(text)
        senders = sorted({m.sender for m in transcript.messages if not m.is_system})
        if me is None:
            raise media.IdentityNeeded(
                f"Say which sender is you with --me (one of: {', '.join(senders)}).",
                code="chat_sender_needed",
            )
        out.write_text(format_chat(redact_chat(transcript, me)), encoding="utf-8")
        return {"kind": "chat", "contributor_sender": me, "participants": len(senders)}
    from fairtrain.privacy.text import redact

    result = redact(text)
    out.write_text(result.text, encoding="utf-8")
    return {"kind": "text", "spans": len(result.spans), "placeholders": len(result.placeholders)}


@app.command("redact")
def redact_file(
    source: Annotated[Path, typer.Argument(metavar="FILE")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the result.")],
    me: Annotated[
        str | None, typer.Option("--me", help="Chats: your sender name as the export spells it.")
    ] = None,
    channel: Annotated[
        int | None, typer.Option("--channel", help="Call recordings: your channel (0 = left).")
    ] = None,
    own_face: Annotated[
        str | None,
        typer.Option(
            "--own-face",
            help='Pictures: your face\'s box x1,y1,x2,y2 from the report, or "none" '
            "(default: the largest face is yours).",
        ),
    ] = None,
    speaker: Annotated[
        int | None,
        typer.Option(
            "--speaker",
            help="Mono recordings and videos: your voice's number from the report "
            "(default: the speaker with the most speech).",
        ),
    ] = None,
) -> None:
    """Redact a picture, recording, video, chat export, text or PDF, as uploads are."""
    try:
        modality, media_type = _inspect(source)
        with tempfile.TemporaryDirectory(prefix="fairtrain-redact-") as tmp:
            staged = Path(tmp) / "out"
            report = _redact(source, staged, modality, me, channel, own_face, speaker)
            shutil.move(str(staged), output)
    except DomainError as error:
        raise _refuse(error) from error
    except OSError as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=2) from error
    from fairtrain.privacy.risk import residual_risk

    risk = residual_risk(modality, report)
    console.print_json(
        json.dumps({"input": media_type, "output": str(output), "report": report, "risk": risk})
    )
