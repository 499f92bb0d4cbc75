"""auditlog.merkle against RFC 6962's definitions and the published reference vectors."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from auditlog.logformat import leaf_hash
from auditlog.merkle import (
    EMPTY_ROOT,
    CompactRange,
    HashList,
    Tree,
    complete_levels,
    consistency_proof,
    inclusion_proof,
    node_hash,
    root,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962 reference vectors, as used by the Certificate Transparency implementations. Copied
# from transparency-dev/merkle, proof/verify_test.go (`leaves`, `roots`, `inclusionProofs`,
# `consistencyProofs`; the same data as google/certificate-transparency-go merkle tests and
# Chromium's net/cert/ct_log_verifier_unittest.cc). Leaf indices there are 1-based.
REF_LEAVES = [bytes.fromhex(h) for h in [
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]]
REF_EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
REF_ROOTS = [  # sizes 1..8
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
REF_INCLUSION = [  # (1-based leaf, tree size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
REF_CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
REF_LEAF_HASHES = [leaf_hash(d) for d in REF_LEAVES]


# --- RFC 6962 §2.1, written as the RFC writes it (recursive), to check the fast versions ---

def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


LEAVES_40 = [leaf_hash(b"entry %d" % i) for i in range(40)]
ROOTS_40 = [mth(LEAVES_40[:n]) for n in range(41)]


def _flip(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


# --- reference vectors ---

def test_reference_roots() -> None:
    assert EMPTY_ROOT.hex() == REF_EMPTY_ROOT == root([]).hex()
    for size in range(1, 9):
        assert root(REF_LEAF_HASHES[:size]).hex() == REF_ROOTS[size - 1]
        assert root(HashList(REF_LEAF_HASHES[:size])).hex() == REF_ROOTS[size - 1]
        assert mth(REF_LEAF_HASHES[:size]).hex() == REF_ROOTS[size - 1]


def test_reference_leaf_and_node_hashes() -> None:
    # The root of one leaf is its leaf hash; of two, node_hash of the two leaf hashes.
    assert leaf_hash(b"").hex() == REF_ROOTS[0]
    assert node_hash(REF_LEAF_HASHES[0], REF_LEAF_HASHES[1]).hex() == REF_ROOTS[1]


def test_reference_compact_range() -> None:
    frontier = CompactRange()
    assert frontier.root().hex() == REF_EMPTY_ROOT
    for size, leaf in enumerate(REF_LEAF_HASHES, start=1):
        frontier.append(leaf)
        assert frontier.size == size and frontier.root().hex() == REF_ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "expected"), REF_INCLUSION)
def test_reference_inclusion_proofs(leaf: int, size: int, expected: list[str]) -> None:
    proof = inclusion_proof(leaf - 1, REF_LEAF_HASHES[:size])
    assert [h.hex() for h in proof] == expected
    root_hash = bytes.fromhex(REF_ROOTS[size - 1])
    assert verify_inclusion(leaf - 1, size, REF_LEAF_HASHES[leaf - 1], proof, root_hash)


@pytest.mark.parametrize(("m", "n", "expected"), REF_CONSISTENCY)
def test_reference_consistency_proofs(m: int, n: int, expected: list[str]) -> None:
    proof = consistency_proof(m, REF_LEAF_HASHES[:n])
    assert [h.hex() for h in proof] == expected
    old, new = bytes.fromhex(REF_ROOTS[m - 1]), bytes.fromhex(REF_ROOTS[n - 1])
    assert verify_consistency(m, n, old, new, proof)


# --- the fast tree is the RFC's tree ---

def test_split_point_is_the_largest_power_of_two_below_n() -> None:
    for n in range(2, 2000):
        assert split_point(n) == _k(n)
    assert split_point(1000) == 512 and split_point(1 << 40) == 1 << 39
    assert split_point((1 << 40) + 1) == 1 << 40
    with pytest.raises(ValueError):
        split_point(1)


def test_level_by_level_root_equals_the_recursive_definition() -> None:
    """Carrying the odd last node of a level up unchanged builds the RFC's tree.

    Why: at every level, pairing from the left groups the leaves into aligned blocks of 2^h,
    and the RFC's first split k (a power of two) is such a block boundary; so the left k leaves
    reduce to one node exactly when the right part has reduced to its own root, and the
    carried node is the root of the last, smaller, right subtree. Checked for all n <= 300.
    """
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
    frontier = CompactRange()
    for n in range(301):
        expected = mth(leaves[:n])
        assert root(leaves[:n]) == expected, n
        assert root(HashList(leaves[:n])) == expected, n
        assert root(HashList(leaves)[:n]) == expected, n
        assert frontier.root() == expected, n
        if n < 300:
            frontier.append(leaves[n])


def test_large_trees_agree() -> None:
    leaves = HashList(leaf_hash(i.to_bytes(4, "big")) for i in range(70_001))
    frontier = CompactRange()
    frontier.extend(leaves)
    assert root(leaves) == root(list(leaves)) == frontier.root()


def test_compact_range_resumes_from_its_state() -> None:
    frontier = CompactRange()
    frontier.extend(LEAVES_40[:27])
    resumed = CompactRange(frontier.size, frontier.hashes)
    assert len(frontier.hashes) == bin(27).count("1")
    resumed.extend(LEAVES_40[27:])
    assert resumed.root() == ROOTS_40[40]
    copy = resumed.copy()
    copy.append(LEAVES_40[0])
    assert resumed.size == 40 and copy.size == 41
    with pytest.raises(ValueError):
        CompactRange(27, frontier.hashes[:-1])
    with pytest.raises(ValueError):
        frontier.append(b"short")


def test_hash_list() -> None:
    hashes = HashList(LEAVES_40)
    assert len(hashes) == 40 and list(hashes) == LEAVES_40
    assert hashes[-1] == LEAVES_40[-1] and list(hashes[5:9]) == LEAVES_40[5:9]
    assert list(hashes[5:9][1:3]) == LEAVES_40[6:8] and len(hashes[30:10]) == 0
    with pytest.raises(IndexError):
        hashes[40]
    with pytest.raises(TypeError):
        hashes[1:3].append(LEAVES_40[0])


# --- proofs for every (m, n), 1 <= m <= n <= 40 ---

@pytest.mark.parametrize("n", range(1, 41))
def test_inclusion_proofs_for_every_leaf(n: int) -> None:
    leaves, root_hash = LEAVES_40[:n], ROOTS_40[n]
    for index in range(n):
        proof = inclusion_proof(index, leaves)
        assert proof == path(index, leaves)
        assert verify_inclusion(index, n, leaves[index], proof, root_hash)
        # Tampered: every bit-flipped element, wrong index, size, leaf, root, shape.
        for i in range(len(proof)):
            bad = [*proof[:i], _flip(proof[i]), *proof[i + 1:]]
            assert not verify_inclusion(index, n, leaves[index], bad, root_hash)
        for wrong in {index - 1, index + 1, index ^ 2} - {index}:
            if 0 <= wrong < n:
                assert not verify_inclusion(wrong, n, leaves[index], proof, root_hash)
        assert not verify_inclusion(index, 2 * n, leaves[index], proof, root_hash)
        if index < n // 2:
            assert not verify_inclusion(index, n // 2, leaves[index], proof, root_hash)
        assert not verify_inclusion(index, n, _flip(leaves[index]), proof, root_hash)
        assert not verify_inclusion(index, n, leaves[index], proof, _flip(root_hash))
        assert not verify_inclusion(index, n, leaves[index], proof, EMPTY_ROOT)
        assert not verify_inclusion(index, n, leaves[index], [*proof, root_hash], root_hash)
        assert not verify_inclusion(index, n, leaves[index], [root_hash, *proof], root_hash)
        if proof:
            assert not verify_inclusion(index, n, leaves[index], proof[:-1], root_hash)
    assert not verify_inclusion(n, n, leaves[0], [], root_hash)
    with pytest.raises(ValueError):
        inclusion_proof(n, leaves)


@pytest.mark.parametrize("n", range(1, 41))
def test_consistency_proofs_for_every_pair(n: int) -> None:
    leaves, new = LEAVES_40[:n], ROOTS_40[n]
    for m in range(1, n + 1):
        old = ROOTS_40[m]
        proof = consistency_proof(m, leaves)
        assert proof == ([] if m == n else subproof(m, leaves, True))
        assert verify_consistency(m, n, old, new, proof), (m, n)
        if m == n:
            assert not verify_consistency(m, n, old, _flip(new), proof)
            assert not verify_consistency(m, n, old, new, [old])
            continue
        # Tampered: every bit-flipped element, truncated, extended, wrong sizes or roots.
        for i in range(len(proof)):
            bad = [*proof[:i], _flip(proof[i], 4), *proof[i + 1:]]
            assert not verify_consistency(m, n, old, new, bad)
        assert not verify_consistency(m, n, old, new, proof[:-1])
        assert not verify_consistency(m, n, old, new, [])
        assert not verify_consistency(m, n, old, new, [*proof, new])
        assert not verify_consistency(m, n, old, new, [proof[0], *proof])
        assert not verify_consistency(m, n, _flip(old), new, proof)
        assert not verify_consistency(m, n, old, _flip(new), proof)
        assert not verify_consistency(m, n, new, old, proof)
        for m2, n2 in [(m - 1, n), (m + 1, n), (m ^ 2, n), (m, n * 2), (m, n // 2)]:
            if (m2, n2) != (m, n) and 0 < m2 <= n2:
                assert not verify_consistency(m2, n2, old, new, proof), (m, n, m2, n2)
        # A different history after m: the old root no longer agrees with the new tree.
        other = [*leaves[:m - 1], _flip(leaves[m - 1]), *leaves[m:]]
        other_proof = consistency_proof(m, other)
        assert not verify_consistency(m, n, old, mth(other), other_proof)


def test_consistency_edge_cases() -> None:
    assert consistency_proof(0, LEAVES_40) == []
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 40, EMPTY_ROOT, ROOTS_40[40], [])
    assert not verify_consistency(0, 40, ROOTS_40[1], ROOTS_40[40], [])
    assert not verify_consistency(0, 40, EMPTY_ROOT, ROOTS_40[40], [EMPTY_ROOT])
    assert not verify_consistency(2, 1, ROOTS_40[2], ROOTS_40[1], [])
    assert not verify_consistency(1, 2, ROOTS_40[1], ROOTS_40[2], [b"short"])
    with pytest.raises(ValueError):
        consistency_proof(41, LEAVES_40)


def test_proofs_from_a_hash_list_match() -> None:
    packed = HashList(LEAVES_40)
    for m, n in itertools.product(range(1, 41, 3), range(1, 41, 5)):
        if m <= n:
            assert consistency_proof(m, packed[:n]) == consistency_proof(m, LEAVES_40[:n])
            assert inclusion_proof(m - 1, packed[:n]) == inclusion_proof(m - 1, LEAVES_40[:n])


def test_trees_grafted_from_blocks_of_leaves_are_the_tree_of_all() -> None:
    """A tree grown from blocks whose levels were computed apart (complete_levels, as a worker
    process of the verifier does) holds every node of the tree of all the leaves, whatever the
    blocks' sizes and alignments: the nodes across two blocks are hashed by `graft`."""
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(300)]
    whole = Tree()
    whole.extend(leaves)
    assert whole.root(0, 300) == root(leaves)
    for blocks in [[300], [1] * 300, [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4],
                   [64, 64, 64, 64, 44], [63, 65, 127, 45], [0, 7, 0, 293]]:
        tree, size = Tree(), 0
        for block in blocks:
            levels = complete_levels(leaves[size:size + block], size)
            # Level h holds exactly the complete subtrees inside the block.
            for height, level in enumerate(levels):
                first, stop = -(-size >> height), (size + block) >> height
                assert level == b"".join(whole.node(height, i) for i in range(first, stop))
            tree.graft(levels)
            size += block
            assert tree.size == size and tree.root(0, size) == root(leaves[:size])
        grown = Tree()
        grown.extend(leaves[:size])
        assert tree.levels == grown.levels
    for size in (1, 2, 5, 64, 100, 299):
        assert whole.inclusion_proof(size // 3, size) == inclusion_proof(size // 3,
                                                                         leaves[:size])
        assert whole.consistency_proof(size // 2, size) == consistency_proof(size // 2,
                                                                             leaves[:size])


def test_graft_refuses_levels_of_another_shape() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(20)]
    tree = Tree()
    tree.extend(leaves[:5])
    with pytest.raises(ValueError, match="not those of the leaves after this tree"):
        tree.graft(complete_levels(leaves[5:7], 4))  # computed for another start
    tree = Tree()
    tree.extend(leaves[:6])
    with pytest.raises(ValueError, match="not those of the leaves after this tree"):
        tree.graft([*complete_levels(leaves[6:8], 6), b"x" * 32])  # a level too many
