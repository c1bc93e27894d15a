"""Entitlement trees: OpenZeppelin StandardMerkleTree of ``(address account, uint256 cumulative)``,
the leaf ``RevenueVault.claim`` recomputes, written in forms other tools read.

For each tree three files are written next to each other (atomically, each via a temporary file):

- ``<name>.json``: the tree in ``@openzeppelin/merkle-tree``'s dump format (``standard-v1``), which
  ``StandardMerkleTree.load`` in JavaScript or Python reads and re-checks;
- ``<name>.proofs.json``: every account's amount and proof
  (``{"format": "ledger.settlement.proofs/1", "root", "total", "leafEncoding", "claims":
  {address: {"amount", "treeIndex", "proof"}}}``), written as it is computed;
- ``<name>.nodes``: the raw 32-byte nodes in the dump's order, so one proof is read with ~20
  seeks (`read_proof`) instead of parsing a large JSON file.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from eth_utils.address import to_checksum_address

from ledger.merkle import FORMAT, StandardMerkleTree
from ledger.settlement.errors import TreeInputError

__all__ = [
    "LEAF_ENCODING",
    "PROOFS_FORMAT",
    "TreeFiles",
    "build_tree",
    "read_proof",
    "read_tree_csv",
    "tree_files",
    "write_tree",
]

#: The leaf of an entitlement: ``abi.encode(account, cumulative)``.
LEAF_ENCODING: Final = ("address", "uint256")
#: The ``format`` of the proofs file.
PROOFS_FORMAT: Final = "ledger.settlement.proofs/1"
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_UINT256_MAX: Final = 2**256 - 1


@dataclass(frozen=True, slots=True)
class TreeFiles:
    """The three files of one written tree."""

    dump: Path
    proofs: Path
    nodes: Path


def tree_files(dump: Path) -> TreeFiles:
    """The file names that go with a dump path ``<name>.json``."""
    stem = dump.with_suffix("")
    return TreeFiles(dump, stem.with_suffix(".proofs.json"), stem.with_suffix(".nodes"))


def build_tree(entitlements: Mapping[str, int]) -> tuple[StandardMerkleTree, list[str]]:
    """The tree of `entitlements` (account -> cumulative, all > 0), leaves in account order;
    returns it with the accounts in value order.

    Raises:
        MerkleEmptyTreeError: there are no entitlements.
    """
    accounts = sorted(entitlements)
    values = [(a, entitlements[a]) for a in accounts]
    return StandardMerkleTree.of(values, LEAF_ENCODING), accounts


def tree_indexes(tree: StandardMerkleTree) -> list[int]:
    """Each value's node index in the tree (the dump's ``treeIndex``)."""
    return list(tree.layout()[1])


def write_tree(tree: StandardMerkleTree, dump: Path, *, with_proofs: bool = True) -> TreeFiles:
    """Write the dump, proofs and nodes files of `tree` (see the module notes); without
    `with_proofs` the proofs file (about 1.5 kB per account) is left out."""
    files = tree_files(dump)
    nodes, indexes = tree.layout()
    dump.parent.mkdir(parents=True, exist_ok=True)
    with _atomic(files.nodes, binary=True) as out:
        out.write(nodes)
    with _atomic(files.dump) as out:
        out.write(f'{{"format":"{FORMAT}","leafEncoding":{json.dumps(list(LEAF_ENCODING))},')
        out.write('"tree":[')
        for offset in range(0, len(nodes), 32):
            out.write(("," if offset else "") + '"0x' + nodes[offset : offset + 32].hex() + '"')
        out.write('],"values":[')
        for i in range(len(tree)):
            account, amount = tree.at(i)
            sep = "," if i else ""
            out.write(f'{sep}{{"value":["{account}","{amount}"],"treeIndex":{indexes[i]}}}')
        out.write("]}")
    if not with_proofs:
        return files
    total = sum(int(tree.at(i)[1]) for i in range(len(tree)))
    with _atomic(files.proofs) as out:
        out.write(f'{{"format":"{PROOFS_FORMAT}","root":"{tree.root}","total":"{total}",')
        out.write(f'"leafEncoding":{json.dumps(list(LEAF_ENCODING))},"claims":{{')
        first = True
        for index, proof in tree.iter_proofs():
            account, amount = tree.at(index)
            shown = ",".join('"0x' + p.hex() + '"' for p in proof)
            out.write(
                f'{"" if first else ","}\n"{account}":{{"amount":"{amount}",'
                f'"treeIndex":{indexes[index]},"proof":[{shown}]}}'
            )
            first = False
        out.write("\n}}\n")
    return files


def read_proof(nodes_file: Path, tree_index: int) -> list[str]:
    """The proof of the leaf at node `tree_index`, read from a ``.nodes`` file.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: `tree_index` is not a node of the tree.
    """
    size = nodes_file.stat().st_size // 32
    if not 0 <= tree_index < size:
        raise ValueError(f"tree index {tree_index} is not a node of a tree of {size} nodes")
    proof: list[str] = []
    with nodes_file.open("rb") as handle:
        i = tree_index
        while i > 0:
            sibling = i + 1 if i & 1 else i - 1
            handle.seek(32 * sibling)
            proof.append("0x" + handle.read(32).hex())
            i = (i - 1) >> 1
    return proof


def read_tree_csv(path: Path) -> dict[str, int]:
    """Read an ``address,amount`` CSV (header first, one account per line) into entitlements.

    Raises:
        TreeInputError: the header is missing, or a row has a bad address, an amount that is not
            a non-negative integer below 2^256, or repeats an address (names the line).
        FileNotFoundError: there is no such file.
    """
    entitlements: dict[str, int] = {}
    first_line: dict[str, int] = {}
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != ["address", "amount"]:
            raise TreeInputError(1, "header", "must be exactly 'address,amount'")
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise TreeInputError(line, "row", f"must have 2 fields, has {len(row)}")
            raw_address, raw_amount = row[0].strip(), row[1].strip()
            if not _ADDRESS.fullmatch(raw_address):
                raise TreeInputError(line, "address", "must be 0x followed by 40 hex digits")
            digits = raw_address[2:]
            address = to_checksum_address(raw_address)
            if digits not in (digits.lower(), digits.upper()) and address != raw_address:
                raise TreeInputError(line, "address", "has an invalid EIP-55 checksum")
            if not raw_amount.isdecimal() or not raw_amount.isascii():
                raise TreeInputError(line, "amount", "must be a non-negative integer (base units)")
            amount = int(raw_amount)
            if amount > _UINT256_MAX:
                raise TreeInputError(line, "amount", "must be below 2^256")
            if address in first_line:
                raise TreeInputError(
                    line, "address", f"repeats the address of line {first_line[address]}"
                )
            first_line[address] = line
            entitlements[address] = amount
    if not entitlements:
        raise TreeInputError(2, "row", "at least one address,amount row is needed")
    return entitlements


@contextmanager
def _atomic(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
