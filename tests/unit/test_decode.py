"""Log decoding: every event of the shipped ABIs, and a synthetic event with the awkward types,
round-trips from values encoded with eth_abi (the ground truth) to the JSON-ready arguments; the
fast static path and the eth_abi path agree with web3's own decoder."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_typing import ABI
from eth_utils.abi import collapse_if_tuple, event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from ledger.chain.artifacts import CONTRACT_NAMES, load_artifact
from ledger.indexer.decode import UNKNOWN_EVENT, EventDecoder, event_abis

ADDRESS = "0x" + "42" * 20
BLOCK_HASH = "0x" + "b1" * 32
TX_HASH = "0x" + "7a" * 32

SYNTHETIC: ABI = [  # type: ignore[list-item]
    {
        "type": "event",
        "name": "Awkward",
        "anonymous": False,
        "inputs": [
            {"name": "label", "type": "string", "indexed": True},
            {"name": "delta", "type": "int64", "indexed": True},
            {"name": "tag", "type": "bytes4", "indexed": True},
            {"name": "small", "type": "int8", "indexed": False},
            {"name": "flag", "type": "bool", "indexed": False},
            {"name": "blob", "type": "bytes", "indexed": False},
            {"name": "amounts", "type": "uint256[]", "indexed": False},
            {
                "name": "pair",
                "type": "tuple",
                "indexed": False,
                "components": [
                    {"name": "who", "type": "address"},
                    {"name": "note", "type": "string"},
                ],
            },
        ],
    },
    {
        "type": "event",
        "name": "Static",
        "anonymous": False,
        "inputs": [
            {"name": "id", "type": "bytes32", "indexed": True},
            {"name": "negative", "type": "int256", "indexed": False},
            {"name": "short", "type": "bytes2", "indexed": False},
            {
                "name": "inner",
                "type": "tuple",
                "indexed": False,
                "components": [
                    {"name": "a", "type": "uint8"},
                    {"name": "b", "type": "address"},
                ],
            },
        ],
    },
]


def strategy(item: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of an ABI type, as eth_abi takes them."""
    kind = item["type"]
    if kind.endswith("[]"):
        return st.lists(strategy({**item, "type": kind[:-2]}), max_size=3)
    if kind == "tuple":
        return st.tuples(*(strategy(c) for c in item["components"]))
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=40)
    if kind == "bytes":
        return st.binary(max_size=70)
    if kind.startswith("bytes"):
        size = int(kind[5:])
        return st.binary(min_size=size, max_size=size)
    if kind.startswith("uint"):
        return st.integers(0, 2 ** int(kind[4:] or 256) - 1)
    bits = int(kind[3:] or 256)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def expected(item: dict[str, Any], value: Any) -> Any:
    """The decoder's JSON-ready form of a value."""
    kind = item["type"]
    if kind.endswith("[]"):
        return [expected({**item, "type": kind[:-2]}, v) for v in value]
    if kind == "tuple":
        return {c["name"]: expected(c, v) for c, v in zip(item["components"], value, strict=True)}
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


def raw_log(event: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    """A JSON-RPC log of `event` with `values`, encoded with eth_abi."""
    topics = ["0x" + event_abi_to_log_topic(event).hex()]  # type: ignore[arg-type]
    data_types, data_values = [], []
    for item, value in zip(event["inputs"], values, strict=True):
        kind = collapse_if_tuple(item)
        if not item["indexed"]:
            data_types.append(kind)
            data_values.append(value)
        elif item["type"] in ("string", "bytes") or item["type"].endswith("]"):
            raw = value.encode() if isinstance(value, str) else value
            topics.append("0x" + keccak(raw).hex())
        else:
            topics.append("0x" + encode([kind], [value]).hex())
    return {
        "address": ADDRESS,
        "topics": topics,
        "data": "0x" + encode(data_types, data_values).hex(),
        "blockNumber": "0x10",
        "blockHash": BLOCK_HASH,
        "blockTimestamp": "0x6553f100",
        "transactionHash": TX_HASH,
        "transactionIndex": "0x2",
        "logIndex": "0x5",
        "removed": False,
    }


def expected_args(event: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    args = {}
    for item, value in zip(event["inputs"], values, strict=True):
        if item["indexed"] and (item["type"] in ("string", "bytes") or item["type"].endswith("]")):
            raw = value.encode() if isinstance(value, str) else value
            args[item["name"]] = "0x" + keccak(raw).hex()
        else:
            args[item["name"]] = expected(item, value)
    return args


SHIPPED = [
    (name, event)
    for name in CONTRACT_NAMES
    for event in event_abis(load_artifact(name).abi).values()
]


@pytest.mark.parametrize(
    ("contract", "event"), SHIPPED, ids=[f"{c}.{e['name']}" for c, e in SHIPPED]
)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_shipped_event_round_trips(
    contract: str, event: dict[str, Any], data: st.DataObject
) -> None:
    values = [data.draw(strategy(item)) for item in event["inputs"]]
    decoder = EventDecoder({contract: (ADDRESS, load_artifact(contract).abi)})
    decoded = decoder.decode(raw_log(event, values))
    assert (decoded.contract, decoded.event) == (contract, event["name"])
    assert decoded.args == expected_args(event, values)
    assert (decoded.block_number, decoded.log_index, decoded.tx_index) == (16, 5, 2)
    assert decoded.block_time is not None and decoded.block_time.tzinfo is not None
    assert decoded.address == to_checksum_address(ADDRESS)
    # A static event comes with the JSON text of its arguments, exactly json.dumps's.
    assert decoded.args_json is None or decoded.args_json == json.dumps(decoded.args)


@pytest.mark.parametrize("name", ["Awkward", "Static"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_awkward_types_round_trip(name: str, data: st.DataObject) -> None:
    event = next(e for e in SYNTHETIC if e["name"] == name)
    values = [data.draw(strategy(item)) for item in event["inputs"]]  # type: ignore[index]
    decoder = EventDecoder({"Synthetic": (ADDRESS, SYNTHETIC)})
    decoded = decoder.decode(raw_log(event, values))  # type: ignore[arg-type]
    assert decoded.args == expected_args(event, values)  # type: ignore[arg-type]
    if name == "Static":
        assert decoded.args_json == json.dumps(decoded.args)
    else:
        assert decoded.args_json is None  # dynamic: serialized where it is stored


def test_agrees_with_web3s_decoder() -> None:
    abi = load_artifact("AccessGrants").abi
    event = event_abis(abi)["GrantIssued"]
    grant = (7, ADDRESS, ADDRESS, b"\x01" * 32, b"\x02" * 32, 1, 2, 3, 4, ADDRESS, 5, 6, 7)
    values = [b"\x09" * 32, 7, to_checksum_address(ADDRESS), grant, 3, True]
    log = raw_log(event, values)  # type: ignore[arg-type]
    ours = EventDecoder({"AccessGrants": (ADDRESS, abi)}).decode(log).args
    contract = Web3().eth.contract(address=to_checksum_address(ADDRESS), abi=abi)
    formatted = {
        **log,
        "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
        "data": bytes.fromhex(log["data"][2:]),
        "blockNumber": 16,
        "transactionIndex": 2,
        "logIndex": 5,
    }
    theirs = contract.events.GrantIssued().process_log(formatted)["args"]  # type: ignore[arg-type]
    assert ours["grantId"] == "0x" + theirs["grantId"].hex()
    assert ours["grant"]["nonce"] == theirs["grant"]["nonce"] == 6
    assert ours["grant"]["grantor"] == theirs["grant"]["grantor"]
    assert ours["ownerEpoch"] == theirs["ownerEpoch"] and ours["relayed"] is theirs["relayed"]


def test_unknown_topic_is_kept_raw_and_foreign_address_refused() -> None:
    decoder = EventDecoder({"UsageLedger": (ADDRESS, load_artifact("UsageLedger").abi)})
    log = raw_log(event_abis(SYNTHETIC)["Static"], [b"\x01" * 32, -5, b"ab", (1, ADDRESS)])  # type: ignore[arg-type]
    decoded = decoder.decode(log)
    assert decoded.event == UNKNOWN_EVENT
    assert decoded.args == {"topics": log["topics"], "data": log["data"]}
    with pytest.raises(KeyError):
        decoder.decode({**log, "address": "0x" + "99" * 20})


def test_short_data_and_wrong_topic_count_are_refused() -> None:
    abi = load_artifact("UsageLedger").abi
    decoder = EventDecoder({"UsageLedger": (ADDRESS, abi)})
    event = event_abis(abi)["BatchAnchored"]
    log = raw_log(event, [b"\x01" * 32, ADDRESS, 3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shorter"):
        decoder.decode({**log, "data": log["data"][:-2]})
    with pytest.raises(ValueError, match="topics"):
        decoder.decode({**log, "topics": log["topics"][:-1]})


def test_removed_logs_are_skipped_and_missing_timestamp_is_none() -> None:
    abi = load_artifact("UsageLedger").abi
    decoder = EventDecoder({"UsageLedger": (ADDRESS, abi)})
    log = raw_log(event_abis(abi)["BatchAnchored"], [b"\x01" * 32, ADDRESS, 3])  # type: ignore[arg-type]
    without_time = {k: v for k, v in log.items() if k != "blockTimestamp"}
    decoded = decoder.decode_all([log, {**log, "removed": True}, without_time])
    assert len(decoded) == 2 and decoded[1].block_time is None
