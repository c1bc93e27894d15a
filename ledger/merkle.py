"""OpenZeppelin's ``StandardMerkleTree`` (``@openzeppelin/merkle-tree`` 1.x) in Python.

A leaf is ``keccak256(keccak256(abi.encode(types, values)))``, the hash the contracts recompute
(``DataRegistry.verifyRecord``, ``RevenueVault.claim``) before ``MerkleProof.verifyCalldata``;
a parent is the keccak256 of its two children in ascending order. The tree is one flat buffer
of 32-byte nodes laid out exactly as the library's ``makeMerkleTree``: node 0 is the root, the
children of node ``i`` are ``2i+1`` and ``2i+2``, and leaf ``i`` (leaves sorted by hash unless
``sort_leaves=False``) is node ``len - 1 - i``. Roots, proofs and ``dump()`` (format
``standard-v1``) are therefore the library's, and its ``StandardMerkleTree.load`` reads our dumps.

Values take the library's JSON shapes too: integers as ints or decimal/``0x`` strings, bytes as
``bytes`` or ``0x`` strings, addresses as ``0x`` strings, arrays and tuples as lists. Rows of
static elementary types (address, (u)intN, bool, bytesN) are encoded by a fast path that
``tests/unit/test_merkle.py`` checks against ``eth_abi.encode``, which encodes everything else.
Hashing uses safe-pysha3 (the fastest eth-hash backend) and no Python object per tree node.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final, Protocol

import sha3
from eth_abi.abi import encode
from eth_abi.exceptions import EncodingError
from eth_abi.grammar import ABIType, BasicType, TupleType, normalize, parse
from eth_typing import HexStr

from ledger.errors import (
    MerkleEmptyTreeError,
    MerkleEncodingError,
    MerkleFormatError,
    MerkleLeafNotFoundError,
)

__all__ = [
    "FORMAT",
    "StandardMerkleTree",
    "hash_pair",
    "keccak256",
    "leaf_hash",
    "process_proof",
    "proof_at",
    "tree_of_leaves",
    "verify",
]

#: The ``format`` field of the library's dumps.
FORMAT: Final = "standard-v1"

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_ZERO_PAD: Final = bytes(12)
_FALSE_WORD: Final = bytes(32)
_TRUE_WORD: Final = bytes(31) + b"\x01"


class _Hash(Protocol):
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


_keccak: Callable[[bytes | bytearray], _Hash] = sha3.keccak_256


class _Misfit(Exception):
    """A value that does not fit an ABI type; turned into MerkleEncodingError with its index."""

    def __init__(self, abi_type: str, value: object, reason: str) -> None:
        super().__init__(reason)
        self.abi_type, self.value, self.reason = abi_type, value, reason


def keccak256(data: bytes | bytearray) -> bytes:
    """The Keccak-256 hash of `data` (Ethereum's ``keccak256``, not SHA3-256)."""
    return _keccak(data).digest()


def hash_pair(a: bytes, b: bytes) -> bytes:
    """The parent of two nodes: keccak256 of them in ascending order (OpenZeppelin's hashPair)."""
    return _keccak(a + b if a <= b else b + a).digest()


def leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """The leaf of `value`: ``keccak256(keccak256(abi.encode(leaf_encoding, value)))``.

    Raises:
        MerkleEncodingError: a type is not an ABI type, or the value does not fit the types.
    """
    try:
        return _leaf_hasher(tuple(leaf_encoding))(value)
    except _Misfit as misfit:
        raise MerkleEncodingError(None, misfit.abi_type, misfit.value, misfit.reason) from None


def process_proof(leaf: bytes | str, proof: Sequence[bytes | str]) -> bytes:
    """The root that `proof` leads to from `leaf` (hashes as bytes or ``0x`` hex).

    Raises:
        MerkleFormatError: the leaf or a proof element is not 32 bytes.
    """
    node = _node(leaf, "leaf")
    for i, sibling in enumerate(proof):
        node = hash_pair(node, _node(sibling, f"proof[{i}]"))
    return node


def verify(root: bytes | str, leaf: bytes | str, proof: Sequence[bytes | str]) -> bool:
    """Whether `proof` proves `leaf` (a leaf hash, see `leaf_hash`) under `root`, as
    ``MerkleProof.verify`` decides.

    Raises:
        MerkleFormatError: the root, the leaf or a proof element is not 32 bytes.
    """
    return _node(root, "root") == process_proof(leaf, proof)


class StandardMerkleTree:
    """A tree of ABI-encoded values; build with `of`, read a dump with `load`.

    Value indexes are positions in the input (as the library's ``getProof(i)``); proofs are
    lists of ``0x`` hex strings, or bytes from `iter_proofs`.
    """

    __slots__ = ("_encoding", "_nodes", "_tree_index", "_values")

    def __init__(
        self, nodes: bytes, values: list[Sequence[Any]], index: array[int], types: tuple[str, ...]
    ) -> None:
        self._nodes, self._values, self._tree_index, self._encoding = nodes, values, index, types

    @classmethod
    def of(
        cls,
        values: Sequence[Sequence[Any]],
        leaf_encoding: Sequence[str],
        *,
        sort_leaves: bool = True,
    ) -> StandardMerkleTree:
        """Build the tree of `values`, each a row of `leaf_encoding`'s ABI types.

        Raises:
            MerkleEmptyTreeError: there are no values.
            MerkleEncodingError: a type is not an ABI type, or a value does not fit the types.
        """
        encoding = tuple(leaf_encoding)
        rows = list(values)
        if not rows:
            raise MerkleEmptyTreeError()
        hashes = _hash_rows(encoding, rows)
        n = len(rows)
        size = 2 * n - 1
        order: Sequence[int] = sorted(range(n), key=hashes.__getitem__) if sort_leaves else range(n)
        buf = bytearray(32 * (n - 1))
        buf += b"".join([hashes[j] for j in reversed(order)])
        del hashes
        tree_index = array("q", bytes(8 * n))
        for position, j in enumerate(order):
            tree_index[j] = size - 1 - position
        _hash_internal_nodes(buf, n)
        return cls(bytes(buf), rows, tree_index, encoding)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Read a dump (the parsed JSON of the library's ``tree.dump()`` or ours), checking that
        every value hashes to its leaf and every node to its children.

        Raises:
            MerkleFormatError: the dump is malformed or its hashes do not add up.
            MerkleEncodingError: a value does not fit the dump's leaf encoding.
        """
        if not isinstance(data, Mapping):
            raise MerkleFormatError("dump", "must be a JSON object")
        if data.get("format") != FORMAT:
            raise MerkleFormatError("format", f"must be {FORMAT!r}, got {data.get('format')!r}")
        encoding = data.get("leafEncoding")
        if not isinstance(encoding, list) or not all(isinstance(t, str) for t in encoding):
            raise MerkleFormatError("leafEncoding", "must be a list of ABI type strings")
        tree, entries = data.get("tree"), data.get("values")
        if not isinstance(tree, list) or len(tree) % 2 == 0:
            raise MerkleFormatError("tree", "must be a list of an odd number of node hashes")
        nodes = b"".join(_node(h, f"tree[{i}]") for i, h in enumerate(tree))
        n = (len(tree) + 1) // 2
        if not isinstance(entries, list) or len(entries) != n:
            raise MerkleFormatError("values", f"must be a list of {n} values, one per leaf")
        rows: list[Sequence[Any]] = []
        tree_index = array("q", bytes(8 * n))
        seen: set[int] = set()
        for i, entry in enumerate(entries):
            index = entry.get("treeIndex") if isinstance(entry, Mapping) else None
            if type(index) is not int or not n - 1 <= index < len(tree) or index in seen:
                raise MerkleFormatError(
                    f"values[{i}].treeIndex", f"must be a leaf without another value, got {index!r}"
                )
            seen.add(index)
            tree_index[i] = index
            rows.append(entry.get("value"))
        for i, digest in enumerate(_hash_rows(tuple(encoding), rows)):
            if nodes[32 * tree_index[i] : 32 * tree_index[i] + 32] != digest:
                raise MerkleFormatError(
                    f"values[{i}]", "does not hash to the leaf at its treeIndex"
                )
        rebuilt = bytearray(nodes)
        _hash_internal_nodes(rebuilt, n)
        if rebuilt != nodes:
            bad = next(
                i for i in range(n - 1) if rebuilt[32 * i : 32 * i + 32] != nodes[32 * i :][:32]
            )
            raise MerkleFormatError(f"tree[{bad}]", "is not the hash of its two children")
        return cls(nodes, rows, tree_index, tuple(encoding))

    def dump(self) -> dict[str, Any]:
        """The tree as the library's ``dump()`` (``json.dumps(..., separators=(",", ":"))`` is
        byte for byte its ``JSON.stringify``): ints become decimal strings, bytes ``0x`` hex."""
        nodes = self._nodes
        return {
            "format": FORMAT,
            "leafEncoding": list(self._encoding),
            "tree": ["0x" + nodes[o : o + 32].hex() for o in range(0, len(nodes), 32)],
            "values": [
                {"value": _jsonable(value), "treeIndex": index}
                for value, index in zip(self._values, self._tree_index, strict=True)
            ],
        }

    @property
    def root(self) -> HexStr:
        """The root as ``0x`` hex (what the contracts store as commitment or epoch root)."""
        return HexStr("0x" + self._nodes[:32].hex())

    def __len__(self) -> int:
        return len(self._values)

    def layout(self) -> tuple[bytes, list[int]]:
        """The flat node buffer (32 bytes per node, root first, as the dump orders ``tree``) and
        each value's node index, for writers of large trees that should not copy every node
        into a hex string."""
        return self._nodes, list(self._tree_index)

    def at(self, index: int) -> Sequence[Any]:
        """The value at input position `index`.

        Raises:
            MerkleLeafNotFoundError: `index` is out of range.
        """
        self._tree_index_of(index)
        return self._values[index]

    def proof(self, index: int) -> list[HexStr]:
        """The proof of the value at input position `index` (the library's ``getProof(index)``).

        Raises:
            MerkleLeafNotFoundError: `index` is out of range.
        """
        return [HexStr("0x" + h.hex()) for h in self._path(self._tree_index_of(index))]

    def proof_of(self, value: Sequence[Any]) -> list[HexStr]:
        """The proof of `value` (the library's ``getProof(value)``; of a repeated value, the
        proof of its last occurrence, as the library).

        Raises:
            MerkleEncodingError: the value does not fit the leaf encoding.
            MerkleLeafNotFoundError: the value is not in the tree.
        """
        digest = leaf_hash(self._encoding, value)
        nodes, first = self._nodes, 32 * (len(self._values) - 1)
        offset = nodes.find(digest, first)
        while offset > 0 and offset % 32:
            offset = nodes.find(digest, offset + 1)
        if offset < 0:
            raise MerkleLeafNotFoundError(value=value, size=len(self))
        return [HexStr("0x" + h.hex()) for h in self._path(offset // 32)]

    def iter_proofs(self) -> Iterator[tuple[int, list[bytes]]]:
        """Every value's ``(index, proof)``, in leaf order, computed in one walk of the tree
        (a proof shares all but its first sibling with its sibling leaf's)."""
        nodes, n = self._nodes, len(self._values)
        size, first = 2 * n - 1, n - 1
        value_at = array("q", bytes(8 * n))
        for value_index, tree_index in enumerate(self._tree_index):
            value_at[tree_index - first] = value_index
        path = [b""] * (size.bit_length() + 1)
        stack = [0]
        while stack:
            i = stack.pop()
            depth = (i + 1).bit_length() - 1
            if i:
                sibling = i + 1 if i & 1 else i - 1
                path[depth] = nodes[32 * sibling : 32 * sibling + 32]
            if i < first:
                stack.append(2 * i + 2)
                stack.append(2 * i + 1)
            else:
                yield value_at[i - first], path[depth:0:-1]

    def verify(self, value: Sequence[Any], proof: Sequence[bytes | str]) -> bool:
        """Whether `proof` proves `value` under this tree's root.

        Raises:
            MerkleEncodingError: the value does not fit the leaf encoding.
            MerkleFormatError: a proof element is not 32 bytes.
        """
        return verify(self._nodes[:32], leaf_hash(self._encoding, value), proof)

    def _tree_index_of(self, index: int) -> int:
        if not 0 <= index < len(self._values):
            raise MerkleLeafNotFoundError(index=index, size=len(self._values))
        return self._tree_index[index]

    def _path(self, i: int) -> list[bytes]:
        nodes, proof = self._nodes, []
        while i > 0:
            sibling = i + 1 if i & 1 else i - 1
            proof.append(nodes[32 * sibling : 32 * sibling + 32])
            i = (i - 1) >> 1
        return proof


def tree_of_leaves(leaves: bytes, *, sort_leaves: bool = True) -> tuple[bytes, array[int]]:
    """The node buffer (root first, as `StandardMerkleTree`) and each leaf's tree index for
    precomputed leaf hashes (`leaves`: ``32 * n`` bytes in input order), without the values.

    Raises:
        MerkleEmptyTreeError: there are no leaves.
        MerkleFormatError: `leaves` is not a whole number of 32-byte hashes.
    """
    import numpy as np  # only this path needs numpy (a fast sort of 32-byte keys)

    if len(leaves) % 32:
        raise MerkleFormatError("leaves", "must be a concatenation of 32-byte hashes")
    n = len(leaves) // 32
    if n == 0:
        raise MerkleEmptyTreeError()
    size = 2 * n - 1
    keys = np.frombuffer(leaves, dtype="S32")
    order = np.argsort(keys, kind="stable") if sort_leaves else np.arange(n)
    buf = bytearray(32 * (n - 1))
    buf += np.frombuffer(leaves, dtype=np.uint8).reshape(n, 32)[order[::-1]].tobytes()
    positions = np.empty(n, dtype=np.int64)
    positions[order] = size - 1 - np.arange(n, dtype=np.int64)
    tree_index = array("q")
    tree_index.frombytes(positions.tobytes())
    _hash_internal_nodes(buf, n)
    return bytes(buf), tree_index


def proof_at(nodes: bytes | memoryview, tree_index: int) -> list[bytes]:
    """The proof of the leaf at node `tree_index` of a node buffer (see `tree_of_leaves`).

    Raises:
        MerkleLeafNotFoundError: `tree_index` is not a leaf node of the buffer.
    """
    size = len(nodes) // 32
    n = (size + 1) // 2
    if not n - 1 <= tree_index < size:
        raise MerkleLeafNotFoundError(index=tree_index, size=n)
    proof, i = [], tree_index
    while i > 0:
        sibling = i + 1 if i & 1 else i - 1
        proof.append(bytes(nodes[32 * sibling : 32 * sibling + 32]))
        i = (i - 1) >> 1
    return proof


def _hash_internal_nodes(buf: bytearray, n: int) -> None:
    """Fill nodes ``n-2 .. 0`` of `buf` (whose last `n` nodes are the leaves) bottom-up."""
    keccak = _keccak
    for i in range(n - 2, -1, -1):
        # The children 2i+1 and 2i+2 are adjacent: one 64-byte slice when already in order.
        children = buf[64 * i + 32 : 64 * i + 96]
        left, right = children[:32], children[32:]
        buf[32 * i : 32 * i + 32] = keccak(children if left <= right else right + left).digest()


def _hash_rows(encoding: tuple[str, ...], rows: list[Sequence[Any]]) -> list[bytes]:
    hasher = _leaf_hasher(encoding)
    try:
        return [hasher(row) for row in rows]
    except _Misfit:
        for i, row in enumerate(rows):  # find the first misfit again, to name its index
            try:
                hasher(row)
            except _Misfit as misfit:
                raise MerkleEncodingError(i, misfit.abi_type, misfit.value, misfit.reason) from None
        raise


@lru_cache(maxsize=64)
def _leaf_hasher(encoding: tuple[str, ...]) -> Callable[[Sequence[Any]], bytes]:
    """A function from a row to its leaf hash; raises _Misfit for a row that does not fit."""
    types: list[ABIType] = []
    for name in encoding:
        try:
            abi_type = parse(normalize(name))  # type: ignore[no-untyped-call]
            abi_type.validate()
        except Exception as exc:  # noqa: BLE001 - parsimonious and eth_abi raise several kinds
            raise MerkleEncodingError(None, name, None, f"not an ABI type ({exc})") from None
        types.append(abi_type)
    width, keccak = len(types), _keccak
    words = [_word_encoder(t) for t in types]
    if all(w is not None for w in words):
        fast = [w for w in words if w is not None]

        def hash_static(row: Sequence[Any]) -> bytes:
            _check_row(row, width)
            encoded = b"".join([word(v) for word, v in zip(fast, row, strict=True)])
            return keccak(keccak(encoded).digest()).digest()

        return hash_static
    names = [_type_str(t) for t in types]

    def hash_any(row: Sequence[Any]) -> bytes:
        _check_row(row, width)
        try:
            encoded = encode(names, [_coerce(t, v) for t, v in zip(types, row, strict=True)])
        except (EncodingError, TypeError, ValueError, OverflowError) as exc:
            raise _Misfit(f"({','.join(names)})", row, str(exc)) from None
        return keccak(keccak(encoded).digest()).digest()

    return hash_any


def _check_row(row: object, width: int) -> None:
    if not isinstance(row, list | tuple) or len(row) != width:
        raise _Misfit("row", row, f"a value must be a list of {width} fields")


def _word_encoder(t: ABIType) -> Callable[[Any], bytes] | None:
    """The 32-byte ABI word of a static elementary type, or None for any other type."""
    if not isinstance(t, BasicType) or t.arrlist:
        return None
    name = _type_str(t)
    if t.base in ("uint", "int"):
        bits, signed = int(t.sub), t.base == "int"
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)

        def integer(v: Any) -> bytes:
            number = _int_of(v, name) if isinstance(v, str) else v
            if not isinstance(number, int) or isinstance(number, bool):
                raise _Misfit(name, v, "must be an integer or a decimal or 0x string")
            if not low <= number < high:
                raise _Misfit(name, v, f"must be in [{low}, {high - 1}]")
            return number.to_bytes(32, "big", signed=signed)

        return integer
    if t.base == "address":

        def address(v: Any) -> bytes:
            if isinstance(v, str) and _ADDRESS.fullmatch(v):
                digits = v[2:]
                if digits in (digits.lower(), digits.upper()) or _checksummed(digits):
                    return _ZERO_PAD + bytes.fromhex(digits)
                raise _Misfit(name, v, "has an invalid EIP-55 checksum")
            if isinstance(v, bytes | bytearray) and len(v) == 20:
                return _ZERO_PAD + bytes(v)
            raise _Misfit(name, v, "must be a 0x-prefixed 20-byte hex string")

        return address
    if t.base == "bool":

        def boolean(v: Any) -> bytes:
            if not isinstance(v, bool):
                raise _Misfit(name, v, "must be true or false")
            return _TRUE_WORD if v else _FALSE_WORD

        return boolean
    if t.base == "bytes" and t.sub:
        size = int(t.sub)

        def fixed_bytes(v: Any) -> bytes:
            data = _bytes_of(v, name) if isinstance(v, str) else v
            if not isinstance(data, bytes | bytearray) or len(data) > size:
                raise _Misfit(name, v, f"must be at most {size} bytes (bytes or 0x hex)")
            return bytes(data).ljust(32, b"\x00")

        return fixed_bytes
    return None


def _coerce(t: ABIType, v: Any) -> Any:
    """`v` in eth_abi's shapes: decimal/hex strings to ints, hex strings to bytes, lists to
    tuples for tuple types."""
    if t.is_array or isinstance(t, TupleType):
        if not isinstance(v, list | tuple):
            raise TypeError(f"{_type_str(t)} needs a list, got {v!r}")
        if t.is_array:
            return [_coerce(t.item_type, item) for item in v]
        assert isinstance(t, TupleType)
        if len(v) != len(t.components):
            raise ValueError(f"{_type_str(t)} needs {len(t.components)} fields, got {v!r}")
        return tuple(_coerce(c, item) for c, item in zip(t.components, v, strict=True))
    if isinstance(v, str) and isinstance(t, BasicType):
        if t.base in ("uint", "int"):
            return _int_of(v, _type_str(t))
        if t.base == "bytes":
            return _bytes_of(v, _type_str(t))
    return v


def _type_str(abi_type: ABIType) -> str:
    return str(abi_type.to_type_str())  # type: ignore[no-untyped-call]


def _int_of(text: str, name: str) -> int:
    try:
        body = text[1:] if text.startswith("-") else text
        number = int(body, 16) if body[:2] in ("0x", "0X") else int(body, 10)
    except ValueError:
        raise _Misfit(name, text, "is not a decimal or 0x integer") from None
    return -number if text.startswith("-") else number


def _bytes_of(text: str, name: str) -> bytes:
    try:
        if not text.startswith("0x"):
            raise ValueError
        return bytes.fromhex(text[2:])
    except ValueError:
        raise _Misfit(name, text, "is not 0x-prefixed hex") from None


def _checksummed(digits: str) -> bool:
    """Whether mixed-case hex `digits` carry a valid EIP-55 checksum."""
    lower = digits.lower()
    mask = _keccak(lower.encode()).hexdigest()
    return digits == "".join(
        c.upper() if m in "89abcdef" else c for c, m in zip(lower, mask, strict=False)
    )


def _node(value: object, field: str) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise MerkleFormatError(field, f"{value!r} is not hex") from None
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise MerkleFormatError(field, f"must be a 32-byte hash, got {value!r}")
    return bytes(value)


def _jsonable(value: Any) -> Any:
    """A value in the library's JSON shapes: ints as decimal strings, bytes as 0x hex."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
