"""Reading an input table in bounded chunks: CSV (every column as raw bytes) or Parquet.

Each chunk comes with the input line number of every row (CSV: the file's line, the header is
line 1; Parquet: the 1-based row number). Rows the CSV parser cannot split into the header's
number of fields are reported as malformed with their line number, never their text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ledger.vault.errors import (
    ColumnsMismatchError,
    EmptySourceError,
    EncodingError,
    SourceError,
)

__all__ = ["Chunk", "TableSource", "open_source"]

_PARQUET_MAGIC: Final = b"PAR1"
_HEADER_LIMIT: Final = 1 << 20


@dataclass
class Chunk:
    """Rows of the input: `columns` by name (CSV: binary, Parquet: its types), `lines` per row."""

    columns: dict[str, pa.Array]
    lines: npt.NDArray[np.int64]

    @property
    def rows(self) -> int:
        """Number of rows in the chunk."""
        return len(self.lines)


@dataclass
class TableSource:
    """An opened input; iterate `chunks()`. `malformed` collects CSV lines that did not parse."""

    path: Path
    kind: str
    columns: list[str]
    size: int
    chunk_bytes: int
    malformed: list[int] = field(default_factory=list)
    bytes_read: int = 0

    def chunks(self) -> Iterator[Chunk]:
        """The input's rows, chunk by chunk.

        Raises:
            SourceError: the file cannot be parsed any further (named, without values).
        """
        if self.kind == "parquet":
            yield from self._parquet_chunks()
        else:
            yield from self._csv_chunks()

    def _parquet_chunks(self) -> Iterator[Chunk]:
        try:
            reader = pq.ParquetFile(self.path)
            rows_per_batch = max(1024, self.chunk_bytes // max(1, 16 * len(self.columns)))
            row = 0
            for batch in reader.iter_batches(batch_size=rows_per_batch):
                m = batch.num_rows
                lines = np.arange(row + 1, row + m + 1, dtype=np.int64)
                row += m
                self.bytes_read = int(self.size * row / max(1, reader.metadata.num_rows))
                yield Chunk({name: batch.column(name) for name in self.columns}, lines)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(self.path, f"unreadable Parquet ({type(exc).__name__})") from None

    def _csv_chunks(self) -> Iterator[Chunk]:
        # Blocks of whole lines are parsed one by one: rows never span lines (quoted newlines
        # are malformed rows), and pyarrow's streaming reader was seen to keep memory growing
        # with the file; a block parsed on its own leaves nothing behind.
        read_options = pacsv.ReadOptions(column_names=self.columns, use_threads=False)
        convert_options = pacsv.ConvertOptions(
            column_types={name: pa.binary() for name in self.columns},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        )
        with open(self.path, "rb") as handle:
            handle.readline()  # the header, line 1 (read by open_source)
            line, carry = 2, b""
            while True:
                data = handle.read(self.chunk_bytes)
                self.bytes_read = handle.tell()
                block = carry + data
                if not block:
                    return
                cut = len(block) if not data else block.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a block: read on
                    carry = block
                    continue
                body, carry = block[:cut], block[cut:]
                count = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
                skipped: list[int] = []

                def on_invalid(row: Any, skipped: list[int] = skipped) -> str:
                    # Keep the line number only; the row's text may hold identifiers.
                    skipped.append(int(row.number) if row.number is not None else 0)
                    return "skip"

                try:
                    table = pacsv.read_csv(
                        io.BytesIO(body),
                        read_options=read_options,
                        parse_options=pacsv.ParseOptions(
                            invalid_row_handler=on_invalid, ignore_empty_lines=False
                        ),
                        convert_options=convert_options,
                    )
                except pa.ArrowInvalid:
                    # pyarrow's message quotes the offending text: say only where it failed.
                    raise SourceError(self.path, "malformed CSV", line=line) from None
                bad = np.array(sorted(skipped), dtype=np.int64) - 1
                lines = np.delete(np.arange(count, dtype=np.int64), bad[bad >= 0]) + line
                self.malformed.extend(int(b) + line for b in bad)
                line += count
                if table.num_rows != len(lines):
                    raise SourceError(self.path, "malformed CSV (rows and lines disagree)")
                yield Chunk({name: table.column(name) for name in self.columns}, lines)
                if not data:
                    return


def open_source(path: Path, *, chunk_bytes: int = 2 << 20) -> TableSource:
    """Open a CSV or Parquet file (Parquet is recognised by its magic bytes) and read its header.

    Raises:
        SourceError: the file cannot be opened.
        EmptySourceError: the file is empty.
        EncodingError: the CSV header is not UTF-8.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_LIMIT)
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc.strerror})") from None
    if size == 0 or not head.strip():
        raise EmptySourceError(path)
    if head[:4] == _PARQUET_MAGIC:
        try:
            names = list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError):
            raise SourceError(path, "unreadable Parquet (corrupt footer or schema)") from None
        return TableSource(path, "parquet", names, size, chunk_bytes)
    end = head.find(b"\n")
    if end < 0 and len(head) == _HEADER_LIMIT:
        raise SourceError(path, "the header line is longer than 1 MiB", line=1)
    header = head if end < 0 else head[:end]
    try:
        text = header.decode("utf-8").removeprefix("\ufeff").rstrip("\r")
    except UnicodeDecodeError:
        raise EncodingError(path) from None
    names = next(csv.reader([text]), [])
    names = [n.strip() for n in names]
    if not names or not any(names):
        raise EmptySourceError(path, "the header names no columns")
    return TableSource(path, "csv", names, size, chunk_bytes)


def check_columns(source: TableSource, declared: list[str]) -> None:
    """Require the input's columns to be exactly `declared` (any order).

    Raises:
        ColumnsMismatchError: names the missing, undeclared and repeated columns.
    """
    seen = source.columns
    duplicated = sorted({n for n in seen if seen.count(n) > 1})
    missing = [n for n in declared if n not in seen]
    extra = [n for n in seen if n not in declared]
    if missing or extra or duplicated:
        raise ColumnsMismatchError(source.path, missing=missing, extra=extra, duplicated=duplicated)
