"""Bad parameters are refused with a typed error naming the field, before any party starts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from ledger.compute.mpc import (
    MpcIsolationError,
    MpcParameterError,
    PartyPool,
    secure_logistic_regression,
    secure_mean,
    secure_sum,
)
from ledger.compute.mpc.isolation import SANDBOX_DATA_DIR, code_roots, party_command


@pytest.fixture
def dirs(tmp_path: Path) -> list[Path]:
    out = []
    for name in ("north", "central", "south"):
        (tmp_path / name / "data").mkdir(parents=True)
        out.append(tmp_path / name / "data")
    return out


@pytest.fixture(autouse=True)
def no_party_started() -> Iterator[None]:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def _logistic(dirs: list[Path], **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "features": ["a", "b"],
        "label": "y",
        "l2": 1.0,
        "max_iter": 10,
        "tol": 1e-8,
        "timeout": 10.0,
    }
    arguments.update(overrides)
    secure_logistic_regression(dirs, **arguments)


CASES: list[tuple[str, Callable[[list[Path]], None]]] = [
    ("data_dirs", lambda d: secure_sum(d[:2], "a", timeout=5)),
    ("data_dirs", lambda d: secure_sum(str(d[0]), "a", timeout=5)),  # type: ignore[arg-type]
    ("data_dirs[1]", lambda d: secure_sum([d[0], d[0], d[2]], "a", timeout=5)),
    ("data_dirs[1]", lambda d: secure_sum([d[0], d[0] / "sub", d[2]], "a", timeout=5)),
    ("data_dirs[2]", lambda d: secure_sum([d[0], d[1], d[0].parent], "a", timeout=5)),
    ("data_dirs[2]", lambda d: secure_sum([d[0], d[1], d[2] / "missing"], "a", timeout=5)),
    ("column", lambda d: secure_sum(d, "_row", timeout=5)),
    ("column", lambda d: secure_mean(d, "", timeout=5)),
    ("timeout", lambda d: secure_sum(d, "a", timeout=0)),
    ("timeout", lambda d: secure_sum(d, "a", timeout=float("inf"))),
    ("timeout", lambda d: secure_mean(d, "a", timeout=True)),
    ("min_rows", lambda d: secure_sum(d, "a", timeout=5, min_rows=0)),
    ("filters[0].op", lambda d: secure_sum(d, "a", timeout=5, filters=[("a", "like", 1)])),
    ("pool", lambda d: secure_sum(d, "a", timeout=5, pool=object())),  # type: ignore[arg-type]
    (
        "sandbox",
        lambda d: secure_sum(d, "a", timeout=5, pool=PartyPool(sandbox=True), sandbox=False),
    ),
    ("features", lambda d: _logistic(d, features=[])),
    ("features", lambda d: _logistic(d, features="a")),
    ("features", lambda d: _logistic(d, features=["a", "a"])),
    ("features[1]", lambda d: _logistic(d, features=["a", "_contributor"])),
    ("label", lambda d: _logistic(d, label="a")),
    ("positive_label", lambda d: _logistic(d, positive_label=[1])),
    ("l2", lambda d: _logistic(d, l2=0.0)),
    ("l2", lambda d: _logistic(d, l2=float("nan"))),
    ("max_iter", lambda d: _logistic(d, max_iter=0)),
    ("max_iter", lambda d: _logistic(d, max_iter=2.5)),
    ("tol", lambda d: _logistic(d, tol=-1e-3)),
    ("standardize", lambda d: _logistic(d, standardize="yes")),
]


@pytest.mark.parametrize(("field", "call"), CASES)
def test_bad_parameters_are_refused_naming_the_field(
    dirs: list[Path], field: str, call: Callable[[list[Path]], None]
) -> None:
    with pytest.raises(MpcParameterError) as caught:
        call(dirs)
    assert caught.value.field == field
    assert repr(field) in str(caught.value)


def test_the_sandboxed_party_sees_only_its_own_data_dir_and_code(tmp_path: Path) -> None:
    data = tmp_path / "vault" / "datasets" / "x" / "v1" / "data"
    command = party_command(data, sandbox=True)
    binds = [
        (command[i + 1], command[i + 2])
        for i, arg in enumerate(command)
        if arg in ("--ro-bind", "--bind")
    ]
    assert (str(data), SANDBOX_DATA_DIR) in binds
    # Nothing bound contains the data dir or its parents (which would expose sibling vaults).
    for source, _ in binds:
        if source != str(data):
            assert not (data == Path(source) or Path(source) in data.parents), source
    assert "--bind" not in command  # nothing writable
    for flag in ("--die-with-parent", "--unshare-pid", "--clearenv", "--new-session"):
        assert flag in command
    assert command[-2:] == ["--data", SANDBOX_DATA_DIR]
    assert all(root.is_dir() for root in code_roots())


def test_plain_parties_get_the_real_path(tmp_path: Path) -> None:
    command = party_command(tmp_path, sandbox=False)
    assert command[-2:] == ["--data", str(tmp_path)] and "bwrap" not in command[0]


def test_a_data_dir_inside_another_is_refused(dirs: list[Path]) -> None:
    inner = dirs[0] / "inner"
    inner.mkdir()
    with pytest.raises(MpcParameterError, match="not nested") as caught:
        secure_sum([dirs[0], dirs[1], inner], "a", timeout=5)
    assert caught.value.field == "data_dirs[2]"


def test_a_data_dir_inside_the_code_tree_cannot_be_isolated() -> None:
    import ledger

    with pytest.raises(MpcIsolationError, match="overlaps the code tree"):
        party_command(Path(ledger.__file__).parent / "samples", sandbox=True)


def test_a_version_directory_is_not_a_data_dir(dirs: list[Path]) -> None:
    version = dirs[2].parent
    (version / "manifest.json").write_text("{}")
    with pytest.raises(MpcParameterError, match="data/ directory") as caught:
        secure_sum([dirs[0], dirs[1], version], "a", timeout=5)
    assert caught.value.field == "data_dirs[2]"


def test_without_bubblewrap_isolation_is_refused_or_skipped_on_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ledger.compute.mpc import isolation, launcher

    monkeypatch.setattr(launcher, "bwrap_path", lambda: None)
    monkeypatch.setattr(isolation, "bwrap_path", lambda: None)
    with pytest.raises(MpcIsolationError, match="bubblewrap"):
        PartyPool(sandbox=True)
    with pytest.raises(MpcIsolationError, match="bubblewrap"):
        party_command(tmp_path, sandbox=True)
    with PartyPool() as pool:
        assert pool.sandbox is False  # auto: plain processes when bwrap is missing
