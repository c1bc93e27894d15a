"""Seeded synthetic identifiers for de-identification tests, and a streamed 20-column table.

`add_identifiers` gives any table (e.g. a hospital split) the identifiers a real export leaks:
full name, phone number, national id number, birth date, street address, e-mail, and a
synthetic patient id. Every value is distinctive (no value is a substring of an ordinary
number or word), so a test can search for it anywhere. `write_synthetic_csv` streams ``rows``
rows of `SYNTHETIC_COLUMNS` (20 columns) to a CSV in chunks, never holding the table in memory;
`synthetic_schema` is its vault schema. Nothing here is real data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

__all__ = [
    "IDENTIFIER_COLUMNS",
    "SYNTHETIC_COLUMNS",
    "VISITS_PER_PATIENT",
    "add_identifiers",
    "identifier_schema_columns",
    "synthetic_chunk",
    "synthetic_schema",
    "write_synthetic_csv",
]

_FIRST: Final = (
    "Amelia",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Esperanza",
    "Farid",
    "Greta",
    "Hiroshi",
    "Ingrid",
    "Jamal",
    "Kalinda",
    "Lorenzo",
    "Margit",
    "Nnamdi",
    "Oksana",
    "Pilar",
    "Quentin",
    "Rasmus",
    "Soraya",
    "Thaddeus",
    "Ulrike",
    "Viktor",
    "Wilhelmina",
    "Xiomara",
    "Yusuf",
    "Zofia",
)
_LAST: Final = (
    "Abernathy",
    "Bergstrom",
    "Castellanos",
    "Dvorakova",
    "Eriksdottir",
    "Fairweather",
    "Gallagher",
    "Hakkinen",
    "Ibrahimovic",
    "Jablonski",
    "Kowalczyk",
    "Lindqvist",
    "Montgomery",
    "Nakamura",
    "Oyelaran",
    "Petrakis",
    "Quigley",
    "Rosenthal",
    "Szymanski",
    "Thorvaldsen",
)
_STREETS: Final = (
    "Juniper Hollow",
    "Marigold Crescent",
    "Quarry Lane",
    "Wexford Terrace",
    "Bramble Row",
    "Calloway Drive",
    "Fennimore Court",
    "Larkspur Way",
    "Oriel Gardens",
    "Tamarack Road",
)
_TOWNS: Final = ("Ashbourne", "Bellmoor", "Carrowdale", "Dunmerrow", "Elstree Vale", "Fordwich")
_DEPARTMENTS: Final = ("oncology", "radiology", "surgery", "internal-medicine")
_DIAGNOSES: Final = ("C50", "E11", "I10", "J45", "C34", "N18", "F32", "K21")

#: Rows (visits) per patient in `synthetic_chunk`.
VISITS_PER_PATIENT: Final = 3

#: The direct identifiers `add_identifiers` adds (all dropped by `identifier_schema_columns`).
IDENTIFIER_COLUMNS: Final = ("full_name", "phone", "national_id", "street_address", "email")

#: The 20 columns of `write_synthetic_csv`, in order.
SYNTHETIC_COLUMNS: Final = (
    "record_id", "patient_id", "full_name", "phone", "national_id", "birth_date",
    "street_address", "email", "department", "visit_date", "age", "sex", "diagnosis",
    "systolic_bp", "diastolic_bp", "heart_rate", "weight_kg", "height_cm", "glucose", "smoker",
)  # fmt: skip


def _pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> npt.NDArray[Any]:
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]


def _mix(patients: npt.NDArray[np.uint64], salt: int) -> npt.NDArray[np.uint64]:
    """A well-spread 64-bit number per patient (splitmix64), the same in every chunk."""
    with np.errstate(over="ignore"):
        z = patients * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt * 0xBF58476D1CE4E5B9 % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _of(options: tuple[str, ...], numbers: npt.NDArray[np.uint64]) -> npt.NDArray[Any]:
    return np.asarray(options, dtype=object)[(numbers % np.uint64(len(options))).astype(np.int64)]


def _digits(numbers: npt.NDArray[np.uint64], width: int) -> npt.NDArray[Any]:
    values = (numbers % np.uint64(10**width)).astype(np.int64)
    return np.char.zfill(values.astype(str), width).astype(object)


def _identifiers(patients: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]:
    """Identifier columns of `patients` (patient numbers): a patient has the same identity on
    every row, whatever chunk the row is in."""
    p = patients.astype(np.uint64)
    first, last = _of(_FIRST, _mix(p, 1)), _of(_LAST, _mix(p, 2))
    birth = np.datetime64("1925-01-01") + (_mix(p, 3) % np.uint64(365 * 80)).astype(
        "timedelta64[D]"
    )
    house = (_mix(p, 4) % np.uint64(1999) + np.uint64(1)).astype(str).astype(object)
    number = patients.astype(str).astype(object)
    return {
        "patient_id": "PX" + np.char.zfill(patients.astype(str), 9).astype(object) + "Q",
        "full_name": first + " " + _of(("Q.", "R.", "S.", "T."), _mix(p, 5)) + " " + last,
        "phone": "+44-7" + _digits(_mix(p, 6), 3) + "-" + _digits(_mix(p, 7), 6),
        "national_id": "NI-"
        + _digits(_mix(p, 8), 3)
        + "-"
        + _digits(_mix(p, 9), 2)
        + "-"
        + _digits(_mix(p, 10), 4)
        + "-Z",
        "birth_date": birth.astype(str).astype(object),
        "street_address": house
        + " "
        + _of(_STREETS, _mix(p, 11))
        + ", "
        + _of(_TOWNS, _mix(p, 12)),
        "email": np.char.lower((first + "." + last).astype(str)).astype(object)
        + number
        + "@mail.example",
    }


def add_identifiers(frame: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """`frame` with synthetic identifiers, one patient per row: ``patient_id`` (replaced if
    present), ``full_name``, ``phone``, ``national_id``, ``birth_date``, ``street_address``,
    ``email``; deterministic for a `seed`."""
    ids = _identifiers(np.arange(len(frame), dtype=np.int64) + seed * 1_000_000)
    out = frame.copy()
    for name, values in ids.items():
        out[name] = values
    return out


def identifier_schema_columns() -> list[dict[str, Any]]:
    """Schema column entries for the columns `add_identifiers` adds (identifiers dropped, the
    patient id pseudonymized, the birth date generalized to its year)."""
    columns: list[dict[str, Any]] = [
        {"name": "patient_id", "type": "string", "role": "patient_id", "required": True}
    ]
    columns += [
        {"name": n, "type": "string", "role": "direct_identifier"} for n in IDENTIFIER_COLUMNS
    ]
    columns.append({"name": "birth_date", "type": "date", "generalize": "year"})
    return columns


def synthetic_chunk(start: int, n: int, *, seed: int = 0) -> pa.Table:
    """Rows ``start .. start+n-1`` of the synthetic 20-column table (deterministic): visits,
    `VISITS_PER_PATIENT` consecutive rows per patient."""
    rng = np.random.default_rng([seed, start])
    rows = np.arange(start, start + n, dtype=np.int64)
    ids = _identifiers(rows // VISITS_PER_PATIENT + seed * 10**8)
    visit = np.datetime64("2015-01-01") + rng.integers(0, 3650, n).astype("timedelta64[D]")
    columns: dict[str, Any] = {
        "record_id": np.char.add("R", np.arange(start, start + n).astype(str)),
        "patient_id": ids["patient_id"],
        "full_name": ids["full_name"],
        "phone": ids["phone"],
        "national_id": ids["national_id"],
        "birth_date": ids["birth_date"],
        "street_address": ids["street_address"],
        "email": ids["email"],
        "department": _pick(rng, _DEPARTMENTS, n),
        "visit_date": visit.astype(str),
        "age": rng.integers(18, 101, n),
        "sex": _pick(rng, ("F", "M"), n),
        "diagnosis": _pick(rng, _DIAGNOSES, n),
        "systolic_bp": rng.integers(90, 200, n),
        "diastolic_bp": rng.integers(50, 120, n),
        "heart_rate": rng.integers(40, 160, n),
        "weight_kg": np.round(rng.normal(75, 15, n).clip(30, 250), 1),
        "height_cm": np.round(rng.normal(170, 10, n).clip(120, 220), 1),
        "glucose": np.round(rng.normal(5.5, 1.2, n).clip(2, 30), 2),
        "smoker": _pick(rng, ("true", "false"), n),
    }
    return pa.table(
        {
            name: pa.array(list(columns[name]) if columns[name].dtype == object else columns[name])
            for name in SYNTHETIC_COLUMNS
        }
    )


def write_synthetic_csv(path: Path, rows: int, *, seed: int = 0, chunk_rows: int = 50_000) -> Path:
    """Stream `rows` synthetic rows (20 columns) to a CSV at `path`, `chunk_rows` at a time."""
    with pacsv.CSVWriter(path, _csv_schema()) as writer:
        for start in range(0, rows, chunk_rows):
            chunk = synthetic_chunk(start, min(chunk_rows, rows - start), seed=seed)
            writer.write_table(chunk.cast(_csv_schema()))
    return path


def _csv_schema() -> pa.Schema:
    numeric = {"age", "systolic_bp", "diastolic_bp", "heart_rate"}
    decimal = {"weight_kg", "height_cm", "glucose"}
    return pa.schema(
        [
            (
                name,
                pa.int64() if name in numeric else pa.float64() if name in decimal else pa.string(),
            )
            for name in SYNTHETIC_COLUMNS
        ]
    )


def synthetic_schema() -> dict[str, Any]:
    """The vault schema (as parsed YAML) of `write_synthetic_csv`'s table."""
    identifiers = {c["name"]: c for c in identifier_schema_columns()}
    columns: list[dict[str, Any]] = []
    for name in SYNTHETIC_COLUMNS:
        if name in identifiers:
            columns.append(identifiers[name])
        elif name == "record_id":
            columns.append({"name": name, "type": "string", "role": "record_id"})
        elif name == "department":
            columns.append({"name": name, "type": "code", "codes": list(_DEPARTMENTS)})
        elif name == "visit_date":
            columns.append({"name": name, "type": "date", "generalize": "shift"})
        elif name == "age":
            columns.append({"name": name, "type": "integer", "role": "age", "min": 0, "max": 130})
        elif name == "sex":
            columns.append({"name": name, "type": "code", "codes": ["F", "M"]})
        elif name == "diagnosis":
            columns.append({"name": name, "type": "code", "codes": list(_DIAGNOSES)})
        elif name == "smoker":
            columns.append({"name": name, "type": "boolean"})
        elif name in ("weight_kg", "height_cm", "glucose"):
            unit = {"weight_kg": "kg", "height_cm": "cm", "glucose": "mmol/L"}[name]
            columns.append({"name": name, "type": "decimal", "scale": 2, "unit": unit, "min": 0})
        else:
            columns.append(
                {
                    "name": name,
                    "type": "integer",
                    "min": 0,
                    "unit": "mmHg" if "bp" in name else "bpm",
                }
            )
    return {
        "title": "Synthetic visits",
        "columns": columns,
        "contributor": {"column": "patient_id", "kind": "patient"},
    }
