"""RFC 6962 / RFC 9162 Merkle tree hashing over the audit chain's event hashes.

A checkpoint signs the root of the tree whose leaves are the first ``n`` event hashes.
Leaves and interior nodes are hashed with different one-byte prefixes (0x00, 0x01) so a
leaf can never be passed off as a node (second-preimage protection). The tree over ``n``
leaves splits at the largest power of two below ``n``; this is what makes inclusion proofs
(one event is in the signed tree) and consistency proofs (the tree of an old checkpoint is
a prefix of a newer one: the log only grew) a logarithmic list of hashes.

Everything works on streams: the root of a million leaves, or the hashes a proof needs,
are computed in one pass with memory logarithmic in the tree size (``MerkleFrontier``).
Proof *generation* works on ranges of leaf positions first (pure arithmetic), so a
database can stream leaf hashes in order instead of loading the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "LeafRange",
    "MerkleFrontier",
    "consistency_proof",
    "consistency_ranges",
    "hash_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

# MTH of the empty list is the hash of the empty string (RFC 6962 §2.1).
EMPTY_ROOT = _sha256(b"").digest()

# A half-open range [start, end) of leaf positions whose subtree hash a proof carries.
LeafRange = tuple[int, int]


def leaf_hash(event_hash: bytes) -> bytes:
    """The tree's leaf for one event: SHA-256(0x00 || the event hash's 32 raw bytes)."""
    return _sha256(b"\x00" + event_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleFrontier:
    """Streaming tree hash: the roots of the perfect subtrees covering the leaves so far.

    Appending costs one leaf hash and on average one node hash; ``root()`` folds the
    (at most log2 n) subtree roots from the right, which is exactly RFC 6962's split rule.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self.size = 0

    def append_leaf(self, leaf: bytes) -> None:
        """Add an already leaf-hashed value (see ``leaf_hash``)."""
        stack = self._stack
        carry = self.size
        node = leaf
        while carry & 1:
            node = _sha256(b"\x01" + stack.pop() + node).digest()
            carry >>= 1
        stack.append(node)
        self.size += 1

    def append_event_hash(self, event_hash: bytes) -> None:
        self.append_leaf(_sha256(b"\x00" + event_hash).digest())

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        stack = self._stack
        node = stack[-1]
        for left in reversed(stack[:-1]):
            node = _sha256(b"\x01" + left + node).digest()
        return node


def merkle_root(event_hashes: Iterable[bytes]) -> bytes:
    """Root over raw 32-byte event hashes, streamed."""
    frontier = MerkleFrontier()
    for event_hash in event_hashes:
        frontier.append_event_hash(event_hash)
    return frontier.root()


def inclusion_ranges(index: int, size: int) -> list[LeafRange]:
    """Leaf ranges whose subtree hashes form the audit path of leaf ``index`` (RFC 6962 PATH).

    Ordered from the leaf up to the root, as ``verify_inclusion`` consumes them.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of {size} leaves")
    ranges: list[LeafRange] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[LeafRange]:
    """Leaf ranges whose hashes prove the tree of ``old_size`` is a prefix of ``new_size``.

    RFC 6962 SUBPROOF(m, D[n], true), ordered as ``verify_consistency`` consumes them.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove {old_size} leaves consistent with {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[LeafRange] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def hash_ranges(event_hashes: Iterable[bytes], ranges: Sequence[LeafRange]) -> list[bytes]:
    """Subtree hashes of disjoint ``ranges``, from one ordered pass over the event hashes.

    Memory is logarithmic per range; only the leaves up to the last range's end are read.
    """
    if not ranges:
        return []
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    results: list[bytes] = [b""] * len(ranges)
    cursor = 0
    position = 0
    frontier: MerkleFrontier | None = None
    stop = max(end for _, end in ranges)
    for event_hash in event_hashes:
        if position >= stop:
            break
        while cursor < len(order) and ranges[order[cursor]][1] <= position:
            cursor += 1  # empty ranges cannot occur, but never loop forever on one
        if cursor < len(order):
            start, end = ranges[order[cursor]]
            if start <= position < end:
                if frontier is None:
                    frontier = MerkleFrontier()
                frontier.append_event_hash(event_hash)
                if position == end - 1:
                    results[order[cursor]] = frontier.root()
                    frontier = None
                    cursor += 1
        position += 1
    if position < stop:
        raise ValueError(f"only {position} leaves available, the proof needs {stop}")
    return results


def inclusion_proof(event_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree over all of ``event_hashes``."""
    return hash_ranges(event_hashes, inclusion_ranges(index, len(event_hashes)))


def consistency_proof(event_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the tree over the first ``old_size`` hashes is a prefix of the whole."""
    return hash_ranges(event_hashes, consistency_ranges(old_size, len(event_hashes)))


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` put ``leaf`` (leaf-hashed) at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree ``old_root`` (old_size leaves) a prefix of ``new_root``?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
