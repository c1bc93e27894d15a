"""Custom algorithms in the real sandbox: the contract, the hash gate, failures, cleanup."""

from __future__ import annotations

import json
import logging
import math
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from ledger.compute.custom import code_hash, run_custom
from ledger.compute.sandbox import (
    CustomCodeFormatError,
    CustomCodeHashError,
    CustomResultError,
    SandboxConfigError,
    SandboxCrashError,
    SandboxLimits,
    SandboxRunner,
    SandboxUnavailableError,
)

LIMITS = SandboxLimits(cpu_seconds=10, wall_seconds=20.0, memory_bytes=512 << 20, max_pids=32)

MEAN = b"""\
import pyarrow.compute as pc
import pyarrow.dataset as ds


def run(input_dirs, params):
    column = params["column"]
    tables = [ds.dataset(d, format="parquet").to_table(columns=[column]) for d in input_dirs]
    total = sum(pc.sum(t[column]).as_py() for t in tables)
    rows = sum(t.num_rows for t in tables)
    return {"mean": total / rows, "rows": rows, "datasets": len(input_dirs)}
"""


def _dataset(root: Path, name: str, ages: list[float]) -> Path:
    data = root / name / "data"
    data.mkdir(parents=True)
    half = len(ages) // 2
    for i, part in enumerate((ages[:half], ages[half:])):
        table = pa.table({"age": pa.array(part, pa.float64()), "_row": list(range(len(part)))})
        pq.write_table(table, data / f"part-{i:05d}.parquet")
    return data


@pytest.fixture
def hospitals(tmp_path: Path) -> list[Path]:
    return [
        _dataset(tmp_path, "h1", [31.0, 45.5, 52.0, 60.25, 71.0]),
        _dataset(tmp_path, "h2", [28.0, 39.0, 44.0, 83.5]),
    ]


def test_mean_over_parquet_matches_the_host(hospitals: list[Path], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run = run_custom(MEAN, code_hash(MEAN), hospitals, {"column": "age"}, LIMITS, work_root=work)
    ages = pa.concat_tables(ds.dataset(d, format="parquet").to_table() for d in hospitals)["age"]
    assert run.result["rows"] == 9 and run.result["datasets"] == 2
    assert math.isclose(run.result["mean"], pc.mean(ages).as_py(), rel_tol=1e-12)
    assert run.code_hash == code_hash(MEAN)
    assert run.cgroup in ("v1", "v2")
    assert run.wall_seconds > 0 and run.output_bytes > 0
    assert list(work.iterdir()) == []  # code and output directories are removed


def test_crlf_and_bom_variants_hash_and_run_like_the_canonical_code(hospitals: list[Path]) -> None:
    variant = b"\xef\xbb\xbf" + MEAN.replace(b"\n", b"\r\n")
    run = run_custom(variant, code_hash(MEAN), hospitals[:1], {"column": "age"}, LIMITS)
    assert run.result["rows"] == 5


def test_code_whose_hash_differs_from_the_grant_is_not_run(hospitals: list[Path], tmp_path: Path):
    marker = tmp_path / "ran"
    evil = MEAN + f"\nopen({str(marker)!r}, 'w').close()\n".encode()
    with pytest.raises(CustomCodeHashError) as caught:
        run_custom(evil, code_hash(MEAN), hospitals, {"column": "age"}, LIMITS)
    assert caught.value.expected == code_hash(MEAN)
    assert caught.value.actual == code_hash(evil)
    assert not marker.exists()


def test_exceptions_and_prints_never_reach_the_caller_or_the_log(
    hospitals: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    secret = secrets.token_hex(12)
    code = (
        "import sys\n\ndef run(input_dirs, params):\n"
        f"    print({secret!r})\n    print({secret!r}, file=sys.stderr)\n"
        f"    raise ValueError({secret!r})\n"
    ).encode()
    caplog.set_level(logging.DEBUG, logger="ledger.compute.custom")
    with pytest.raises(SandboxCrashError) as caught:
        run_custom(code, code_hash(code), hospitals, {}, LIMITS)
    assert secret not in str(caught.value) and secret not in repr(caught.value.__dict__)
    assert secret not in caplog.text
    assert "harness=raised ValueError" in caplog.text


@pytest.mark.parametrize(
    ("code", "error", "rule"),
    [
        (b"x = 1\n", CustomCodeFormatError, "defines run"),
        (b"def run(:\n", CustomCodeFormatError, "imports cleanly"),
        (b"def run(d, p):\n    return [1, 2]\n", CustomResultError, "dict"),
        (b"def run(d, p):\n    return {'x': float('nan')}\n", CustomResultError, "NaN"),
        (b"def run(d, p):\n    return {'x': object()}\n", CustomResultError, "JSON"),
        (b"import os\ndef run(d, p):\n    os._exit(0)\n", CustomResultError, "none was written"),
        (b"import os\ndef run(d, p):\n    os._exit(3)\n", SandboxCrashError, "failure status"),
    ],
    ids=["no-run", "syntax", "list", "nan", "object", "no-result", "exit-3"],
)
def test_contract_breaches_raise_typed_errors(
    hospitals: list[Path], code: bytes, error: type[Exception], rule: str
) -> None:
    with pytest.raises(error) as caught:
        run_custom(code, code_hash(code), hospitals, {}, LIMITS)
    assert rule in str(caught.value)


def test_params_reach_run_and_bad_params_are_refused(hospitals: list[Path]) -> None:
    code = b"def run(input_dirs, params):\n    return {'echo': params}\n"
    params = {"k": 5, "columns": ["age"], "nested": {"a": 1.5}}
    run = run_custom(code, code_hash(code), hospitals, params, LIMITS)
    assert run.result == {"echo": params}
    with pytest.raises(SandboxConfigError, match="params"):
        run_custom(code, code_hash(code), hospitals, {"x": math.inf}, LIMITS)
    with pytest.raises(SandboxConfigError, match="params"):
        run_custom(code, code_hash(code), hospitals, {"x": {1, 2}}, LIMITS)


def test_runner_mount_rules(hospitals: list[Path], tmp_path: Path) -> None:
    runner = SandboxRunner(limits=LIMITS)
    code = tmp_path / "code"
    code.mkdir()
    (code / "x.py").write_text("print('zq-marker')\n")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "left-over").write_text("x")
    with pytest.raises(SandboxConfigError, match="empty"):
        runner.run(["/code/x.py"], output_dir=busy, code_dir=code)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SandboxConfigError, match="overlaps"):
        runner.run(["/code/x.py"], output_dir=out, code_dir=code, inputs=[tmp_path])
    with pytest.raises(SandboxConfigError, match="existing directory"):
        runner.run(["/code/x.py"], output_dir=out, inputs=[tmp_path / "missing"])
    with pytest.raises(SandboxConfigError, match="overlaps"):
        runner.run(["/code/x.py"], output_dir=out, inputs=[Path("/")])
    result = runner.run(["/code/x.py"], output_dir=out, code_dir=code, inputs=hospitals)
    assert result.ok and result.stdout == b"zq-marker\n"
    assert "zq-marker" not in repr(result)  # captured streams stay out of reprs


def test_without_a_cgroup_the_result_says_so_or_the_run_is_refused(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "x.py").write_text("pass\n")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    nowhere = tmp_path / "no-cgroup-hierarchy"
    fallback = SandboxRunner(limits=LIMITS, cgroup_parent=nowhere)
    result = fallback.run(["/code/x.py"], output_dir=tmp_path / "a", code_dir=code)
    assert result.ok
    assert result.cgroup.startswith("none (") and "rlimits only" in result.cgroup
    strict = SandboxRunner(limits=LIMITS, cgroup_parent=nowhere, require_cgroup=True)
    with pytest.raises(SandboxUnavailableError, match="cgroup"):
        strict.run(["/code/x.py"], output_dir=tmp_path / "b", code_dir=code)


def test_result_json_written_by_the_code_itself_is_refused(hospitals: list[Path]) -> None:
    code = (
        b"import json\ndef run(d, p):\n"
        b"    open('/output/result.json', 'w').write(json.dumps({'forged': 1}))\n"
        b"    return {'real': 1}\n"
    )
    with pytest.raises(CustomResultError, match="harness only"):
        run_custom(code, code_hash(code), hospitals, {}, LIMITS)
    assert json.loads(b'{"ok": 1}') == {"ok": 1}
