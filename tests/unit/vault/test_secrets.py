"""Small secrets sealed under an owner's data key (webhook signing keys): readable to the
platform with the KEK, to nobody with the database alone; they survive KEK rotation and
die with the owner's key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from fairtrain.config import Mode, Settings
from fairtrain.errors import Conflict, Gone, InvalidInput
from fairtrain.vault.keys import KeyRing
from fairtrain.vault.service import (
    open_secret,
    prune_retired_keks,
    rotate_kek,
    seal_secret,
    shred_owner,
)

ORG = "org:org_acme"


def test_a_sealed_secret_opens_for_its_own_row_only(session: Session, keyring: KeyRing) -> None:
    secret = os.urandom(32)
    sealed = seal_secret(session, keyring, owner=ORG, context="webhook:whe_1", secret=secret)
    assert secret not in sealed
    assert open_secret(session, keyring, context="webhook:whe_1", sealed=sealed) == secret
    # Copied onto another row, flipped, truncated or emptied: refused, never a wrong key.
    for bad, context in (
        (sealed, "webhook:whe_2"),
        (sealed[:-1] + bytes([sealed[-1] ^ 1]), "webhook:whe_1"),
        (sealed[:20], "webhook:whe_1"),
        (b"", "webhook:whe_1"),
        (b"vky_nope." + sealed.partition(b".")[2], "webhook:whe_1"),
    ):
        with pytest.raises(Conflict) as refused:
            open_secret(session, keyring, context=context, sealed=bad)
        assert refused.value.code == "vault_integrity_error"


def test_each_sealing_is_fresh_and_owners_are_checked(session: Session, keyring: KeyRing) -> None:
    secret = os.urandom(32)
    first = seal_secret(session, keyring, owner=ORG, context="webhook:whe_1", secret=secret)
    again = seal_secret(session, keyring, owner=ORG, context="webhook:whe_1", secret=secret)
    assert first != again  # a new nonce each time
    with pytest.raises(InvalidInput):
        seal_secret(session, keyring, owner="not an owner", context="x", secret=secret)


def test_secrets_survive_kek_rotation_and_die_with_the_owner(
    session: Session, keyring: KeyRing, kek_path: Path, tmp_path: Path
) -> None:
    secret = os.urandom(32)
    sealed = seal_secret(session, keyring, owner=ORG, context="webhook:whe_1", secret=secret)
    session.commit()
    settings = Settings(mode=Mode.DEV, data_dir=tmp_path, kek_path=kek_path)
    rotate_kek(session, settings)
    session.commit()
    prune_retired_keks(session, settings)  # the old KEK file is gone
    fresh = KeyRing.from_file(kek_path)
    assert open_secret(session, fresh, context="webhook:whe_1", sealed=sealed) == secret

    shred_owner(session, ORG)
    session.commit()
    with pytest.raises(Gone) as gone:
        open_secret(session, fresh, context="webhook:whe_1", sealed=sealed)
    assert gone.value.code == "vault_key_destroyed"
