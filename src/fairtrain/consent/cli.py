"""``fairtrain consent …``: evaluate a policy, explain it, verify a receipt offline.

``evaluate``, ``explain`` and ``verify-receipt`` read nothing but their arguments (no
database, no settings): a contributor, a buyer or an auditor can run them anywhere.
``public-key`` reads the platform's signing key from the settings and prints its public
half, the PEM those offline checks need. ``expire`` marks terms whose end date passed as
expired, in the configured database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from fairtrain.audit.keys import (
    SigningKeyUnavailable,
    key_id,
    load_public_key_pem,
    platform_signing_key,
    public_key_pem,
)
from fairtrain.cli_support import CLI_ACTOR, cli_session
from fairtrain.config import get_settings
from fairtrain.consent import purposes, service
from fairtrain.consent.evaluate import Request, evaluate
from fairtrain.consent.odrl import Policy, parse_policy
from fairtrain.consent.plain import explain, risk_notes
from fairtrain.consent.receipts import DPV, ReceiptInvalid, verify_receipt_file
from fairtrain.errors import DomainError

__all__ = ["app"]

app = typer.Typer(
    help="Licence terms: evaluate an ODRL policy, explain it in plain words, verify a "
    "consent receipt offline, print the platform's public key, expire ended consent.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]


def _load(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        err_console.print(f"[red]Cannot read {path}: {error}[/red]")
        raise typer.Exit(code=2) from error
    try:
        return parse_policy(text)
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error


@app.command("evaluate")
def evaluate_command(
    policy_file: Annotated[Path, typer.Argument(metavar="POLICY.jsonld")],
    purpose: Annotated[str, typer.Option(help="Purpose key or IRI, e.g. speech_recognition.")],
    territory: Annotated[str | None, typer.Option(help="ISO 3166 country, e.g. DE.")] = None,
    action: Annotated[str, typer.Option(help="ODRL action.")] = "use",
    price: Annotated[str | None, typer.Option(help="Offered price per licence, e.g. 0.50.")] = None,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 currency of --price.")] = None,
    at: Annotated[str | None, typer.Option(help="When (ISO 8601, UTC); default now.")] = None,
    assignee: Annotated[str | None, typer.Option(help="The buyer's IRI.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the decision and the rule that made it. Exit 0 permit, 1 deny/not applicable."""
    policy = _load(policy_file)
    try:
        key = purposes.resolve(purpose).key
        offered = Decimal(price) if price is not None else None
        moment = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else datetime.now(UTC)
    except DomainError as error:
        err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
        raise typer.Exit(code=2) from error
    except (InvalidOperation, ValueError) as error:
        err_console.print(f"[red]Bad option: {error}[/red]")
        raise typer.Exit(code=2) from error
    decision = evaluate(
        policy,
        Request(
            action=action,
            purpose=key,
            territory=territory.upper() if territory else None,
            at=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
            assignee=assignee,
            pay_amount=offered,
            currency=currency.upper() if currency else None,
        ),
    )
    if as_json:
        console.print_json(json.dumps(decision.as_dict()))
    else:
        colour = "green" if decision.permitted else "red"
        console.print(f"[{colour}]{decision.outcome.upper()}[/{colour}] {decision.reason}")
        for duty in decision.duties:
            console.print(f"  duty: {duty}")
    raise typer.Exit(code=0 if decision.permitted else 1)


@app.command("explain")
def explain_command(
    policy_file: Annotated[Path, typer.Argument(metavar="POLICY.jsonld")],
    modality: Annotated[
        str | None, typer.Option(help="audio, image, video, chat, text or document.")
    ] = None,
) -> None:
    """The policy in plain words, and the risk notes for a kind of data."""
    policy = _load(policy_file)
    for sentence in explain(policy):
        console.print(f"- {sentence}")
    notes = risk_notes(policy, modality)
    if notes:
        console.print("\nBefore you agree:")
        for note in notes:
            console.print(f"! {note}")


@app.command("verify-receipt")
def verify_receipt_command(
    receipt: Annotated[
        Path,
        typer.Argument(metavar="RECEIPT.json", help="A receipt file downloaded from fairtrain."),
    ],
    public_key: Annotated[
        Path,
        typer.Option(
            "--public-key",
            metavar="KEY.pem",
            help="The platform's public key (PEM), e.g. from `fairtrain consent public-key` "
            "or GET /api/v1/signing-key.",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Check a consent receipt offline: signature, key, and that the file shows what was signed.

    Exit 0 when it verifies, 1 with the reason when it does not, 2 when the file or the
    key cannot be read.
    """
    try:
        pem = public_key.read_bytes()
    except OSError as error:
        _fail(as_json, "public_key_unreadable", f"Cannot read {public_key}: {error.strerror}.", 2)
    try:
        signed = verify_receipt_file(receipt, pem)
    except ReceiptInvalid as error:
        unusable = error.code in ("receipt_unreadable", "public_key_invalid")
        _fail(as_json, error.code, error.detail, 2 if unusable else 1)
    status = str(signed.get("dpv:hasConsentStatus", "")).removeprefix(DPV)
    assets = signed.get("assets")
    count = len(assets) if isinstance(assets, list) else 0
    kid = key_id(load_public_key_pem(pem))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": True,
                    "receipt_id": signed.get("id"),
                    "status": status,
                    "event": signed.get("event"),
                    "assets": count,
                    "key_id": kid,
                }
            )
        )
        return
    # Plain echo, not Rich: the line must not wrap or be read as markup by scripts.
    typer.echo(
        f"OK: receipt {signed.get('id')} ({status}) for {count} asset(s), signed by key {kid}"
    )


def _fail(as_json: bool, code: str, reason: str, exit_code: int) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"ok": False, "code": code, "reason": reason}))
    else:
        typer.echo(f"INVALID: {reason}" if exit_code == 1 else f"ERROR: {reason}", err=True)
    raise typer.Exit(code=exit_code)


@app.command("public-key")
def public_key_command(as_json: JsonOption = False) -> None:
    """Print the platform's public key (PEM) that verifies receipts and audit checkpoints.

    Reads the signing key named by the settings (FAIRTRAIN_SIGNING_KEY_PATH); in demo/dev
    mode one is created if missing, as the server would. Save the output as KEY.pem.
    """
    try:
        key = platform_signing_key(get_settings()).public_key()
    except SigningKeyUnavailable as error:
        typer.echo(f"ERROR: {error}", err=True)
        raise typer.Exit(code=2) from error
    pem = public_key_pem(key).decode("ascii")
    if as_json:
        typer.echo(json.dumps({"key_id": key_id(key), "public_key_pem": pem}))
    else:
        typer.echo(pem, nl=False)


@app.command("expire")
def expire_command(as_json: JsonOption = False) -> None:
    """Mark every asset's terms whose end date has passed as expired (ConsentExpired).

    Each gets a signed expiry receipt and an audit event, and its asset leaves the
    catalogue, so no new licence can use it; licences already granted keep their end.
    Running it again changes nothing. Workers also do this every
    FAIRTRAIN_CONSENT_EXPIRY_EVERY_SECONDS.
    """
    settings = get_settings()
    with cli_session(settings) as session:
        ended = service.expire_policies(session, settings, actor=CLI_ACTOR)
        rows = [{"asset_id": r.asset_id, "policy_id": r.id, "version": r.version} for r in ended]
    if as_json:
        typer.echo(json.dumps({"expired": rows}))
        return
    typer.echo(f"{len(rows)} asset(s)' terms expired.")
    for row in rows:
        typer.echo(f"  {row['asset_id']} (terms version {row['version']})")
