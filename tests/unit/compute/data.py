"""Vault-format test datasets: a ``data/`` directory of Parquet parts with ``_row`` and
``_contributor`` columns, written with pandas/pyarrow (no vault needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ledger.compute.backend import DatasetRef
from ledger.samples import load_table

__all__ = ["lung", "synthetic", "write_dataset"]


def write_dataset(
    root: Path, frame: pd.DataFrame, *, parts: int = 1, dataset_id: int = 1, version: int = 1
) -> DatasetRef:
    """`frame` written as `parts` Parquet files under ``root/v<version>/data``."""
    frame = frame.reset_index(drop=True).copy()
    frame["_row"] = np.arange(len(frame), dtype=np.int64)
    frame["_contributor"] = [f"0x{(i % 3):064x}" for i in range(len(frame))]
    data = root / f"d{dataset_id}" / f"v{version}" / "data"
    data.mkdir(parents=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
        table = pa.Table.from_pandas(frame.iloc[chunk], preserve_index=False)
        pq.write_table(table, data / f"part-{i:05d}.parquet")
    return DatasetRef(dataset_id=dataset_id, version=version, data_dir=data.parent)


def lung() -> pd.DataFrame:
    """lifelines' lung table with dots in column names replaced by underscores."""
    frame = load_table("lung")
    return frame.rename(columns=lambda c: str(c).replace(".", "_"))


def synthetic(rows: int, seed: int = 7) -> pd.DataFrame:
    """A table of `rows` with a numeric ``value``, an integer ``age``, a string ``site`` and a
    boolean ``smoker``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "value": rng.normal(50.0, 10.0, rows),
            "age": rng.integers(18, 90, rows),
            "site": rng.choice(["north", "central", "south"], rows),
            "smoker": rng.random(rows) < 0.3,
        }
    )
