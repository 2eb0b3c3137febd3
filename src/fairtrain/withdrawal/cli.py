"""``fairtrain notices …``: the periodic work behind withdrawal notices (run both from
cron, e.g. every minute and every hour)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from fairtrain.accounts.models import User, UserKind
from fairtrain.cli_support import CLI_ACTOR, JsonOption, cli_session
from fairtrain.config import get_settings
from fairtrain.errors import NotFound
from fairtrain.withdrawal import notices, service, webhooks

__all__ = ["app", "withdraw_command"]

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


def _queued(job_id: str) -> None:
    """No queue in a CLI process: the job row stays queued, and a running server's
    workers pick it up within a lease (or ``fairtrain notices deliver`` sends it)."""


def withdraw_command(
    owner: Annotated[str, typer.Option("--owner", help="The contributor's e-mail address.")],
    assets: Annotated[
        list[str] | None, typer.Option("--asset", help="An asset id (repeat for several).")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--everything", help="Every asset of the contributor.")
    ] = False,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Only this purpose (default: every use).")
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Only this buyer organisation (org_…).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw a contributor's assets on their behalf (e.g. a request by letter), exactly
    as ``POST /api/v1/withdrawals`` does: audited, idempotent, notices to every licensee."""
    settings = get_settings()
    with cli_session(settings) as session:
        user = session.scalars(select(User).where(User.email == owner.strip().lower())).first()
        if user is None or user.kind != UserKind.CONTRIBUTOR:
            raise NotFound("No contributor with this e-mail address.", code="user_not_found")
        result = service.withdraw(
            session, settings, _queued, owner_id=user.id, actor=CLI_ACTOR,
            asset_ids=assets or None, everything=everything, purpose=purpose, org_id=org,
        )  # fmt: skip
        withdrawal = result.withdrawal
        found = service.notices_of_withdrawal(session, withdrawal.id)
        ids = list(withdrawal.asset_ids)
        versions = list(withdrawal.dataset_versions)
        notice_ids = [n.id for n in found]
        summary = {"id": withdrawal.id, "created": result.created, "assets": ids,
                   "dataset_versions": versions, "notices": notice_ids}  # fmt: skip
    if as_json:
        console.print_json(json.dumps(summary))
        return
    verb = "Withdrew" if result.created else "Already withdrawn:"
    console.print(
        f"{verb} {len(ids)} asset(s) ({withdrawal.id}); {len(versions)} new dataset "
        f"version(s), {len(notice_ids)} licensee notice(s)."
    )
