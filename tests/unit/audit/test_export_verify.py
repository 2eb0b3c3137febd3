"""Export a real audit log, verify it offline, and tamper with it every way an operator could.

``built_export`` (tests/unit/audit/conftest.py) holds events 1..12 under checkpoints at
tree sizes 5 and 12, so every event is signed. Each tamper test copies it, alters one
thing and asserts the exact outcome: verification fails, at the first event the verifier
can prove bad, for the reason it gives. Hypothesis picks which event, field or byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from tests.unit.audit.audit_helpers import write_log

from fairtrain.audit import verify
from fairtrain.audit.chain import ChainedEvent, canonical_json, event_hash, payload_digest
from fairtrain.audit.checkpoint import create_checkpoint
from fairtrain.audit.export import export_log
from fairtrain.audit.keys import key_id, platform_signing_key, public_key_pem
from fairtrain.audit.merkle import merkle_root
from fairtrain.audit.models import AuditEvent
from fairtrain.audit.verify import (
    CHECKPOINT_FIELDS,
    CHECKPOINTS_FILE,
    EVENTS_FILE,
    MANIFEST_FILE,
    PUBLIC_KEY_FILE,
    VerifyReport,
    checkpoint_message,
    encode_event_line,
    verify_export,
)
from fairtrain.config import Settings
from fairtrain.errors import Conflict

EVENTS = 12
CHECKPOINT_SIZES = (5, 12)
TAMPER = hypothesis_settings(max_examples=25, deadline=None)

event_seqs = st.integers(min_value=1, max_value=EVENTS)
chained_text_fields = st.sampled_from(["event_id", "occurred_at", "actor", "action", "subject"])


# -- helpers: read, alter and rewrite an export ------------------------------------------


@contextmanager
def copied(export: Path) -> Iterator[Path]:
    """A private copy of the export (hypothesis cannot use function-scoped fixtures)."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "export"
        shutil.copytree(export, target)
        yield target


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def parse(line: bytes) -> tuple[dict[str, Any], str, Any]:
    record = json.loads(line)
    return record["event"], record["hash"], record["payload"]


def rehashed(chained: dict[str, Any], payload: Any) -> bytes:
    """A well-formed line for ``chained`` with its hash recomputed (what a forger writes)."""
    return encode_event_line(chained, event_hash(ChainedEvent(**chained)), payload)


def relink(lines: list[bytes], start: int) -> list[bytes]:
    """Recompute every prev_hash and hash from index ``start`` on, as a forger would."""
    out = list(lines)
    prev = parse(out[start - 1])[1] if start > 0 else "0" * 64
    for index in range(start, len(out)):
        chained, _, payload = parse(out[index])
        chained["prev_hash"] = prev
        out[index] = rehashed(chained, payload)
        prev = parse(out[index])[1]
    return out


def first_checkpoint_at_or_after(seq: int) -> int:
    return min(size for size in CHECKPOINT_SIZES if size >= seq)


def check(export: Path) -> VerifyReport:
    report = verify_export(export, processes=1)
    # A failed report always says why; a passing one never carries a problem.
    assert report.ok is (report.problem is None)
    # Large exports are checked by worker processes, block by block: the same answer,
    # with blocks small enough here that every few lines start a new one.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify, "_CHUNK", 700)
        assert verify_export(export, processes=2) == report
    return report


# -- the untouched export ----------------------------------------------------------------


def test_export_of_a_real_database_verifies(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    key = platform_signing_key(settings)  # dev mode: created under the test's data dir
    assert settings.effective_signing_key_path.is_file()
    ids = write_log(session, 7)
    create_checkpoint(session, key)
    write_log(session, 3, start=8)
    summary = export_log(session, tmp_path / "export", key.public_key())
    assert (summary.events, summary.checkpoints) == (10, 1)
    assert summary.key_id == key_id(key.public_key())

    report = verify_export(tmp_path / "export", expected_key_id=summary.key_id)
    assert report == VerifyReport(
        ok=True,
        events_checked=10,
        checkpoints_checked=1,
        key_id=summary.key_id,
        unsigned_events=3,
    )
    exported = [parse(line) for line in read_lines(tmp_path / "export" / EVENTS_FILE)]
    assert [chained["event_id"] for chained, _, _ in exported][:7] == ids
    assert (tmp_path / "export" / PUBLIC_KEY_FILE).read_bytes() == public_key_pem(key.public_key())


def test_export_files_match_the_manifest_and_the_database(
    session: Session, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    write_log(session, 4)
    checkpoint = create_checkpoint(session, signing_key)
    summary = export_log(session, tmp_path / "out", signing_key.public_key())
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert manifest["format"] == "fairtrain-audit-export/1"
    assert (manifest["events"], manifest["checkpoints"]) == (4, 1)
    assert manifest["files"] == {name: {"sha256": d} for name, d in summary.files.items()}
    rows = session.query(AuditEvent).order_by(AuditEvent.seq).all()
    for row, line in zip(rows, read_lines(tmp_path / "out" / EVENTS_FILE), strict=True):
        chained, stored_hash, payload = parse(line)
        assert stored_hash == row.hash and payload == row.payload
        assert canonical_json({"event": chained, "hash": stored_hash, "payload": payload}) == line
    (record,) = [json.loads(x) for x in read_lines(tmp_path / "out" / CHECKPOINTS_FILE)]
    assert record["root_hash"] == checkpoint.root_hash
    assert record["root_hash"] == merkle_root(bytes.fromhex(r.hash) for r in rows).hex()


def test_export_refuses_a_directory_that_holds_an_export(
    session: Session, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    write_log(session, 1)
    export_log(session, tmp_path, signing_key.public_key())
    with pytest.raises(Conflict) as refused:
        export_log(session, tmp_path, signing_key.public_key())
    assert refused.value.code == "export_dir_not_empty"


def test_an_empty_log_exports_and_verifies(
    session: Session, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    export_log(session, tmp_path, signing_key.public_key())
    report = check(tmp_path)
    assert report.ok and (report.events_checked, report.checkpoints_checked) == (0, 0)


def test_erased_payloads_still_verify(
    session: Session, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """Only the payload's digest is chained, so erasing personal content keeps the proof."""
    write_log(session, 6)
    create_checkpoint(session, signing_key)
    erased = session.get(AuditEvent, 4)
    assert erased is not None and erased.payload
    erased.payload = None
    session.flush()
    export_log(session, tmp_path, signing_key.public_key())
    assert parse(read_lines(tmp_path / EVENTS_FILE)[3])[2] is None
    report = check(tmp_path)
    assert report.ok and report.events_checked == 6


def test_the_built_export_verifies(built_export: Path, signing_key: Ed25519PrivateKey) -> None:
    report = verify_export(built_export, expected_key_id=key_id(signing_key.public_key()))
    assert report == VerifyReport(
        ok=True,
        events_checked=EVENTS,
        checkpoints_checked=len(CHECKPOINT_SIZES),
        key_id=key_id(signing_key.public_key()),
    )


# -- events.jsonl ------------------------------------------------------------------------


@TAMPER
@given(seq=event_seqs, name=chained_text_fields, value=st.text(min_size=1, max_size=20))
def test_a_modified_event_field_is_named(
    built_export: Path, seq: int, name: str, value: str
) -> None:
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        chained, stored_hash, payload = parse(lines[seq - 1])
        if chained[name] == value:
            value += "x"
        chained[name] = value
        lines[seq - 1] = encode_event_line(chained, stored_hash, payload)
        write_lines(path, lines)
        report = check(export)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert report.problem == "event hash does not match its fields"
    assert report.events_checked == seq


@TAMPER
@given(seq=event_seqs, value=st.integers(min_value=-(2**40), max_value=2**40))
def test_a_modified_payload_is_named(built_export: Path, seq: int, value: int) -> None:
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        chained, stored_hash, payload = parse(lines[seq - 1])
        altered = {**payload, "n": value} if payload.get("n") != value else {"n": value + 1}
        lines[seq - 1] = encode_event_line(chained, stored_hash, altered)
        write_lines(path, lines)
        report = check(export)
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (seq, "payload does not match its digest")


@TAMPER
@given(seq=event_seqs, name=chained_text_fields, value=st.text(min_size=1, max_size=20))
def test_a_rewrite_with_the_chain_recomputed_is_caught_by_the_next_checkpoint(
    built_export: Path, seq: int, name: str, value: str
) -> None:
    """Relinking every later hash fools the chain, but not the signed checkpoint after it.

    The verifier cannot tell which of the relinked events was first changed; it names the
    first checkpoint the rewrite contradicts, which is the first event it can prove bad.
    """
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        chained, _, payload = parse(lines[seq - 1])
        chained[name] = value if chained[name] != value else value + "x"
        lines[seq - 1] = rehashed(chained, payload)
        write_lines(path, relink(lines, seq))
        report = check(export)
    boundary = first_checkpoint_at_or_after(seq)
    assert not report.ok
    assert report.first_bad_seq == boundary
    assert report.first_bad_checkpoint == boundary
    assert report.problem is not None
    assert f"checkpoint at tree size {boundary} signs a different last event hash" in (
        report.problem
    )


@TAMPER
@given(seq=event_seqs)
def test_a_deleted_event_line_is_named(built_export: Path, seq: int) -> None:
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        del lines[seq - 1]
        write_lines(path, lines)
        report = check(export)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert report.problem is not None
    if seq < EVENTS:
        assert report.problem == f"sequence broken: expected event {seq}, found {seq + 1}"
    else:  # the last line: nothing after it to disagree, but the checkpoint counts it
        assert "signs more events than the export holds (11)" in report.problem
        assert report.first_bad_checkpoint == EVENTS


@TAMPER
@given(seq=event_seqs, actor=st.text(min_size=1, max_size=12))
def test_a_deleted_event_with_the_chain_relinked_is_caught(
    built_export: Path, seq: int, actor: str
) -> None:
    """Deleting an event and renumbering and relinking the rest still breaks a checkpoint."""
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        del lines[seq - 1]
        for index in range(seq - 1, len(lines)):
            chained, _, payload = parse(lines[index])
            chained["seq"] = index + 1
            lines[index] = rehashed(chained, payload)
        write_lines(path, relink(lines, seq - 1))
        report = check(export)
    boundary = first_checkpoint_at_or_after(seq)
    assert not report.ok
    assert report.first_bad_seq == boundary
    assert report.first_bad_checkpoint == boundary


def _forged_line(lines: list[bytes], position: int, actor: str) -> bytes:
    """A well-formed, correctly linked event for chain position ``position`` (1-based)."""
    prev = parse(lines[position - 2])[1] if position > 1 else "0" * 64
    payload = {"forged": True}
    chained = {
        "seq": position,
        "event_id": "evt_forged",
        "occurred_at": "2030-01-01T00:00:00.000000Z",
        "actor": actor,
        "action": "licence.granted",
        "subject": "asset:ast_forged",
        "payload_digest": payload_digest(payload),
        "prev_hash": prev,
    }
    return rehashed(chained, payload)


@TAMPER
@given(position=st.integers(min_value=1, max_value=EVENTS), actor=st.text(max_size=12))
def test_an_inserted_forged_line_is_caught(built_export: Path, position: int, actor: str) -> None:
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        lines.insert(position - 1, _forged_line(lines, position, actor))
        write_lines(path, lines)
        report = check(export)
    assert not report.ok
    assert report.problem is not None
    if position in CHECKPOINT_SIZES:
        # The forgery is linked correctly, so the first thing it contradicts is the
        # checkpoint signed at its position.
        assert report.first_bad_seq == position
        assert report.first_bad_checkpoint == position
        assert "signs a different last event hash" in report.problem
    else:
        # The forgery itself is consistent; the genuine event pushed after it is not.
        assert report.first_bad_seq == position + 1
        assert report.problem == (
            f"sequence broken: expected event {position + 1}, found {position}"
        )


def test_a_forged_event_appended_after_the_last_checkpoint_is_caught_by_the_manifest(
    built_export: Path,
) -> None:
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        lines.append(_forged_line([*lines, b""], EVENTS + 1, "user:usr_x"))
        write_lines(path, lines)
        report = check(export)
    assert not report.ok
    assert report.problem == f"{MANIFEST_FILE} counts {EVENTS} events, {EVENTS_FILE} has 13"
    assert report.first_bad_seq is None
    assert report.unsigned_events == 1


def test_unsigned_events_can_be_appended_by_whoever_rewrites_the_manifest(
    built_export: Path,
) -> None:
    """The documented limit: events after the last checkpoint carry no signature."""
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        lines.append(_forged_line([*lines, b""], EVENTS + 1, "user:usr_x"))
        write_lines(path, lines)
        _rewrite_manifest(export, events=EVENTS + 1)
        report = check(export)
    assert report.ok
    assert report.unsigned_events == 1


@TAMPER
@given(
    pair=st.lists(st.integers(min_value=1, max_value=EVENTS), min_size=2, max_size=2, unique=True)
)
def test_swapped_lines_are_named(built_export: Path, pair: list[int]) -> None:
    first, second = sorted(pair)
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        lines[first - 1], lines[second - 1] = lines[second - 1], lines[first - 1]
        write_lines(path, lines)
        report = check(export)
    assert not report.ok
    assert report.first_bad_seq == first
    assert report.problem == f"sequence broken: expected event {first}, found {second}"


@TAMPER
@given(data=st.data())
def test_a_truncated_events_file_is_named(built_export: Path, data: st.DataObject) -> None:
    original = (built_export / EVENTS_FILE).read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(original) - 1), label="cut")
    kept = original[:cut]
    complete = kept.count(b"\n")
    with copied(built_export) as export:
        (export / EVENTS_FILE).write_bytes(kept)
        report = check(export)
    assert not report.ok
    assert report.first_bad_seq == complete + 1
    assert report.problem is not None
    if kept.endswith(b"\n") or not kept:
        assert f"signs more events than the export holds ({complete})" in report.problem
    else:  # a partial last line is never read as an event
        assert report.problem.startswith("the line is not valid JSON")


def test_a_missing_events_file_is_reported(built_export: Path) -> None:
    with copied(built_export) as export:
        (export / EVENTS_FILE).unlink()
        report = check(export)
    assert not report.ok and report.problem == f"{EVENTS_FILE} is missing"


@TAMPER
@given(data=st.data(), signed=st.sampled_from([0, 5, EVENTS]))
def test_lines_checked_all_at_once_pass_only_what_the_line_by_line_check_passes(
    built_export: Path, data: st.DataObject, signed: int
) -> None:
    """The verifier's fast path checks a whole chunk with ``map`` and list comparisons;
    any flipped, inserted or deleted byte must send it to the line-by-line check, which
    names the line; untouched, both fold into the same signed Merkle root."""
    lines = read_lines(built_export / EVENTS_FILE)
    genesis = b"0" * 64
    sizes = frozenset(CHECKPOINT_SIZES)
    fast = verify._check_lines(lines, 0, genesis, signed, sizes)
    slow = verify._check_lines_one_by_one(lines, 0, genesis, signed, sizes)
    assert fast.failure is None and slow.failure is None
    assert (fast.last, fast.boundary_hashes) == (slow.last, slow.boundary_hashes)
    for checked in (fast, slow):
        scan = verify._EventScan([])
        scan.absorb(checked)
        assert scan.root() == merkle_root(bytes.fromhex(h) for h in _event_hashes(lines))

    index = data.draw(st.integers(min_value=0, max_value=EVENTS - 1), label="line")
    line = bytearray(lines[index])
    at = data.draw(st.integers(min_value=0, max_value=len(line) - 1), label="at")
    how = data.draw(st.sampled_from(["flip", "insert", "delete"]), label="how")
    if how == "flip":
        line[at] ^= 1 << data.draw(st.integers(min_value=0, max_value=7), label="bit")
    elif how == "insert":
        line.insert(at, data.draw(st.integers(min_value=0, max_value=255), label="byte"))
    else:
        del line[at]
    altered = [*lines[:index], bytes(line), *lines[index + 1 :]]
    by_line = verify._check_lines_one_by_one(altered, 0, genesis, signed, sizes)
    at_once = verify._check_lines_at_once(altered, 0, genesis, signed)
    assert (at_once is None) is (by_line.failure is not None)
    if at_once is None:
        assert verify._check_lines(altered, 0, genesis, signed, sizes) == by_line


def _event_hashes(lines: list[bytes]) -> list[str]:
    return [str(json.loads(line)["hash"]) for line in lines]


# -- checkpoints.jsonl and the key -------------------------------------------------------


def _rewrite_checkpoint(export: Path, index: int, change: Callable[[dict[str, Any]], None]) -> int:
    path = export / CHECKPOINTS_FILE
    lines = read_lines(path)
    record = json.loads(lines[index])
    change(record)
    lines[index] = canonical_json(record)
    write_lines(path, lines)
    return int(json.loads(lines[index])["tree_size"])


@TAMPER
@given(
    index=st.integers(min_value=0, max_value=len(CHECKPOINT_SIZES) - 1),
    byte=st.integers(min_value=0, max_value=63),
    bit=st.integers(min_value=0, max_value=7),
)
def test_an_altered_checkpoint_signature_is_named(
    built_export: Path, index: int, byte: int, bit: int
) -> None:
    def flip(record: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(record["signature"]))
        raw[byte] ^= 1 << bit
        record["signature"] = base64.b64encode(bytes(raw)).decode()

    with copied(built_export) as export:
        size = _rewrite_checkpoint(export, index, flip)
        report = check(export)
    assert not report.ok
    assert report.first_bad_checkpoint == size == CHECKPOINT_SIZES[index]
    assert report.first_bad_seq is None
    assert report.problem == (
        f"checkpoint at tree size {size}: the Ed25519 signature does not verify "
        f"with {PUBLIC_KEY_FILE}"
    )


@TAMPER
@given(
    index=st.integers(min_value=0, max_value=len(CHECKPOINT_SIZES) - 1),
    name=st.sampled_from(["root_hash", "last_event_hash", "created_at"]),
    digit=st.sampled_from("0123456789abcdef"),
)
def test_an_altered_signed_checkpoint_field_breaks_its_signature(
    built_export: Path, index: int, name: str, digit: str
) -> None:
    def alter(record: dict[str, Any]) -> None:
        value = str(record[name])
        replacement = digit if value[-1] != digit else ("1" if digit == "0" else "0")
        record[name] = value[:-1] + replacement

    with copied(built_export) as export:
        size = _rewrite_checkpoint(export, index, alter)
        report = check(export)
    assert not report.ok
    assert report.first_bad_checkpoint == size
    assert report.problem is not None and "signature does not verify" in report.problem


def test_a_deleted_checkpoint_is_reported(built_export: Path) -> None:
    with copied(built_export) as export:
        path = export / CHECKPOINTS_FILE
        write_lines(path, read_lines(path)[1:])
        report = check(export)
    assert not report.ok
    assert report.problem == f"{MANIFEST_FILE} counts 2 checkpoints, {CHECKPOINTS_FILE} has 1"


def _resign(export: Path, key: Ed25519PrivateKey) -> None:
    """Replace the export's key and re-sign every checkpoint: a whole-export forgery."""
    identity = key_id(key.public_key())
    path = export / CHECKPOINTS_FILE
    lines = []
    for line in read_lines(path):
        record = json.loads(line)
        record["key_id"] = identity
        message = checkpoint_message(**{k: record[k] for k in CHECKPOINT_FIELDS})
        record["signature"] = base64.b64encode(key.sign(message)).decode()
        lines.append(canonical_json(record))
    write_lines(path, lines)
    (export / PUBLIC_KEY_FILE).write_bytes(public_key_pem(key.public_key()))
    _rewrite_manifest(export, key_id=identity)


def test_a_substituted_public_key_is_caught_only_against_the_pinned_key_id(
    built_export: Path, signing_key: Ed25519PrivateKey
) -> None:
    impostor = Ed25519PrivateKey.generate()
    with copied(built_export) as export:
        _resign(export, impostor)
        # Without a pinned key the export's own key is trusted: this is why the CLI tells
        # the auditor to compare the key id with the one the platform publishes.
        assert check(export).ok
        pinned = verify_export(export, expected_key_id=key_id(signing_key.public_key()))
    assert not pinned.ok
    assert pinned.problem == (
        f"the export is signed by key {key_id(impostor.public_key())}, not the expected "
        f"{key_id(signing_key.public_key())}"
    )


def test_a_checkpoint_naming_another_key_is_reported(built_export: Path) -> None:
    with copied(built_export) as export:
        size = _rewrite_checkpoint(export, 0, lambda r: r.update(key_id="ab" * 32))
        report = check(export)
    assert not report.ok
    assert report.first_bad_checkpoint == size
    assert report.problem is not None and f"names key {'ab' * 32}" in report.problem


def test_a_whole_log_rewritten_and_resigned_is_caught_only_by_an_earlier_checkpoint(
    built_export: Path, signing_key: Ed25519PrivateKey
) -> None:
    """Whoever holds the platform key can rewrite everything; a kept checkpoint exposes it."""
    kept = json.loads(read_lines(built_export / CHECKPOINTS_FILE)[0])
    with copied(built_export) as export:
        path = export / EVENTS_FILE
        lines = read_lines(path)
        chained, _, payload = parse(lines[1])
        chained["actor"] = "user:usr_someone_else"
        lines[1] = rehashed(chained, payload)
        lines = relink(lines, 2)
        write_lines(path, lines)
        hashes = [bytes.fromhex(parse(line)[1]) for line in lines]
        with (export / CHECKPOINTS_FILE).open("w") as handle:
            for size in CHECKPOINT_SIZES:
                record = {
                    "tree_size": size,
                    "root_hash": merkle_root(hashes[:size]).hex(),
                    "last_event_hash": hashes[size - 1].hex(),
                    "created_at": kept["created_at"],
                    "key_id": key_id(signing_key.public_key()),
                }
                signature = signing_key.sign(checkpoint_message(**record))
                record["signature"] = base64.b64encode(signature).decode()
                handle.write(canonical_json(record).decode() + "\n")
        _rewrite_manifest(export)
        report = verify_export(export, expected_key_id=key_id(signing_key.public_key()))
        rewritten_root = merkle_root(hashes[: kept["tree_size"]]).hex()
    assert report.ok  # the export alone cannot tell
    assert rewritten_root != kept["root_hash"]  # the auditor's earlier checkpoint can


def test_a_public_key_that_is_not_ed25519_is_reported(built_export: Path) -> None:
    with copied(built_export) as export:
        (export / PUBLIC_KEY_FILE).write_bytes(b"not a key")
        report = check(export)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.startswith(f"{PUBLIC_KEY_FILE} is not an Ed25519 public key")


# -- MANIFEST.json -----------------------------------------------------------------------


def _rewrite_manifest(export: Path, **changes: Any) -> None:
    """Bring the manifest in line with the files (what a forger does last), plus changes."""
    manifest = json.loads((export / MANIFEST_FILE).read_text())
    for name in (EVENTS_FILE, CHECKPOINTS_FILE, PUBLIC_KEY_FILE):
        digest = hashlib.sha256((export / name).read_bytes()).hexdigest()
        manifest["files"][name] = {"sha256": digest}
    manifest["events"] = len(read_lines(export / EVENTS_FILE))
    manifest["checkpoints"] = len(read_lines(export / CHECKPOINTS_FILE))
    manifest.update(changes)
    (export / MANIFEST_FILE).write_text(json.dumps(manifest))


@TAMPER
@given(
    name=st.sampled_from([EVENTS_FILE, CHECKPOINTS_FILE, PUBLIC_KEY_FILE]),
    digest=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_an_altered_manifest_digest_is_named(built_export: Path, name: str, digest: str) -> None:
    with copied(built_export) as export:
        manifest = json.loads((export / MANIFEST_FILE).read_text())
        if manifest["files"][name]["sha256"] == digest:
            digest = "0" * 64 if digest != "0" * 64 else "1" * 64
        manifest["files"][name]["sha256"] = digest
        (export / MANIFEST_FILE).write_text(json.dumps(manifest))
        report = check(export)
    assert not report.ok
    assert report.problem == f"{name} does not match the SHA-256 recorded in {MANIFEST_FILE}"


@TAMPER
@given(
    count=st.sampled_from(["events", "checkpoints"]),
    delta=st.integers(min_value=-3, max_value=3).filter(bool),
)
def test_an_altered_manifest_count_is_named(built_export: Path, count: str, delta: int) -> None:
    with copied(built_export) as export:
        manifest = json.loads((export / MANIFEST_FILE).read_text())
        manifest[count] += delta
        (export / MANIFEST_FILE).write_text(json.dumps(manifest))
        report = check(export)
    actual = EVENTS if count == "events" else len(CHECKPOINT_SIZES)
    file = EVENTS_FILE if count == "events" else CHECKPOINTS_FILE
    assert not report.ok
    assert report.problem == f"{MANIFEST_FILE} counts {actual + delta} {count}, {file} has {actual}"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.update(format="fairtrain-audit-export/0"), "does not declare the format"),
        (lambda m: m.pop("files"), "must list the SHA-256 of"),
        (lambda m: m["files"].pop(PUBLIC_KEY_FILE), "must list the SHA-256 of"),
        (lambda m: m["files"][EVENTS_FILE].update(sha256="XYZ"), "must list the SHA-256 of"),
        (lambda m: m.update(events="12"), "has no integer 'events' count"),
        (lambda m: m.pop("checkpoints"), "has no integer 'checkpoints' count"),
    ],
)
def test_a_malformed_manifest_is_reported(
    built_export: Path, change: Callable[[dict[str, Any]], object], problem: str
) -> None:
    with copied(built_export) as export:
        manifest = json.loads((export / MANIFEST_FILE).read_text())
        change(manifest)
        (export / MANIFEST_FILE).write_text(json.dumps(manifest))
        report = check(export)
    assert not report.ok
    assert report.problem is not None and problem in report.problem


def test_a_missing_or_unreadable_manifest_is_reported(built_export: Path) -> None:
    with copied(built_export) as export:
        (export / MANIFEST_FILE).write_text("{not json")
        assert (check(export).problem or "").startswith(f"{MANIFEST_FILE} is not valid JSON")
        (export / MANIFEST_FILE).unlink()
        missing = check(export)
    assert missing.problem == f"{MANIFEST_FILE} is missing: {export} is not an audit export"


def test_dropping_the_newest_checkpoint_and_its_events_verifies_without_a_kept_checkpoint(
    built_export: Path,
) -> None:
    """The documented limit: the export alone cannot show it was cut back to a checkpoint."""
    kept = json.loads(read_lines(built_export / CHECKPOINTS_FILE)[-1])
    with copied(built_export) as export:
        events = export / EVENTS_FILE
        write_lines(events, read_lines(events)[: CHECKPOINT_SIZES[0]])
        checkpoints = export / CHECKPOINTS_FILE
        write_lines(checkpoints, read_lines(checkpoints)[:1])
        _rewrite_manifest(export)
        report = check(export)
    assert report.ok and report.events_checked == CHECKPOINT_SIZES[0]
    assert kept["tree_size"] > report.events_checked  # what an auditor's copy reveals
