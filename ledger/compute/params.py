"""Algorithm parameters: shared pydantic models, their limits, and checks against a dataset.

Parameters are validated twice: on their own (`parse_params`: ranges, bounds, bins, epsilon) and
against the columns of the datasets they will run on (`check_column`, `check_filters`). Every
failure is an `InvalidParameterError` (or its column leaves) naming the field and the rule.
`canonical_json` and `keccak_hex` give the hashes that bind parameters and results in receipts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import rfc8785
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from ledger.compute.errors import ColumnNotFoundError, ColumnTypeError, InvalidParameterError
from ledger.merkle import keccak256

__all__ = [
    "BOUND_ABS_MAX",
    "EPSILON_MAX",
    "MAX_BINS",
    "MAX_CATEGORIES",
    "MAX_FILTERS",
    "MICRO",
    "BaseParams",
    "Bounds",
    "ColumnKind",
    "ColumnName",
    "DPParams",
    "Filter",
    "canonical_json",
    "check_column",
    "check_filters",
    "column_kinds",
    "filter_expression",
    "keccak_hex",
    "parse_params",
]

#: Micro-epsilon per epsilon: budgets and spends are integers of 1e-6 epsilon (as on chain).
MICRO: Final = 1_000_000
#: Largest epsilon one query may spend.
EPSILON_MAX: Final = 10.0
#: Most bins of a histogram, categories of a group or labels of a filter.
MAX_BINS: Final = 1000
MAX_CATEGORIES: Final = 200
MAX_FILTERS: Final = 16
#: Largest magnitude of a declared bound (keeps fixed-point sums exact in 63 bits).
BOUND_ABS_MAX: Final = 1e12

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Scalar = float | int | str | bool
ColumnKind = Literal["number", "bool", "string", "date", "other"]
_P = TypeVar("_P", bound=BaseModel)
_ORDER_OPS: Final = frozenset({"<", "<=", ">", ">="})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Model):
    """One row filter ``column op value``; all filters of a request must hold (AND)."""

    column: ColumnName
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null"]
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"op {self.op!r} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not 1 <= len(self.value) <= MAX_CATEGORIES:
                raise ValueError(f"op {self.op!r} needs a list of 1 to {MAX_CATEGORIES} values")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a single value")
        for item in self.value if isinstance(self.value, list) else [self.value]:
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError("values must be finite numbers")
        return self


class Bounds(_Model):
    """Declared bounds of a numeric column: values are clamped into ``[lo, hi]``."""

    lo: float = Field(ge=-BOUND_ABS_MAX, le=BOUND_ABS_MAX, allow_inf_nan=False)
    hi: float = Field(ge=-BOUND_ABS_MAX, le=BOUND_ABS_MAX, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if not self.lo < self.hi:
            raise ValueError("lo must be below hi")
        return self


class BaseParams(_Model):
    """Parameters every single-dataset template takes: row filters."""

    filters: list[Filter] = Field(default_factory=list, max_length=MAX_FILTERS)


class DPParams(BaseParams):
    """Parameters of a differentially private template: the epsilon this query spends."""

    epsilon: float = Field(gt=0, le=EPSILON_MAX, allow_inf_nan=False)

    @model_validator(mode="after")
    def _whole_micro(self) -> DPParams:
        try:
            micro = Decimal(str(self.epsilon)) * MICRO
        except InvalidOperation:  # pragma: no cover - finite floats always convert
            raise ValueError("epsilon must be a number") from None
        if micro != micro.to_integral_value():
            raise ValueError("epsilon must be a whole number of micro-epsilon (1e-6)")
        return self

    @property
    def epsilon_micro(self) -> int:
        """The epsilon in micro-epsilon (exact)."""
        return int(Decimal(str(self.epsilon)) * MICRO)


def parse_params(model: type[_P], raw: Mapping[str, Any]) -> _P:
    """`raw` validated as `model`.

    Raises:
        InvalidParameterError: the first rule broken, naming the field (``params.bounds.lo``).
    """
    if not isinstance(raw, Mapping):
        raise InvalidParameterError("params", "must be a JSON object")
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        rule = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            rule = "is not a parameter of this algorithm"
        raise InvalidParameterError(loc or "params", rule) from None


def column_kinds(schema: pa.Schema) -> dict[str, ColumnKind]:
    """The kind of every column of `schema` (``_row``/``_contributor`` are not data columns)."""
    kinds: dict[str, ColumnKind] = {}
    for field in schema:
        if field.name.startswith("_"):
            continue
        kinds[field.name] = _kind(field.type)
    return kinds


def _kind(pa_type: pa.DataType) -> ColumnKind:
    if pa.types.is_dictionary(pa_type):
        return _kind(pa_type.value_type)
    if pa.types.is_boolean(pa_type):
        return "bool"
    if pa.types.is_integer(pa_type) or pa.types.is_floating(pa_type):
        return "number"
    if pa.types.is_decimal(pa_type):
        return "number"
    if pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type):
        return "string"
    if pa.types.is_date(pa_type) or pa.types.is_timestamp(pa_type):
        return "date"
    return "other"


def check_column(
    kinds: Mapping[str, ColumnKind],
    field: str,
    column: str,
    expected: Sequence[ColumnKind],
    dataset_id: int,
) -> ColumnKind:
    """The kind of `column`, which parameter `field` names; it must be one of `expected`.

    Raises:
        ColumnNotFoundError: the dataset has no such column.
        ColumnTypeError: the column's kind is not one of `expected`.
    """
    kind = kinds.get(column)
    if kind is None:
        raise ColumnNotFoundError(field, column, dataset_id)
    if kind not in expected:
        raise ColumnTypeError(field, column, " or ".join(expected), kind)
    return kind


def check_filters(
    filters: Sequence[Filter], kinds: Mapping[str, ColumnKind], dataset_id: int
) -> None:
    """Check that every filter's column exists and its value fits the column's kind.

    Raises:
        ColumnNotFoundError, ColumnTypeError, InvalidParameterError: naming ``filters[i]``.
    """
    for i, item in enumerate(filters):
        field = f"filters.{i}.column"
        if item.op in ("is_null", "not_null"):
            check_column(
                kinds, field, item.column, ("number", "bool", "string", "date"), dataset_id
            )
            continue
        allowed: tuple[ColumnKind, ...] = (
            ("number", "date") if item.op in _ORDER_OPS else ("number", "bool", "string", "date")
        )
        kind = check_column(kinds, field, item.column, allowed, dataset_id)
        values = item.value if isinstance(item.value, list) else [item.value]
        for value in values:
            if not _fits(kind, value):
                raise InvalidParameterError(
                    f"filters.{i}.value",
                    f"must be a {_VALUE_OF[kind]} to compare with {kind} column {item.column!r}",
                )


_VALUE_OF: Final[dict[str, str]] = {
    "number": "number",
    "bool": "boolean",
    "string": "string",
    "date": "ISO date string (YYYY-MM-DD)",
    "other": "value",
}


def _fits(kind: ColumnKind, value: object) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "date":
        if not isinstance(value, str):
            return False
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


def filter_expression(
    filters: Sequence[Filter], kinds: Mapping[str, ColumnKind]
) -> pc.Expression | None:
    """The pyarrow dataset expression of `filters` (AND of all), or None for no filter.

    Comparisons with null never hold, so rows with a null in a filtered column are excluded
    (except by ``is_null``).
    """
    expression: pc.Expression | None = None
    for item in filters:
        part = _expression(item, kinds.get(item.column, "other"))
        expression = part if expression is None else expression & part
    return expression


def _expression(item: Filter, kind: ColumnKind) -> pc.Expression:
    field = ds.field(item.column)
    if item.op == "is_null":
        return field.is_null()
    if item.op == "not_null":
        return field.is_valid()

    def convert(value: Scalar) -> Any:
        if kind == "date" and isinstance(value, str):
            return pa.scalar(dt.date.fromisoformat(value), type=pa.date32())
        return value

    if item.op in ("in", "not_in"):
        assert isinstance(item.value, list)
        values = [convert(v) for v in item.value]
        member = field.isin(pa.array(values)) if kind != "date" else field.isin(values)
        return member if item.op == "in" else ~member & field.is_valid()
    assert item.value is not None and not isinstance(item.value, list)
    value = convert(item.value)
    match item.op:
        case "==":
            return field == value
        case "!=":
            return field != value
        case "<":
            return field < value
        case "<=":
            return field <= value
        case ">":
            return field > value
        case _:
            return field >= value


def canonical_json(value: object) -> bytes:
    """The RFC 8785 canonical JSON of `value` (sorted keys, no spaces, ECMAScript numbers)."""
    return rfc8785.dumps(value)  # type: ignore[arg-type]


def keccak_hex(data: bytes) -> str:
    """``0x`` + the 64 hex digits of keccak256(`data`)."""
    return "0x" + keccak256(data).hex()
