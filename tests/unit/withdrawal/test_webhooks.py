"""Webhook signatures as the Standard Webhooks specification defines them, checked
against the specification's own test vector and against the formula written out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from fairtrain.config import Mode, Settings
from fairtrain.errors import InvalidInput
from fairtrain.withdrawal.webhooks import _check_url, _post, new_secret, signed_request

# The test vector of the Standard Webhooks specification (and its reference libraries).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _formula(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_the_specification_vector() -> None:
    moment = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
    assert Webhook(SPEC_SECRET).sign(SPEC_ID, moment, SPEC_BODY) == SPEC_SIGNATURE
    assert _formula(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.encode()) == SPEC_SIGNATURE


def test_signed_requests_follow_the_formula_and_verify() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    now = datetime.now(UTC)
    body, headers = signed_request("msg_1", secret, {"type": "withdrawal.notice", "data": {}}, now)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"] == _formula(secret, "msg_1", int(now.timestamp()), body)
    assert Webhook(secret).verify(body, headers)["type"] == "withdrawal.notice"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"notice", b"nootice"), headers)


@pytest.mark.parametrize(
    ("url", "mode", "ok"),
    [
        ("https://hooks.example.org/fairtrain", Mode.PRODUCTION, True),
        ("http://hooks.example.org/fairtrain", Mode.PRODUCTION, False),
        ("https://127.0.0.1/x", Mode.PRODUCTION, False),
        ("https://10.0.0.7/x", Mode.PRODUCTION, False),
        ("https://localhost/x", Mode.PRODUCTION, False),
        ("http://127.0.0.1:9/x", Mode.DEV, True),
        ("ftp://example.org/x", Mode.DEV, False),
        ("not a url", Mode.DEV, False),
    ],
)
def test_webhook_urls(url: str, mode: Mode, ok: bool) -> None:
    settings = Settings.model_construct(mode=mode)
    if ok:
        assert _check_url(settings, url) == url
    else:
        with pytest.raises(InvalidInput) as error:
            _check_url(settings, url)
        assert error.value.code == "invalid_webhook_url"


class _Receiver(BaseHTTPRequestHandler):
    hosts: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.hosts.append(self.headers["host"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[str]]]:
    """A real HTTP server on loopback; yields its port and the Host header of each POST."""
    hosts: list[str] = []
    handler = type("Handler", (_Receiver,), {"hosts": hosts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()


def test_a_name_is_sent_to_the_address_it_resolved_to_with_its_own_host_header(
    receiver: tuple[int, list[str]],
) -> None:
    port, hosts = receiver
    settings = Settings.model_construct(mode=Mode.DEV, webhook_timeout_seconds=5)
    assert _post(settings, f"http://localhost:{port}/hooks", b"{}", {}) == (204, None)
    assert hosts == [f"localhost:{port}"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_production_sends_nothing_to_a_host_that_resolves_to_a_private_address(
    receiver: tuple[int, list[str]], host: str
) -> None:
    # Registration refuses such URLs by their text; a name whose DNS answer turns private
    # later (rebinding) is caught here, when the notice is sent, before any connection.
    port, hosts = receiver
    settings = Settings.model_construct(mode=Mode.PRODUCTION, webhook_timeout_seconds=5)
    status, error = _post(settings, f"http://{host}:{port}/hooks", b"{}", {})
    assert status is None and error is not None
    assert "not a public address" in error and "127.0.0.1" in error
    assert hosts == []


def test_a_host_that_does_not_resolve_is_a_failed_attempt() -> None:
    settings = Settings.model_construct(mode=Mode.PRODUCTION, webhook_timeout_seconds=5)
    status, error = _post(settings, "https://no-such-host.invalid/hooks", b"{}", {})
    assert status is None and error is not None and "does not resolve" in error
