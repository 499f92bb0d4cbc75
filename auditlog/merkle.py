"""RFC 6962 Merkle tree hashing, inclusion and consistency proofs (RFC 9162 verification).

Standard library only. Leaves are given as their leaf hashes (logformat.leaf_hash, which is
SHA-256(0x00 || data)); interior nodes are SHA-256(0x01 || left || right); the tree of n leaves
splits at k, the largest power of two smaller than n (RFC 6962 §2.1). The empty tree's hash is
SHA-256 of the empty string.

`root` works level by level: pair neighbours, carry an odd last node up unchanged. That is the
same tree as the RFC's recursive split (tests/unit/test_merkle.py checks it against the recursive
definition), and it hashes 1,000,000 leaves in about a second.

`CompactRange` keeps the right frontier of the tree (one hash per set bit of the size) so that a
writer appending one entry at a time can give the root at every size in O(log n) memory.
`Tree` keeps every level (about 64 bytes a leaf) so that the offline verifier, reading the log
once, has the root of every prefix and every proof as a few lookups; `complete_levels` hashes a
block of leaves on its own (in another process) and `Tree.graft` adds it. `HashList` is a packed
list of 32-byte hashes (32 MB for a million leaves).

The proofs walk down from the root the same way whatever keeps the hashes (`_inclusion_path`,
`_consistency_path`): `inclusion_proof` and `consistency_proof` hash the leaves they are given,
`Tree` reads its stored levels.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "HashList",
    "Tree",
    "complete_levels",
    "consistency_proof",
    "inclusion_proof",
    "node_hash",
    "root",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256
_NODE_START = hashlib.sha256(b"\x01").copy


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 6962 splits a tree of n."""
    if n < 2:
        raise ValueError("a tree of fewer than two leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


class HashList(Sequence[bytes]):
    """A list of 32-byte hashes packed in one bytearray; slices are views, not copies."""

    __slots__ = ("_buf", "_start", "_stop")

    def __init__(self, hashes: Iterable[bytes] = ()) -> None:
        self._buf = bytearray()
        self._start = 0
        self._stop: int | None = None  # None: the whole (growing) buffer
        for h in hashes:
            self.append(h)

    def append(self, h: bytes) -> None:
        if self._stop is not None or self._start:
            raise TypeError("a slice of a HashList is read-only")
        if len(h) != 32:
            raise ValueError("hashes are 32 bytes")
        self._buf += h

    def _bounds(self) -> tuple[int, int]:
        stop = len(self._buf) // 32 if self._stop is None else self._stop
        return self._start, stop

    def __len__(self) -> int:
        start, stop = self._bounds()
        return stop - start

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> HashList: ...
    def __getitem__(self, index: int | slice) -> bytes | HashList:
        start, stop = self._bounds()
        if isinstance(index, slice):
            lo, hi, step = index.indices(stop - start)
            if step != 1:
                raise ValueError("HashList slices take no step")
            view = HashList.__new__(HashList)
            view._buf, view._start, view._stop = self._buf, start + lo, start + max(lo, hi)
            return view
        if index < 0:
            index += stop - start
        if not 0 <= index < stop - start:
            raise IndexError("HashList index out of range")
        offset = (start + index) * 32
        return bytes(self._buf[offset:offset + 32])

    def __iter__(self) -> Iterator[bytes]:
        start, stop = self._bounds()
        buf = self._buf
        for offset in range(start * 32, stop * 32, 32):
            yield bytes(buf[offset:offset + 32])

    def first_level(self) -> list[bytes]:
        """The level above the leaves: node_hash of each pair, an odd last leaf carried up."""
        start, stop = self._bounds()
        with memoryview(self._buf) as view:
            level = [_sha256(b"\x01" + view[o:o + 64]).digest()
                     for o in range(start * 32, (stop - 1) * 32, 64)]
            if (stop - start) & 1:
                level.append(bytes(view[(stop - 1) * 32:stop * 32]))
        return level


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1 over the given leaf hashes, computed level by level."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return bytes(leaf_hashes[0])
    level = leaf_hashes.first_level() if isinstance(leaf_hashes, HashList) else list(leaf_hashes)
    while len(level) > 1:
        pairs = [_sha256(b"\x01" + level[i] + level[i + 1]).digest()
                 for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            pairs.append(level[-1])
        level = pairs
    return level[0]


#: The hash of the subtree over leaves lo .. hi-1 (whatever keeps them).
SubtreeRoot = Callable[[int, int], bytes]


def _inclusion_path(index: int, size: int, subtree: SubtreeRoot) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 §2.1.1, ordered from the leaf's sibling up to the root."""
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:  # walk down from the root, collecting the other side at each split
        k = split_point(hi - lo)
        if index < lo + k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo = lo + k
    proof.reverse()
    return proof


def _consistency_path(m: int, size: int, subtree: SubtreeRoot) -> list[bytes]:
    """PROOF(m, D[size]) = SUBPROOF(m, D[size], true) of RFC 6962 §2.1.2, for 0 < m < size."""
    proof: list[bytes] = []
    lo, hi, complete = 0, size, True  # SUBPROOF(m - lo, D[lo:hi], complete)
    while m - lo != hi - lo:
        k = split_point(hi - lo)
        if m - lo <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo, complete = lo + k, False
    if not complete:
        proof.append(subtree(lo, hi))
    proof.reverse()
    return proof


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1, ordered from the leaf's sibling up to the root."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"index {index} is outside a tree of size {n}")
    return _inclusion_path(index, n, lambda lo, hi: root(leaf_hashes[lo:hi]))


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 §2.1.2; empty for m = 0 or m = n."""
    n = len(leaf_hashes)
    if not 0 <= m <= n:
        raise ValueError(f"cannot prove size {m} against a tree of size {n}")
    if m in (0, n):
        return []
    return _consistency_path(m, n, lambda lo, hi: root(leaf_hashes[lo:hi]))


def _all_hashes(*values: object) -> bool:
    return all(isinstance(v, bytes | bytearray) and len(v) == 32 for v in values)


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes],
                     root_hash: bytes) -> bool:
    """Whether `proof` shows leaf `index` with `leaf_hash` in the tree `root_hash` of `size`
    (RFC 9162 §2.1.3.2)."""
    if not (0 <= index < size) or not _all_hashes(leaf_hash, root_hash, *proof):
        return False
    fn, sn, r = index, size - 1, bytes(leaf_hash)
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
    return sn == 0 and r == root_hash


def verify_consistency(m: int, n: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree `new_root` of size n extends the tree `old_root` of size m
    (RFC 9162 §2.1.4.2). Size 0 is consistent with anything if old_root is the empty tree's hash;
    m = n needs equal roots and an empty proof."""
    if not (0 <= m <= n) or not _all_hashes(old_root, new_root, *proof):
        return False
    if m == 0:
        return not proof and old_root == EMPTY_ROOT
    if m == n:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is itself a node of the new tree
        path.insert(0, bytes(old_root))
    fn, sn = m - 1, n - 1
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
    return fr == old_root and sr == new_root and sn == 0


class CompactRange:
    """The right frontier of a growing tree: append leaf hashes one by one, ask for the root.

    `hashes` are the roots of the perfect subtrees the first `size` leaves decompose into, largest
    (leftmost) first, one per set bit of `size`. Storing (size, hashes) is enough to resume:
    `CompactRange(size, hashes)`.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self._size = size
        self._hashes = [bytes(h) for h in hashes]
        if size < 0 or len(self._hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} has {size.bit_count()} hashes")
        if not _all_hashes(*self._hashes):
            raise ValueError("hashes are 32 bytes")

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        if len(leaf_hash) != 32:
            raise ValueError("leaf hashes are 32 bytes")
        hashes, h, size = self._hashes, bytes(leaf_hash), self._size
        while size & 1:  # each trailing 1 bit is a complete subtree to merge with
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            size >>= 1
        hashes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """MTH of the leaves appended so far: fold the frontier from the right."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._hashes)

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


def complete_levels(leaf_hashes: Sequence[bytes], start: int) -> list[bytes]:
    """The nodes that the leaves `start`, `start`+1, ... of a larger tree determine by themselves,
    level by level, each level packed (32 bytes a node): level h holds the nodes
    ceil(start / 2**h) ... (start + n) // 2**h - 1, the complete subtrees inside the range. A
    process can hash a block of leaves on its own this way; `Tree.graft` adds the few nodes that
    straddle two blocks."""
    out: list[bytes] = []
    nodes = list(leaf_hashes)
    while nodes:
        out.append(b"".join(nodes))
        if start & 1:  # the first node's sibling is outside the range
            del nodes[0]
        start = (start + 1) >> 1
        pairs = iter(nodes)  # an odd last node waits for a sibling outside the range
        nodes = []
        append = nodes.append
        for left, right in zip(pairs, pairs, strict=False):
            node = _NODE_START()  # a copy of a hash of the 0x01 prefix (cheaper than anew)
            node.update(left)
            node.update(right)
            append(node.digest())
    return out


class Tree:
    """Every level of the tree of the leaves appended so far, 32 bytes a node: level h holds the
    roots of leaves i*2**h ... (i+1)*2**h - 1 for the complete subtrees only (size >> h nodes),
    kept as the packed blocks they were appended in (a block is not copied again). Appending n
    leaves costs about n node hashes; the root of any prefix, and every hash of a proof, is then
    a few lookups."""

    __slots__ = ("_blocks", "_counts", "_starts")

    def __init__(self) -> None:
        self._blocks: list[list[bytes]] = [[]]  # per level, packed nodes
        self._starts: list[list[int]] = [[]]  # per level, the index of each block's first node
        self._counts: list[int] = [0]  # per level, the number of nodes

    @property
    def size(self) -> int:
        return self._counts[0]

    @property
    def levels(self) -> list[bytes]:
        """The nodes of every level, packed (levels[h][32*i:32*i+32] is node i at height h)."""
        return [b"".join(blocks) for blocks in self._blocks]

    def _append(self, height: int, nodes: bytes) -> None:
        if nodes:
            self._blocks[height].append(nodes)
            self._starts[height].append(self._counts[height])
            self._counts[height] += len(nodes) // 32

    def extend(self, nodes: Sequence[bytes]) -> None:
        """Append leaf hashes."""
        self.graft(complete_levels(nodes, self.size))

    def graft(self, levels: Sequence[bytes]) -> None:
        """Append the leaves levels[0] (packed) with the nodes above them that they determine by
        themselves, `complete_levels(leaves, self.size)` (computed elsewhere, perhaps by another
        process); the nodes that straddle the old and the new leaves are hashed here."""
        start = self.size
        stop = start + len(levels[0]) // 32 if levels else start
        height = 0
        while (stop >> height) > (start >> height):
            if height == len(self._counts):
                self._blocks.append([])
                self._starts.append([])
                self._counts.append(0)
            have = self._counts[height]
            if -(-start >> height) > have:  # node `have` has children on both sides of start
                self._append(height, node_hash(self.node(height - 1, 2 * have),
                                               self.node(height - 1, 2 * have + 1)))
            if height < len(levels):
                self._append(height, levels[height])
            if self._counts[height] != stop >> height:
                raise ValueError("these levels are not those of the leaves after this tree")
            height += 1
        if any(levels[height:]):
            raise ValueError("these levels are not those of the leaves after this tree")

    def node(self, height: int, index: int) -> bytes:
        starts = self._starts[height]
        block = bisect_right(starts, index) - 1
        if not 0 <= index < self._counts[height] or block < 0:
            raise IndexError(f"no node {index} at height {height}")
        offset = (index - starts[block]) * 32
        return self._blocks[height][block][offset:offset + 32]

    def root(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) (RFC 6962 §2.1) of the leaves appended so far."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:  # a complete subtree: stored
            return self.node(n.bit_length() - 1, lo // n)
        k = split_point(n)
        return node_hash(self.root(lo, lo + k), self.root(lo + k, hi))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """inclusion_proof(index, leaves[:size]), from the stored levels."""
        return _inclusion_path(index, size, self.root)

    def consistency_proof(self, m: int, size: int) -> list[bytes]:
        """consistency_proof(m, leaves[:size]), from the stored levels."""
        if m in (0, size):
            return []
        return _consistency_path(m, size, self.root)
