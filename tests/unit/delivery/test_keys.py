"""Watermark keys: one per licence and asset, re-derivable, from a secret of their own."""

from __future__ import annotations

from pydantic import SecretStr

from fairtrain.config import Mode, Settings
from fairtrain.delivery.keys import licence_key, watermark_key, watermark_secret


def test_keys_differ_per_licence_and_per_asset_and_are_stable() -> None:
    secret = b"s" * 32
    keys = {
        watermark_key(secret, licence, asset)
        for licence in ("lic_a", "lic_b")
        for asset in ("ast_1", "ast_2")
    }
    assert len(keys) == 4 and all(len(key) == 32 for key in keys)
    assert watermark_key(secret, "lic_a", "ast_1") == watermark_key(secret, "lic_a", "ast_1")
    assert watermark_key(b"t" * 32, "lic_a", "ast_1") != watermark_key(secret, "lic_a", "ast_1")
    assert licence_key(secret, "lic_a") not in keys


def test_the_secret_is_its_own_setting_or_derived_from_the_secret_key() -> None:
    derived = Settings(mode=Mode.DEV, secret_key=SecretStr("x" * 48))
    assert watermark_secret(derived) == watermark_secret(derived) != b"x" * 48
    rotated = derived.model_copy(update={"secret_key": SecretStr("y" * 48)})
    assert watermark_secret(rotated) != watermark_secret(derived)
    pinned = derived.model_copy(update={"watermark_secret": SecretStr("w" * 40)})
    assert watermark_secret(pinned) == b"w" * 40
    assert watermark_secret(
        pinned.model_copy(update={"secret_key": SecretStr("y" * 48)})
    ) == watermark_secret(pinned)
