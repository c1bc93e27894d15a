"""Entitlement trees: files written, proofs read back by seeks, CSV input checked by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from ledger.merkle import StandardMerkleTree
from ledger.settlement.errors import TreeInputError
from ledger.settlement.trees import (
    LEAF_ENCODING,
    build_tree,
    read_proof,
    read_tree_csv,
    tree_indexes,
    write_tree,
)

ACCOUNTS = [to_checksum_address(f"0x{i * 7919:040x}") for i in range(1, 40)]


def test_written_files_agree_with_the_tree(tmp_path: Path) -> None:
    entitlements = {a: (i + 1) * 10**15 for i, a in enumerate(ACCOUNTS)}
    tree, accounts = build_tree(entitlements)
    assert accounts == sorted(entitlements)
    files = write_tree(tree, tmp_path / "epoch-1" / "tree.json")
    loaded = StandardMerkleTree.load(json.loads(files.dump.read_text()))
    assert loaded.root == tree.root and len(loaded) == len(ACCOUNTS)
    proofs = json.loads(files.proofs.read_text())
    assert proofs["root"] == tree.root and int(proofs["total"]) == sum(entitlements.values())
    assert proofs["leafEncoding"] == list(LEAF_ENCODING)
    indexes = tree_indexes(tree)
    for i, account in enumerate(accounts):
        entry = proofs["claims"][account]
        assert int(entry["amount"]) == entitlements[account]
        assert entry["proof"] == tree.proof(i) == read_proof(files.nodes, indexes[i])
        assert entry["treeIndex"] == indexes[i]
        assert tree.verify((account, entitlements[account]), entry["proof"])
    assert not list(files.dump.parent.glob("*.tmp"))


def test_read_proof_refuses_an_index_outside_the_tree(tmp_path: Path) -> None:
    tree, _ = build_tree({ACCOUNTS[0]: 1, ACCOUNTS[1]: 2})
    files = write_tree(tree, tmp_path / "tree.json")
    assert read_proof(files.nodes, 0) == []
    with pytest.raises(ValueError, match="tree index 3 is not a node of a tree of 3 nodes"):
        read_proof(files.nodes, 3)


def test_csv_reads_valid_rows_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"Address, Amount\n{ACCOUNTS[0].lower()},5\n\n{ACCOUNTS[1]}, 0\n")
    assert read_tree_csv(path) == {ACCOUNTS[0]: 5, ACCOUNTS[1]: 0}


@pytest.mark.parametrize(
    ("text", "line", "field", "rule"),
    [
        ("", 1, "header", "must be exactly 'address,amount'"),
        ("address,amount\n", 2, "row", "at least one"),
        ("address,amount\n0xZZ,1\n", 2, "address", "must be 0x followed by 40 hex digits"),
        (f"address,amount\n{ACCOUNTS[0]},1\n{ACCOUNTS[1]},x\n", 3, "amount", "non-negative"),
        (f"address,amount\n{ACCOUNTS[0]},-1\n", 2, "amount", "non-negative"),
        (f"address,amount\n{ACCOUNTS[0]},{2**256}\n", 2, "amount", r"below 2\^256"),
        (f"address,amount\n{ACCOUNTS[0]},1,2\n", 2, "row", "must have 2 fields"),
        (f"address,amount\n{ACCOUNTS[0]},1\n{ACCOUNTS[0]},2\n", 3, "address", "line 2"),
    ],
)
def test_csv_errors_name_the_line_and_the_field(
    tmp_path: Path, text: str, line: int, field: str, rule: str
) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(TreeInputError, match=rule) as info:
        read_tree_csv(path)
    assert (info.value.line, info.value.field) == (line, field)


def test_csv_refuses_a_bad_checksum(tmp_path: Path) -> None:
    good = to_checksum_address("0x" + "ab" * 20)
    flipped = good[:2] + "".join(c.swapcase() if c.isalpha() else c for c in good[2:])
    path = tmp_path / "p.csv"
    path.write_text(f"address,amount\n{flipped},1\n")
    with pytest.raises(TreeInputError, match="invalid EIP-55 checksum"):
        read_tree_csv(path)
