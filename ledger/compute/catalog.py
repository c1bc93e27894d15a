"""The algorithm catalog: templates identified by the keccak256 hash of their code.

A template's hash is ``keccak256`` of its module's canonical source (UTF-8, line ends LF), the
same rule as for custom code (`code_hash`), so a grant can name either by hash and anyone can
recompute it from the source. `runtime_hash` binds what else shaped a result: the versions of
Python and the numeric libraries, every template's hash, and the hash of the shared compute code
(parameters, noise, release policy, backends); receipts carry it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.compute.errors import InvalidRequestError, UnknownAlgorithmError
from ledger.compute.params import canonical_json, keccak_hex
from ledger.compute.templates import TEMPLATE_MODULES
from ledger.compute.templates._base import TemplateBase

__all__ = [
    "CatalogEntry",
    "canonical_code",
    "catalog",
    "code_hash",
    "entry",
    "is_code_hash",
    "runtime_hash",
    "runtime_versions",
]

_HASH: Final = re.compile(r"0x[0-9a-f]{64}")
_TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
_COMPUTE_DIR: Final = Path(__file__).resolve().parent
#: Shared code every template result depends on (hashed into the runtime hash).
_SHARED_SOURCES: Final = (
    _COMPUTE_DIR / "params.py",
    _COMPUTE_DIR / "policy.py",
    _COMPUTE_DIR / "backend.py",
    _TEMPLATES_DIR / "_base.py",
    _TEMPLATES_DIR / "_columns.py",
    _TEMPLATES_DIR / "_noise.py",
    _TEMPLATES_DIR / "_secure.py",
)
_RUNTIME_PACKAGES: Final = ("numpy", "pandas", "pyarrow", "opendp", "mpyc")


@dataclass(frozen=True)
class CatalogEntry:
    """One template of the catalog."""

    name: str
    hash: str
    description: str
    dp: bool
    multi_owner: bool
    template: TemplateBase
    source_path: Path

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON schema of the template's parameters."""
        return self.template.params_model.model_json_schema()

    def result_shape(self) -> object:
        """A JSON description of the released result's shape."""
        return self.template.describe_shape()

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON (what ``ledger algorithm show`` prints)."""
        return {
            "name": self.name,
            "hash": self.hash,
            "description": self.description,
            "dp": self.dp,
            "multi_owner": self.multi_owner,
            "parameters": self.parameters_schema(),
            "result": self.result_shape(),
        }


def canonical_code(code: bytes) -> bytes:
    """The canonical bytes of Python source `code`: valid UTF-8 without a byte-order mark, line
    ends LF (the rule ``ledger.compute.custom`` applies to custom code, too).

    Raises:
        InvalidRequestError: `code` is not UTF-8.
    """
    try:
        text = code.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("code", "must be UTF-8 text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")


def code_hash(code: bytes) -> str:
    """``0x`` + keccak256 of the canonical bytes of `code` (templates and custom code alike)."""
    return keccak_hex(canonical_code(code))


def is_code_hash(value: str) -> bool:
    """Whether `value` looks like a code hash (``0x`` + 64 lowercase hex digits)."""
    return bool(_HASH.fullmatch(value))


@functools.cache
def catalog() -> Mapping[str, CatalogEntry]:
    """Every template by name, in listing order (loaded and hashed once per process)."""
    entries: dict[str, CatalogEntry] = {}
    for module_name in TEMPLATE_MODULES:
        module = importlib.import_module(f"ledger.compute.templates.{module_name}")
        template: TemplateBase = module.TEMPLATE
        path = _TEMPLATES_DIR / f"{module_name}.py"
        entries[template.name] = CatalogEntry(
            name=template.name,
            hash=code_hash(path.read_bytes()),
            description=template.description,
            dp=template.dp,
            multi_owner=template.multi_owner,
            template=template,
            source_path=path,
        )
    return entries


def entry(algorithm: str) -> CatalogEntry:
    """The template named `algorithm`, or whose code hash `algorithm` is.

    Raises:
        UnknownAlgorithmError: no template has that name or hash.
    """
    entries = catalog()
    found = entries.get(algorithm)
    if found is not None:
        return found
    wanted = algorithm.lower()
    for candidate in entries.values():
        if candidate.hash == wanted:
            return candidate
    raise UnknownAlgorithmError(algorithm, tuple(entries))


def runtime_versions() -> dict[str, Any]:
    """What a result's computation depended on besides its inputs: interpreter and library
    versions, the template hashes and the hash of the shared compute code."""
    versions: dict[str, Any] = {"python": platform.python_version()}
    for package in _RUNTIME_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    versions["templates"] = {name: item.hash for name, item in catalog().items()}
    shared = b"".join(canonical_code(path.read_bytes()) for path in _SHARED_SOURCES)
    versions["shared_code"] = keccak_hex(shared)
    return versions


@functools.cache
def runtime_hash() -> str:
    """keccak256 of the RFC 8785 JSON of `runtime_versions` (goes into receipts)."""
    return keccak_hex(canonical_json(runtime_versions()))
