"""Custom algorithms: a consumer's Python module, identified by the hash of its canonical bytes,
run only when the grant names that hash and only inside the sandbox.

The contract: the module defines ``run(input_dirs: list[str], params: dict) -> dict``. Each input
directory is a dataset version's Parquet directory, read-only (read it with
``pyarrow.dataset.dataset(dir, format="parquet")``); `params` is the request's JSON object; the
returned dict must be JSON-serializable (no NaN or infinities). The module sees numpy, pandas and
pyarrow, no network, and a private /tmp; it may write files only under /output, which the ledger
discards except for result.json (written by the harness from the returned dict).

Canonical bytes (what the hash covers), `canonical_code`:
- the code must be UTF-8 (strict) without NUL characters, and at most `MAX_CODE_BYTES` long;
- a leading UTF-8 byte-order mark is removed;
- line endings are normalized to LF (CRLF and lone CR become LF);
- everything else is kept as is: trailing whitespace, tabs, a missing or extra final newline.
The algorithm hash is ``0x`` + keccak256(canonical bytes) in lowercase hex, the value a grant's
`algorithmHash` holds.

The result `run_custom` returns is NOT released: the engine applies the release policy to it.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.compute.sandbox import harness
from ledger.compute.sandbox.errors import (
    CustomCodeFormatError,
    CustomCodeHashError,
    CustomResultError,
    SandboxConfigError,
    SandboxCrashError,
    SandboxLimitError,
)
from ledger.compute.sandbox.files import read_output_file
from ledger.compute.sandbox.limits import SandboxLimits
from ledger.compute.sandbox.runner import CODE_DIR, DATA_ROOT, SandboxResult, SandboxRunner
from ledger.merkle import keccak256

__all__ = [
    "MAX_CODE_BYTES",
    "MAX_PARAMS_BYTES",
    "MAX_RESULT_BYTES",
    "CustomRun",
    "canonical_code",
    "code_hash",
    "run_custom",
]

MAX_CODE_BYTES: Final = 256 * 1024
MAX_PARAMS_BYTES: Final = 64 * 1024
MAX_RESULT_BYTES: Final = 1024 * 1024
RESULT_NAME: Final = "result.json"
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_EXC_NAME = re.compile(r"ledger-harness: ([a-z-]+) ?([A-Za-z_][A-Za-z0-9_]{0,80})?\s*$")
_BOM = b"\xef\xbb\xbf"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomRun:
    """A finished custom run: the algorithm hash, its (unreleased) result and what it used."""

    code_hash: str
    result: dict[str, Any]
    wall_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int | None
    cgroup: str
    output_bytes: int


def canonical_code(code: bytes, *, max_bytes: int = MAX_CODE_BYTES) -> bytes:
    """The canonical bytes of `code` (see the module docstring for the rule).

    Raises CustomCodeFormatError when the code is not bytes, too large, not UTF-8 or holds NUL.
    """
    if not isinstance(code, bytes | bytearray):
        raise CustomCodeFormatError("code", f"bytes, not {type(code).__name__}")
    if len(code) > max_bytes:
        raise CustomCodeFormatError("code", f"at most {max_bytes} bytes (got {len(code)})")
    data = bytes(code)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise CustomCodeFormatError(
            "code", f"UTF-8 text (invalid byte at offset {exc.start})"
        ) from exc
    if b"\x00" in data:
        raise CustomCodeFormatError("code", "text without NUL characters")
    if not data.strip():
        raise CustomCodeFormatError("code", "a non-empty Python module")
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def code_hash(code: bytes) -> str:
    """The algorithm hash of `code`: ``0x`` + keccak256 of its canonical bytes, lowercase hex.

    Raises CustomCodeFormatError when the code breaks the canonical-bytes rule.
    """
    return "0x" + keccak256(canonical_code(code)).hex()


def run_custom(
    code: bytes,
    expected_hash: str,
    data_dirs: Sequence[Path],
    params: Mapping[str, Any],
    limits: SandboxLimits | None = None,
    *,
    runner: SandboxRunner | None = None,
    max_result_bytes: int = MAX_RESULT_BYTES,
    work_root: Path | None = None,
) -> CustomRun:
    """Run a custom algorithm in the sandbox over `data_dirs` and return its parsed result.

    Refuses before running anything: code breaking the canonical-bytes rule
    (CustomCodeFormatError), a hash other than `expected_hash` (CustomCodeHashError), params
    that are not a JSON object (SandboxConfigError), a missing sandbox (SandboxUnavailableError).
    A failed run raises SandboxTimeoutError, SandboxLimitError, SandboxCrashError,
    CustomCodeFormatError (the module does not import or has no ``run``) or CustomResultError
    (no result, too large, not a JSON object); it releases nothing and its files are removed.
    Error messages never repeat what the code printed or raised.
    """
    canonical = canonical_code(code)
    if not isinstance(expected_hash, str) or not _HASH.fullmatch(expected_hash):
        raise CustomCodeFormatError("expected_hash", "0x followed by 64 hex digits")
    actual = "0x" + keccak256(canonical).hex()
    if actual != expected_hash.lower():
        raise CustomCodeHashError(expected_hash.lower(), actual)
    params_json = _params_json(params)
    runner = runner or SandboxRunner()
    runner.check_available()
    limits = limits or runner.limits

    work = Path(tempfile.mkdtemp(prefix="ledger-custom-", dir=work_root))
    try:
        code_dir, out_dir = work / "code", work / "output"
        code_dir.mkdir()
        out_dir.mkdir()
        (code_dir / "algorithm.py").write_bytes(canonical)
        (code_dir / "params.json").write_bytes(params_json)
        shutil.copyfile(harness.__file__, code_dir / "_harness.py")
        inputs = [Path(d) for d in data_dirs]
        argv = [
            f"{CODE_DIR}/_harness.py",
            f"{CODE_DIR}/algorithm.py",
            f"{CODE_DIR}/params.json",
            *(f"{DATA_ROOT}/{i}" for i in range(len(inputs))),
        ]
        result = runner.run(
            argv, output_dir=out_dir, inputs=inputs, code_dir=code_dir, limits=limits
        )
        _log_run(actual, result)
        _raise_for_failure(result)
        payload = _read_result(out_dir, max_result_bytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CustomRun(
        code_hash=actual,
        result=payload,
        wall_seconds=result.wall_seconds,
        cpu_seconds=result.cpu_seconds,
        peak_memory_bytes=result.peak_memory_bytes,
        cgroup=result.cgroup,
        output_bytes=result.output_bytes,
    )


def _params_json(params: Mapping[str, Any]) -> bytes:
    if not isinstance(params, Mapping):
        raise SandboxConfigError("params", "a JSON object", type(params).__name__)
    try:
        text = json.dumps(dict(params), allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SandboxConfigError(
            "params", "JSON-serializable (no NaN or infinity)", type(exc).__name__
        ) from exc
    data = text.encode("utf-8")
    if len(data) > MAX_PARAMS_BYTES:
        raise SandboxConfigError("params", f"at most {MAX_PARAMS_BYTES} bytes as JSON", len(data))
    return data


def _harness_status(result: SandboxResult) -> tuple[str, str]:
    """The harness's status and exception class name, from the last line of stderr."""
    lines = result.stderr.decode("utf-8", errors="replace").rstrip().splitlines()
    match = _EXC_NAME.fullmatch(lines[-1]) if lines else None
    return (match.group(1), match.group(2) or "") if match else ("none", "")


def _log_run(algorithm: str, result: SandboxResult) -> None:
    # Operator log only, and only what cannot carry data: no stdout/stderr content.
    status, name = _harness_status(result)
    log.info(
        "custom run %s: exit=%s signal=%s timed_out=%s limit=%s harness=%s %s wall=%.3fs "
        "cpu=%.3fs peak_mem=%s cgroup=%s stdout=%dB stderr=%dB (dropped)",
        algorithm,
        result.exit_code,
        result.signal,
        result.timed_out,
        result.limit_hit,
        status,
        name,
        result.wall_seconds,
        result.cpu_seconds,
        result.peak_memory_bytes,
        result.cgroup,
        len(result.stdout),
        len(result.stderr),
    )


def _raise_for_failure(result: SandboxResult) -> None:
    if result.timed_out or result.limit_hit is not None or result.signal is not None:
        result.raise_for_failure()
    code = result.exit_code
    if code == harness.EXIT_OK:
        return
    # Messages stay generic: the exit path is the code's choice, and its exception text is data.
    if code == harness.EXIT_MEMORY:
        raise SandboxLimitError("memory", result.limits.memory_bytes, "MemoryError")
    if code == harness.EXIT_RAISED:
        raise SandboxCrashError("run() raised an exception (see the operator log)", exit_code=code)
    if code == harness.EXIT_BAD_MODULE:
        raise CustomCodeFormatError(
            "code", "a module that imports cleanly and defines run(input_dirs, params)"
        )
    if code == harness.EXIT_BAD_RESULT:
        raise CustomResultError("a dict of JSON values (no NaN or infinity) returned by run()")
    if code == harness.EXIT_RESULT_EXISTS:
        raise CustomResultError("written by the harness only (the code created result.json)")
    raise SandboxCrashError("the algorithm exited with a failure status", exit_code=code)


def _read_result(out_dir: Path, max_bytes: int) -> dict[str, Any]:
    try:
        data = read_output_file(out_dir, RESULT_NAME, max_bytes)
    except ValueError as exc:
        raise CustomResultError(str(exc)) from exc
    if data is None:
        raise CustomResultError("present after the run (none was written)")
    try:
        payload = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CustomResultError("valid UTF-8 JSON without NaN or infinity") from exc
    if not isinstance(payload, dict):
        raise CustomResultError("a JSON object")
    return payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
