"""Pushing notices to buyers: Standard Webhooks, retried with backoff, then dead-lettered.

Each delivery is one HTTP POST of the notice (JSON ``{"type", "timestamp", "data"}``) with
the three headers of the Standard Webhooks specification: ``webhook-id`` (the delivery's
id, the same on every retry, so a receiver drops duplicates), ``webhook-timestamp``
(seconds since the epoch) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 over
``id.timestamp.body`` with the endpoint's ``whsec_`` secret), signed by the
``standardwebhooks`` package, the specification's reference implementation.

A receiver that answers 2xx has it. Anything else (a timeout, a refused connection, a
500, a redirect, a 404) is tried again after ``webhook_backoff_seconds``, doubling each
time, until ``webhook_max_attempts``; then the delivery is ``dead`` and operators see it
(``GET /api/v1/webhook-deliveries?state=dead``). The first attempt runs as a background
job enqueued after the withdrawal commits; retries run from :func:`deliver_due`
(``fairtrain notices deliver``, e.g. every minute from cron). Nothing here can undo or
delay a withdrawal: the notice is in the pull feed whatever its webhooks do.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

if TYPE_CHECKING:
    from fairtrain.runtime import Runtime

from fairtrain.audit.service import append_event
from fairtrain.config import Mode, Settings
from fairtrain.errors import Conflict, Gone, InvalidInput, NotFound
from fairtrain.ids import new_id, utcnow
from fairtrain.jobs.registry import job_handler
from fairtrain.jobs.service import enqueue_job
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.service import open_secret, seal_secret
from fairtrain.withdrawal.models import (
    DeliveryState,
    Notice,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "DELIVER_JOB",
    "EVENT_TYPE",
    "attempt_delivery",
    "dead_letters",
    "deliver_due",
    "disable_endpoint",
    "endpoints_of",
    "new_secret",
    "payload_of",
    "register_endpoint",
    "schedule_deliveries",
    "signed_request",
]

DELIVER_JOB = "withdrawal.deliver_webhook"
EVENT_TYPE = "withdrawal.notice"
Dispatcher = Callable[[str], None]


def new_secret() -> str:
    """A fresh signing secret as the specification spells it: ``whsec_`` + base64."""
    return _spelled(secrets.token_bytes(32))


def _spelled(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode("ascii")


def _secret_context(endpoint_id: str) -> str:
    return f"webhook:{endpoint_id}"


def _signing_secret(session: Session, keyring: KeyRing, endpoint: WebhookEndpoint) -> str:
    key = open_secret(
        session, keyring, context=_secret_context(endpoint.id), sealed=endpoint.sealed_secret
    )
    return _spelled(key)


def _check_url(settings: Settings, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(
            "A webhook URL is an absolute http(s) URL.", code="invalid_webhook_url", pointer="/url"
        )
    if settings.mode == Mode.PRODUCTION:
        if parts.scheme != "https":
            raise InvalidInput(
                "Webhook URLs must use https.", code="invalid_webhook_url", pointer="/url"
            )
        host = parts.hostname
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        # Refuse to be pointed at the platform's own network (server-side request forgery).
        if host == "localhost" or (address is not None and not address.is_global):
            raise InvalidInput(
                "A webhook URL must name a public host.", code="invalid_webhook_url", pointer="/url"
            )
    return url


def register_endpoint(
    session: Session, settings: Settings, *, org_id: str, url: str, actor: str
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its ``whsec_`` signing secret, which is shown to the buyer now
    and kept only sealed (under the organisation's vault data key)."""
    endpoint_id = new_id("whe")
    key = secrets.token_bytes(32)
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        org_id=org_id,
        url=_check_url(settings, url),
        sealed_secret=seal_secret(
            session,
            KeyRing.from_settings(settings),
            owner=f"org:{org_id}",
            context=_secret_context(endpoint_id),
            secret=key,
        ),
        active=True,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="webhook.endpoint_registered",
        subject=f"webhook:{endpoint.id}",
        payload={"org": org_id, "url": url},
    )
    return endpoint, _spelled(key)


def endpoints_of(session: Session, org_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.org_id == org_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


def disable_endpoint(session: Session, *, org_id: str, endpoint_id: str, actor: str) -> None:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.org_id != org_id:
        raise NotFound("No such webhook endpoint.", code="webhook_not_found")
    if not endpoint.active:
        return
    endpoint.active = False
    endpoint.disabled_at = utcnow()
    session.flush()
    append_event(
        session,
        actor=actor,
        action="webhook.endpoint_disabled",
        subject=f"webhook:{endpoint.id}",
        payload={"org": org_id},
    )


def schedule_deliveries(
    session: Session, dispatch: Dispatcher, notice: Notice, *, now: datetime | None = None
) -> list[WebhookDelivery]:
    """One delivery per active endpoint of the licensee, each a job run after commit."""
    now = now or utcnow()
    made: list[WebhookDelivery] = []
    for endpoint in endpoints_of(session, notice.org_id):
        if not endpoint.active:
            continue
        delivery = WebhookDelivery(
            id=new_id("msg"),
            notice_id=notice.id,
            endpoint_id=endpoint.id,
            org_id=notice.org_id,
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
        session.flush()
        enqueue_job(
            session,
            dispatch,
            kind=DELIVER_JOB,
            subject=f"notice:{notice.id}",
            payload={"delivery_id": delivery.id},
            dedupe_key=delivery.id,
            max_attempts=1,  # retries are the delivery's own, with backoff
        )
        made.append(delivery)
    return made


def payload_of(notice: Notice) -> dict[str, Any]:
    return {"type": EVENT_TYPE, "timestamp": notice.created_at.isoformat(), "data": notice.body}


def signed_request(
    delivery_id: str, secret: str, payload: dict[str, Any], at: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of one attempt."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    signature = Webhook(secret).sign(delivery_id, at, body)
    return body.encode("utf-8"), {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "user-agent": "fairtrain-webhooks/1",
    }


class _NotSent(Exception):
    """The notice was not sent to this address (the reason is the delivery's error)."""


def _addresses(settings: Settings, url: httpx.URL) -> list[str]:
    """The receiver's addresses, resolved once for this attempt. In production every one
    must be public: a name is checked when it is used, not only when it is registered,
    since its DNS answer can change afterwards (a public host at registration, the
    platform's own network later)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        answers = socket.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise _NotSent(f"the host {url.host} does not resolve ({error})") from None
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise _NotSent(f"the host {url.host} has no address")
    if settings.mode == Mode.PRODUCTION:
        for address in addresses:
            if not ipaddress.ip_address(address.partition("%")[0]).is_global:
                raise _NotSent(
                    f"the host {url.host} resolves to {address}, not a public address; "
                    "nothing was sent"
                )
    return addresses


def _post(
    settings: Settings, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None]:
    """POST to the addresses :func:`_addresses` checked, in order, and only to them: the
    connection is made to the address itself (``Host`` and, over TLS, the server name and
    certificate check still use the URL's host), so no second DNS answer, a rebinding one,
    is ever used. Sent directly, never through an ``HTTP(S)_PROXY`` of the environment."""
    target = httpx.URL(url)
    try:
        addresses = _addresses(settings, target)
    except _NotSent as refused:
        return None, str(refused)
    host = target.netloc.decode("ascii")
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    error: httpx.HTTPError | None = None
    with httpx.Client(
        timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    ) as client:
        for address in addresses:
            try:
                response = client.post(
                    target.copy_with(host=address),
                    content=body,
                    headers={**headers, "host": host},
                    extensions=extensions,
                )
            except httpx.TimeoutException:
                return None, f"no answer within {settings.webhook_timeout_seconds:g} s"
            except httpx.ConnectError as refused:
                error = refused  # the next address, as a resolver-driven connect would
                continue
            except httpx.HTTPError as failed:
                return None, f"{type(failed).__name__}: {failed}"[:500]
            if 200 <= response.status_code < 300:
                return response.status_code, None
            return response.status_code, f"answered HTTP {response.status_code}"
    return None, f"{type(error).__name__}: {error}"[:500]


def attempt_delivery(
    session: Session,
    settings: Settings,
    delivery: WebhookDelivery,
    *,
    now: datetime | None = None,
    keyring: KeyRing | None = None,
) -> DeliveryState:
    """One attempt: delivered, pending again (after the backoff), or dead (the last, or
    one that can never succeed: a disabled endpoint, a signing secret that no longer
    opens). ``keyring`` is the vault's (loaded from ``settings`` when not given)."""
    if DeliveryState(delivery.state) != DeliveryState.PENDING:
        return DeliveryState(delivery.state)
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    notice = session.get(Notice, delivery.notice_id)
    assert endpoint is not None and notice is not None
    sent_at = now or utcnow()
    hopeless = not endpoint.active
    status: int | None = None
    if hopeless:
        error: str | None = "the endpoint was disabled"
    else:
        try:
            secret = _signing_secret(session, keyring or KeyRing.from_settings(settings), endpoint)
        except (Conflict, Gone) as unreadable:
            # Altered, or its organisation's key was shredded: nothing can sign it, and
            # the other due deliveries must still go out.
            hopeless, error = True, f"the endpoint's signing secret does not open: {unreadable}"
        else:
            # Signed with the real time (receivers refuse timestamps far from theirs);
            # ``now`` only decides when the next attempt is due.
            body, headers = signed_request(delivery.id, secret, payload_of(notice), utcnow())
            status, error = _post(settings, endpoint.url, body, headers)
    delivery.attempts += 1
    delivery.last_status = status
    delivery.last_error = error
    if error is None:
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = utcnow()
        delivery.next_attempt_at = None
    elif delivery.attempts >= settings.webhook_max_attempts or hopeless:
        delivery.state = DeliveryState.DEAD
        delivery.next_attempt_at = None
    else:
        delay = settings.webhook_backoff_seconds * 2 ** (delivery.attempts - 1)
        delivery.next_attempt_at = sent_at + timedelta(seconds=delay)
    session.flush()
    append_event(
        session,
        actor="system",
        action=f"webhook.{'delivered' if error is None else 'failed'}",
        subject=f"notice:{notice.id}",
        payload={"delivery": delivery.id, "endpoint": endpoint.id, "attempt": delivery.attempts,
                 "status": status, "state": str(delivery.state)},
    )  # fmt: skip
    return DeliveryState(delivery.state)


def deliver_due(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Attempt every pending delivery whose time has come; how many were attempted."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(1000)
        )
    )
    keyring = KeyRing.from_settings(settings)  # once for the round, not per delivery
    for delivery in due:
        attempt_delivery(session, settings, delivery, now=now, keyring=keyring)
    return len(due)


def dead_letters(
    session: Session, *, state: DeliveryState = DeliveryState.DEAD, limit: int = 200
) -> list[WebhookDelivery]:
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.state == state)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        )
    )


@job_handler(DELIVER_JOB)
def _deliver(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    """The first attempt, right after the withdrawal commits (idempotent: a delivered or
    dead delivery is left as it is)."""
    delivery = session.get(WebhookDelivery, payload["delivery_id"])
    if delivery is not None:
        attempt_delivery(session, runtime.settings, delivery, keyring=runtime.vault.keyring)
