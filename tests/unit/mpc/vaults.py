"""Vault-shaped data directories for MPC tests: ``<root>/<hospital>/data/part-00000.parquet``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ledger.samples import HOSPITALS, hospital_split

#: Columns of a hospital export that de-identification drops (identifiers).
IDENTIFIERS = ("record_id", "patient_id", "department")


def write_data_dir(directory: Path, frame: pd.DataFrame, *, parts: int = 1) -> Path:
    """Write `frame` as a vault version's ``data/`` directory (data columns, ``_row``,
    ``_contributor``) in `parts` Parquet files; returns the ``data/`` path."""
    data = directory / "data"
    data.mkdir(parents=True)
    frame = frame.reset_index(drop=True).copy()
    frame["_row"] = range(len(frame))
    frame["_contributor"] = "0x" + "ab" * 32
    bounds = [round(i * len(frame) / parts) for i in range(parts + 1)]
    for i in range(parts):
        chunk = frame.iloc[bounds[i] : bounds[i + 1]]
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        pq.write_table(table, data / f"part-{i:05d}.parquet")
    return data


def hospital_dirs(root: Path, name: str = "breast_cancer", parts: int = 3) -> list[Path]:
    """The sample table `name` split across `parts` hospitals, one data dir each."""
    dirs = []
    for hospital, frame in zip(HOSPITALS, hospital_split(name, parts), strict=False):
        dirs.append(write_data_dir(root / hospital, frame.drop(columns=list(IDENTIFIERS))))
    return dirs


def pooled(name: str = "breast_cancer", parts: int = 3) -> pd.DataFrame:
    """The rows of all hospitals of the split, pooled (what MPC must never do, for checks)."""
    frames = [f.drop(columns=list(IDENTIFIERS)) for f in hospital_split(name, parts)]
    return pd.concat(frames, ignore_index=True)
