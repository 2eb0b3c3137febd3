"""A real webhook receiver on loopback: a thread running ``http.server`` that verifies
every request's Standard Webhooks signature and answers as the test scripts it (a status,
or silence past the sender's timeout)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["Receiver", "receiver", "serve_receiver"]


@dataclass
class Receiver:
    url: str
    secret: str | None = None
    # What to answer, in turn (an int status, or "hang" to stay silent for ``hang_for``
    # seconds); when used up, 204.
    script: list[int | str] = field(default_factory=list)
    hang_for: float = 2.0
    verified: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0
    hits: int = 0
    arrived: list[float] = field(default_factory=list)  # time.perf_counter() of each
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.verified) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.verified)} of {count} webhooks arrived")
            time.sleep(0.01)


def _handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.hits += 1
                action = state.script.pop(0) if state.script else 204
            late = action == "hang"
            if late:  # the sender gave up meanwhile: not counted as received
                time.sleep(state.hang_for)
                action = 204
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                assert state.secret is not None
                payload = Webhook(state.secret).verify(body, headers)
            except (WebhookVerificationError, AssertionError, ValueError):
                state.refused += 1
                self.send_response(401)
                self.end_headers()
                return
            if isinstance(action, int) and 200 <= action < 300 and not late:
                with state.lock:
                    state.verified.append(json.loads(json.dumps(payload)))
                    state.headers.append(headers)
                    state.arrived.append(time.perf_counter())
            self.send_response(int(action))
            self.end_headers()

    return Handler


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    """A receiver listening on a free loopback port until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state := Receiver(url="")))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/fairtrain"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as state:
        yield state
