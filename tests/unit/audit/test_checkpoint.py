"""Signed checkpoints, inclusion and consistency proofs against the database."""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tests.unit.audit.audit_helpers import write_log

from fairtrain.audit.checkpoint import (
    checkpoint_record,
    consistency_proof,
    create_checkpoint,
    event_hashes,
    inclusion_proof,
    latest_checkpoint,
    maybe_checkpoint,
)
from fairtrain.audit.keys import key_id, public_key_pem
from fairtrain.audit.merkle import merkle_root, verify_consistency
from fairtrain.audit.models import AuditCheckpoint, AuditEvent
from fairtrain.audit.service import (
    checkpoint_policy,
    count_events,
    sign_checkpoints_every,
    verify_stored_chain,
)
from fairtrain.audit.verify import checkpoint_message, verify_inclusion_proof
from fairtrain.config import Settings
from fairtrain.errors import Conflict, InvalidInput, NotFound


def _hashes(session: Session) -> list[bytes]:
    stored = session.scalars(select(AuditEvent.hash).order_by(AuditEvent.seq))
    return [bytes.fromhex(h) for h in stored]


def test_checkpoint_signs_the_root_of_every_event(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    write_log(session, 9)
    checkpoint = create_checkpoint(session, signing_key)
    hashes = _hashes(session)
    assert checkpoint.tree_size == 9
    assert checkpoint.root_hash == merkle_root(hashes).hex()
    assert checkpoint.last_event_hash == hashes[-1].hex()
    assert checkpoint.key_id == key_id(signing_key.public_key())
    record = checkpoint_record(checkpoint)
    message = checkpoint_message(**{k: record[k] for k in record if k != "signature"})
    signing_key.public_key().verify(base64.b64decode(checkpoint.signature), message)
    # Signing appended nothing to the log it signs.
    assert count_events(session) == 9
    assert list(event_hashes(session, 4)) == hashes[:4]


def test_checkpoint_is_idempotent_and_refuses_an_empty_log(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(Conflict) as refused:
        create_checkpoint(session, signing_key)
    assert refused.value.code == "audit_empty"
    write_log(session, 2)
    first = create_checkpoint(session, signing_key)
    assert create_checkpoint(session, signing_key) is first


def test_checkpoint_refuses_a_log_with_a_gap(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    write_log(session, 4)
    session.delete(session.get(AuditEvent, 2))
    session.flush()
    with pytest.raises(Conflict) as refused:
        create_checkpoint(session, signing_key)
    assert refused.value.code == "audit_chain_gap"


def test_maybe_checkpoint_waits_for_enough_events(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    write_log(session, 3)
    assert maybe_checkpoint(session, signing_key, every=4) is None
    write_log(session, 1, start=4)
    made = maybe_checkpoint(session, signing_key, every=4)
    assert made is not None and made.tree_size == 4
    write_log(session, 3, start=5)
    assert maybe_checkpoint(session, signing_key, every=4) is None
    assert latest_checkpoint(session) is made
    with pytest.raises(InvalidInput):
        maybe_checkpoint(session, signing_key, every=0)


def test_inclusion_proofs_verify_for_every_event(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    ids = write_log(session, 11)
    create_checkpoint(session, signing_key)
    pem = public_key_pem(signing_key.public_key())
    for seq, event_id in enumerate(ids, start=1):
        proof = inclusion_proof(session, event_id)
        assert proof["seq"] == seq and proof["event_id"] == event_id
        assert verify_inclusion_proof(proof, pem)


def _altered(proof: dict[str, Any]) -> list[dict[str, Any]]:
    variants = []
    for path, value in [
        (("leaf_index",), proof["leaf_index"] + 1),
        (("seq",), proof["seq"] + 1),
        (("event_hash",), hashlib.sha256(b"x").hexdigest()),
        (("audit_path",), proof["audit_path"][:-1]),
        (("audit_path",), [hashlib.sha256(b"y").hexdigest(), *proof["audit_path"][1:]]),
        (("checkpoint", "root_hash"), hashlib.sha256(b"z").hexdigest()),
        (("checkpoint", "tree_size"), proof["checkpoint"]["tree_size"] + 1),
        (("checkpoint", "signature"), base64.b64encode(b"\x00" * 64).decode()),
        (("checkpoint", "signature"), "not base64!"),
        (("checkpoint", "key_id"), "0" * 64),
    ]:
        variant = copy.deepcopy(proof)
        target = variant
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        variants.append(variant)
    broken = copy.deepcopy(proof)
    del broken["checkpoint"]
    variants.append(broken)
    return variants


def test_altered_inclusion_proofs_fail(session: Session, signing_key: Ed25519PrivateKey) -> None:
    ids = write_log(session, 6)
    create_checkpoint(session, signing_key)
    pem = public_key_pem(signing_key.public_key())
    proof = inclusion_proof(session, ids[2])
    for variant in _altered(proof):
        assert not verify_inclusion_proof(variant, pem), variant
    stranger = public_key_pem(Ed25519PrivateKey.generate().public_key())
    assert not verify_inclusion_proof(proof, stranger)
    assert not verify_inclusion_proof(proof, b"not a key")


def test_inclusion_proof_needs_a_known_and_covered_event(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(NotFound):
        inclusion_proof(session, "evt_unknown")
    ids = write_log(session, 2)
    with pytest.raises(Conflict, match="newer than the latest checkpoint"):
        inclusion_proof(session, ids[0])
    create_checkpoint(session, signing_key)
    later = write_log(session, 1, start=3)
    with pytest.raises(Conflict):
        inclusion_proof(session, later[0])


def test_consistency_between_two_checkpoints(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    write_log(session, 5)
    old = create_checkpoint(session, signing_key)
    write_log(session, 8, start=6)
    new = create_checkpoint(session, signing_key)
    proof = [bytes.fromhex(h) for h in consistency_proof(session, old.tree_size, new.tree_size)]
    assert verify_consistency(
        old.tree_size,
        new.tree_size,
        bytes.fromhex(old.root_hash),
        bytes.fromhex(new.root_hash),
        proof,
    )
    with pytest.raises(InvalidInput):
        consistency_proof(session, 0, 5)
    with pytest.raises(InvalidInput):
        consistency_proof(session, 5, 99)


# -- a checkpoint every N events (settings.audit_checkpoint_every) -----------------------


def _checkpoint_sizes(session: Session) -> list[int]:
    return list(session.scalars(select(AuditCheckpoint.tree_size).order_by("tree_size")))


def test_append_signs_a_checkpoint_at_every_multiple_of_the_interval(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    sign_checkpoints_every(session, signing_key, 4)
    write_log(session, 3)
    assert _checkpoint_sizes(session) == []
    write_log(session, 1, start=4)
    assert _checkpoint_sizes(session) == [4]
    write_log(session, 9, start=5)
    assert _checkpoint_sizes(session) == [4, 8, 12]
    newest = latest_checkpoint(session)
    assert newest is not None
    assert newest.root_hash == merkle_root(_hashes(session)[:12]).hex()
    assert verify_stored_chain(session) == (True, None, None)


def test_interval_checkpoints_stay_on_the_grid_after_a_manual_one(
    session: Session, signing_key: Ed25519PrivateKey
) -> None:
    sign_checkpoints_every(session, signing_key, 5)
    write_log(session, 7)
    create_checkpoint(session, signing_key)  # `fairtrain audit checkpoint` at 7
    write_log(session, 3, start=8)
    assert _checkpoint_sizes(session) == [5, 7, 10]


def test_every_session_of_a_factory_signs_and_rollback_drops_the_checkpoint(
    factory: sessionmaker[Session], signing_key: Ed25519PrivateKey, settings: Settings
) -> None:
    configured = settings.model_copy(update={"audit_checkpoint_every": 3})
    sign_checkpoints_every(factory, signing_key, configured.audit_checkpoint_every)
    with factory() as session, session.begin():
        policy = checkpoint_policy(session)
        assert policy is not None and policy.every == 3
        write_log(session, 2)
    with factory() as session:
        with session.begin():
            write_log(session, 1, start=3)  # the third event, in a later transaction
            assert _checkpoint_sizes(session) == [3]
        assert _checkpoint_sizes(session) == [3]  # committed with the event
    with factory() as session:
        session.begin()
        write_log(session, 3, start=4)
        assert _checkpoint_sizes(session) == [3, 6]
        session.rollback()  # the events and their checkpoint go together
        assert _checkpoint_sizes(session) == [3]
        assert count_events(session) == 3


def test_without_a_policy_append_signs_nothing(
    factory: sessionmaker[Session], session: Session
) -> None:
    assert checkpoint_policy(session) is None
    write_log(session, 5)
    assert _checkpoint_sizes(session) == []
    with factory() as other:
        assert checkpoint_policy(other) is None


def test_the_interval_must_be_positive(session: Session, signing_key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="at least 1 event"):
        sign_checkpoints_every(session, signing_key, 0)
    assert checkpoint_policy(session) is None


def test_a_log_with_a_gap_is_not_signed_but_the_append_succeeds(
    session: Session, signing_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    sign_checkpoints_every(session, signing_key, 4)
    write_log(session, 3)
    session.delete(session.get(AuditEvent, 2))
    session.flush()
    with caplog.at_level(logging.ERROR, logger="fairtrain.audit.service"):
        write_log(session, 1, start=4)
    assert count_events(session) == 3
    assert _checkpoint_sizes(session) == []
    assert "audit checkpoint at event 4 not signed (audit_chain_gap)" in caplog.text


def test_a_proof_binds_the_event_id_and_fields(session, signing_key) -> None:  # type: ignore[no-untyped-def]
    db = session
    from cryptography.hazmat.primitives import serialization

    from fairtrain.audit.checkpoint import create_checkpoint, inclusion_proof
    from fairtrain.audit.service import append_event
    from fairtrain.audit.verify import verify_inclusion_proof

    events = [
        append_event(db, actor="system", action="test.thing", subject=f"thing:{i}", payload={})
        for i in range(3)
    ]
    create_checkpoint(db, signing_key)
    pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    proof = inclusion_proof(db, events[1].event_id)
    assert verify_inclusion_proof(proof, pem)
    swapped = dict(proof, event_id=events[0].event_id)
    assert not verify_inclusion_proof(swapped, pem)
    edited = dict(proof, event=dict(proof["event"], actor="user:someone"))
    assert not verify_inclusion_proof(edited, pem)
    both = dict(swapped, event=dict(proof["event"], event_id=events[0].event_id))
    assert not verify_inclusion_proof(both, pem)
