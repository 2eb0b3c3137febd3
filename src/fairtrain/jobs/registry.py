"""Job handlers by kind. A handler takes a database session, the job's payload and the
process's :class:`~fairtrain.runtime.Runtime` (settings, vault).

Handlers must be idempotent: a job may run again after a crash, a retry, or a resume at
start-up, and must then reach the same final state without doing its work twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from fairtrain.runtime import Runtime

__all__ = ["Handler", "handler_for", "job_handler", "registered_kinds"]

# (session, payload, runtime): the runtime carries the process's settings and vault.
Handler = Callable[[Session, dict[str, Any], "Runtime"], None]
_HANDLERS: dict[str, Handler] = {}


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        if kind in _HANDLERS and _HANDLERS[kind] is not function:
            raise ValueError(f"two handlers for job kind {kind!r}")
        _HANDLERS[kind] = function
        return function

    return register


def handler_for(kind: str) -> Handler:
    return _HANDLERS[kind]


def registered_kinds() -> list[str]:
    return sorted(_HANDLERS)
