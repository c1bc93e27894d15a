"""Per-contributor weights: the rows of each contributor a job used, computed in the owner's vault.

Only weights leave the vault: a count of rows per contributor pseudonym, never a row. The job
pipeline computes them with `rows_used_by_contributor` over the same Parquet files, filters and
columns the job read, and stores them with `record_weights` as
``<vault>/datasets/<name>/usage/<job id>.json``::

    {"job_id": "0x..", "dataset_id": 3, "version": 1, "weights": {"0x<pseudonym>": 120, ...}}

Settlement reads them with `load_weights`; a missing or malformed file stops the epoch with a
`WeightsError` (nothing is published). A job's weights are written once: writing different
weights for the same job is refused, writing the same ones again does nothing.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ledger.settlement.errors import WeightsError

__all__ = [
    "CONTRIBUTOR_COLUMN",
    "JobWeights",
    "Filters",
    "load_weights",
    "record_weights",
    "rows_used_by_contributor",
    "weights_path",
]

#: The vault's column holding each row's contributor pseudonym.
CONTRIBUTOR_COLUMN: Final = "_contributor"
_HASH: Final = re.compile(r"0x[0-9a-f]{64}")

#: Row filters: a pyarrow expression, or pyarrow.parquet's list-of-tuples form
#: (``[("age", ">=", 40)]``, or a list of such lists for an OR of ANDs).
Filters: TypeAlias = pc.Expression | Sequence[Any]  # noqa: UP040 - Python 3.11


@dataclass(frozen=True, slots=True)
class JobWeights:
    """What a job used of one dataset version: rows per contributor pseudonym."""

    job_id: str
    dataset_id: int
    version: int
    weights: dict[str, int]

    @property
    def rows(self) -> int:
        """Rows used in all."""
        return sum(self.weights.values())


def rows_used_by_contributor(
    data_dir: Path, filters: Filters | None = None, columns: Sequence[str] | None = None
) -> dict[str, int]:
    """Rows per contributor pseudonym among the rows of `data_dir` (a vault version's ``data``
    directory of Parquet files) that pass `filters` and are non-null in every one of `columns`.

    Rows without a contributor (null ``_contributor``) count for nobody.

    Raises:
        FileNotFoundError: `data_dir` does not exist.
        KeyError: a column (or ``_contributor``) is not in the data.
        pyarrow.ArrowInvalid: the filters do not fit the data.
    """
    if not data_dir.is_dir():
        raise FileNotFoundError(f"no vault data directory at {data_dir}")
    dataset = ds.dataset(data_dir, format="parquet")
    names = set(dataset.schema.names)
    for name in (CONTRIBUTOR_COLUMN, *(columns or ())):
        if name not in names:
            raise KeyError(f"column {name!r} is not in the vault data")
    expression: pc.Expression | None = None
    if filters is not None:
        expression = (
            filters if isinstance(filters, pc.Expression) else pq.filters_to_expression(filters)
        )
    for name in columns or ():
        valid = pc.field(name).is_valid()
        expression = valid if expression is None else expression & valid
    counts: dict[str, int] = {}
    scanner = dataset.scanner(columns=[CONTRIBUTOR_COLUMN], filter=expression)
    for batch in scanner.to_batches():
        if batch.num_rows == 0:
            continue
        grouped = pa.table(batch).group_by(CONTRIBUTOR_COLUMN).aggregate([([], "count_all")])
        for pseudonym, count in zip(
            grouped.column(CONTRIBUTOR_COLUMN).to_pylist(),
            grouped.column("count_all").to_pylist(),
            strict=True,
        ):
            if pseudonym is not None:
                counts[pseudonym] = counts.get(pseudonym, 0) + int(count)
    return dict(sorted(counts.items()))


def weights_path(dataset_dir: Path, job_id: str) -> Path:
    """Where the weights of `job_id` live in a vault dataset directory (``datasets/<name>``)."""
    return dataset_dir / "usage" / f"{_job(job_id)}.json"


def record_weights(
    dataset_dir: Path, *, job_id: str, dataset_id: int, version: int, weights: Mapping[str, int]
) -> Path:
    """Store a job's weights in the owner's vault (atomically) and return the file's path.

    Raises:
        WeightsError: a field is malformed (names it), or different weights were recorded for
            the job before.
    """
    job = _job(job_id)
    record = _check(
        {"job_id": job, "dataset_id": dataset_id, "version": version, "weights": dict(weights)},
        job,
        dataset_id,
        None,
    )
    path = weights_path(dataset_dir, job)
    text = json.dumps(
        {
            "job_id": record.job_id,
            "dataset_id": record.dataset_id,
            "version": record.version,
            "weights": record.weights,
        },
        indent=1,
        sort_keys=True,
    )
    if path.exists():
        existing = load_weights(dataset_dir, job, dataset_id=dataset_id)
        if existing != record:
            raise WeightsError(job, dataset_id, path, "other weights were recorded for this job")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".weights-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_weights(
    dataset_dir: Path, job_id: str, *, dataset_id: int, version: int | None = None
) -> JobWeights:
    """Read a job's weights from a vault dataset directory, checking they are the job's.

    Raises:
        WeightsError: the file is missing or malformed, or names another job, dataset or version.
    """
    job = _job(job_id)
    path = weights_path(dataset_dir, job)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(job, dataset_id, path, "no weights file") from None
    except (OSError, ValueError) as exc:
        raise WeightsError(job, dataset_id, path, f"unreadable ({type(exc).__name__})") from None
    record = _check(data, job, dataset_id, path)
    if version is not None and record.version != version:
        raise WeightsError(
            job, dataset_id, path, f"version is {record.version}, the job used version {version}"
        )
    return record


def _job(job_id: str) -> str:
    job = job_id.lower() if isinstance(job_id, str) else ""
    if not _HASH.fullmatch(job):
        raise WeightsError(str(job_id)[:80], 0, None, "job_id must be 0x followed by 64 hex digits")
    return job


def _check(data: Any, job: str, dataset_id: int, path: Path | None) -> JobWeights:
    def bad(rule: str) -> WeightsError:
        return WeightsError(job, dataset_id, path, rule)

    if not isinstance(data, dict):
        raise bad("must be a JSON object")
    if str(data.get("job_id", "")).lower() != job:
        raise bad("job_id does not name this job")
    if type(data.get("dataset_id")) is not int or data["dataset_id"] != dataset_id:
        raise bad(f"dataset_id must be {dataset_id}")
    version = data.get("version")
    if type(version) is not int or version < 1:
        raise bad("version must be an integer >= 1")
    weights = data.get("weights")
    if not isinstance(weights, dict):
        raise bad("weights must be an object of pseudonym: rows")
    checked: dict[str, int] = {}
    for pseudonym, rows in weights.items():
        if not isinstance(pseudonym, str) or not _HASH.fullmatch(pseudonym.lower()):
            raise bad("every weights key must be a pseudonym (0x followed by 64 hex digits)")
        if type(rows) is not int or rows < 0:
            raise bad("every weight must be an integer number of rows >= 0")
        checked[pseudonym.lower()] = checked.get(pseudonym.lower(), 0) + rows
    return JobWeights(job, dataset_id, version, dict(sorted(checked.items())))
