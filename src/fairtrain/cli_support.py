"""What every ``fairtrain`` command group shares: one transaction against the configured
database, refusals printed as ``Refused (code): sentence`` with exit status 2, and the
``--json`` option."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from fairtrain.config import Settings, get_settings
from fairtrain.db import make_engine, make_session_factory, session_scope
from fairtrain.errors import DomainError

__all__ = ["CLI_ACTOR", "JsonOption", "cli_session", "err_console", "refuse"]

CLI_ACTOR = "system:cli"  # the audit log's name for whoever runs a command
err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]


def refuse(error: DomainError) -> typer.Exit:
    err_console.print(f"[red]Refused ({error.code}):[/red] {error.detail}")
    return typer.Exit(code=2)


@contextmanager
def cli_session(settings: Settings | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error; a
    domain refusal exits with status 2 after saying why."""
    engine = make_engine((settings or get_settings()).effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except DomainError as error:
        raise refuse(error) from error
    finally:
        engine.dispose()
