"""The harness that runs a custom algorithm inside the sandbox (stdlib only; not imported by the
ledger, copied into the run's read-only code directory and run there by the interpreter).

Usage inside the jail: ``python /code/_harness.py /code/algorithm.py /code/params.json DIR...``.
It imports the module, calls ``run(input_dirs, params)``, and writes the returned object as JSON
to /output/result.json (created exclusively, never through a symlink). Its exit status tells the
host what happened; stderr gets one status line with at most an exception class name, for the
operator's log.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

EXIT_OK = 0
EXIT_RAISED = 70
EXIT_MEMORY = 71
EXIT_BAD_RESULT = 72
EXIT_BAD_MODULE = 73
EXIT_RESULT_EXISTS = 74
RESULT_PATH = "/output/result.json"


def _status(status: str, error: BaseException | None = None) -> None:
    name = type(error).__name__ if error is not None else ""
    sys.stderr.write(f"\nledger-harness: {status} {name}\n")
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    """Run the algorithm named by argv and write its result; returns the exit status."""
    module_path, params_path, *input_dirs = argv
    with open(params_path, encoding="utf-8") as handle:
        params = json.load(handle)
    try:
        spec = importlib.util.spec_from_file_location("algorithm", module_path)
        if spec is None or spec.loader is None:
            raise ImportError("cannot load the algorithm module")
        module = importlib.util.module_from_spec(spec)
        sys.modules["algorithm"] = module
        spec.loader.exec_module(module)
        run = getattr(module, "run", None)
        if not callable(run):
            raise AttributeError("the module defines no callable run(input_dirs, params)")
    except MemoryError as exc:
        _status("memory", exc)
        return EXIT_MEMORY
    except BaseException as exc:  # any failure to load is the module's fault
        _status("bad-module", exc)
        return EXIT_BAD_MODULE
    try:
        result: Any = run(list(input_dirs), params)
    except MemoryError as exc:
        _status("memory", exc)
        return EXIT_MEMORY
    except BaseException as exc:  # report, never re-raise (tracebacks hold data)
        _status("raised", exc)
        return EXIT_RAISED
    try:
        if not isinstance(result, dict):
            raise TypeError("run() must return a dict")
        payload = json.dumps(result, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except MemoryError as exc:
        _status("memory", exc)
        return EXIT_MEMORY
    except BaseException as exc:
        _status("bad-result", exc)
        return EXIT_BAD_RESULT
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(RESULT_PATH, flags, 0o644)
    except FileExistsError as exc:
        _status("result-exists", exc)
        return EXIT_RESULT_EXISTS
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    _status("ok")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
