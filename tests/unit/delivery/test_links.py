"""Signed download links: what the platform signed opens, and nothing else does."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from fairtrain.config import Mode, Settings
from fairtrain.delivery.links import DownloadLink, link_secret, read_link, sign_link
from fairtrain.errors import NotFound

SECRET = b"k" * 32
LINK = DownloadLink(
    licence_id="lic_abc",
    export_id="exp_def",
    path="data/train-00000-of-00001.parquet",
    expires_at=datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
    link_id="dlk_123",
)


def test_a_signed_link_reads_back() -> None:
    token = sign_link(SECRET, LINK)
    assert read_link(SECRET, token) == LINK
    assert "/" not in token and "=" not in token  # one URL path segment


def _refused(token: str, secret: bytes = SECRET) -> None:
    with pytest.raises(NotFound) as refused:
        read_link(secret, token)
    assert refused.value.code == "download_link_invalid"


def test_another_secret_or_altered_claims_open_nothing() -> None:
    token = sign_link(SECRET, LINK)
    _refused(token, b"j" * 32)
    claims, mac = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["path"] = "manifest.json"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    _refused(f"{forged}.{mac}")
    _refused(claims)
    _refused(f"{claims}.")
    _refused(f"{claims}.{'A' * 2049}")


@given(st.text(max_size=300))
def test_no_arbitrary_token_opens_anything(token: str) -> None:
    _refused(token)


def test_the_secret_is_derived_from_the_server_secret() -> None:
    one = Settings(mode=Mode.DEV, secret_key=SecretStr("a" * 48))
    two = Settings(mode=Mode.DEV, secret_key=SecretStr("b" * 48))
    assert link_secret(one) == link_secret(one) != link_secret(two)
    assert link_secret(one) != b"a" * 48  # a key of its own, not the secret itself
