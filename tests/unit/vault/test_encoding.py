"""Canonical row encoding: the vectorized words and leaves equal eth_abi's encoding and
ledger.merkle's leaf hash; keyed hashes equal the standard HMAC; trees from leaf hashes equal
StandardMerkleTree."""

from __future__ import annotations

import hmac
import random

import numpy as np
import pyarrow as pa
import pytest
from eth_abi.abi import encode

from ledger.merkle import StandardMerkleTree, keccak256, leaf_hash, proof_at, tree_of_leaves
from ledger.vault.encoding import (
    INT256_MIN,
    Hmac,
    bool_words,
    hex_strings,
    int_words,
    leaf_hashes,
    patient_pseudonym,
    row_salt,
    row_salts,
    string_words,
)


def test_int_words_are_abi_int256_and_null_is_int256_min() -> None:
    rng = random.Random(7)
    values = [0, 1, -1, 2**63 - 1, -(2**63)] + [rng.randint(-(2**63), 2**63 - 1) for _ in range(50)]
    nulls = np.zeros(len(values), dtype=bool)
    nulls[3] = True
    words = int_words(np.array(values, dtype=np.int64), nulls)
    for i, value in enumerate(values):
        expected = encode(["int256"], [INT256_MIN if i == 3 else value])
        assert words[i].tobytes() == expected, i


def test_bool_and_string_words() -> None:
    assert bool_words(np.array([True, False]))[0].tobytes() == encode(["bool"], [True])
    strings = pa.array(["oncology", None, "é", "oncology", ""], pa.string())
    words = string_words(strings)
    assert words[0].tobytes() == keccak256(b"oncology") == words[3].tobytes()
    assert words[1].tobytes() == bytes(32)
    assert words[2].tobytes() == keccak256("é".encode())
    assert words[4].tobytes() == keccak256(b"")


def test_leaf_hashes_equal_merkle_leaf_hash_row_by_row() -> None:
    rng = np.random.default_rng(3)
    m = 40
    ints = rng.integers(-(10**12), 10**12, m)
    flags = rng.integers(0, 2, m).astype(bool)
    texts = pa.array([f"value-{i % 7}" for i in range(m)])
    salts = row_salts(b"k" * 32, "demo", 1, 100, m)
    words = [
        int_words(np.arange(100, 100 + m)),
        salts,
        int_words(ints),
        bool_words(flags),
        string_words(texts),
    ]
    hashes = leaf_hashes(words)
    encoding = ["uint256", "bytes32", "int256", "bool", "bytes32"]
    for i in range(m):
        row = [
            100 + i,
            salts[i].tobytes(),
            int(ints[i]),
            bool(flags[i]),
            keccak256(f"value-{i % 7}".encode()),
        ]
        assert hashes[32 * i : 32 * i + 32] == leaf_hash(encoding, row), i


def test_keyed_hashes_are_standard_hmac_sha256() -> None:
    key = bytes(range(32))
    assert Hmac(key).digest(b"abc") == hmac.digest(key, b"abc", "sha256")
    assert patient_pseudonym(key, "MRN1") == hmac.digest(
        key, b"ledger.patient-id\x00MRN1", "sha256"
    )
    expected = hmac.digest(
        key,
        b"ledger.row-salt\x00demo\x00" + (2).to_bytes(4, "big") + (5).to_bytes(8, "big"),
        "sha256",
    )
    assert row_salt(key, "demo", 2, 5) == expected == row_salts(key, "demo", 2, 5, 1)[0].tobytes()
    assert "key" not in repr(Hmac(key)).replace("<key hidden>", "") and key.hex() not in repr(
        Hmac(key)
    )


def test_hex_strings() -> None:
    words = np.frombuffer(bytes(range(64)), dtype=np.uint8).reshape(2, 32)
    assert hex_strings(words).to_pylist() == [
        "0x" + bytes(range(32)).hex(),
        "0x" + bytes(range(32, 64)).hex(),
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 17, 64])
def test_tree_of_leaves_equals_standard_merkle_tree(n: int) -> None:
    rng = random.Random(n)
    values = [[i, rng.randbytes(32)] for i in range(n)]
    tree = StandardMerkleTree.of(values, ["uint256", "bytes32"])
    leaves = b"".join(leaf_hash(["uint256", "bytes32"], v) for v in values)
    nodes, index = tree_of_leaves(leaves)
    assert "0x" + nodes[:32].hex() == tree.root
    for i in range(n):
        assert ["0x" + p.hex() for p in proof_at(nodes, index[i])] == tree.proof(i)


def test_tree_of_leaves_sorts_hashes_bytewise_even_with_trailing_zeros() -> None:
    # numpy's S32 keys drop trailing NULs when compared: the order must still be bytewise.
    hashes = [
        b"\x01" + bytes(31),
        b"\x01" + bytes(30) + b"\x01",
        bytes(32),
        b"\x00\x02" + bytes(30),
        b"\xff" * 31 + b"\x00",
        b"\xff" * 32,
    ]
    nodes, index = tree_of_leaves(b"".join(hashes))
    n = len(hashes)
    leaves_in_tree = [nodes[32 * (2 * n - 2 - k) : 32 * (2 * n - 1 - k)] for k in range(n)]
    assert leaves_in_tree == sorted(hashes)
    for i, h in enumerate(hashes):
        assert nodes[32 * index[i] : 32 * index[i] + 32] == h
