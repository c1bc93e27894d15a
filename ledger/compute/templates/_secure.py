"""Shared parts of the secure multi-party templates: calling ``ledger.compute.mpc`` lazily, and
turning request filters into its ``(column, op, value)`` triples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.compute.errors import ComputeUnavailableError, InvalidParameterError
from ledger.compute.params import Filter

__all__ = ["mpc_function", "mpc_filters"]


def mpc_function(name: str) -> Any:
    """The function `name` of ``ledger.compute.mpc``, imported on first use.

    Raises:
        ComputeUnavailableError: the multi-party computation package is not installed here.
    """
    try:
        import ledger.compute.mpc as mpc
    except ImportError as exc:
        raise ComputeUnavailableError(
            "multi-party computation", f"cannot import it ({exc})"
        ) from None
    function = getattr(mpc, name, None)
    if function is None:
        raise ComputeUnavailableError(
            "multi-party computation", f"ledger.compute.mpc has no {name}"
        )
    return function


def mpc_filters(filters: Sequence[Filter]) -> tuple[tuple[str, str, Any], ...]:
    """`filters` as the MPC parties take them.

    Raises:
        InvalidParameterError: a null test (the parties filter on values only).
    """
    triples: list[tuple[str, str, Any]] = []
    for i, item in enumerate(filters):
        if item.op in ("is_null", "not_null"):
            raise InvalidParameterError(
                f"filters.{i}.op", "null tests are not supported by multi-party templates"
            )
        op = "not in" if item.op == "not_in" else item.op
        value = tuple(item.value) if isinstance(item.value, list) else item.value
        triples.append((item.column, op, value))
    return tuple(triples)
