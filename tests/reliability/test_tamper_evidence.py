"""Tamper evidence, counted: edits to the audit log (stored and exported), to vault
ciphertext, to consent receipts, to licence agreements, to delivered shards and to
backups are each detected by the matching verify command. The test prints, per kind,
how many tamper cases it tried and how many were detected (all, or it fails); the
figure is in docs/reliability.md."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text
from tests import media_factory
from tests.unit.delivery.delivery_helpers import SOURCES, item_from_file, make_description

from fairtrain.accounts.passwords import PasswordPolicy
from fairtrain.audit.export import export_log
from fairtrain.audit.keys import key_id, platform_signing_key, public_key_pem
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.service import verify_stored_chain
from fairtrain.audit.verify import verify_export as verify_audit_export
from fairtrain.backup import create_backup, verify_backup
from fairtrain.config import Mode, Settings
from fairtrain.consent.models import ConsentReceiptRecord
from fairtrain.consent.receipts import receipt_file, verify_receipt_document
from fairtrain.db import make_engine, make_session_factory, session_scope
from fairtrain.delivery import export_dataset
from fairtrain.delivery.manifest import verify_export as verify_delivery
from fairtrain.demo import seed_demo, seed_marketplace
from fairtrain.errors import InvalidInput
from fairtrain.licensing.agreement import agreement_file, verify_agreement_document
from fairtrain.licensing.models import Licence
from fairtrain.migrate import upgrade
from fairtrain.runtime import Runtime
from fairtrain.vault.service import verify_blobs

TRIED: Counter[str] = Counter()
DETECTED: Counter[str] = Counter()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def case(kind: str, detected: bool) -> None:
    TRIED[kind] += 1
    DETECTED[kind] += int(detected)


def refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except (InvalidInput, ValueError):
        return True
    return False


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("tamper")
    settings = Settings(mode=Mode.DEV, data_dir=root, database_url=f"sqlite:///{root / 'f.db'}")
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        seed_demo(session, PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1))
    seed_marketplace(sessions, settings, Runtime(settings))
    engine.dispose()
    return settings, root


def test_every_tamper_is_detected(platform: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, _ = platform
    engine = make_engine(settings.effective_database_url)
    sessions = make_session_factory(engine)
    key = platform_signing_key(settings)
    pem = public_key_pem(key.public_key())

    # 1. The exported audit log: a flipped byte in every event line, a deleted line,
    #    two lines swapped, a line repeated.
    export = tmp_path / "audit"
    with sessions() as session:
        export_log(session, export, key.public_key())
    events = next(p for p in export.iterdir() if p.name.startswith("events"))
    original = events.read_bytes()
    lines = original.splitlines(keepends=True)
    for index, line in enumerate(lines):
        events.write_bytes(
            b"".join([*lines[:index], flip(line, len(line) // 2), *lines[index + 1 :]])
        )
        case("audit export", not verify_audit_export(export).ok)
    for edited in (lines[1:], [lines[1], lines[0], *lines[2:]], [lines[0], *lines]):
        events.write_bytes(b"".join(edited))
        case("audit export", not verify_audit_export(export).ok)
    events.write_bytes(original)
    assert verify_audit_export(export).ok

    # 2. The stored audit log: an event's payload, action or actor edited in the table.
    with sessions() as session:
        seqs = list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
    for seq in seqs[:: max(1, len(seqs) // 15)]:
        for column, value in (("action", "'asset.erased'"), ("actor", "'user:someone'")):
            with engine.begin() as connection:
                old = connection.execute(
                    text(f"SELECT {column} FROM audit_events WHERE seq = :s"), {"s": seq}
                ).scalar_one()
                connection.execute(
                    text(f"UPDATE audit_events SET {column} = {value} WHERE seq = :s"), {"s": seq}
                )
            with sessions() as session:
                case("audit table", not verify_stored_chain(session)[0])
            with engine.begin() as connection:
                connection.execute(
                    text(f"UPDATE audit_events SET {column} = :v WHERE seq = :s"),
                    {"v": old, "s": seq},
                )
    with sessions() as session:
        assert verify_stored_chain(session)[0]

    # 3. Vault ciphertext: a flipped byte (and a truncation) in every stored object.
    runtime = Runtime(settings)
    objects = sorted(p for p in (settings.data_dir / "vault").rglob("*") if p.is_file())
    assert objects
    for path in objects:
        data = path.read_bytes()
        for changed in (flip(data, len(data) // 2), data[: len(data) - 1]):
            path.write_bytes(changed)
            with sessions() as session:
                bad = [
                    c
                    for c in verify_blobs(
                        session, runtime.vault.backend, keyring=runtime.vault.keyring
                    )
                    if not c.ok
                ]
            case("vault blob", len(bad) == 1)
        path.write_bytes(data)

    # 4. Consent receipts and licence agreements: the signed JWS, and the readable copy.
    with sessions() as session:
        receipts = list(session.scalars(select(ConsentReceiptRecord)))
        licences = list(session.scalars(select(Licence)))
    kid = key_id(key.public_key())
    for record in receipts:
        good = receipt_file(record.receipt, record.jws, kid)
        verify_receipt_document(good, pem)
        jws = record.jws
        forged = good | {
            "jws": jws[: len(jws) // 2]
            + ("A" if jws[len(jws) // 2] != "A" else "B")
            + jws[len(jws) // 2 + 1 :]
        }
        case("receipt", refused(lambda f=forged: verify_receipt_document(f, pem)))
        changed = json.loads(json.dumps(good))
        changed["receipt"]["validUntil"] = "2099-01-01T00:00:00Z"
        case("receipt", refused(lambda c=changed: verify_receipt_document(c, pem)))
    for licence in licences:
        good = agreement_file(licence.agreement, licence.agreement_jws, kid)
        verify_agreement_document(good, pem)
        changed = json.loads(json.dumps(good))
        changed["agreement"]["permission"][0]["constraint"][1]["rightOperand"] = ["US"]
        case("licence agreement", refused(lambda c=changed: verify_agreement_document(c, pem)))
        jws = licence.agreement_jws
        forged = good | {"jws": jws[:-3] + ("AAA" if jws[-3:] != "AAA" else "BBB")}
        case("licence agreement", refused(lambda f=forged: verify_agreement_document(f, pem)))

    # 5. A delivered export: a flipped byte in every file, a removed file, an added one.
    media = tmp_path / "media"
    media.mkdir()
    items = [
        item_from_file(media_factory.make(name, media / name), modality, extension, index)
        for index, (name, (modality, extension)) in enumerate(SOURCES.items())
        if name in ("png", "flac", "plain-text")
    ]
    delivered = tmp_path / "delivered"
    export_dataset(items, make_description(items), delivered)
    assert verify_delivery(delivered).ok
    for path in sorted(
        p for p in delivered.rglob("*") if p.is_file() and p.name != "manifest.json"
    ):
        data = path.read_bytes()
        path.write_bytes(flip(data, len(data) // 2))
        case("delivered export", not verify_delivery(delivered).ok)
        path.write_bytes(data)
    victim = next(delivered.rglob("*.parquet"))
    kept = victim.read_bytes()
    victim.unlink()
    case("delivered export", not verify_delivery(delivered).ok)
    victim.write_bytes(kept)
    (delivered / "extra.bin").write_bytes(b"not ours")
    case("delivered export", not verify_delivery(delivered).ok)
    (delivered / "extra.bin").unlink()

    # 6. A backup: a flipped byte in every file.
    backup, keys = tmp_path / "backup", tmp_path / "keys"
    create_backup(settings, backup, keys)
    assert verify_backup(backup, keys) == []
    for path in sorted(p for p in backup.rglob("*") if p.is_file() and p.name != "manifest.json"):
        data = path.read_bytes()
        path.write_bytes(flip(data, len(data) // 2))
        case("backup", bool(verify_backup(backup, keys)))
        path.write_bytes(data)
    shutil.rmtree(backup)
    engine.dispose()

    for kind in sorted(TRIED):
        print(f"tamper cases {kind}: {TRIED[kind]} tried, {DETECTED[kind]} detected")
    print(f"tamper cases in all: {sum(TRIED.values())} tried, {sum(DETECTED.values())} detected")
    assert DETECTED == TRIED, {k: (TRIED[k], DETECTED[k]) for k in TRIED}
    assert set(TRIED) == {
        "audit export",
        "audit table",
        "vault blob",
        "receipt",
        "licence agreement",
        "delivered export",
        "backup",
    }
