"""Work a process repeats on a timer while it runs job workers (e.g. expiring consent).

Each round is one transaction of its own; a round that fails (the database briefly away)
is logged and tried again next time. The work must be idempotent: several processes may
run it, and a round may repeat one that died half-way (it rolled back).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from fairtrain.db import session_scope

log = logging.getLogger("fairtrain.jobs")

__all__ = ["PeriodicWork"]


class PeriodicWork:
    """Run ``work(session)`` every ``every`` seconds in a daemon thread until stopped."""

    def __init__(
        self,
        name: str,
        every: float,
        sessions: sessionmaker[Session],
        work: Callable[[Session], object],
    ) -> None:
        if every <= 0:
            raise ValueError("a periodic task needs a positive interval")
        self.name = name
        self.every = every
        self.sessions = sessions
        self.work = work
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> object:
        with session_scope(self.sessions) as session:
            return self.work(session)

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # the database may be briefly away; try next round
                log.warning("periodic work %s failed", self.name, exc_info=True)
            if self._stopping.wait(self.every):
                return

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
