"""``fairtrain audit …`` end to end: export, verify, checkpoint, prove, verify-proof.

The commands run through typer's CliRunner against a dev-mode data directory whose
SQLite database holds events appended by the real ``append_event``; the signing key is
the one dev mode creates under ``data_dir/keys``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.unit.audit.audit_helpers import make_database, write_log
from typer.testing import CliRunner, Result

from fairtrain.audit.keys import key_id, load_signing_key, public_key_pem
from fairtrain.audit.verify import EVENTS_FILE, PUBLIC_KEY_FILE
from fairtrain.cli import app
from fairtrain.config import get_settings, reset_settings_cache
from fairtrain.db import make_engine, make_session_factory

runner = CliRunner()


def flat(text: str) -> str:
    """Rich wraps long lines at the console width; compare text with whitespace folded."""
    return " ".join(text.split())


def audit(*args: str) -> Result:
    return runner.invoke(app, ["audit", *args])


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "data").mkdir()
    make_database(tmp_path / "data").dispose()  # the tables; each test appends its events
    monkeypatch.setenv("FAIRTRAIN_MODE", "dev")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FAIRTRAIN_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'a.db'}")
    monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
    reset_settings_cache()
    yield tmp_path / "data"
    reset_settings_cache()


def append(count: int, *, start: int = 1) -> list[str]:
    """Append events to the CLI's database in a committed transaction of their own."""
    engine = make_engine(get_settings().effective_database_url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            return write_log(session, count, start=start)
    finally:
        engine.dispose()


def platform_key() -> Ed25519PrivateKey:
    return load_signing_key(get_settings().effective_signing_key_path)


# -- export and verify -------------------------------------------------------------------


def test_export_signs_a_checkpoint_and_the_export_verifies(data_dir: Path, tmp_path: Path) -> None:
    append(6)
    exported = audit("export", str(tmp_path / "export"), "--json")
    assert exported.exit_code == 0, exported.output
    summary = json.loads(exported.stdout)
    identity = key_id(platform_key().public_key())
    assert summary == {
        "directory": str(tmp_path / "export"),
        "events": 6,
        "checkpoints": 1,
        "key_id": identity,
    }

    verified = audit("verify", str(tmp_path / "export"))
    assert verified.exit_code == 0, verified.output
    text = flat(verified.stdout)
    assert f"OK: 6 events and 1 signed checkpoints verify (key {identity})." in text
    assert "Compare the key id with the one the platform publishes." in text

    pinned = audit("verify", str(tmp_path / "export"), "--key-id", identity, "--json")
    assert pinned.exit_code == 0, pinned.output
    report = json.loads(pinned.stdout)
    assert (report["ok"], report["events_checked"], report["unsigned_events"]) == (True, 6, 0)


def test_export_without_checkpoint_reports_unsigned_events(data_dir: Path, tmp_path: Path) -> None:
    append(3)
    exported = audit("export", str(tmp_path / "export"), "--no-checkpoint")
    assert exported.exit_code == 0, exported.output
    assert "Exported 3 events and 0 checkpoints" in flat(exported.stdout)
    verified = audit("verify", str(tmp_path / "export"))
    assert verified.exit_code == 0, verified.output
    assert "3 event(s) after the last checkpoint are chained but not yet signed." in flat(
        verified.stdout
    )


def test_export_of_an_empty_log(data_dir: Path, tmp_path: Path) -> None:
    exported = audit("export", str(tmp_path / "export"))
    assert exported.exit_code == 0, exported.output
    assert "Exported 0 events and 0 checkpoints" in flat(exported.stdout)
    assert audit("verify", str(tmp_path / "export")).exit_code == 0


def test_export_refuses_a_directory_that_holds_an_export(data_dir: Path, tmp_path: Path) -> None:
    append(1)
    assert audit("export", str(tmp_path / "export")).exit_code == 0
    again = audit("export", str(tmp_path / "export"))
    assert again.exit_code == 2
    assert "Refused (export_dir_not_empty)" in flat(again.stderr)


def test_a_tampered_export_fails_verification_and_names_the_event(
    data_dir: Path, tmp_path: Path
) -> None:
    append(6)
    assert audit("export", str(tmp_path / "export")).exit_code == 0
    events = tmp_path / "export" / EVENTS_FILE
    lines = events.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"actor":"user:usr_3"', b'"actor":"user:usr_9"')
    events.write_bytes(b"\n".join(lines))

    failed = audit("verify", str(tmp_path / "export"))
    assert failed.exit_code == 1
    assert "FAILED at event 3: event hash does not match its fields" in flat(failed.stderr)
    assert failed.stdout == ""

    as_json = audit("verify", str(tmp_path / "export"), "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["first_bad_seq"]) == (False, 3)


def test_verify_against_another_key_id_fails(data_dir: Path, tmp_path: Path) -> None:
    append(2)
    assert audit("export", str(tmp_path / "export")).exit_code == 0
    failed = audit("verify", str(tmp_path / "export"), "--key-id", "ab" * 32)
    assert failed.exit_code == 1
    assert f"not the expected {'ab' * 32}" in flat(failed.stderr)


def test_verify_needs_no_settings_or_database(tmp_path: Path) -> None:
    """An auditor's machine has no data dir: verify reads only the export."""
    failed = audit("verify", str(tmp_path / "nothing-here"))
    assert failed.exit_code == 1
    assert "MANIFEST.json is missing" in flat(failed.stderr)


def test_commands_needing_the_key_refuse_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRTRAIN_MODE", "production")
    monkeypatch.setenv("FAIRTRAIN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FAIRTRAIN_SIGNING_KEY_PATH", raising=False)
    reset_settings_cache()
    try:
        for args in (["checkpoint"], ["export", str(tmp_path / "export")]):
            refused = audit(*args)
            assert refused.exit_code == 2, args
            assert "the platform signing key" in flat(refused.stderr)
            assert "does not exist" in flat(refused.stderr)
    finally:
        reset_settings_cache()
    assert not (tmp_path / "keys").exists()  # production never creates a key


# -- checkpoint --------------------------------------------------------------------------


def test_checkpoint_signs_every_event_so_far(data_dir: Path) -> None:
    empty = audit("checkpoint")
    assert empty.exit_code == 2
    assert "Refused (audit_empty)" in flat(empty.stderr)

    append(4)
    signed = audit("checkpoint", "--json")
    assert signed.exit_code == 0, signed.output
    record = json.loads(signed.stdout)
    assert record["tree_size"] == 4
    assert record["key_id"] == key_id(platform_key().public_key())

    again = audit("checkpoint")
    assert again.exit_code == 0
    assert f"Checkpoint over 4 events: root {record['root_hash']}" in flat(again.stdout)


# -- prove and verify-proof --------------------------------------------------------------


def test_prove_then_verify_proof_offline(data_dir: Path, tmp_path: Path) -> None:
    ids = append(7)
    assert audit("checkpoint").exit_code == 0
    pem = tmp_path / "platform.pem"
    pem.write_bytes(public_key_pem(platform_key().public_key()))

    printed = audit("prove", ids[2])
    assert printed.exit_code == 0, printed.output
    proof = json.loads(printed.stdout)
    assert (proof["event_id"], proof["seq"], proof["checkpoint"]["tree_size"]) == (ids[2], 3, 7)

    written = audit("prove", ids[2], "--output", str(tmp_path / "proof.json"))
    assert written.exit_code == 0, written.output
    assert json.loads((tmp_path / "proof.json").read_text()) == proof

    checked = audit("verify-proof", str(tmp_path / "proof.json"), "--public-key", str(pem))
    assert checked.exit_code == 0, checked.output
    identity = key_id(platform_key().public_key())
    assert f"OK: event {ids[2]} is event 3 of the 7 signed by key {identity}." in flat(
        checked.stdout
    )


def test_a_proof_from_an_export_key_verifies(data_dir: Path, tmp_path: Path) -> None:
    """The public key an auditor already has from an export checks proofs too."""
    ids = append(3)
    assert audit("export", str(tmp_path / "export")).exit_code == 0
    assert audit("prove", ids[0], "-o", str(tmp_path / "proof.json")).exit_code == 0
    key = tmp_path / "export" / PUBLIC_KEY_FILE
    assert (
        audit("verify-proof", str(tmp_path / "proof.json"), "--public-key", str(key)).exit_code == 0
    )


def test_a_tampered_proof_or_another_key_fails(data_dir: Path, tmp_path: Path) -> None:
    ids = append(5)
    assert audit("checkpoint").exit_code == 0
    assert audit("prove", ids[1], "-o", str(tmp_path / "proof.json")).exit_code == 0
    pem = tmp_path / "platform.pem"
    pem.write_bytes(public_key_pem(platform_key().public_key()))

    proof = json.loads((tmp_path / "proof.json").read_text())
    proof["seq"] = 3
    proof["leaf_index"] = 2
    (tmp_path / "forged.json").write_text(json.dumps(proof))
    forged = audit("verify-proof", str(tmp_path / "forged.json"), "--public-key", str(pem))
    assert forged.exit_code == 1
    assert "FAILED: the proof does not verify with this key." in flat(forged.stderr)

    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    other = audit("verify-proof", str(tmp_path / "proof.json"), "--public-key", str(stranger))
    assert other.exit_code == 1
    assert "FAILED" in other.stderr


def test_verify_proof_reports_unreadable_input(tmp_path: Path) -> None:
    (tmp_path / "proof.json").write_text("{not json")
    (tmp_path / "key.pem").write_text("irrelevant")
    bad_json = audit(
        "verify-proof", str(tmp_path / "proof.json"), "--public-key", str(tmp_path / "key.pem")
    )
    assert bad_json.exit_code == 2
    assert "Cannot read the proof or key" in flat(bad_json.stderr)
    missing = audit(
        "verify-proof", str(tmp_path / "absent.json"), "--public-key", str(tmp_path / "key.pem")
    )
    assert missing.exit_code == 2
    (tmp_path / "list.json").write_text("[]")
    not_an_object = audit(
        "verify-proof", str(tmp_path / "list.json"), "--public-key", str(tmp_path / "key.pem")
    )
    assert not_an_object.exit_code == 1


def test_prove_refuses_unknown_and_unsigned_events(data_dir: Path) -> None:
    unknown = audit("prove", "evt_unknown")
    assert unknown.exit_code == 2
    assert "Refused (audit_event_not_found)" in flat(unknown.stderr)

    ids = append(2)
    unsigned = audit("prove", ids[0])
    assert unsigned.exit_code == 2
    assert "Refused (audit_event_not_checkpointed)" in flat(unsigned.stderr)
    assert "fairtrain audit checkpoint" in flat(unsigned.stderr)
