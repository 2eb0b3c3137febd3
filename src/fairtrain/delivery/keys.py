"""Watermark keys: derived from the platform's watermark secret, never stored.

Each (licence, asset) pair gets its own key, ``HMAC-SHA256(secret, "fairtrain/watermark/"
+ licence_id + "/" + asset_id)``: the picture mark of one licence then differs from one
picture to the next, so a licensee holding many marked pictures cannot average them to
estimate the pattern and subtract it (docs/watermark.md, "Keys"). Tracing a leak needs the
asset, which the platform finds (the byte digest of a delivered copy, or the perceptual
fingerprint of the asset). The licence alone has a key too, for the keyed order of its
records (``licence_order``).

The secret is ``FAIRTRAIN_WATERMARK_SECRET`` or, by default, derived from
``FAIRTRAIN_SECRET_KEY``: keep it for as long as deliveries may need tracing.
"""

from __future__ import annotations

import hashlib
import hmac

from fairtrain.config import Settings

__all__ = ["licence_key", "watermark_key", "watermark_secret"]

_SECRET_CONTEXT = b"fairtrain/watermark-secret/v1"


def watermark_secret(settings: Settings) -> bytes:
    if settings.watermark_secret is not None:
        return settings.watermark_secret.get_secret_value().encode("utf-8")
    base = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return hmac.new(base.encode("utf-8"), _SECRET_CONTEXT, hashlib.sha256).digest()


def watermark_key(secret: bytes, licence_id: str, asset_id: str) -> bytes:
    """The key that marks ``asset_id`` as delivered under ``licence_id`` (32 bytes)."""
    message = f"fairtrain/watermark/{licence_id}/{asset_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def licence_key(secret: bytes, licence_id: str) -> bytes:
    """The licence's own key: its delivery's record order."""
    return hmac.new(secret, f"fairtrain/watermark/{licence_id}".encode(), hashlib.sha256).digest()
