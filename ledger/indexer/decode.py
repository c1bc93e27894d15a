"""Decoding raw logs with the contracts' ABIs, generically and fast.

`EventDecoder` maps each deployed address and ``topic0`` to the event's ABI, so a parameter added,
renamed or retyped in the contracts needs no change here. Values come out JSON-ready: integers as
Python ints, ``bytesN``/``bytes`` as ``0x`` hex, addresses EIP-55 checksummed, structs as dicts
keyed by member name, arrays as lists.

Logs arrive as raw JSON-RPC dicts (hex strings). Static parameters (uint, int, address, bool,
bytesN and structs of them) are sliced straight out of the hex by a function compiled once per
event from its ABI, which also writes the arguments' JSON text (what ``json.dumps`` writes), so
the raw ``events`` table needs no second encoding; that is what makes backfills fast. Anything
dynamic goes through eth_abi. ``tests/unit/test_decode.py`` checks both paths against web3's own
decoder.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from eth_abi.abi import decode as abi_decode
from eth_typing import ABI, ABIComponent, ABIEvent
from eth_utils.abi import collapse_if_tuple, event_abi_to_log_topic
from eth_utils.address import to_checksum_address

from ledger.store.types import JsonText, utc_from_timestamp

__all__ = ["UNKNOWN_EVENT", "DecodedEvent", "EventDecoder", "event_abis"]

#: Event name recorded for a log whose topic0 is not in its contract's ABI.
UNKNOWN_EVENT: Final = "(unknown)"

_UINT = re.compile(r"uint(\d*)")
_INT = re.compile(r"int(\d*)")
_FIXED_BYTES = re.compile(r"bytes(\d+)")
_WORD: Final = 64  # hex digits in a 32-byte word

Converter = Callable[[str], Any]


@dataclass(slots=True)
class DecodedEvent:
    """One log of a deployed contract with its arguments decoded.

    `block_time` is None when the node leaves ``blockTimestamp`` out of its logs; the indexer
    fills it in from the block header. `args_json` is ``json.dumps(args)`` when the decoder
    wrote it already (static events), else None.
    """

    contract: str
    event: str
    address: str
    block_number: int
    block_hash: str
    block_time: datetime | None
    tx_hash: str
    tx_index: int
    log_index: int
    args: dict[str, Any]
    args_json: JsonText | None = None


def event_abis(abi: ABI) -> dict[str, ABIEvent]:
    """The (non-anonymous) events of a contract ABI, by name."""
    events: dict[str, ABIEvent] = {}
    for item in abi:
        if item.get("type") == "event":
            event = cast(ABIEvent, item)
            if not event.get("anonymous", False):
                events[event["name"]] = event
    return events


class EventDecoder:
    """Decodes logs of a set of contracts, given as ``{name: (address, abi)}``."""

    def __init__(self, contracts: Mapping[str, tuple[str, ABI]]) -> None:
        self._codecs: dict[tuple[str, str], _EventCodec] = {}
        self._names: dict[str, str] = {}
        # Per raw (address, topic0) as the node spells them: contract, checksummed address and
        # codec; per raw block hash: number, hash and time (a block's logs repeat them).
        self._known: dict[tuple[str, str | None], tuple[str, str, _EventCodec | None]] = {}
        self._blocks: dict[tuple[str, str, str | None], tuple[int, str, datetime | None]] = {}
        for name, (address, abi) in contracts.items():
            key = address.lower()
            self._names[key] = name
            for event in event_abis(abi).values():
                topic = "0x" + event_abi_to_log_topic(event).hex()
                self._codecs[(key, topic)] = _EventCodec(event)

    @property
    def addresses(self) -> list[str]:
        """The contract addresses, checksummed, for ``eth_getLogs``."""
        return [_checksum(address) for address in self._names]

    def decode(self, log: Mapping[str, Any]) -> DecodedEvent:
        """Decode one raw JSON-RPC log of one of the contracts.

        A topic0 the ABI does not know is kept as event ``(unknown)`` with its raw topics and
        data as arguments, so nothing the chain says is dropped.

        Raises:
            KeyError: the log is not from one of the contracts.
            ValueError: the log's data does not decode with the event's ABI.
        """
        topics: list[str] = log["topics"]
        topic0 = topics[0] if topics else None
        known = self._known.get((log["address"], topic0))
        if known is None:
            known = self._learn(log["address"], topic0)
        contract, checksummed, codec = known
        data: str = log["data"]
        args_json: JsonText | None
        if codec is None:
            event = UNKNOWN_EVENT
            args: dict[str, Any] = {"topics": [t.lower() for t in topics], "data": data}
            args_json = None
        else:
            event = codec.name
            args, args_json = codec.decode(topics, data)
        block_key = (log["blockHash"], log["blockNumber"], log.get("blockTimestamp"))
        block = self._blocks.get(block_key)
        if block is None:
            block = self._block(block_key)
        return DecodedEvent(
            contract,
            event,
            checksummed,
            block[0],
            block[1],
            block[2],
            log["transactionHash"].lower(),
            int(log["transactionIndex"], 16),
            int(log["logIndex"], 16),
            args,
            args_json,
        )

    def _learn(self, raw_address: str, topic0: str | None) -> tuple[str, str, _EventCodec | None]:
        address = raw_address.lower()
        contract = self._names[address]
        codec = self._codecs.get((address, topic0.lower())) if topic0 is not None else None
        known = self._known[(raw_address, topic0)] = (contract, _checksum(address), codec)
        return known

    def _block(self, key: tuple[str, str, str | None]) -> tuple[int, str, datetime | None]:
        if len(self._blocks) >= 4_096:
            self._blocks.clear()
        block_hash, number, stamp = key
        block = self._blocks[key] = (
            int(number, 16),
            block_hash.lower(),
            _block_time(stamp) if stamp else None,
        )
        return block

    def decode_all(self, logs: Iterable[Mapping[str, Any]]) -> list[DecodedEvent]:
        """Decode logs in order, skipping any the node marks ``removed``.

        Raises:
            KeyError, ValueError: as `decode`.
        """
        return [self.decode(log) for log in logs if not log.get("removed", False)]


class _EventCodec:
    """Decoder of one event: a plan of where each parameter is and how to read it when the
    data is static, eth_abi otherwise."""

    def __init__(self, event: ABIEvent) -> None:
        self.name = event["name"]
        inputs = [cast(ABIComponent, item) for item in event.get("inputs", [])]
        names = [str(item.get("name", "")) or f"arg{i}" for i, item in enumerate(inputs)]
        indexed = [bool(item.get("indexed", False)) for item in inputs]
        self._topics = sum(indexed)
        data_inputs = [
            item for item, is_indexed in zip(inputs, indexed, strict=True) if not is_indexed
        ]
        self._data_types = [collapse_if_tuple(cast(dict[str, Any], item)) for item in data_inputs]
        self._names = names
        self._indexed = indexed
        self._topic_readers = [
            _topic_converter(item) for item, i in zip(inputs, indexed, strict=True) if i
        ]
        self._normalizers = [_normalizer(item) for item in data_inputs]
        # (name, topic number or 0 for data, start, end in the 0x-prefixed hex, reader)
        self._plan: list[tuple[str, int, int, int, Converter]] | None = []
        topic, offset = 0, 2
        for name, item, is_indexed in zip(names, inputs, indexed, strict=True):
            if is_indexed:
                topic += 1
                self._plan.append((name, topic, 0, 0, _topic_converter(item)))
                continue
            words = _static_words(item)
            if words is None:
                self._plan = None
                break
            self._plan.append((name, 0, offset, offset + words * _WORD, _static_reader(item)))
            offset += words * _WORD
        self._data_end = offset
        self._static = None if self._plan is None else _compile(self._plan, inputs)

    def decode(self, topics: list[str], data: str) -> tuple[dict[str, Any], JsonText | None]:
        """The arguments, and their JSON text when the event is static."""
        if len(topics) != self._topics + 1:
            raise ValueError(f"{self.name}: {len(topics) - 1} topics, the ABI has {self._topics}")
        if self._static is not None:
            if len(data) < self._data_end:
                raise ValueError(f"{self.name}: data is shorter than its ABI")
            return self._static(topics, data)
        indexed = iter(
            [read(t[2:]) for read, t in zip(self._topic_readers, topics[1:], strict=True)]
        )
        decoded = abi_decode(self._data_types, bytes.fromhex(data[2:]))
        values = iter(
            [normalize(v) for normalize, v in zip(self._normalizers, decoded, strict=True)]
        )
        args = {
            name: next(indexed) if is_indexed else next(values)
            for name, is_indexed in zip(self._names, self._indexed, strict=True)
        }
        return args, None


_StaticDecoder = Callable[[list[str], str], tuple[dict[str, Any], JsonText]]


def _compile(
    plan: list[tuple[str, int, int, int, Converter]], inputs: list[ABIComponent]
) -> _StaticDecoder:
    """One function for a static event: reads each parameter where the plan says and writes
    the arguments both as a dict and as the JSON text ``json.dumps`` gives for it. Generated
    source, so a log costs one call instead of a loop over the plan."""
    namespace: dict[str, Any] = {"JsonText": JsonText, "dumps": json.dumps}
    reads, items, parts = [], [], []
    for i, ((name, topic, start, end, read), item) in enumerate(zip(plan, inputs, strict=True)):
        namespace[f"r{i}"] = read
        source = f"topics[{topic}][2:]" if topic else f"data[{start}:{end}]"
        reads.append(f"    v{i} = r{i}({source})")
        items.append(f"{name!r}: v{i}")
        parts.append(f"{json.dumps(name)}: ' + {_json_of(item, f'v{i}', indexed=bool(topic))} + '")
    text = "'{" + ", ".join(parts) + "}'"
    source = "\n".join(
        [
            "def decode(topics, data):",
            *reads,
            f"    return {{{', '.join(items)}}}, JsonText({text})",
        ]
    )
    exec(compile(source, "<ledger.indexer.decode>", "exec"), namespace)  # noqa: S102
    return cast(_StaticDecoder, namespace["decode"])


def _json_of(item: ABIComponent, variable: str, *, indexed: bool) -> str:
    """Source of the JSON text of one value (hex and addresses need no escaping)."""
    abi_type = item["type"]
    if indexed and _word_converter(abi_type) is None:
        return f"'\"' + {variable} + '\"'"  # the keccak hash of a dynamic value
    if abi_type == "bool":
        return f"('true' if {variable} else 'false')"
    if _UINT.fullmatch(abi_type) or _INT.fullmatch(abi_type):
        return f"str({variable})"
    if abi_type == "address" or _FIXED_BYTES.fullmatch(abi_type):
        return f"'\"' + {variable} + '\"'"
    return f"dumps({variable})"  # a struct


@functools.lru_cache(maxsize=4_096)
def _block_time(stamp: str) -> datetime:
    return utc_from_timestamp(int(stamp, 16))


@functools.lru_cache(maxsize=65_536)
def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


def _word_converter(abi_type: str) -> Converter | None:
    """How to read a one-word static value from its 64 hex digits; None if not one word."""
    if abi_type == "address":
        return lambda word: _checksum("0x" + word[24:])
    if abi_type == "bool":
        return lambda word: int(word, 16) != 0
    if _UINT.fullmatch(abi_type):
        return lambda word: int(word, 16)
    if match := _INT.fullmatch(abi_type):
        bits = int(match.group(1) or 256)
        return lambda word: _signed(int(word, 16), bits)
    if match := _FIXED_BYTES.fullmatch(abi_type):
        size = int(match.group(1))
        return lambda word: "0x" + word[: 2 * size].lower()
    return None


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _topic_converter(item: ABIComponent) -> Converter:
    # An indexed dynamic value (string, bytes, array, struct) is only its keccak hash.
    return _word_converter(item["type"]) or (lambda word: "0x" + word.lower())


def _static_words(item: ABIComponent) -> int | None:
    """Words a static value takes in the data area; None for a dynamic value."""
    if item["type"] == "tuple":
        counts = [_static_words(c) for c in item.get("components", [])]
        return None if any(c is None for c in counts) else sum(cast(list[int], counts))
    return 1 if _word_converter(item["type"]) is not None else None


def _static_reader(item: ABIComponent) -> Callable[[str], Any]:
    if item["type"] != "tuple":
        convert = _word_converter(item["type"])
        assert convert is not None
        return convert
    parts = [
        (str(c["name"]), cast(int, _static_words(c)), _static_reader(c))
        for c in item.get("components", [])
    ]

    def read(hex_words: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        offset = 0
        for name, count, part in parts:
            result[name] = part(hex_words[offset : offset + count * _WORD])
            offset += count * _WORD
        return result

    return read


def _normalizer(item: ABIComponent) -> Callable[[Any], Any]:
    """Turns what eth_abi returns for `item` into the JSON-ready form of this module."""
    abi_type = item["type"]
    if abi_type.endswith("]"):
        element = cast(ABIComponent, {**item, "type": abi_type[: abi_type.rindex("[")]})
        inner = _normalizer(element)
        return lambda values: [inner(v) for v in values]
    if abi_type == "tuple":
        members = [(str(c["name"]), _normalizer(c)) for c in item.get("components", [])]
        return lambda values: {
            name: convert(v) for (name, convert), v in zip(members, values, strict=True)
        }
    if abi_type == "address":
        return lambda value: _checksum(str(value))
    if abi_type == "bytes" or _FIXED_BYTES.fullmatch(abi_type):
        return lambda value: "0x" + bytes(value).hex()
    return lambda value: value
