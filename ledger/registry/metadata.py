"""FAIR metadata of a dataset version: what the owner writes, and the document whose hash goes on
chain.

The owner writes a small YAML or JSON file (`MetadataInput`): title, description, keywords,
license (an SPDX identifier from `KNOWN_LICENSES`), publisher and temporal coverage. The registry
adds what the vault's manifest knows (`build_document`): the dataset name and version, the row
commitment and the previous version's, the schema hash, the public schema (name, type and unit of
each kept column; identifier columns never appear), and two counts that are ROUNDED so that no
exact small count leaks:

    round_count(n, step) = 0 for n == 0; otherwise the nearest multiple of
    max(step, 10 ** (digits(n) - 2)) (halves round up), and at least `step`.

That is two significant digits, never finer than `step`: records use step 100 (57 -> 100,
1_234 -> 1_200, 98_765 -> 99_000), contributors step 10 (3 -> 10, 47 -> 50).

The document's bytes are its RFC 8785 canonical JSON (`canonical_bytes`); its hash is
``keccak256`` of those bytes (the ``metadataHash`` of ``DataRegistry.Version``), and its URI is
``ledger:metadata:0x<hash>``, which the catalog resolves from its database
(`ledger.registry.catalog.resolve_metadata_uri`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Final

import rfc8785
import yaml
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ledger.registry.errors import MetadataError

__all__ = [
    "CONTRIBUTOR_STEP",
    "DOCUMENT_FORMAT",
    "KNOWN_LICENSES",
    "METADATA_URI_PREFIX",
    "RECORD_STEP",
    "MetadataDocument",
    "MetadataInput",
    "PublicColumn",
    "TemporalCoverage",
    "build_document",
    "load_metadata_input",
    "metadata_uri",
    "parse_metadata_input",
    "parse_metadata_uri",
    "round_count",
]

DOCUMENT_FORMAT: Final = "ledger.registry.metadata/1"
METADATA_URI_PREFIX: Final = "ledger:metadata:"
RECORD_STEP: Final = 100
CONTRIBUTOR_STEP: Final = 10

#: SPDX identifiers accepted as a dataset's license (open data, Creative Commons, code licenses
#: sometimes used for data, and a proprietary marker).
KNOWN_LICENSES: Final = (
    "CC0-1.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-ND-4.0",
    "CC-BY-NC-ND-4.0",
    "ODbL-1.0",
    "ODC-By-1.0",
    "PDDL-1.0",
    "CDLA-Permissive-2.0",
    "CDLA-Sharing-1.0",
    "Apache-2.0",
    "MIT",
    "BSD-3-Clause",
    "LicenseRef-Proprietary",
)
_LICENSE_BY_LOWER: Final = {name.lower(): name for name in KNOWN_LICENSES}
_KEYWORD = re.compile(r"[a-z0-9][a-z0-9 .+_-]{0,49}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HASH = re.compile(r"0x[0-9a-f]{64}")
_MAX_FILE_BYTES: Final = 256 * 1024


def round_count(n: int, step: int = RECORD_STEP) -> int:
    """`n` rounded to two significant digits, never finer than `step`, at least `step` when
    ``n > 0`` (see the module notes). Raises ValueError for a negative `n` or `step` < 1."""
    if n < 0 or step < 1:
        raise ValueError("round_count needs n >= 0 and step >= 1")
    if n == 0:
        return 0
    unit: int = max(step, pow(10, max(len(str(n)) - 2, 0)))
    rounded = (n + unit // 2) // unit * unit
    return max(step, rounded)


def _text(value: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > limit:
        raise ValueError(f"must be at most {limit} characters")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


class TemporalCoverage(BaseModel):
    """The period the records cover (dates inclusive, ``start <= end``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> TemporalCoverage:
        if self.start > self.end:
            raise ValueError("start must be on or before end")
        return self


class MetadataInput(BaseModel):
    """What the owner writes in the ``--metadata`` file (unknown fields are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    description: str
    keywords: Annotated[list[str], Field(min_length=1, max_length=20)]
    license: str
    publisher: str
    temporal_coverage: TemporalCoverage

    @field_validator("title", "publisher")
    @classmethod
    def _short_text(cls, value: str) -> str:
        return _text(value, 200)

    @field_validator("description")
    @classmethod
    def _long_text(cls, value: str) -> str:
        return _text(value, 5000)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for keyword in value:
            normal = " ".join(keyword.lower().split())
            if not _KEYWORD.fullmatch(normal):
                raise ValueError(
                    "each keyword must be 1-50 characters of letters, digits, space, . + _ -, "
                    "starting with a letter or digit"
                )
            if normal not in seen:
                seen.append(normal)
        return seen

    @field_validator("license")
    @classmethod
    def _license(cls, value: str) -> str:
        known = _LICENSE_BY_LOWER.get(value.strip().lower())
        if known is None:
            close = difflib.get_close_matches(value.strip(), KNOWN_LICENSES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"must be one of the SPDX identifiers {', '.join(KNOWN_LICENSES)}{hint}"
            )
        return known


class PublicColumn(BaseModel):
    """A kept column as the catalog shows it: name, type and unit (never values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    unit: str | None = None


class MetadataDocument(BaseModel):
    """The FAIR metadata document of one dataset version; `hash` goes on chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = DOCUMENT_FORMAT
    name: str
    version: Annotated[int, Field(ge=1)]
    title: str
    description: str
    keywords: list[str]
    license: str
    publisher: str
    temporal_coverage: TemporalCoverage
    record_count: Annotated[int, Field(ge=0)]
    contributor_count: Annotated[int, Field(ge=0)]
    count_rounding: str = (
        f"two significant digits, multiples of {RECORD_STEP} (records) and "
        f"{CONTRIBUTOR_STEP} (contributors), at least one step when non-empty"
    )
    columns: list[PublicColumn]
    schema_hash: str
    commitment: str
    previous_commitment: str | None

    @field_validator("schema_hash", "commitment", "previous_commitment")
    @classmethod
    def _hash(cls, value: str | None) -> str | None:
        if value is not None and not _HASH.fullmatch(value):
            raise ValueError("must be 0x followed by 64 lowercase hexadecimal digits")
        return value

    @property
    def owner_input(self) -> MetadataInput:
        """The owner-written part, e.g. to carry it to the next version."""
        return MetadataInput(
            title=self.title,
            description=self.description,
            keywords=list(self.keywords),
            license=self.license,
            publisher=self.publisher,
            temporal_coverage=self.temporal_coverage,
        )

    def canonical_bytes(self) -> bytes:
        """The RFC 8785 canonical JSON of the document (what is hashed)."""
        return bytes(rfc8785.dumps(self.model_dump(mode="json")))

    @property
    def hash(self) -> str:
        """``0x`` + keccak256 of `canonical_bytes` (the on-chain ``metadataHash``)."""
        return "0x" + keccak(self.canonical_bytes()).hex()

    @property
    def uri(self) -> str:
        """``ledger:metadata:0x<hash>`` (the on-chain ``metadataURI``)."""
        return metadata_uri(self.hash)

    @classmethod
    def from_json(cls, text: str | bytes, *, expected_hash: str | None = None) -> MetadataDocument:
        """Read a stored document; with `expected_hash`, check that it hashes to it.

        Raises:
            MetadataError: the text is not a valid document, or hashes to something else.
        """
        try:
            document = cls.model_validate_json(text)
        except ValidationError as exc:
            raise _metadata_error(exc) from None
        if expected_hash is not None and document.hash != expected_hash.lower():
            raise MetadataError("document", f"does not hash to {expected_hash}")
        return document


def build_document(
    owner_input: MetadataInput,
    *,
    name: str,
    version: int,
    row_count: int,
    contributor_count: int,
    columns: list[PublicColumn],
    schema_hash: str,
    commitment: str,
    previous_commitment: str | None,
) -> MetadataDocument:
    """The metadata document of a version: the owner's fields plus what the manifest knows,
    with both counts rounded (`round_count`). Hashes are stored lower-case.

    Raises:
        MetadataError: a manifest value does not fit the document (names the field).
    """
    try:
        return MetadataDocument(
            name=name,
            version=version,
            title=owner_input.title,
            description=owner_input.description,
            keywords=list(owner_input.keywords),
            license=owner_input.license,
            publisher=owner_input.publisher,
            temporal_coverage=owner_input.temporal_coverage,
            record_count=round_count(row_count, RECORD_STEP),
            contributor_count=round_count(contributor_count, CONTRIBUTOR_STEP),
            columns=columns,
            schema_hash=schema_hash.lower(),
            commitment=commitment.lower(),
            previous_commitment=None
            if previous_commitment is None
            else previous_commitment.lower(),
        )
    except ValidationError as exc:
        raise _metadata_error(exc) from None


def metadata_uri(metadata_hash: str) -> str:
    """The ``ledger:metadata:`` URI of a metadata hash."""
    return METADATA_URI_PREFIX + metadata_hash.lower()


def parse_metadata_uri(uri: str) -> str | None:
    """The metadata hash a ``ledger:metadata:0x..`` URI names, or None for any other URI."""
    if not uri.startswith(METADATA_URI_PREFIX):
        return None
    digest = uri.removeprefix(METADATA_URI_PREFIX).lower()
    return digest if _HASH.fullmatch(digest) else None


def parse_metadata_input(data: object) -> MetadataInput:
    """Validate parsed metadata (a mapping).

    Raises:
        MetadataError: names the first field that breaks a rule, and the rule.
    """
    if not isinstance(data, Mapping):
        raise MetadataError("(file)", "must be a mapping of fields (title, description, ...)")
    try:
        return MetadataInput.model_validate(dict(data))
    except ValidationError as exc:
        raise _metadata_error(exc) from None


def load_metadata_input(path: Path) -> MetadataInput:
    """Read and validate a YAML (``.yaml``/``.yml``) or JSON metadata file.

    Raises:
        MetadataError: the file is missing, unreadable, too large, not YAML/JSON, or a field
            breaks a rule.
    """
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise MetadataError("(file)", f"{path} is larger than {_MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MetadataError("(file)", f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError("(file)", f"{path} cannot be read ({type(exc).__name__})") from None
    data: Any
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        where = getattr(exc, "problem_mark", None) or getattr(exc, "lineno", None)
        at = f" (at {where})" if where is not None else ""
        raise MetadataError("(file)", f"{path} is not valid {kind}{at}") from None
    return parse_metadata_input(data)


def _metadata_error(exc: ValidationError) -> MetadataError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(document)"
    kind = first["type"]
    if kind == "missing":
        rule = "is required"
    elif kind == "extra_forbidden":
        rule = "is not a known field (check its spelling)"
    else:
        rule = str(first["msg"]).removeprefix("Value error, ")
    return MetadataError(field, rule)
