"""Per-chunk validation, conversion and de-identification, vectorized with pyarrow and numpy.

Rules (the report counts each): ``malformed`` (CSV row with the wrong number of fields),
``encoding`` (cell not UTF-8), ``required`` (empty cell in a required column), ``type`` (text
that is not the column's type), ``min``/``max``, ``codes`` (not an allowed code), ``scale``
(decimal too large for its scale), ``duplicate`` (record id seen before). The report keeps line
numbers and column names only, never cell values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ledger.vault.encoding import (
    Hmac,
    Words,
    bool_words,
    bytes_words,
    contributor_pseudonym,
    date_shift_days,
    date_shift_key,
    hex_strings,
    int_words,
    patient_pseudonym,
    row_salts,
    string_words,
)
from ledger.vault.schema import AGE_CAP, Column, ColumnType, Generalize, Role, Schema
from ledger.vault.source import Chunk

__all__ = ["RULES", "ChunkConverter", "Converted", "DuplicateTracker", "Report"]

RULES: Final = (
    "malformed",
    "encoding",
    "required",
    "type",
    "min",
    "max",
    "codes",
    "scale",
    "duplicate",
)
_OFFENDING_LIMIT: Final = 100
_INTEGER: Final = r"^[+-]?[0-9]{1,18}$"
_DECIMAL: Final = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"
_DATE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TRUE: Final = ("true", "1", "yes", "t", "y")
_FALSE: Final = ("false", "0", "no", "f", "n")
_MAX_EXACT: Final = float(2**53)
Mask = npt.NDArray[np.bool_]


@dataclass
class Report:
    """The validation report: counts per rule and column, first offending lines (no values)."""

    on_error: str
    counts: Counter[str] = field(default_factory=Counter)
    columns: dict[str, Counter[str]] = field(default_factory=dict)
    offending: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    rows_rejected: int = 0

    def add(self, rule: str, column: str, lines: npt.NDArray[np.int64]) -> None:
        """Count `lines` as breaking `rule` in `column`."""
        if not len(lines):
            return
        self.counts[rule] += len(lines)
        self.columns.setdefault(column, Counter())[rule] += len(lines)
        room = _OFFENDING_LIMIT - len(self.offending)
        for line in lines[: max(0, room)].tolist():
            self.offending.append({"line": int(line), "column": column, "rule": rule})

    @property
    def failed(self) -> bool:
        """Whether any row broke a rule."""
        return self.rows_rejected > 0 or sum(self.counts.values()) > 0

    def summary(self) -> dict[str, Any]:
        """Counts only (what the manifest keeps)."""
        return {
            "on_error": self.on_error,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_read - self.rows_rejected,
            "rows_rejected": self.rows_rejected,
            "counts": {rule: self.counts[rule] for rule in RULES if self.counts[rule]},
        }

    def to_json(self) -> dict[str, Any]:
        """The whole report (``report.json``): summary, counts per column, first offenders."""
        self.offending.sort(key=lambda o: (o["line"], o["column"]))
        return {
            **self.summary(),
            "columns": {
                name: dict(sorted(counter.items()))
                for name, counter in sorted(self.columns.items())
            },
            "offending": self.offending[:_OFFENDING_LIMIT],
            "offending_limit": _OFFENDING_LIMIT,
        }


class DuplicateTracker:
    """Record ids seen so far, as 8-byte keys in one sorted numpy array (8 bytes per row).

    Integer ids are their own keys (exact); string ids are pandas' 64-bit hashes (a false
    duplicate needs a collision: about n**2 / 2**65, 3e-8 for a million rows)."""

    def __init__(self) -> None:
        self._seen: npt.NDArray[np.uint64] = np.empty(0, dtype=np.uint64)

    def check(self, keys: npt.NDArray[np.uint64]) -> Mask:
        """Mark keys seen before (in earlier calls or earlier in `keys`); remember the rest."""
        seen = self._seen
        if len(seen):
            pos = np.minimum(np.searchsorted(seen, keys), len(seen) - 1)
            earlier = seen[pos] == keys
        else:
            earlier = np.zeros(len(keys), dtype=bool)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        repeat = np.zeros(len(keys), dtype=bool)
        repeat[order[1:]] = ordered[1:] == ordered[:-1]
        duplicate: Mask = earlier | repeat
        fresh = np.sort(keys[~duplicate])
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        self._seen = np.sort(np.concatenate([seen, fresh]), kind="stable")
        return duplicate


@dataclass
class Converted:
    """A chunk after validation: the good rows, de-identified, and their leaf words."""

    table: pa.Table
    words: list[Words]
    contributors: Words


class ChunkConverter:
    """Validates and de-identifies chunks of one ingest, keeping the running state (row index,
    duplicate tracker, report)."""

    def __init__(self, schema: Schema, key: bytes, name: str, version: int, report: Report) -> None:
        self.schema, self.key, self.name, self.version = schema, Hmac(key), name, version
        self.report = report
        self.rows = 0
        self.duplicates = DuplicateTracker()
        self._shifting = any(c.generalize is Generalize.SHIFT for c in schema.columns)
        self._patient_shifts: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._shift_key = date_shift_key(self.key)

    def convert(self, chunk: Chunk, *, build: bool = True) -> Converted | None:
        """Validate `chunk`; return its good rows converted (None when `build` is false, e.g.
        after a reject-mode failure, when only the report matters)."""
        schema, report, lines = self.schema, self.report, chunk.lines
        m = chunk.rows
        report.rows_read += m
        bad = np.zeros(m, dtype=bool)
        parsed: dict[str, _Parsed] = {}
        for column in schema.columns:
            p = self._parse(column, chunk.columns[column.name], lines)
            parsed[column.name] = p
            bad |= p.bad
        patient = schema.patient_column
        if patient is not None and any(c.generalize is Generalize.SHIFT for c in schema.columns):
            missing = parsed[patient.name].nulls & ~bad
            report.add("required", patient.name, lines[missing])
            bad |= missing
        contributor = schema.contributor
        if contributor is not None:
            missing = parsed[contributor.column].nulls & ~bad
            report.add("required", contributor.column, lines[missing])
            bad |= missing
        record = schema.record_column
        if record is not None:
            good_idx = np.flatnonzero(~bad)
            keys = _keys(parsed[record.name], good_idx)
            duplicate = np.zeros(m, dtype=bool)
            duplicate[good_idx] = self.duplicates.check(keys)
            report.add("duplicate", record.name, lines[duplicate])
            bad |= duplicate
        report.rows_rejected += int(bad.sum())
        if not build:
            return None
        keep = np.flatnonzero(~bad)
        return self._build(parsed, keep)

    def _parse(self, column: Column, raw: pa.Array, lines: npt.NDArray[np.int64]) -> _Parsed:
        report = self.report
        text, bad = self._text(column, raw, lines)
        nulls = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if column.is_required:
            missing = nulls & ~bad
            report.add("required", column.name, lines[missing])
            bad = bad | missing
        parsed = _Parsed(column, text, nulls, bad)
        kind = column.type
        if kind is ColumnType.INTEGER:
            self._numeric(parsed, lines, _INTEGER, pa.int64())
        elif kind is ColumnType.DECIMAL:
            self._numeric(parsed, lines, _DECIMAL, pa.float64())
        elif kind is ColumnType.DATE:
            self._date(parsed, lines)
        elif kind is ColumnType.BOOLEAN:
            lowered = pc.utf8_lower(pc.utf8_trim_whitespace(text))
            truthy = _mask(pc.is_in(lowered, value_set=pa.array(_TRUE)))
            falsy = _mask(pc.is_in(lowered, value_set=pa.array(_FALSE)))
            wrong = ~nulls & ~truthy & ~falsy & ~parsed.bad
            report.add("type", column.name, lines[wrong])
            parsed.bad |= wrong
            parsed.values = truthy
        else:
            normal = pc.utf8_normalize(text, "NFC")
            if kind is ColumnType.CODE:
                allowed = _mask(pc.is_in(normal, value_set=pa.array(column.codes or [])))
                wrong = ~nulls & ~allowed & ~parsed.bad
                report.add("codes", column.name, lines[wrong])
                parsed.bad |= wrong
            parsed.text = normal
        return parsed

    def _text(
        self, column: Column, raw: pa.Array, lines: npt.NDArray[np.int64]
    ) -> tuple[pa.Array, Mask]:
        """The column as UTF-8 strings, with cells that are not UTF-8 nulled and marked."""
        if isinstance(raw, pa.ChunkedArray):
            raw = raw.combine_chunks()
        bad = np.zeros(len(raw), dtype=bool)
        if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type):
            return raw.cast(pa.string()), bad
        if not (pa.types.is_binary(raw.type) or pa.types.is_large_binary(raw.type)):
            text = raw.cast(pa.string())  # a typed Parquet column: re-read its canonical text
            return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text), bad
        try:
            return raw.cast(pa.string()), bad
        except pa.ArrowInvalid:
            cells: list[str | None] = []
            for i, cell in enumerate(raw.to_pylist()):
                try:
                    cells.append(None if cell is None else cell.decode("utf-8"))
                except UnicodeDecodeError:
                    cells.append(None)
                    bad[i] = True
            self.report.add("encoding", column.name, lines[bad])
            return pa.array(cells, pa.string()), bad

    def _numeric(
        self, p: _Parsed, lines: npt.NDArray[np.int64], pattern: str, target: pa.DataType
    ) -> None:
        column, report = p.column, self.report
        trimmed = pc.utf8_trim_whitespace(p.text)
        values = _fast_cast(trimmed, target) if not p.bad.any() else None
        if values is None:
            # Some cell is not a plain number: find which, by the rule's pattern.
            ok = _mask(pc.match_substring_regex(trimmed, pattern))
            wrong = ~p.nulls & ~ok & ~p.bad
            report.add("type", column.name, lines[wrong])
            p.bad |= wrong
            cleaned = pc.replace_substring_regex(trimmed, r"^\+", "")
            usable = pc.if_else(pa.array(ok & ~p.bad), cleaned, pa.scalar(None, pa.string()))
            values = pc.cast(usable, target).fill_null(0).to_numpy(zero_copy_only=False)
        invalid = p.nulls | p.bad
        numbers = np.where(invalid, 0, values).astype(
            np.float64 if target == pa.float64() else np.int64
        )
        if column.type is ColumnType.DECIMAL:
            scaled = np.rint(numbers * np.float64(10**column.decimal_scale))
            too_big = ~invalid & ~(np.abs(scaled) < _MAX_EXACT)
            report.add("scale", column.name, lines[too_big])
            p.bad |= too_big
            invalid = invalid | too_big
            numbers = np.where(invalid, 0.0, numbers)
        for rule, limit in (("min", column.min), ("max", column.max)):
            if limit is not None:
                beyond = numbers < limit if rule == "min" else numbers > limit
                wrong = ~invalid & beyond
                report.add(rule, column.name, lines[wrong])
                p.bad |= wrong
        if column.role is Role.AGE:
            numbers = np.minimum(numbers, AGE_CAP)
        p.values = numbers

    def _date(self, p: _Parsed, lines: npt.NDArray[np.int64]) -> None:
        trimmed = pc.utf8_trim_whitespace(p.text)
        if not p.bad.any():
            try:  # every cell a valid ISO date: one strict cast
                days = pc.cast(pc.cast(trimmed, pa.date32()), pa.int32())
            except pa.ArrowInvalid:
                pass
            else:
                values = days.to_numpy(zero_copy_only=False)
                p.values = np.where(p.nulls, 0, np.nan_to_num(values)).astype(np.int64)
                return
        shaped = _mask(pc.match_substring_regex(trimmed, _DATE))
        usable = pc.if_else(pa.array(shaped), trimmed, pa.scalar(None, pa.string()))
        stamps = pc.strptime(usable, format="%Y-%m-%d", unit="s", error_is_null=True)
        # strptime rolls 2020-02-30 over to March: a date must print back as it was written.
        same = _mask(pc.equal(pc.strftime(stamps, format="%Y-%m-%d"), usable))
        wrong = ~p.nulls & ~same & ~p.bad
        self.report.add("type", p.column.name, lines[wrong])
        p.bad |= wrong
        days = pc.cast(pc.cast(stamps, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        p.values = np.where(p.nulls | p.bad, 0, np.nan_to_num(days)).astype(np.int64)

    def _build(self, parsed: dict[str, _Parsed], keep: npt.NDArray[np.intp]) -> Converted:
        schema, key = self.schema, self.key
        g = len(keep)
        start = self.rows
        self.rows += g
        take = pa.array(keep, pa.int64())
        patient_codes: Words | None = None
        patient = schema.patient_column
        if patient is not None:
            patient_codes, self._patient_shifts = self._patient_pseudonyms(
                parsed[patient.name], take
            )
        columns: dict[str, pa.Array] = {}
        words: list[Words] = [
            int_words(np.arange(start, start + g, dtype=np.int64)),
            row_salts(key, self.name, self.version, start, g),
        ]
        for column in schema.kept_columns:
            p = parsed[column.name]
            nulls = p.nulls[keep]
            array, word = self._stored(column, p, keep, take, nulls, patient_codes)
            columns[column.name] = array
            words.append(word)
        contributors: Words
        if (
            schema.contributor is not None
            and patient is not None
            and (schema.contributor.column == patient.name)
        ):
            assert patient_codes is not None
            contributors = patient_codes
        elif schema.contributor is not None:
            encoded = pc.dictionary_encode(
                parsed[schema.contributor.column].canonical_text().take(take)
            )
            kind = schema.contributor.kind.value
            uniques = [contributor_pseudonym(key, kind, v) for v in encoded.dictionary.to_pylist()]
            table = np.zeros((len(uniques) + 1, 32), dtype=np.uint8)
            if uniques:
                table[1:] = bytes_words(uniques)
            index = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            contributors = table[index + 1]
        else:
            contributors = np.zeros((g, 32), dtype=np.uint8)
        columns["_row"] = pa.array(np.arange(start, start + g, dtype=np.int64))
        columns["_contributor"] = hex_strings(contributors)
        return Converted(pa.table(columns), words, contributors)

    def _patient_pseudonyms(
        self, p: _Parsed, take: pa.Array
    ) -> tuple[Words, npt.NDArray[np.int64]]:
        """Per kept row, the patient pseudonym (zero when null) and the date shift of the
        patient; each distinct patient of the chunk is hashed once."""
        encoded = pc.dictionary_encode(p.canonical_text().take(take))
        uniques = encoded.dictionary.to_pylist()
        key, shift_key = self.key, self._shift_key
        digests = [patient_pseudonym(key, value) for value in uniques]
        table = np.zeros((len(uniques) + 1, 32), dtype=np.uint8)
        shifts = np.zeros(len(uniques) + 1, dtype=np.int64)
        if uniques:
            table[1:] = bytes_words(digests)
            shifts[1:] = [date_shift_days(shift_key, d) for d in digests] if self._shifting else 0
        index = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        return table[index], shifts[index]

    def _stored(
        self,
        column: Column,
        p: _Parsed,
        keep: npt.NDArray[np.intp],
        take: pa.Array,
        nulls: Mask,
        patient_codes: Words | None,
    ) -> tuple[pa.Array, Words]:
        """The stored (de-identified) array of a kept column and its leaf words."""
        if column.role is Role.PATIENT_ID:
            assert patient_codes is not None
            word = patient_codes
            array = hex_strings(word)
            if nulls.any():
                array = pc.if_else(pa.array(nulls), pa.scalar(None, pa.string()), array)
            return array, word
        kind = column.type
        if kind is ColumnType.INTEGER:
            ints = p.values[keep].astype(np.int64)
            return pa.array(ints, pa.int64(), mask=nulls), int_words(ints, nulls)
        if kind is ColumnType.DECIMAL:
            scale = np.float64(10**column.decimal_scale)
            units = np.rint(p.values[keep] * scale)
            return (
                pa.array(units / scale, pa.float64(), mask=nulls),
                int_words(units.astype(np.int64), nulls),
            )
        if kind is ColumnType.BOOLEAN:
            flags = p.values[keep].astype(bool)
            return pa.array(flags, pa.bool_()), bool_words(flags)
        if kind is ColumnType.DATE:
            days = p.values[keep].astype(np.int64)
            if column.generalize is Generalize.YEAR:
                years = pc.year(pa.array(days.astype(np.int32), pa.date32())).to_numpy(
                    zero_copy_only=False
                )
                years = np.asarray(years, dtype=np.int64)
                return pa.array(years, pa.int64(), mask=nulls), int_words(years, nulls)
            if column.generalize is Generalize.SHIFT:
                days = days + self._patient_shifts
            stored = pa.array(days.astype(np.int32), pa.int32(), mask=nulls).cast(pa.date32())
            return stored, int_words(days, nulls)
        strings = p.text.take(take)
        return strings, string_words(strings)


@dataclass
class _Parsed:
    column: Column
    text: pa.Array
    nulls: Mask
    bad: Mask
    values: Any = None

    def canonical_text(self) -> pa.Array:
        """The text identifying the value: integers in canonical decimal form, strings as is."""
        if self.column.type is ColumnType.INTEGER and self.values is not None:
            return pa.array(
                np.asarray(self.values, dtype=np.int64), pa.int64(), mask=self.nulls
            ).cast(pa.string())
        return self.text


def _fast_cast(text: pa.Array, target: pa.DataType) -> npt.NDArray[Any] | None:
    """`text` cast to `target` when every cell is a plain finite number (None otherwise)."""
    try:
        # fill_null first: with nulls, to_numpy would turn int64 into float64 (and round).
        values = pc.cast(text, target).fill_null(0).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    if target == pa.float64() and not np.isfinite(values).all():
        return None  # inf, nan: not numbers for the vault
    result: npt.NDArray[Any] = values
    return result


def _mask(array: pa.Array) -> Mask:
    """A boolean pyarrow array as numpy, nulls as False."""
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _keys(p: _Parsed, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.uint64]:
    """8-byte duplicate keys of the record ids at `rows`."""
    if p.column.type is ColumnType.INTEGER:
        return np.asarray(p.values[rows], dtype=np.int64).view(np.uint64)
    values = p.text.take(pa.array(rows, pa.int64())).to_numpy(zero_copy_only=False)
    return np.asarray(pd.util.hash_array(np.asarray(values, dtype=object)), dtype=np.uint64)
