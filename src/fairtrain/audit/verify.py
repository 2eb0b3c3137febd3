"""Offline verification of an audit export, and the export's line format it checks.

Needs nothing but the export directory: no database, no settings, no network. It
recomputes every event hash, payload digest and chain link, every checkpoint's Merkle
root and Ed25519 signature, and the MANIFEST's file digests, and reports the first bad
event and why.

Format of one ``events.jsonl`` line (it is the RFC 8785 encoding of the whole record,
because the keys ``event`` < ``hash`` < ``payload`` are already in canonical order)::

    {"event":<JCS of the chained fields>,"hash":"<64 hex>","payload":<JCS of payload|null>}

The chained fields' canonical bytes are therefore a slice of the line, and so are the
payload's: the verifier hashes those slices as they are instead of parsing and
re-encoding every event, which is what makes it fast (the pure-Python RFC 8785 encoder
would be the bottleneck). This is sound: an event whose hash is in a signed Merkle root
has exactly the bytes the writer hashed (SHA-256 is collision resistant), and those were
canonical. Events after the last checkpoint are not covered by a signature, so they also
get the strict check (full parse, exact keys and types, canonical form).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
from binascii import hexlify
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import repeat
from operator import add, getitem
from pathlib import Path
from typing import Any, cast

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fairtrain.audit.chain import GENESIS_HASH, ChainedEvent, canonical_json, event_hash
from fairtrain.audit.keys import key_id as compute_key_id
from fairtrain.audit.keys import load_public_key_pem
from fairtrain.audit.merkle import EMPTY_ROOT, leaf_hash, verify_inclusion

__all__ = [
    "CHECKPOINTS_FILE",
    "CHECKPOINT_FIELDS",
    "EVENTS_FILE",
    "EXPORT_FORMAT",
    "MANIFEST_FILE",
    "PARALLEL_FROM_BYTES",
    "PUBLIC_KEY_FILE",
    "VerifyReport",
    "checkpoint_message",
    "encode_event_line",
    "verify_export",
    "verify_inclusion_proof",
]

EXPORT_FORMAT = "fairtrain-audit-export/1"
EVENTS_FILE = "events.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"
PUBLIC_KEY_FILE = "public_key.pem"
MANIFEST_FILE = "MANIFEST.json"

CHAINED_KEYS = frozenset(
    {"seq", "event_id", "occurred_at", "actor", "action", "subject", "payload_digest", "prev_hash"}
)
CHECKPOINT_FIELDS = ("tree_size", "root_hash", "last_event_hash", "created_at", "key_id")
_CHECKPOINT_KEYS = frozenset({*CHECKPOINT_FIELDS, "signature"})
_HEX = frozenset(b"0123456789abcdef")

_CHUNK = 1 << 22
PARALLEL_FROM_BYTES = 64 << 20  # below this, starting worker processes costs more
# The shortest possible chained-fields object (empty strings, seq 1): the hash marker
# cannot start before it ends, so the hot loop's search starts there, not at the line's
# beginning; the marker is searched from the left because the first occurrence in a
# canonical line is the structural one (a quote inside a string is always escaped).
_MIN_EVENT_END = 9 + len(
    '{"action":"","actor":"","event_id":"","occurred_at":"","payload_digest":"'
    + "0" * 64
    + '","prev_hash":"'
    + "0" * 64
    + '","seq":1,"subject":""'
)


def _fast_canonical(value: Any) -> bytes:
    """json's C encoder with RFC 8785's spelling; equal to it for strings, ints, containers.

    It differs for some floats and for keys outside the Basic Multilingual Plane, so a
    caller compares against a known digest and falls back to ``canonical_json``.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _canonical_matching(value: Any, expected_sha256_hex: str) -> bytes:
    """The canonical bytes of ``value``, computed the fast way when that is provably right."""
    fast = _fast_canonical(value)
    if hashlib.sha256(fast).hexdigest() == expected_sha256_hex:
        return fast
    try:
        return canonical_json(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        # Not encodable canonically, so it cannot match its digest: export it as it is and
        # let the verifier name the bad event.
        return fast


def encode_event_line(chained: Mapping[str, Any], event_hash: str, payload: Any) -> bytes:
    """One ``events.jsonl`` line (without the newline), canonical as described above."""
    event_bytes = _canonical_matching(dict(chained), event_hash)
    if payload is None:
        payload_bytes = b"null"
    else:
        payload_bytes = _canonical_matching(payload, str(chained["payload_digest"]))
    return (
        b'{"event":'
        + event_bytes
        + b',"hash":"'
        + event_hash.encode()
        + b'","payload":'
        + (payload_bytes + b"}")
    )


def checkpoint_message(
    *, tree_size: int, root_hash: str, last_event_hash: str, created_at: str, key_id: str
) -> bytes:
    """The bytes a checkpoint's Ed25519 signature covers: RFC 8785 JSON of its fields."""
    return canonical_json(
        {
            "tree_size": tree_size,
            "root_hash": root_hash,
            "last_event_hash": last_event_hash,
            "created_at": created_at,
            "key_id": key_id,
        }
    )


def checkpoint_signature_ok(record: Mapping[str, Any], public_key: Ed25519PublicKey) -> bool:
    """Whether a checkpoint (its exported spelling: the signed fields and ``signature``,
    base64) carries a valid Ed25519 signature of ``public_key``."""
    try:
        public_key.verify(
            base64.b64decode(record["signature"], validate=True),
            checkpoint_message(**{k: record[k] for k in CHECKPOINT_FIELDS}),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    events_checked: int
    checkpoints_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    key_id: str | None = None
    # Events after the last checkpoint: chained, but not yet under any signature.
    unsigned_events: int = 0
    first_bad_checkpoint: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Bad(Exception):
    """Verification stops at the first problem; carries where and why."""

    def __init__(
        self, problem: str, *, seq: int | None = None, checkpoint: int | None = None
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.seq = seq
        self.checkpoint = checkpoint


@dataclass(slots=True)
class _Checkpoint:
    tree_size: int
    root_hash: str
    last_event_hash: str


@dataclass(slots=True)
class _Progress:
    events: int = 0
    checkpoints: int = 0
    key_id: str | None = None
    unsigned: int = 0
    checkpoints_by_size: dict[int, _Checkpoint] = field(default_factory=dict)


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value.encode()) <= _HEX


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_bytes())
    except FileNotFoundError as error:
        raise _Bad(f"{MANIFEST_FILE} is missing: {directory} is not an audit export") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise _Bad(f"{MANIFEST_FILE} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise _Bad(f"{MANIFEST_FILE} does not declare the format {EXPORT_FORMAT!r}")
    files = manifest.get("files")
    names = (EVENTS_FILE, CHECKPOINTS_FILE, PUBLIC_KEY_FILE)
    if not isinstance(files, dict) or any(
        not isinstance(files.get(n), dict) or not _is_hex64(files[n].get("sha256")) for n in names
    ):
        raise _Bad(f"{MANIFEST_FILE} must list the SHA-256 of {', '.join(names)}")
    for count in ("events", "checkpoints"):
        if type(manifest.get(count)) is not int:
            raise _Bad(f"{MANIFEST_FILE} has no integer {count!r} count")
    return manifest


def _check_file_digest(manifest: dict[str, Any], name: str, actual: str) -> None:
    if manifest["files"][name]["sha256"] != actual:
        raise _Bad(f"{name} does not match the SHA-256 recorded in {MANIFEST_FILE}")


def _read_checkpoints(
    directory: Path, manifest: dict[str, Any], progress: _Progress
) -> list[_Checkpoint]:
    pem_path = directory / PUBLIC_KEY_FILE
    try:
        pem = pem_path.read_bytes()
        public_key = load_public_key_pem(pem)
    except FileNotFoundError as error:
        raise _Bad(f"{PUBLIC_KEY_FILE} is missing") from error
    except ValueError as error:
        raise _Bad(f"{PUBLIC_KEY_FILE} is not an Ed25519 public key: {error}") from error
    _check_file_digest(manifest, PUBLIC_KEY_FILE, hashlib.sha256(pem).hexdigest())
    progress.key_id = compute_key_id(public_key)

    try:
        raw = (directory / CHECKPOINTS_FILE).read_bytes()
    except FileNotFoundError as error:
        raise _Bad(f"{CHECKPOINTS_FILE} is missing") from error
    checkpoints: list[_Checkpoint] = []
    previous_size = 0
    lines = raw.split(b"\n")
    if lines[-1] != b"":
        raise _Bad(f"{CHECKPOINTS_FILE} does not end with a newline (truncated?)")
    for number, line in enumerate(lines[:-1], start=1):
        where = f"{CHECKPOINTS_FILE} line {number}"
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError) as error:
            raise _Bad(f"{where} is not valid JSON: {error}") from error
        if not isinstance(record, dict) or set(record) != _CHECKPOINT_KEYS:
            raise _Bad(f"{where} must have exactly the keys {sorted(_CHECKPOINT_KEYS)}")
        size = record["tree_size"]
        if type(size) is not int or size <= previous_size:
            raise _Bad(f"{where}: tree sizes must be integers in increasing order")
        if not all(_is_hex64(record[k]) for k in ("root_hash", "last_event_hash", "key_id")):
            raise _Bad(f"{where}: hashes must be 64 lowercase hex digits", checkpoint=size)
        if not isinstance(record["created_at"], str) or not isinstance(record["signature"], str):
            raise _Bad(f"{where}: created_at and signature must be strings", checkpoint=size)
        if canonical_json(record) != line:
            raise _Bad(f"{where} is not in canonical (RFC 8785) form", checkpoint=size)
        if record["key_id"] != progress.key_id:
            raise _Bad(
                f"checkpoint at tree size {size} names key {record['key_id']}, "
                f"but {PUBLIC_KEY_FILE} is key {progress.key_id}",
                checkpoint=size,
            )
        if not checkpoint_signature_ok(record, public_key):
            raise _Bad(
                f"checkpoint at tree size {size}: the Ed25519 signature does not verify "
                f"with {PUBLIC_KEY_FILE}",
                checkpoint=size,
            )
        checkpoints.append(_Checkpoint(size, record["root_hash"], record["last_event_hash"]))
        previous_size = size
    if len(checkpoints) != manifest["checkpoints"]:
        raise _Bad(
            f"{MANIFEST_FILE} counts {manifest['checkpoints']} checkpoints, "
            f"{CHECKPOINTS_FILE} has {len(checkpoints)}"
        )
    _check_file_digest(manifest, CHECKPOINTS_FILE, hashlib.sha256(raw).hexdigest())
    progress.checkpoints = len(checkpoints)
    return checkpoints


def _diagnose(line: bytes, seq: int, prev: bytes) -> str:
    """Why a line failed the fast check: slow, precise, only ever run once."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        return f"the line is not valid JSON ({error})"
    if not isinstance(record, dict) or set(record) != {"event", "hash", "payload"}:
        return 'the line must be an object with exactly the keys "event", "hash", "payload"'
    chained = record["event"]
    if not isinstance(chained, dict) or set(chained) != CHAINED_KEYS:
        return f'"event" must have exactly the keys {sorted(CHAINED_KEYS)}'
    if type(chained["seq"]) is not int:
        return "seq is not an integer"
    if chained["seq"] != seq:
        return f"sequence broken: expected event {seq}, found {chained['seq']}"
    for name in CHAINED_KEYS - {"seq"}:
        if not isinstance(chained[name], str):
            return f"{name} is not a string"
    for name in ("payload_digest", "prev_hash"):
        if not _is_hex64(chained[name]):
            return f"{name} is not 64 lowercase hex digits"
    if not _is_hex64(record["hash"]):
        return "hash is not 64 lowercase hex digits"
    if chained["prev_hash"] != prev.decode():
        return "prev_hash does not match the previous event's hash (chain link broken)"
    payload = record["payload"]
    if payload is not None:
        if not isinstance(payload, dict):
            return "payload must be an object or null"
        encoded = _canonical_or_none(payload)
        if encoded is None or hashlib.sha256(encoded).hexdigest() != chained["payload_digest"]:
            return "payload does not match its digest"
    expected_event = _canonical_or_none(chained)
    if expected_event is None or hashlib.sha256(expected_event).hexdigest() != record["hash"]:
        return "event hash does not match its fields"
    if _canonical_or_none(record) != line:
        return "the line is not in canonical (RFC 8785) form"
    return "the line does not have the exported layout"


def _canonical_or_none(value: Any) -> bytes | None:
    try:
        return canonical_json(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return None


def _strict_line_ok(line: bytes) -> bool:
    """Extra check for events no signature covers: well-formed, exact keys, canonical."""
    floats: list[str] = []

    def _float(token: str) -> float:
        floats.append(token)
        return float(token)

    try:
        record = json.loads(line, parse_float=_float)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(record, dict) or set(record) != {"event", "hash", "payload"}:
        return False
    chained, payload = record["event"], record["payload"]
    if not isinstance(chained, dict) or set(chained) != CHAINED_KEYS:
        return False
    if type(chained["seq"]) is not int or not all(
        isinstance(chained[k], str) for k in CHAINED_KEYS - {"seq"}
    ):
        return False
    if payload is not None and not isinstance(payload, dict):
        return False
    # The C encoder spells strings, integers and containers as RFC 8785 does, but not
    # every float (1.0, 1e21); records with floats pay for the pure-Python encoder.
    if not floats and _fast_canonical(record) == line:
        return True
    return _canonical_or_none(record) == line


def _event_chunks(path: Path) -> Iterator[list[bytes]]:
    """Lists of lines of the events file, read in large chunks."""
    rest = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield lines
    if rest:
        yield [rest + b"\x00"]  # an unterminated last line can never pass the layout check


def _file_sha256(path: Path, stop: threading.Event) -> str:
    """The file's SHA-256, read in large chunks: hashlib lets go of the GIL for each one,
    so in a thread of its own this runs beside the event checks, on another core.
    Gives up (with an empty answer) once ``stop`` is set: the checks failed already."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while not stop.is_set() and (chunk := handle.read(_CHUNK)):
            digest.update(chunk)
    return "" if stop.is_set() else digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Checked:
    """A chunk of lines checked on its own: what the chain and Merkle state need."""

    # The chunk's good lines as perfect Merkle subtrees, in order: (height, root). None
    # straddles a checkpoint, so folding them in reaches every checkpoint size exactly.
    pieces: list[tuple[int, bytes]]
    last: bytes  # the event hash of the last good line (the next chunk's prev)
    boundary_hashes: dict[int, bytes]  # event hash at each checkpoint size in the chunk
    failure: tuple[int, str] | None  # (seq, why) of the first bad line


_HASH_MARK = b'},"hash":"'
_PAYLOAD_MARK = b'","payload":'
_DIGEST_MARK = b'","payload_digest":"'
_LINK = b'","payload_digest":"%s","prev_hash":"%s","seq":%d,'
_LINE = b'{"event":%s,"hash":"%s","payload":%s}'
_NULL = b"null"
_digest = type(hashlib.sha256()).digest


def _sha256_all(chunks: Iterable[bytes]) -> list[bytes]:
    """SHA-256 of each chunk; iterated in C (``map``), the per-event cost is the hash's."""
    return list(map(_digest, map(hashlib.sha256, chunks)))


_slice_of = cast("Callable[[bytes, slice], bytes]", getitem)


def _slices(lines: Iterable[bytes], starts: Iterable[int], stops: Iterable[int]) -> list[bytes]:
    return list(map(_slice_of, lines, map(slice, starts, stops)))


def _plus(indexes: list[int], offset: int) -> Iterator[int]:
    return map(add, indexes, repeat(offset))


def _check_lines_at_once(
    lines: list[bytes], seq: int, prev: bytes, signed_upto: int
) -> tuple[list[bytes], list[bytes]] | None:
    """The same checks as ``_check_lines_one_by_one``, each done for the whole chunk.

    Every step is a ``map`` or a list comparison, iterated in C: no bytecode runs per
    event, which roughly halves what the checks cost beside SHA-256. Returns the event
    hashes (raw and hex) when every line passes, None when any line fails (the caller
    then finds which one, and why, line by line). It accepts only lines that
    ``_check_lines_one_by_one`` accepts: each slice and comparison below is one of its.
    """
    count = len(lines)
    ends = list(map(bytes.find, lines, repeat(_HASH_MARK), repeat(_MIN_EVENT_END)))
    if count == 0 or min(ends) <= 0:
        return None
    chained = _slices(lines, repeat(9), _plus(ends, 1))
    payloads = _slices(lines, _plus(ends, 86), repeat(-1))
    digests = _sha256_all(chained)
    hex_hashes = list(map(hexlify, digests))
    # The line rebuilt from its parts equals the line exactly when it starts with
    # '{"event":', its "hash" is the SHA-256 of the chained bytes, '","payload":' follows
    # and it ends with "}": the parts' lengths fix where each one sits.
    rebuilt = list(map(_LINE.__mod__, zip(chained, hex_hashes, payloads, strict=True)))
    if rebuilt != lines or not all(map(bytes.startswith, chained, repeat(b"{"))):
        return None
    payload_hex = list(map(hexlify, _sha256_all(payloads)))
    marks = list(map(bytes.find, chained, repeat(_DIGEST_MARK)))
    if _NULL in payloads:
        # An erased payload is exported as null and its digest is not checked: take the
        # recorded digest as the expected one for those lines.
        for index, payload in enumerate(payloads):
            if payload == _NULL:
                start = marks[index] + 20
                payload_hex[index] = chained[index][start : start + 64]
    # The payload digest, the link to the previous event and the position, right after
    # the first '","payload_digest":"' of the chained fields, for every line at once.
    links = map(
        _LINK.__mod__,
        zip(payload_hex, [prev, *hex_hashes[:-1]], range(seq + 1, seq + count + 1), strict=True),
    )
    if min(marks) <= 0 or not all(map(bytes.startswith, chained, links, marks)):
        return None
    for offset in range(max(0, signed_upto - seq), count):
        if not _strict_line_ok(lines[offset]):
            return None
    return digests, hex_hashes


def _subtree_root(level: list[bytes]) -> bytes:
    """The root of a perfect subtree given its leaf hashes (a power-of-two count)."""
    while len(level) > 1:
        level = _sha256_all(map(b"".join, zip(repeat(b"\x01"), level[0::2], level[1::2])))
    return level[0]


def _merkle_pieces(leaves: list[bytes], start: int, cuts: Iterable[int]) -> list[tuple[int, bytes]]:
    """Leaves ``start+1..start+len(leaves)`` as the largest aligned perfect subtrees,
    split at each checkpoint size in ``cuts``: what ``_EventScan.absorb`` folds in."""
    pieces: list[tuple[int, bytes]] = []
    size, end = start, start + len(leaves)
    for stop in [*sorted(c for c in cuts if start < c < end), end]:
        while size < stop:
            aligned = (size & -size).bit_length() - 1 if size else 64
            height = min(aligned, (stop - size).bit_length() - 1)
            offset = size - start
            pieces.append((height, _subtree_root(leaves[offset : offset + (1 << height)])))
            size += 1 << height
    return pieces


def _check_lines(
    lines: list[bytes], seq: int, prev: bytes, signed_upto: int, boundaries: frozenset[int]
) -> _Checked:
    """Check a chunk of lines: slices and hashes only, no JSON parsing, everything local.

    Each line is checked against the one before it (its chain link) and on its own (its
    event hash, its payload digest, its position); nothing here depends on another chunk
    but ``prev``, so chunks can be checked in parallel, Merkle subtrees included.
    """
    at_once = _check_lines_at_once(lines, seq, prev, signed_upto)
    if at_once is None:
        return _check_lines_one_by_one(lines, seq, prev, signed_upto, boundaries)
    digests, hex_hashes = at_once
    leaves = _sha256_all(map(b"\x00".__add__, digests))
    at = {size: hex_hashes[size - seq - 1] for size in boundaries}
    return _Checked(_merkle_pieces(leaves, seq, boundaries), hex_hashes[-1], at, None)


def _check_lines_one_by_one(
    lines: list[bytes], seq: int, prev: bytes, signed_upto: int, boundaries: frozenset[int]
) -> _Checked:
    """The checks line by line, stopping at the first bad one: finds it and says why."""
    sha256 = hashlib.sha256
    leaves: list[tuple[int, bytes]] = []
    at: dict[int, bytes] = {}
    for line in lines:
        seq += 1
        i = line.find(b'},"hash":"', _MIN_EVENT_END)
        event_hash = line[i + 10 : i + 74]
        chained = line[9 : i + 1]
        digest = sha256(chained).digest()
        j = chained.find(b'","payload_digest":"')
        payload = line[i + 86 : -1]
        position = b'","seq":%d,' % seq
        if not (
            i > 0
            and j > 0
            and line[:10] == b'{"event":{'
            and line[i + 74 : i + 86] == b'","payload":'
            and line[-1:] == b"}"
            and digest.hex().encode() == event_hash
            and chained[j + 99 : j + 163] == prev
            and chained[j + 84 : j + 99] == b'","prev_hash":"'
            and chained[j + 163 : j + 163 + len(position)] == position
            and (
                payload == b"null"
                or sha256(payload).hexdigest().encode() == chained[j + 20 : j + 84]
            )
            and (seq <= signed_upto or _strict_line_ok(line))
        ):
            return _Checked(leaves, prev, at, (seq, _diagnose(line, seq, prev)))
        leaves.append((0, sha256(b"\x00" + digest).digest()))
        prev = event_hash
        if seq in boundaries:
            at[seq] = event_hash
    return _Checked(leaves, prev, at, None)


def _check_block(
    path: str,
    offset: int,
    length: int,
    seq: int,
    prev: bytes,
    signed_upto: int,
    boundaries: frozenset[int],
) -> _Checked:
    """A worker process's task: a block of whole lines, read from the file by the worker
    itself (only the block's place crosses the process boundary, not its bytes)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        block = os.pread(descriptor, length, offset)
    finally:
        os.close(descriptor)
    if len(block) != length:  # the file shrank under us: report it as a broken line
        block += b"\x00"
    return _check_lines(block.split(b"\n"), seq, prev, signed_upto, boundaries)


class _EventScan:
    """The chain and Merkle state carried from one chunk of lines to the next."""

    def __init__(self, checkpoints: list[_Checkpoint]) -> None:
        self.seq = 0
        self.prev = GENESIS_HASH.encode()
        # Roots of the perfect subtrees so far (see merkle.MerkleFrontier, inlined here).
        self.stack: list[bytes] = []
        self.signed_upto = checkpoints[-1].tree_size if checkpoints else 0
        self.checkpoints = checkpoints
        self.next_checkpoint = 0

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        node = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node

    def scan(self, lines: list[bytes]) -> None:
        """Check a chunk of lines in this process, then fold it into the chain state."""
        self.absorb(
            _check_lines(lines, self.seq, self.prev, self.signed_upto, self._boundaries(len(lines)))
        )

    def _boundaries(self, count: int) -> frozenset[int]:
        """Checkpoint sizes that fall in the next ``count`` events."""
        last = self.seq + count
        return frozenset(
            c.tree_size
            for c in self.checkpoints[self.next_checkpoint :]
            if self.seq < c.tree_size <= last
        )

    def absorb(self, checked: _Checked) -> None:
        """Fold a checked chunk into the Merkle frontier, checking every checkpoint it
        reaches, then raise the chunk's failure, if any (in chain order: a rewritten
        event found by a checkpoint before the failing line is reported first)."""
        sha256 = hashlib.sha256
        stack = self.stack
        push, pop = stack.append, stack.pop
        seq = self.seq
        boundary = (
            self.checkpoints[self.next_checkpoint].tree_size
            if self.next_checkpoint < len(self.checkpoints)
            else -1
        )
        for height, node in checked.pieces:
            # A subtree of 2**height leaves lands where the size is a multiple of it;
            # it merges with the frontier's equal-height roots like a binary carry.
            carry = seq >> height
            seq += 1 << height
            while carry & 1:
                node = sha256(b"\x01" + pop() + node).digest()
                carry >>= 1
            push(node)
            if seq == boundary:
                self.seq, self.prev = seq, checked.boundary_hashes[seq]
                self._check_boundary()
                boundary = (
                    self.checkpoints[self.next_checkpoint].tree_size
                    if self.next_checkpoint < len(self.checkpoints)
                    else -1
                )
        self.seq, self.prev = seq, checked.last
        if checked.failure is not None:
            bad_seq, problem = checked.failure
            self.seq = bad_seq
            raise _Bad(problem, seq=bad_seq)

    def _check_boundary(self) -> None:
        checkpoint = self.checkpoints[self.next_checkpoint]
        seq = self.seq
        if self.prev.decode() != checkpoint.last_event_hash:
            raise _Bad(
                f"the checkpoint at tree size {seq} signs a different last event hash: "
                "an event up to here was rewritten with its chain recomputed",
                seq=seq,
                checkpoint=seq,
            )
        if self.root().hex() != checkpoint.root_hash:
            first = (
                self.checkpoints[self.next_checkpoint - 1].tree_size + 1
                if (self.next_checkpoint)
                else 1
            )
            raise _Bad(
                f"the Merkle root of events 1..{seq} differs from the signed checkpoint: "
                f"an event in {first}..{seq} was rewritten with its chain recomputed",
                seq=first,
                checkpoint=seq,
            )
        self.next_checkpoint += 1


def _event_blocks(path: Path) -> Iterator[tuple[int, int, int, bytes]]:
    """Blocks of whole lines as (offset, length, line count, the last line's unchecked
    event hash, which is the next block's expected ``prev_hash``)."""
    rest = b""
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            data = rest + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            start = data.rfind(b"\n", 0, cut) + 1
            last = data[start:cut]
            i = last.find(b'},"hash":"', _MIN_EVENT_END)
            yield offset, cut, data.count(b"\n", 0, cut) + 1, last[i + 10 : i + 74]
            offset += cut + 1
            rest = data[cut + 1 :]
    if rest:
        yield offset, len(rest) + 1, 1, b""  # one byte past the end: can never pass


def _scan_in_parallel(path: Path, scan: _EventScan, processes: int) -> None:
    """Blocks checked by ``processes`` worker processes, folded into the chain in order
    (a bounded number in flight, so memory stays flat)."""
    pending: deque[Future[_Checked]] = deque()
    seq, prev = scan.seq, scan.prev
    with ProcessPoolExecutor(max_workers=processes) as pool:
        try:
            for offset, length, count, last in _event_blocks(path):
                boundaries = frozenset(
                    c.tree_size for c in scan.checkpoints if seq < c.tree_size <= seq + count
                )
                pending.append(
                    pool.submit(
                        _check_block,
                        str(path),
                        offset,
                        length,
                        seq,
                        prev,
                        scan.signed_upto,
                        boundaries,
                    )
                )
                seq, prev = seq + count, last
                if len(pending) > 2 * processes:
                    scan.absorb(pending.popleft().result())
            while pending:
                scan.absorb(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()


def _verify_events(
    directory: Path,
    manifest: dict[str, Any],
    checkpoints: list[_Checkpoint],
    progress: _Progress,
    processes: int,
) -> None:
    path = directory / EVENTS_FILE
    if not path.is_file():
        raise _Bad(f"{EVENTS_FILE} is missing")
    scan = _EventScan(checkpoints)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as hasher:
        file_digest = hasher.submit(_file_sha256, path, stop)
        try:
            if processes > 1:
                _scan_in_parallel(path, scan, processes)
            else:
                for lines in _event_chunks(path):
                    scan.scan(lines)
        except BaseException:
            stop.set()
            raise
        finally:
            progress.events = scan.seq
    seq = scan.seq
    progress.unsigned = max(0, seq - scan.signed_upto)
    if scan.signed_upto > seq:
        raise _Bad(
            f"the checkpoint at tree size {scan.signed_upto} signs more events than the "
            f"export holds ({seq}): events were deleted from the end",
            seq=seq + 1,
            checkpoint=scan.signed_upto,
        )
    if manifest["events"] != seq:
        raise _Bad(f"{MANIFEST_FILE} counts {manifest['events']} events, {EVENTS_FILE} has {seq}")
    _check_file_digest(manifest, EVENTS_FILE, file_digest.result())


def verify_export(
    directory: Path,
    *,
    expected_key_id: str | None = None,
    processes: int | None = None,
) -> VerifyReport:
    """Check an export directory completely; stop at the first problem and say where.

    ``expected_key_id`` pins the platform key: without it the export's own public key is
    trusted, and anyone able to rewrite the whole export could re-sign it.

    Exports larger than ``PARALLEL_FROM_BYTES`` are checked by one worker process per CPU
    (``processes`` overrides; 1 checks in this process): each line's checks need only
    the line before it, so only the Merkle fold is sequential. The answer is the same.
    """
    progress = _Progress()
    try:
        manifest = _read_manifest(directory)
        checkpoints = _read_checkpoints(directory, manifest, progress)
        if expected_key_id is not None and progress.key_id != expected_key_id:
            raise _Bad(
                f"the export is signed by key {progress.key_id}, not the expected {expected_key_id}"
            )
        events = directory / EVENTS_FILE
        if processes is None:
            size = events.stat().st_size if events.is_file() else 0
            processes = (os.cpu_count() or 1) if size >= PARALLEL_FROM_BYTES else 1
        _verify_events(directory, manifest, checkpoints, progress, max(1, processes))
    except _Bad as bad:
        return VerifyReport(
            ok=False,
            events_checked=progress.events,
            checkpoints_checked=progress.checkpoints,
            first_bad_seq=bad.seq,
            problem=bad.problem,
            key_id=progress.key_id,
            unsigned_events=progress.unsigned,
            first_bad_checkpoint=bad.checkpoint,
        )
    return VerifyReport(
        ok=True,
        events_checked=progress.events,
        checkpoints_checked=progress.checkpoints,
        key_id=progress.key_id,
        unsigned_events=progress.unsigned,
    )


def verify_inclusion_proof(proof: Mapping[str, Any], public_key_pem: bytes) -> bool:
    """Check a proof from ``checkpoint.inclusion_proof`` offline, signature included."""
    try:
        checkpoint = proof["checkpoint"]
        fields = proof["event"]
        chained = ChainedEvent(
            seq=int(fields["seq"]),
            event_id=str(fields["event_id"]),
            occurred_at=str(fields["occurred_at"]),
            actor=str(fields["actor"]),
            action=str(fields["action"]),
            subject=str(fields["subject"]),
            payload_digest=str(fields["payload_digest"]),
            prev_hash=str(fields["prev_hash"]),
        )
        if (
            event_hash(chained) != proof["event_hash"]
            or chained.event_id != proof["event_id"]
            or chained.seq != int(proof["seq"])
        ):
            return False
        public_key = load_public_key_pem(public_key_pem)
        if checkpoint["key_id"] != compute_key_id(public_key):
            return False
        if not checkpoint_signature_ok(checkpoint, public_key):
            return False
        return (
            verify_inclusion(
                int(proof["leaf_index"]),
                int(checkpoint["tree_size"]),
                leaf_hash(bytes.fromhex(proof["event_hash"])),
                [bytes.fromhex(h) for h in proof["audit_path"]],
                bytes.fromhex(checkpoint["root_hash"]),
            )
            and int(proof["leaf_index"]) == int(proof["seq"]) - 1
        )
    except (KeyError, TypeError, ValueError, InvalidSignature, binascii.Error):
        return False
