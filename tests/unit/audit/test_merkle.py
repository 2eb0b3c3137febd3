"""RFC 6962 tree hashing and proofs, checked against a naive recursive implementation."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairtrain.audit.merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    consistency_proof,
    consistency_ranges,
    hash_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 §2.1."""
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return _h(b"\x00" + leaves[0])
    k = _split(len(leaves))
    return _h(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:]))


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 6962 §2.1.1."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) from RFC 6962 §2.1.2."""
    n = len(leaves)
    if m == n:
        return [] if whole else [naive_root(leaves)]
    k = _split(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], whole), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


def _leaves(count: int) -> list[bytes]:
    return [_h(i.to_bytes(4, "big")) for i in range(count)]


sizes = st.integers(min_value=1, max_value=70)


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == _h(b"")
    assert MerkleFrontier().root() == EMPTY_ROOT


def test_known_vector_two_leaves() -> None:
    a, b = _h(b"a"), _h(b"b")
    expected = _h(b"\x01" + _h(b"\x00" + a) + _h(b"\x00" + b))
    assert merkle_root([a, b]) == expected
    assert leaf_hash(a) == _h(b"\x00" + a)


@given(sizes)
def test_root_matches_naive_at_every_prefix(size: int) -> None:
    leaves = _leaves(size)
    frontier = MerkleFrontier()
    for n, leaf in enumerate(leaves, start=1):
        frontier.append_event_hash(leaf)
        assert frontier.root() == naive_root(leaves[:n])
    assert frontier.size == size


@given(st.data(), sizes)
def test_inclusion_proofs_match_naive_and_verify(data: st.DataObject, size: int) -> None:
    leaves = _leaves(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(leaves, index)
    assert proof == naive_path(index, leaves)
    root = naive_root(leaves)
    assert verify_inclusion(index, size, leaf_hash(leaves[index]), proof, root)


@given(st.data(), st.integers(min_value=2, max_value=70))
def test_altered_inclusion_proofs_fail(data: st.DataObject, size: int) -> None:
    leaves = _leaves(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(leaves, index)
    root = naive_root(leaves)
    leaf = leaf_hash(leaves[index])
    other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
    assert not verify_inclusion(other, size, leaf, proof, root)
    assert not verify_inclusion(index, size, leaf_hash(leaves[other]), proof, root)
    assert not verify_inclusion(index, size, leaf, proof, _h(root))
    position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    broken = [*proof]
    broken[position] = _h(broken[position])
    assert not verify_inclusion(index, size, leaf, broken, root)
    assert not verify_inclusion(index, size, leaf, proof[:-1], root)
    assert not verify_inclusion(index, size, leaf, [*proof, root], root)
    assert not verify_inclusion(index, size + size, leaf, proof, root)
    assert not verify_inclusion(size, size, leaf, proof, root)


@given(st.data(), sizes)
def test_consistency_proofs_match_naive_and_verify(data: st.DataObject, size: int) -> None:
    leaves = _leaves(size)
    old = data.draw(st.integers(min_value=1, max_value=size))
    proof = consistency_proof(leaves, old)
    assert proof == naive_subproof(old, leaves, True)
    assert verify_consistency(old, size, naive_root(leaves[:old]), naive_root(leaves), proof)


@given(st.data(), st.integers(min_value=2, max_value=70))
def test_inconsistent_trees_fail(data: st.DataObject, size: int) -> None:
    leaves = _leaves(size)
    old = data.draw(st.integers(min_value=1, max_value=size - 1))
    proof = consistency_proof(leaves, old)
    old_root, new_root = naive_root(leaves[:old]), naive_root(leaves)
    # A rewritten history: the old tree's leaves differ from the new tree's prefix.
    forged = [_h(b"forged"), *leaves[1:old]]
    assert not verify_consistency(old, size, naive_root(forged), new_root, proof)
    assert not verify_consistency(old, size, old_root, _h(new_root), proof)
    assert not verify_consistency(size, old, new_root, old_root, proof)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        broken = [*proof]
        broken[position] = _h(broken[position])
        assert not verify_consistency(old, size, old_root, new_root, broken)
        assert not verify_consistency(old, size, old_root, new_root, proof[:-1])


def test_consistency_edge_cases() -> None:
    leaves = _leaves(5)
    root = naive_root(leaves)
    assert consistency_ranges(0, 5) == [] and consistency_ranges(5, 5) == []
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, _h(root), [])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert not verify_consistency(2, 5, naive_root(leaves[:2]), root, [])
    with pytest.raises(ValueError, match="cannot prove"):
        consistency_ranges(6, 5)


def test_ranges_reject_positions_outside_the_tree() -> None:
    with pytest.raises(ValueError, match="outside"):
        inclusion_ranges(3, 3)
    with pytest.raises(ValueError, match="only 2 leaves"):
        hash_ranges(_leaves(2), [(0, 1), (1, 4)])
    assert hash_ranges(_leaves(2), []) == []
