"""``fairtrain notices …``: the periodic work behind withdrawal notices (run both from
cron, e.g. every minute and every hour)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session
from fairtrain.config import get_settings
from fairtrain.withdrawal import notices, webhooks

__all__ = ["app"]

app = typer.Typer(help="Withdrawal notices: retry webhooks; remind, escalate, suspend.",
                  no_args_is_help=True)  # fmt: skip
console = Console()


@app.command("deliver")
def deliver_command(as_json: JsonOption = False) -> None:
    """Attempt every webhook delivery whose retry is due (exponential backoff; the last
    failed attempt dead-letters it for operators)."""
    settings = get_settings()
    with cli_session(settings) as session:
        attempted = webhooks.deliver_due(session, settings)
    if as_json:
        console.print_json(json.dumps({"attempted": attempted}))
        return
    console.print(f"{attempted} webhook delivery attempt(s).")


@app.command("escalate")
def escalate_command(as_json: JsonOption = False) -> None:
    """Remind licensees whose deletion deadline is near, escalate to operators those past
    it, and suspend the licences of those still silent after the grace period."""
    settings = get_settings()
    with cli_session(settings) as session:
        report = notices.escalate(session, settings, actor=CLI_ACTOR)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "reminded": report.reminded,
                    "escalated": report.escalated,
                    "suspended": report.suspended,
                }
            )
        )
        return
    console.print(
        f"{len(report.reminded)} reminded, {len(report.escalated)} escalated, "
        f"{len(report.suspended)} licence(s) suspended."
    )
