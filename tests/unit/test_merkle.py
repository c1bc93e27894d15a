"""ledger.merkle: the OpenZeppelin StandardMerkleTree, by known vectors, properties, and against
the JS library itself (tests/unit/js/merkle_reference.js with the project's node_modules)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import (
    MerkleEmptyTreeError,
    MerkleEncodingError,
    MerkleFormatError,
    MerkleLeafNotFoundError,
)
from ledger.merkle import StandardMerkleTree, hash_pair, leaf_hash, process_proof, verify

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "unit" / "js" / "merkle_reference.js"
README_VALUES = [
    ["0x1111111111111111111111111111111111111111", "5000000000000000000"],
    ["0x2222222222222222222222222222222222222222", "2500000000000000000"],
]
README_ROOT = "0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"
CLAIM = ["address", "uint256"]

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
amounts = st.integers(min_value=0, max_value=2**256 - 1)
claims = st.lists(st.tuples(addresses, amounts).map(list), min_size=1, max_size=40)


def test_readme_example_has_the_librarys_root_and_proofs() -> None:
    tree = StandardMerkleTree.of(README_VALUES, CLAIM)
    assert tree.root == README_ROOT
    for i, value in enumerate(README_VALUES):
        proof = tree.proof(i)
        assert proof == tree.proof_of(value)
        assert tree.verify(value, proof)
        assert verify(README_ROOT, leaf_hash(CLAIM, value), proof)
    # Integers as ints or strings are the same leaf; the dump writes them as strings.
    as_ints = StandardMerkleTree.of([[a, int(v)] for a, v in README_VALUES], CLAIM)
    assert as_ints.root == README_ROOT
    assert as_ints.dump() == tree.dump()


def test_leaf_is_double_keccak_of_abi_encoding() -> None:
    address, amount = README_VALUES[0][0], int(README_VALUES[0][1])
    expected = keccak(keccak(encode(CLAIM, [address, amount])))
    assert leaf_hash(CLAIM, [address, amount]) == expected


def test_tampered_leaf_proof_or_root_fails() -> None:
    values = [[f"0x{i:040x}", i * 7] for i in range(1, 10)]
    tree = StandardMerkleTree.of(values, CLAIM)
    proof = tree.proof(3)
    assert tree.verify(values[3], proof)
    assert not tree.verify([values[3][0], values[3][1] + 1], proof)
    assert not tree.verify(values[4], proof)
    flipped = list(proof)
    flipped[1] = "0x" + ("00" if flipped[1][2:4] != "00" else "01") + flipped[1][4:]
    assert not tree.verify(values[3], flipped)
    assert not tree.verify(values[3], proof[:-1])
    leaf = leaf_hash(CLAIM, values[3])
    assert not verify(bytes(32), leaf, proof)
    with pytest.raises(MerkleFormatError) as info:
        verify(tree.root, leaf, [*proof[:1], "0x1234"])
    assert info.value.field == "proof[1]"


def test_single_leaf_tree_is_its_leaf() -> None:
    tree = StandardMerkleTree.of([README_VALUES[0]], CLAIM)
    assert tree.root == "0x" + leaf_hash(CLAIM, README_VALUES[0]).hex()
    assert tree.proof(0) == []
    assert tree.verify(README_VALUES[0], [])
    assert list(tree.iter_proofs()) == [(0, [])]
    assert tree.dump()["values"] == [{"value": README_VALUES[0], "treeIndex": 0}]


def test_flat_layout_is_the_librarys() -> None:
    values = [[f"0x{i:040x}", i] for i in range(1, 8)]
    tree = StandardMerkleTree.of(values, CLAIM)
    nodes = [bytes.fromhex(h[2:]) for h in tree.dump()["tree"]]
    leaves = sorted(leaf_hash(CLAIM, v) for v in values)
    assert len(nodes) == 2 * len(values) - 1
    for i, leaf in enumerate(leaves):
        assert nodes[len(nodes) - 1 - i] == leaf
    for i in range(len(values) - 1):
        assert nodes[i] == hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
    for entry in tree.dump()["values"]:
        assert nodes[entry["treeIndex"]] == leaf_hash(CLAIM, entry["value"])
    unsorted = StandardMerkleTree.of(values, CLAIM, sort_leaves=False)
    assert [e["treeIndex"] for e in unsorted.dump()["values"]] == list(range(12, 5, -1))
    # layout() is the same nodes as one buffer, and the dump's tree indexes.
    buffer, indexes = tree.layout()
    assert buffer == b"".join(nodes)
    assert indexes == [entry["treeIndex"] for entry in tree.dump()["values"]]
    assert unsorted.root != tree.root


@settings(max_examples=60, deadline=None)
@given(claims, st.randoms(use_true_random=False))
def test_every_proof_verifies_and_root_ignores_input_order(
    values: list[list[Any]], rng: random.Random
) -> None:
    tree = StandardMerkleTree.of(values, CLAIM)
    bulk = dict(tree.iter_proofs())
    assert sorted(bulk) == list(range(len(values)))
    for i, value in enumerate(values):
        proof = tree.proof(i)
        assert [bytes.fromhex(p[2:]) for p in proof] == bulk[i]
        assert tree.verify(value, proof)
        assert process_proof(leaf_hash(CLAIM, value), proof) == bytes.fromhex(tree.root[2:])
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert StandardMerkleTree.of(shuffled, CLAIM).root == tree.root
    assert StandardMerkleTree.load(json.loads(json.dumps(tree.dump()))).root == tree.root


static_rows = st.tuples(
    addresses.map(lambda a: to_checksum_address(a)),
    st.integers(0, 2**256 - 1),
    st.integers(-(2**127), 2**127 - 1),
    st.booleans(),
    st.binary(min_size=0, max_size=32),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 255),
)
STATIC = ["address", "uint256", "int128", "bool", "bytes32", "bytes4", "uint8"]


@settings(max_examples=200, deadline=None)
@given(static_rows)
def test_fast_static_encoding_equals_eth_abi(row: tuple[Any, ...]) -> None:
    assert leaf_hash(STATIC, list(row)) == keccak(keccak(encode(STATIC, list(row))))


def test_dynamic_types_use_eth_abi_with_json_shapes() -> None:
    types = ["bytes[]", "string", "(uint256,address)", "int8"]
    address = README_VALUES[0][0]
    json_row = [["0x01", "0x0203"], "abc", ["7", address], "-5"]
    python_row = [[b"\x01", b"\x02\x03"], "abc", (7, address), -5]
    expected = keccak(keccak(encode(types, python_row)))
    assert leaf_hash(types, json_row) == leaf_hash(types, python_row) == expected


@pytest.mark.parametrize(
    ("row", "abi_type", "reason"),
    [
        (["0x12", 1], "address", "20-byte"),
        (["0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 1], "address", "checksum"),
        ([README_VALUES[0][0], -1], "uint256", "must be in"),
        ([README_VALUES[0][0], 2**256], "uint256", "must be in"),
        ([README_VALUES[0][0], True], "uint256", "integer"),
        ([README_VALUES[0][0], "12ab"], "uint256", "not a decimal"),
        ([README_VALUES[0][0]], "row", "list of 2 fields"),
    ],
)
def test_misfit_value_names_its_index_and_type(row: list[Any], abi_type: str, reason: str) -> None:
    with pytest.raises(MerkleEncodingError) as info:
        StandardMerkleTree.of([README_VALUES[0], row], CLAIM)
    assert (info.value.index, info.value.abi_type) == (1, abi_type)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_bad_type_empty_tree_and_unknown_leaf_are_refused() -> None:
    with pytest.raises(MerkleEncodingError, match="'uint7' is not an ABI type"):
        StandardMerkleTree.of([[1]], ["uint7"])
    with pytest.raises(MerkleEmptyTreeError):
        StandardMerkleTree.of([], CLAIM)
    tree = StandardMerkleTree.of(README_VALUES, CLAIM)
    with pytest.raises(MerkleLeafNotFoundError) as info:
        tree.proof(2)
    assert info.value.index == 2 and info.value.size == 2
    with pytest.raises(MerkleLeafNotFoundError):
        tree.proof(-1)
    with pytest.raises(MerkleLeafNotFoundError):
        tree.proof_of([README_VALUES[0][0], "1"])


def test_load_checks_format_values_and_hashes() -> None:
    dump = StandardMerkleTree.of([[f"0x{i:040x}", i] for i in range(1, 6)], CLAIM).dump()
    assert StandardMerkleTree.load(dump).dump() == dump

    def broken(change: Any) -> str:
        data = json.loads(json.dumps(dump))
        change(data)
        with pytest.raises(MerkleFormatError) as info:
            StandardMerkleTree.load(data)
        return info.value.field

    assert broken(lambda d: d.update(format="simple-v1")) == "format"
    assert broken(lambda d: d["tree"].pop()) == "tree"
    assert broken(lambda d: d["tree"].__setitem__(1, "0x" + "11" * 32)) == "tree[1]"
    assert (
        broken(lambda d: d["tree"].__setitem__(8, "0x" + "11" * 32))
        == "values["
        + str(next(i for i, v in enumerate(dump["values"]) if v["treeIndex"] == 8))
        + "]"
    )
    assert broken(lambda d: d["values"][0].update(treeIndex=0)) == "values[0].treeIndex"
    assert broken(lambda d: d["values"][0].update(value=[d["values"][0]["value"][0], "9"])) == (
        "values[0]"
    )


def _node_reference(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is required (the project's toolchain installs it)"
    assert (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir(), "run `npm ci`"
    result = subprocess.run(
        [node, str(REFERENCE)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output: list[dict[str, Any]] = json.loads(result.stdout)
    return output


def _random_cases() -> list[dict[str, Any]]:
    rng = random.Random(20240601)

    def address() -> str:
        return to_checksum_address("0x" + rng.randbytes(20).hex())

    makers = {
        ("address", "uint256"): lambda: [address(), str(rng.getrandbits(rng.choice([8, 64, 256])))],
        ("bytes32",): lambda: ["0x" + rng.randbytes(32).hex()],
        ("uint32", "bool", "int64", "bytes4"): lambda: [
            str(rng.getrandbits(32)),
            rng.random() < 0.5,
            str(rng.randint(-(2**63), 2**63 - 1)),
            "0x" + rng.randbytes(4).hex(),
        ],
        ("string", "bytes", "uint16[]"): lambda: [
            "row-" + rng.randbytes(rng.randint(0, 40)).hex(),
            "0x" + rng.randbytes(rng.randint(0, 70)).hex(),
            [str(rng.getrandbits(16)) for _ in range(rng.randint(0, 4))],
        ],
        ("(uint256,address)", "bytes32[2]"): lambda: [
            [str(rng.getrandbits(128)), address()],
            ["0x" + rng.randbytes(32).hex(), "0x" + rng.randbytes(32).hex()],
        ],
    }
    cases = []
    for encoding, make in makers.items():
        for size in (1, 2, 3, 7, 100):
            cases.append({"encoding": list(encoding), "values": [make() for _ in range(size)]})
    # Repeated values: the library proves the last occurrence of a value.
    repeated = [[f"0x{i % 3 + 1:040x}", "5"] for i in range(7)]
    cases.append({"encoding": CLAIM, "values": repeated})
    return cases


def test_same_roots_proofs_and_dumps_as_openzeppelin_merkle_tree() -> None:
    cases = _random_cases()
    expected = _node_reference(cases)
    assert len(expected) == len(cases)
    for case, reference in zip(cases, expected, strict=True):
        tree = StandardMerkleTree.of(case["values"], case["encoding"])
        label = f"{case['encoding']} x {len(case['values'])}"
        assert tree.root == reference["root"], label
        assert [tree.proof(i) for i in range(len(tree))] == reference["proofs"], label
        assert [tree.proof_of(v) for v in case["values"]] == reference["proofsByValue"], label
        assert tree.dump() == reference["dump"], label
        # What the library dumps, we load, and it is the same tree.
        assert StandardMerkleTree.load(reference["dump"]).dump() == reference["dump"], label
