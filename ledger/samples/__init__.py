"""Real tables that ship offline, split across hospitals, for demos, tests and benchmarks.

scikit-learn's breast cancer (569 rows) and diabetes (442 rows) tables and lifelines' survival
tables (lung, gbsg2) are loaded from the installed packages (no network) and dealt round-robin
into ``parts`` hospitals. Each hospital's frame gets the columns a hospital export would carry:
``record_id`` (unique per hospital), ``patient_id`` (the hospital's medical record number, an
identifier the vault pseudonymizes) and ``department`` (the contributor of the record).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

__all__ = ["HOSPITALS", "TABLES", "hospital_split", "load_table"]

#: Hospital names used for the ``parts`` of a split, in order.
HOSPITALS = ("north", "central", "south", "east", "west")

_DEPARTMENTS = ("oncology", "radiology", "surgery", "internal-medicine")


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    # scikit-learn's target: 0 = malignant, 1 = benign.
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    return pd.DataFrame(frame)


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    return pd.DataFrame(frame.rename(columns={"target": "progression"}))


def _lung() -> pd.DataFrame:
    from lifelines.datasets import load_lung

    return pd.DataFrame(load_lung())


def _gbsg2() -> pd.DataFrame:
    from lifelines.datasets import load_gbsg2

    return pd.DataFrame(load_gbsg2())


#: The tables, by name, as loaders (each imports its package only when asked).
TABLES: dict[str, Callable[[], pd.DataFrame]] = {
    "breast_cancer": _breast_cancer,
    "diabetes": _diabetes,
    "lung": _lung,
    "gbsg2": _gbsg2,
}


def load_table(name: str) -> pd.DataFrame:
    """The whole table ``name`` (one of `TABLES`), as shipped by its package."""
    try:
        loader = TABLES[name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise ValueError(f"table: unknown sample table {name!r}; known tables: {known}") from None
    return loader()


def hospital_split(name: str, parts: int = 3) -> list[pd.DataFrame]:
    """Deal table ``name`` round-robin into ``parts`` hospital exports (row i goes to i % parts).

    Every frame gets ``record_id`` (``<hospital>-<n>``, unique), ``patient_id`` (an MRN,
    ``MRN<hospital-initial><7 digits>``) and ``department`` (the contributing department),
    deterministically, so the same call always gives the same files.
    """
    if not 1 <= parts <= len(HOSPITALS):
        raise ValueError(f"parts: must be between 1 and {len(HOSPITALS)}, got {parts}")
    table = load_table(name)
    frames = []
    for part in range(parts):
        hospital = HOSPITALS[part]
        rows = table.iloc[part::parts].reset_index(drop=True)
        n = len(rows)
        ids = pd.DataFrame(
            {
                "record_id": [f"{hospital}-{i + 1}" for i in range(n)],
                "patient_id": [
                    f"MRN{hospital[0].upper()}{(7919 * (i + 1) + 104729 * part) % 10**7:07d}"
                    for i in range(n)
                ],
                "department": [_DEPARTMENTS[(i * 7 + part) % len(_DEPARTMENTS)] for i in range(n)],
            }
        )
        frames.append(pd.concat([ids, rows], axis=1))
    return frames
