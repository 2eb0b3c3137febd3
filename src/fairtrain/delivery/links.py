"""Signed, expiring download links: one file of one export of one licence.

A link is ``/api/v1/downloads/{token}``, ``token = base64url(claims) "." base64url(mac)``
where ``claims`` is the JSON ``{"v": 1, "lic", "exp", "path", "until", "link"}`` (licence,
export, file path, expiry in Unix seconds, a random link id) and ``mac`` is HMAC-SHA256
over the encoded claims under a key derived from ``FAIRTRAIN_SECRET_KEY``. Nothing is
stored when a link is made; a forged or altered token does not verify and opens nothing.

A link alone does not download: the request must also come from the licence holder (a
member of the organisation, or its API key with ``downloads:read``), and the licence must
still be active when it is used (see ``delivery.service.open_download``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from fairtrain.config import Settings
from fairtrain.errors import NotFound

__all__ = ["DownloadLink", "link_secret", "read_link", "sign_link"]

_CONTEXT = b"fairtrain/download-link/v1"
_VERSION = 1
MAX_TOKEN_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class DownloadLink:
    licence_id: str
    export_id: str
    path: str
    expires_at: datetime
    link_id: str


def link_secret(settings: Settings) -> bytes:
    base = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return hmac.new(base.encode("utf-8"), _CONTEXT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(secret: bytes, link: DownloadLink) -> str:
    claims = json.dumps(
        {
            "v": _VERSION,
            "lic": link.licence_id,
            "exp": link.export_id,
            "path": link.path,
            "until": int(link.expires_at.timestamp()),
            "link": link.link_id,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    encoded = _b64(claims)
    mac = hmac.new(secret, encoded.encode("ascii"), hashlib.sha256).digest()
    return f"{encoded}.{_b64(mac)}"


def _invalid() -> NotFound:
    return NotFound("This download link does not open anything.", code="download_link_invalid")


def read_link(secret: bytes, token: str) -> DownloadLink:
    """The link a token names, once its MAC verifies (expiry is checked by the caller,
    after it knows who is asking: another organisation learns nothing, not even that)."""
    encoded, dot, presented = token.partition(".")
    if not dot or len(token) > MAX_TOKEN_LENGTH:
        raise _invalid()
    expected = hmac.new(secret, encoded.encode("ascii", "replace"), hashlib.sha256).digest()
    try:
        mac = _unb64(presented)
    except (binascii.Error, ValueError):
        raise _invalid() from None
    if not hmac.compare_digest(mac, expected):
        raise _invalid()
    # Only claims the platform signed are parsed.
    try:
        claims = json.loads(_unb64(encoded))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid() from None
    if not isinstance(claims, dict) or claims.get("v") != _VERSION:
        raise _invalid()
    try:
        return DownloadLink(
            licence_id=str(claims["lic"]),
            export_id=str(claims["exp"]),
            path=str(claims["path"]),
            expires_at=datetime.fromtimestamp(int(claims["until"]), UTC),
            link_id=str(claims["link"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise _invalid() from None
