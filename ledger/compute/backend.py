"""Where template aggregates are computed: in this process, or on a Dask distributed cluster.

Both backends do the same thing: every Parquet file of the dataset is read (only the columns the
template needs, rows selected by the filter expression) and turned into a partial aggregate;
the partials are combined in file order. Partials are integers (counts, fixed-point sums, bin
counts, event tables), so the combined aggregate is identical whatever the backend and the
partitioning. Noise is added afterwards, once, by the template's ``finalize`` in the engine,
never per partition.

`LocalBackend` is the default; `DaskBackend` is used when ``LEDGER_DASK_SCHEDULER`` is set
(`backend_from_settings`): one task per Parquet file, results gathered to the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import pyarrow as pa
import pyarrow.dataset as ds

from ledger.compute.errors import BackendError, ComputeTimeoutError, DatasetUnreadableError
from ledger.compute.params import ColumnKind, column_kinds
from ledger.compute.templates._base import Partial, PartialContext, Template
from ledger.errors import LedgerError
from ledger.settings import Settings

__all__ = [
    "Backend",
    "DaskBackend",
    "DatasetRef",
    "LocalBackend",
    "OpenedDataset",
    "aggregate_file",
    "backend_from_settings",
    "open_dataset",
]

#: Rows per batch read from a Parquet file (bounds memory; partials are merged per batch).
BATCH_ROWS: Final = 1 << 20


@dataclass(frozen=True)
class DatasetRef:
    """A dataset version a request computes on; `data_dir` is the version's ``data/`` directory
    of Parquet files (the version directory holding ``data/`` is accepted too)."""

    dataset_id: int
    version: int
    data_dir: Path

    @property
    def parquet_dir(self) -> Path:
        """The directory of Parquet files."""
        nested = self.data_dir / "data"
        return nested if nested.is_dir() else self.data_dir


@dataclass(frozen=True)
class OpenedDataset:
    """A dataset's Parquet files (sorted), schema, row count and column kinds."""

    ref: DatasetRef
    files: tuple[str, ...]
    schema: pa.Schema
    rows_total: int

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        """The kind of every data column."""
        return column_kinds(self.schema)


def open_dataset(ref: DatasetRef) -> OpenedDataset:
    """`ref`'s Parquet files, schema and row count (from the file footers, no rows read).

    Raises:
        DatasetUnreadableError: the directory is missing, holds no Parquet file, or is unreadable.
    """
    directory = ref.parquet_dir
    if not directory.is_dir():
        raise DatasetUnreadableError(ref.dataset_id, f"version {ref.version}: no data directory")
    try:
        dataset = ds.dataset(str(directory), format="parquet")
        files = tuple(sorted(dataset.files))
        rows = int(dataset.count_rows())
    except (OSError, pa.ArrowException) as exc:
        raise DatasetUnreadableError(
            ref.dataset_id, f"version {ref.version}: unreadable Parquet ({type(exc).__name__})"
        ) from None
    if not files:
        raise DatasetUnreadableError(ref.dataset_id, f"version {ref.version}: no Parquet files")
    return OpenedDataset(ref=ref, files=files, schema=dataset.schema, rows_total=rows)


def aggregate_file(
    template: Template, params: Any, path: str, ctx: PartialContext, deadline: float | None = None
) -> Partial:
    """The partial aggregate of one Parquet file: the filtered rows, batch by batch."""
    filter_expression = template.row_filter(params, ctx.kinds)
    columns = list(dict.fromkeys(template.columns(params)))
    fragment_set = ds.dataset(path, format="parquet")
    scanner = fragment_set.scanner(columns=columns, filter=filter_expression, batch_size=BATCH_ROWS)
    aggregate = template.empty(params, ctx)
    for batch in scanner.to_batches():
        if deadline is not None and time.monotonic() > deadline:
            raise ComputeTimeoutError(0.0)
        if batch.num_rows:
            table = pa.Table.from_batches([batch])
            aggregate = template.combine(aggregate, template.partial(params, table, ctx))
    return aggregate


class Backend(Protocol):
    """Computes a template's combined aggregate over a dataset."""

    name: str

    def aggregate(
        self, template: Template, params: Any, dataset: OpenedDataset, timeout: float | None
    ) -> Partial:
        """The combined aggregate of all the dataset's files (no noise).

        Raises:
            ComputeTimeoutError: not done within `timeout` seconds.
            BackendError: the backend failed.
        """
        ...


class LocalBackend:
    """Computes in this process, file by file."""

    name = "local"

    def aggregate(
        self, template: Template, params: Any, dataset: OpenedDataset, timeout: float | None
    ) -> Partial:
        """See `Backend.aggregate`."""
        ctx = PartialContext(rows_total=dataset.rows_total, kinds=dataset.kinds)
        deadline = None if timeout is None else time.monotonic() + timeout
        aggregate = template.empty(params, ctx)
        try:
            for path in dataset.files:
                partial = aggregate_file(template, params, path, ctx, deadline)
                aggregate = template.combine(aggregate, partial)
        except ComputeTimeoutError:
            raise ComputeTimeoutError(timeout or 0.0) from None
        except (OSError, pa.ArrowException) as exc:
            raise DatasetUnreadableError(
                dataset.ref.dataset_id, f"reading Parquet failed ({type(exc).__name__})"
            ) from None
        return aggregate


def _dask_partial(name: str, params_json: dict[str, Any], path: str, rows_total: int) -> Partial:
    """A Dask task: the partial aggregate of one file (the template looked up by name)."""
    from ledger.compute.catalog import entry

    template = entry(name).template
    assert isinstance(template, Template)
    params = template.params_model.model_validate(params_json)
    schema = ds.dataset(path, format="parquet").schema
    ctx = PartialContext(rows_total=rows_total, kinds=column_kinds(schema))
    return aggregate_file(template, params, path, ctx)


class DaskBackend:
    """Computes on a Dask distributed cluster: one task per Parquet file, partials gathered and
    combined here. Workers must reach the dataset paths (shared storage or the same machine)."""

    name = "dask"

    def __init__(self, address: str | None = None, *, client: Any = None) -> None:
        if (address is None) == (client is None):
            raise ValueError("give a scheduler address or a client, not both")
        self._address = address
        self._client = client

    def _connect(self) -> Any:
        if self._client is None:
            from distributed import Client

            try:
                self._client = Client(  # type: ignore[no-untyped-call]
                    self._address, timeout=10, set_as_default=False
                )
            except (OSError, TimeoutError) as exc:
                raise BackendError(
                    "dask",
                    f"cannot reach the scheduler ({type(exc).__name__}); check "
                    "LEDGER_DASK_SCHEDULER",
                ) from None
        return self._client

    def aggregate(
        self, template: Template, params: Any, dataset: OpenedDataset, timeout: float | None
    ) -> Partial:
        """See `Backend.aggregate`."""
        client = self._connect()
        params_json = params.model_dump(mode="json")
        futures = [
            client.submit(
                _dask_partial, template.name, params_json, path, dataset.rows_total, pure=False
            )
            for path in dataset.files
        ]
        deadline = None if timeout is None else time.monotonic() + timeout
        partials: list[Partial] = []
        try:
            for future in futures:
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                partials.append(future.result(timeout=left))
        except TimeoutError:
            client.cancel(futures)
            raise ComputeTimeoutError(timeout or 0.0) from None
        except LedgerError:
            client.cancel(futures)
            raise
        except (OSError, pa.ArrowException) as exc:
            client.cancel(futures)
            raise DatasetUnreadableError(
                dataset.ref.dataset_id, f"reading Parquet failed ({type(exc).__name__})"
            ) from None
        except Exception as exc:
            client.cancel(futures)
            raise BackendError("dask", f"a task failed ({type(exc).__name__})") from None
        ctx = PartialContext(rows_total=dataset.rows_total, kinds=dataset.kinds)
        aggregate = template.empty(params, ctx)
        for partial in partials:
            aggregate = template.combine(aggregate, partial)
        return aggregate

    def close(self) -> None:
        """Close the client if this backend opened it."""
        if self._client is not None and self._address is not None:
            self._client.close()
            self._client = None


def backend_from_settings(settings: Settings) -> LocalBackend | DaskBackend:
    """`DaskBackend` when ``LEDGER_DASK_SCHEDULER`` is set, else `LocalBackend`."""
    if settings.dask_scheduler:
        return DaskBackend(settings.dask_scheduler)
    return LocalBackend()
