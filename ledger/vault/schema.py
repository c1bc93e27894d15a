"""The declarative schema of a dataset (YAML), its normalized JSON and its hash.

A schema lists the input's columns in order. Each column has a ``type`` (integer, decimal,
string, code, date, boolean), optional ``unit``, ``description``, ``min``/``max``, allowed
``codes`` (code columns), ``required``, ``scale`` (decimal places kept by the commitment,
decimals only, default 6) and a ``role``:

- ``record_id``: the record's identifier, unique in the file (kept, required);
- ``direct_identifier``: dropped before anything is stored (names, phones, addresses...);
- ``patient_id``: replaced by its pseudonym, HMAC-SHA256 under the owner's key;
- ``age``: ages of 90 and over are reported as 90;
- none: kept as is.

Date columns may carry ``generalize: year`` (kept as the year) or ``generalize: shift`` (moved
by a per-patient number of days derived from the owner's key and the patient id; needs a
``patient_id`` column). The top-level ``contributor: {column, kind}`` names the column whose
value is the contributor of each record (kind patient, clinician or department).

Unknown keys anywhere are errors naming the key. The normalized schema is the model's JSON
with every default filled in; its hash is keccak256 of the RFC 8785 canonical JSON of it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import rfc8785
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger.merkle import keccak256
from ledger.vault.errors import SchemaError

__all__ = [
    "AGE_CAP",
    "Column",
    "ColumnType",
    "Contributor",
    "ContributorKind",
    "Generalize",
    "Role",
    "Schema",
    "load_schema",
    "parse_schema",
]

#: Ages at or above this are reported as this (HIPAA Safe Harbor's "90 or older").
AGE_CAP: Final = 90
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,62}")
_RESERVED = ("_row", "_contributor")


class ColumnType(StrEnum):
    """How a column's text is read, stored and committed."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    STRING = "string"
    CODE = "code"
    DATE = "date"
    BOOLEAN = "boolean"


class Role(StrEnum):
    """What de-identification does with a column."""

    NONE = "none"
    RECORD_ID = "record_id"
    DIRECT_IDENTIFIER = "direct_identifier"
    PATIENT_ID = "patient_id"
    AGE = "age"


class Generalize(StrEnum):
    """How a date column is generalized."""

    NONE = "none"
    YEAR = "year"
    SHIFT = "shift"


class ContributorKind(StrEnum):
    """Who contributes a record."""

    PATIENT = "patient"
    CLINICIAN = "clinician"
    DEPARTMENT = "department"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Column(_Strict):
    """One input column and its rules."""

    name: Annotated[str, Field(pattern=_COLUMN_NAME.pattern)]
    type: ColumnType
    role: Role = Role.NONE
    unit: str | None = None
    description: str | None = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    codes: list[str] | None = None
    scale: Annotated[int, Field(ge=0, le=18)] | None = None
    generalize: Generalize = Generalize.NONE

    @model_validator(mode="after")
    def _check(self) -> Column:
        numeric = self.type in (ColumnType.INTEGER, ColumnType.DECIMAL)
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError("min/max apply to integer and decimal columns only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        if self.type is ColumnType.CODE and not self.codes:
            raise ValueError("a code column needs a non-empty list of codes")
        if self.codes is not None and self.type is not ColumnType.CODE:
            raise ValueError("codes apply to code columns only")
        if self.codes is not None and len(set(self.codes)) != len(self.codes):
            raise ValueError("codes must not repeat")
        if self.scale is not None and self.type is not ColumnType.DECIMAL:
            raise ValueError("scale applies to decimal columns only")
        if self.generalize is not Generalize.NONE and self.type is not ColumnType.DATE:
            raise ValueError("generalize applies to date columns only")
        if self.role is Role.AGE and not numeric:
            raise ValueError("an age column must be integer or decimal")
        if self.role in (Role.RECORD_ID, Role.PATIENT_ID) and self.type not in (
            ColumnType.STRING,
            ColumnType.INTEGER,
            ColumnType.CODE,
        ):
            raise ValueError(f"a {self.role.value} column must be string or integer")
        return self

    @property
    def kept(self) -> bool:
        """Whether the column is stored and committed (direct identifiers are dropped)."""
        return self.role is not Role.DIRECT_IDENTIFIER

    @property
    def is_required(self) -> bool:
        """Whether an empty cell breaks the rule ``required`` (record ids always do)."""
        return self.required or self.role is Role.RECORD_ID or self.type is ColumnType.BOOLEAN

    @property
    def decimal_scale(self) -> int:
        """Decimal places the commitment keeps (default 6)."""
        return 6 if self.scale is None else self.scale


class Contributor(_Strict):
    """Which column names each record's contributor, and what kind of contributor it is."""

    column: str
    kind: ContributorKind


class Schema(_Strict):
    """A dataset's declared columns (in input order) and contributor column."""

    title: str | None = None
    description: str | None = None
    columns: Annotated[list[Column], Field(min_length=1)]
    contributor: Contributor | None = None

    @model_validator(mode="after")
    def _check(self) -> Schema:
        names = [c.name for c in self.columns]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"column {name!r} is declared twice")
            if name in _RESERVED:
                raise ValueError(f"column name {name!r} is reserved by the vault")
        if sum(c.role is Role.RECORD_ID for c in self.columns) > 1:
            raise ValueError("at most one column may have role record_id")
        if sum(c.role is Role.PATIENT_ID for c in self.columns) > 1:
            raise ValueError("at most one column may have role patient_id")
        if not any(c.kept for c in self.columns):
            raise ValueError("at least one column must be kept (not a direct_identifier)")
        shift = [c.name for c in self.columns if c.generalize is Generalize.SHIFT]
        if shift and self.patient_column is None:
            raise ValueError(f"date shift ({shift[0]}) needs a column with role patient_id")
        if self.contributor is not None and self.contributor.column not in names:
            raise ValueError(f"contributor column {self.contributor.column!r} is not a column")
        return self

    @property
    def kept_columns(self) -> list[Column]:
        """The columns stored and committed, in schema order."""
        return [c for c in self.columns if c.kept]

    @property
    def names(self) -> list[str]:
        """Every declared column name, in order."""
        return [c.name for c in self.columns]

    @property
    def record_column(self) -> Column | None:
        """The column with role ``record_id``, if any."""
        return next((c for c in self.columns if c.role is Role.RECORD_ID), None)

    @property
    def patient_column(self) -> Column | None:
        """The column with role ``patient_id``, if any."""
        return next((c for c in self.columns if c.role is Role.PATIENT_ID), None)

    def normalized(self) -> dict[str, Any]:
        """The schema as JSON with every default filled in (what the manifest stores)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for column in data["columns"]:
            if column["type"] == ColumnType.DECIMAL.value and column["scale"] is None:
                column["scale"] = 6
        return data

    def schema_hash(self) -> str:
        """``0x`` keccak256 of the RFC 8785 canonical JSON of `normalized`."""
        return "0x" + keccak256(rfc8785.dumps(self.normalized())).hex()


def parse_schema(data: object, *, path: Path | None = None) -> Schema:
    """Validate parsed YAML/JSON `data` as a schema.

    Raises:
        SchemaError: unknown key, wrong type or broken rule; names the key's path.
    """
    if not isinstance(data, dict):
        raise SchemaError("(top level)", "must be a mapping with a 'columns' list", path=path)
    try:
        return Schema.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = _loc(error.get("loc", ()))
        if error["type"] == "extra_forbidden":
            rule = "unknown key (not part of the schema format)"
        elif error["type"] == "enum":
            expected = error.get("ctx", {}).get("expected", "")
            rule = f"must be one of {expected}"
        else:
            rule = str(error["msg"]).removeprefix("Value error, ")
        raise SchemaError(field, rule, path=path) from None


def load_schema(path: Path) -> Schema:
    """Read and validate a schema YAML (or JSON) file.

    Raises:
        SchemaError: the file cannot be read or parsed, or breaks a rule (names the key).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        raise SchemaError("(file)", f"cannot be read ({reason})", path=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise SchemaError(where, "is not valid YAML", path=path) from None
    return parse_schema(data, path=path)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
