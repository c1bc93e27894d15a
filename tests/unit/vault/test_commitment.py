"""The on-disk commitment builder equals ledger.merkle.tree_of_leaves byte for byte, whatever
the number of leaves, the chunking of the input and the block size of the backward pass."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from ledger.merkle import tree_of_leaves
from ledger.vault.commitment import CommitmentWriter


@pytest.mark.parametrize("n", [1, 2, 3, 7, 256, 1000, 4099])
@pytest.mark.parametrize("block", [1, 5, 1 << 16])
def test_node_file_equals_tree_of_leaves(tmp_path: Path, n: int, block: int) -> None:
    rng = random.Random(n * 31 + block)
    leaves = rng.randbytes(32 * n)
    writer = CommitmentWriter(tmp_path / "work")
    start = 0
    while start < n:
        step = rng.randint(1, 300)
        writer.add(leaves[32 * start : 32 * min(n, start + step)])
        start += step
    root = writer.finish(tmp_path / "tree.bin", tmp_path / "index.bin", block=block)
    nodes, index = tree_of_leaves(leaves)
    assert (tmp_path / "tree.bin").read_bytes() == nodes
    assert np.fromfile(tmp_path / "index.bin", dtype=np.int64).tolist() == list(index)
    assert root == nodes[:32]
    assert not (tmp_path / "work").exists()


def test_no_leaves_is_an_error(tmp_path: Path) -> None:
    writer = CommitmentWriter(tmp_path / "work")
    with pytest.raises(ValueError, match="at least one row"):
        writer.finish(tmp_path / "tree.bin", tmp_path / "index.bin")
