"""The row commitment built on disk: a StandardMerkleTree node file from streamed leaf hashes.

Leaf hashes arrive chunk by chunk (`CommitmentWriter.add`) and go to 256 bucket files by their
first byte, with their row index. `finish` sorts one bucket at a time (keccak hashes are
uniform, so a bucket holds about 1/256 of the rows), writes the leaves into the node file in
the order OpenZeppelin's ``makeMerkleTree`` lays them out (leaf with the k-th smallest hash at
node ``2n-2-k``), records each row's node index, then hashes the internal nodes backwards in
blocks, reading children from and writing parents to the file. Memory stays at one bucket,
one block and the row-to-node index (8 bytes a row); the result is byte for byte
``ledger.merkle.tree_of_leaves``.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Final

import numpy as np
import sha3

__all__ = ["CommitmentWriter"]

_RECORD: Final = np.dtype([("hash", "V32"), ("row", "<i8")])
_BUCKETS: Final = 256


class CommitmentWriter:
    """Collects leaf hashes in row order, then writes ``tree.bin`` and ``tree_index.bin``."""

    def __init__(self, work_dir: Path) -> None:
        self._dir = work_dir
        self._dir.mkdir(parents=True, exist_ok=True)
        self._files = [open(self._dir / f"b{i:03d}", "wb") for i in range(_BUCKETS)]  # noqa: SIM115
        self.rows = 0

    def add(self, hashes: bytes) -> None:
        """Append the leaf hashes of the next rows (``32 * m`` bytes, in row order)."""
        m = len(hashes) // 32
        records = np.empty(m, dtype=_RECORD)
        raw = np.frombuffer(hashes, dtype=np.uint8).reshape(m, 32)
        records["hash"] = raw.view("V32").ravel()
        records["row"] = np.arange(self.rows, self.rows + m, dtype=np.int64)
        self.rows += m
        first = raw[:, 0]
        order = np.argsort(first, kind="stable")
        bounds = np.searchsorted(first[order], np.arange(_BUCKETS + 1))
        ordered = records[order]
        for bucket in range(_BUCKETS):
            lo, hi = bounds[bucket], bounds[bucket + 1]
            if hi > lo:
                self._files[bucket].write(ordered[lo:hi].tobytes())

    def finish(self, tree_path: Path, index_path: Path, *, block: int = 1 << 16) -> bytes:
        """Write the node file and the row -> node index file; return the root.

        Raises:
            ValueError: no leaf was added.
        """
        for handle in self._files:
            handle.close()
        n = self.rows
        if n == 0:
            raise ValueError("a commitment needs at least one row")
        size = 2 * n - 1
        tree_index = np.empty(n, dtype=np.int64)
        with open(tree_path, "w+b") as tree:
            tree.truncate(32 * size)
            position = 0  # k: rank of the next leaf in ascending hash order
            for bucket in range(_BUCKETS):
                path = self._dir / f"b{bucket:03d}"
                records = np.fromfile(path, dtype=_RECORD)
                path.unlink()
                if not len(records):
                    continue
                raw = records.view(np.uint8).reshape(-1, 40)
                # Sort 32-byte keys bytewise: lexsort on four big-endian 8-byte words.
                words = np.ascontiguousarray(raw[:, :32]).view(">u8").reshape(-1, 4)
                order = np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))
                ordered = records[order]
                count = len(ordered)
                nodes = size - 1 - (position + np.arange(count, dtype=np.int64))
                tree_index[ordered["row"]] = nodes
                # Ascending ranks go to descending nodes: write the bucket reversed, at the
                # lowest node of the run.
                data = np.ascontiguousarray(ordered["hash"][::-1]).tobytes()
                tree.seek(32 * int(nodes[-1]))
                tree.write(data)
                position += count
            _hash_internal(tree, n, block)
            tree.seek(0)
            root = tree.read(32)
        tree_index.tofile(index_path)
        shutil.rmtree(self._dir, ignore_errors=True)
        return root

    def abort(self) -> None:
        """Close and remove the bucket files."""
        for handle in self._files:
            handle.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _hash_internal(tree: io.BufferedRandom, n: int, block: int) -> None:
    """Fill nodes ``n-2 .. 0`` from their children, `block` parents at a time."""
    keccak = sha3.keccak_256
    high = n - 1  # parents [low, high) this round
    while high > 0:
        low = max(0, high - block)
        if 2 * low + 1 >= high:
            # The children [2low+1, 2high+1) all lie beyond this block: read just them.
            tree.seek(32 * (2 * low + 1))
            children = tree.read(64 * (high - low))
            out = bytearray(32 * (high - low))
            for i in range(high - low):
                left, right = children[64 * i : 64 * i + 32], children[64 * i + 32 : 64 * i + 64]
                pair = left + right if left <= right else right + left
                out[32 * i : 32 * i + 32] = keccak(pair).digest()
        else:
            # Near the root some children are parents of this same block: read [low, 2high+1)
            # (a few blocks at most) and fill it backwards.
            tree.seek(32 * low)
            buf = bytearray(tree.read(32 * (2 * high + 1 - low)))
            base = 32 * low
            for i in range(high - 1, low - 1, -1):
                o = 64 * i + 32 - base
                both = buf[o : o + 64]
                first, second = both[:32], both[32:]
                digest = keccak(both if first <= second else second + first).digest()
                buf[32 * i - base : 32 * i - base + 32] = digest
            out = buf[: 32 * (high - low)]  # a bytearray either way
        tree.seek(32 * low)
        tree.write(out)
        high = low
