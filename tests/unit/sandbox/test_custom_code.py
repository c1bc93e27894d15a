"""Canonical bytes and hashes of custom code, and the checks run_custom makes before running."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.compute.custom import MAX_CODE_BYTES, canonical_code, code_hash, run_custom
from ledger.compute.sandbox import (
    CustomCodeFormatError,
    CustomCodeHashError,
    SandboxConfigError,
    SandboxRunner,
    SandboxUnavailableError,
)
from ledger.merkle import keccak256

CODE = b"def run(input_dirs, params):\n    return {'n': len(input_dirs)}  \n"


def test_hash_is_keccak256_of_the_canonical_bytes() -> None:
    assert code_hash(CODE) == "0x" + keccak256(CODE).hex()
    assert len(code_hash(CODE)) == 66 and code_hash(CODE) == code_hash(CODE).lower()


@pytest.mark.parametrize(
    "variant",
    [
        CODE.replace(b"\n", b"\r\n"),
        CODE.replace(b"\n", b"\r"),
        b"\xef\xbb\xbf" + CODE,
        bytearray(CODE),
    ],
    ids=["crlf", "cr", "bom", "bytearray"],
)
def test_line_endings_and_bom_do_not_change_the_hash(variant: bytes) -> None:
    assert canonical_code(variant) == CODE
    assert code_hash(variant) == code_hash(CODE)


@pytest.mark.parametrize(
    "variant",
    [CODE.replace(b"  \n", b"\n"), CODE + b"\n", CODE.replace(b"    ", b"\t"), CODE[:-1]],
    ids=["trailing-space", "extra-newline", "tabs", "no-final-newline"],
)
def test_everything_else_is_kept(variant: bytes) -> None:
    assert code_hash(variant) != code_hash(CODE)


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (b"x = '\xff'\n", "UTF-8 text (invalid byte at offset 5)"),
        (b"x = 1\x00\n", "without NUL"),
        (b"  \n\n", "non-empty"),
        (b"#" * (MAX_CODE_BYTES + 1), f"at most {MAX_CODE_BYTES} bytes"),
        ("def run(): pass", "bytes, not str"),
    ],
    ids=["latin1", "nul", "blank", "oversized", "str"],
)
def test_bad_code_is_refused_with_the_rule(code: bytes, rule: str) -> None:
    with pytest.raises(CustomCodeFormatError) as caught:
        code_hash(code)
    assert caught.value.field == "code"
    assert rule in str(caught.value)


def test_hash_mismatch_is_refused_before_the_sandbox_is_even_looked_for(tmp_path: Path) -> None:
    missing = SandboxRunner(bwrap=tmp_path / "no-such-bwrap")
    other = code_hash(b"def run(d, p):\n    return {}\n")
    with pytest.raises(CustomCodeHashError) as caught:
        run_custom(CODE, other, [tmp_path], {}, runner=missing)
    assert caught.value.expected == other and caught.value.actual == code_hash(CODE)
    with pytest.raises(CustomCodeFormatError, match="expected_hash"):
        run_custom(CODE, "0x1234", [tmp_path], {}, runner=missing)
    upper = "0x" + code_hash(CODE)[2:].upper()
    with pytest.raises(SandboxUnavailableError):  # upper-case hex passes the gate, then no bwrap
        run_custom(CODE, upper, [tmp_path], {}, runner=missing)


def test_missing_bubblewrap_refuses_custom_code(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bwrap"
    with pytest.raises(SandboxUnavailableError) as caught:
        run_custom(CODE, code_hash(CODE), [tmp_path], {}, runner=SandboxRunner(bwrap=missing))
    assert str(missing) in str(caught.value)
    assert "apt-get install bubblewrap" in str(caught.value) and "make setup" in str(caught.value)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SandboxUnavailableError, match="bubblewrap"):
        SandboxRunner(bwrap=missing).run(["/code/x.py"], output_dir=out)
    assert list(out.iterdir()) == []


def test_missing_prlimit_is_named(tmp_path: Path) -> None:
    runner = SandboxRunner(prlimit=tmp_path / "no-prlimit")
    with pytest.raises(SandboxUnavailableError, match="prlimit"):
        runner.check_available()


def test_params_must_be_a_json_object(tmp_path: Path) -> None:
    missing = SandboxRunner(bwrap=tmp_path / "no-such-bwrap")
    with pytest.raises(SandboxConfigError, match="params"):
        run_custom(CODE, code_hash(CODE), [tmp_path], [1, 2], runner=missing)  # type: ignore[arg-type]
    with pytest.raises(SandboxConfigError, match="at most"):
        run_custom(CODE, code_hash(CODE), [tmp_path], {"x": "y" * 70_000}, runner=missing)


def test_a_jail_that_cannot_be_built_is_reported_as_unavailable(tmp_path: Path) -> None:
    # A stand-in for bwrap at the tool seam: it passes the availability probe, then fails the
    # way bwrap does when a mount cannot be made (a complaint on stderr, no JSON exit status).
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --ro-bind ]; then exit 0; fi\n'
        "echo 'bwrap: Can'\"'\"'t mount tmpfs on /newroot: Operation not permitted' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SandboxUnavailableError) as caught:
        SandboxRunner(bwrap=fake).run(["/code/x.py"], output_dir=out)
    assert "Can't mount tmpfs" in str(caught.value)
    assert list(out.iterdir()) == []
