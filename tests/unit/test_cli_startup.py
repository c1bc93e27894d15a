"""The ``ledger`` command starts fast: its CLI modules import heavy libraries in command bodies.

Building the Typer app (``ledger --help``, ``ledger version``) must not pay for web3, pandas,
SQLAlchemy, OpenDP ... These tests read each CLI module's top-level imports and fail when one
imports a heavy library or a library module outside the small cheap allowlist; and they check
that the defaults the CLI modules write out (so as not to import the library for them) agree
with the library's.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CLI_MODULES = (
    "ledger/cli.py",
    "ledger/vault/cli.py",
    "ledger/registry/cli.py",
    "ledger/compute/cli.py",
    "ledger/jobs/cli.py",
    "ledger/provenance/cli.py",
    "ledger/settlement/cli.py",
    "ledger/demo/cli.py",
    "ledger/indexer/cli.py",
    "api/cli.py",
)

#: Third-party packages cheap enough for start-up (Typer builds the help with them).
CHEAP_THIRD_PARTY = frozenset({"typer", "rich"})

#: First-party modules the CLI modules may import at the top: errors, settings, other CLIs.
CHEAP_FIRST_PARTY = frozenset(
    {
        "ledger",
        "ledger.errors",
        "ledger.settings",
        "ledger.jobs.errors",
        "ledger.settlement.errors",
        "api.cli",
        *(m.removesuffix(".py").replace("/", ".") for m in CLI_MODULES),
    }
)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def top_level_imports(source: str) -> list[str]:
    """Modules imported when the module runs (not in functions, not under TYPE_CHECKING)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def disallowed(names: list[str]) -> list[str]:
    """The names that are neither the standard library nor on an allowlist."""
    bad = []
    for name in names:
        root = name.split(".")[0]
        if root == "__future__" or root in sys.stdlib_module_names:
            continue
        if root in CHEAP_THIRD_PARTY or name in CHEAP_FIRST_PARTY:
            continue
        bad.append(name)
    return bad


@pytest.mark.parametrize("path", CLI_MODULES)
def test_cli_module_imports_nothing_heavy_at_top_level(path: str) -> None:
    names = top_level_imports((ROOT / path).read_text())
    assert "typer" in names or path == "ledger/cli.py"
    assert disallowed(names) == []


def test_the_check_catches_a_heavy_import() -> None:
    source = (
        "from __future__ import annotations\nimport json\nimport typer\n"
        "from web3 import Web3\nimport pandas as pd\nfrom ledger.vault.store import Vault\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pyarrow\n"
        "def f() -> None:\n    import sqlalchemy\n"
    )
    assert disallowed(top_level_imports(source)) == ["web3", "pandas", "ledger.vault.store"]


def test_written_out_defaults_agree_with_the_library() -> None:
    from ledger.indexer.cli import _DEFAULT_CHUNK_BLOCKS, index_command
    from ledger.indexer.service import IndexerOptions
    from ledger.registry import catalog, register
    from ledger.registry import cli as registry_cli
    from ledger.settlement import cli as settlement_cli
    from ledger.settlement import service

    assert _DEFAULT_CHUNK_BLOCKS == IndexerOptions().chunk_blocks
    assert inspect.signature(index_command).parameters["chunk_blocks"].default == (
        IndexerOptions().chunk_blocks
    )
    assert registry_cli.MAX_LIMIT == catalog.MAX_LIMIT
    assert registry_cli.DEFAULT_OWNER_SHARE_BPS == register.DEFAULT_OWNER_SHARE_BPS
    assert settlement_cli.ETH == service.ETH


HEAVY = ("web3", "pandas", "pyarrow", "opendp", "sqlalchemy", "matplotlib", "mpyc")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, ledger.cli\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == ""
