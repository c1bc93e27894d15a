"""The catalog: templates by name and code hash, the runtime hash, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.compute.catalog import (
    canonical_code,
    catalog,
    code_hash,
    entry,
    runtime_hash,
    runtime_versions,
)
from ledger.compute.cli import algorithm_app
from ledger.compute.errors import InvalidRequestError, UnknownAlgorithmError
from ledger.merkle import keccak256
from tests.unit.compute.data import synthetic, write_dataset

EXPECTED = {
    "cohort_count": (False, False),
    "dp_count": (True, False),
    "dp_sum": (True, False),
    "dp_mean": (True, False),
    "dp_histogram": (True, False),
    "kaplan_meier": (False, False),
    "secure_sum": (False, True),
    "secure_mean": (False, True),
    "secure_logistic_regression": (False, True),
}


def test_catalog_lists_every_template() -> None:
    entries = catalog()
    assert list(entries) == list(EXPECTED)
    for name, (dp, multi) in EXPECTED.items():
        assert (entries[name].dp, entries[name].multi_owner) == (dp, multi)


def test_template_hash_is_keccak_of_its_module_source() -> None:
    for item in catalog().values():
        source = item.source_path.read_bytes().replace(b"\r\n", b"\n")
        assert item.hash == "0x" + keccak256(source).hex()
        assert entry(item.hash) is item
        assert entry(item.hash.upper().replace("0X", "0x")) is item
    assert len({item.hash for item in catalog().values()}) == len(EXPECTED)


def test_unknown_algorithm_names_the_known_ones() -> None:
    with pytest.raises(UnknownAlgorithmError) as caught:
        entry("dp_median")
    assert caught.value.algorithm == "dp_median"
    assert "dp_mean" in str(caught.value)


def test_canonical_code_rules() -> None:
    assert canonical_code(b"a\r\nb\rc\n") == b"a\nb\nc\n"
    assert canonical_code(b"\xef\xbb\xbfx = 1\n") == b"x = 1\n"
    assert code_hash(b"x = 1\r\n") == code_hash(b"x = 1\n")
    assert code_hash(b"x = 1\n") != code_hash(b"x = 2\n")
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        canonical_code(b"\xff\xfe")


def test_runtime_hash_covers_versions_and_templates() -> None:
    versions = runtime_versions()
    for key in ("python", "numpy", "pandas", "pyarrow", "opendp", "mpyc"):
        assert versions[key], key
    assert versions["templates"] == {name: e.hash for name, e in catalog().items()}
    assert versions["shared_code"].startswith("0x")
    from ledger.compute.params import canonical_json

    assert runtime_hash() == "0x" + keccak256(canonical_json(versions)).hex()


def test_every_template_describes_parameters_and_result() -> None:
    for item in catalog().values():
        data = item.to_json()
        assert data["parameters"]["type"] == "object"
        assert isinstance(data["result"], dict) and data["result"]


runner = CliRunner()


def test_cli_list_and_show() -> None:
    listed = runner.invoke(algorithm_app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert [t["name"] for t in data["templates"]] == list(EXPECTED)
    assert data["runtime_hash"] == runtime_hash()
    shown = runner.invoke(algorithm_app, ["show", "dp_mean", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["hash"] == catalog()["dp_mean"].hash
    text = runner.invoke(algorithm_app, ["show", catalog()["kaplan_meier"].hash])
    assert text.exit_code == 0 and "kaplan_meier" in text.output
    unknown = runner.invoke(algorithm_app, ["show", "nope"])
    assert unknown.exit_code != 0
    assert isinstance(unknown.exception, UnknownAlgorithmError)


def test_cli_hash(tmp_path: Path) -> None:
    module = tmp_path / "algo.py"
    module.write_bytes(b"def run(data_dirs, params):\r\n    return {}\r\n")
    result = runner.invoke(algorithm_app, ["hash", str(module)])
    assert result.exit_code == 0
    assert result.output.strip() == code_hash(module.read_bytes())


def test_cli_run_on_a_local_directory(tmp_path: Path) -> None:
    ref = write_dataset(tmp_path, synthetic(200))
    params = json.dumps({"epsilon": 0.5, "column": "value", "bounds": {"lo": 0, "hi": 100}})
    result = runner.invoke(
        algorithm_app,
        ["run", "dp_mean", "--data", str(ref.data_dir), "--params", params, "--k", "5"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["algorithm_name"] == "dp_mean"
    assert out["epsilon_spent"][0]["epsilon_micro"] == 500_000
    assert 0 <= out["result"]["mean"] <= 100
    bad = runner.invoke(
        algorithm_app, ["run", "dp_mean", "--data", str(ref.data_dir), "--params", "{"]
    )
    assert bad.exit_code != 0 and "--params" in bad.output
