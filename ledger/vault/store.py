"""Where an owner's vault lives on disk, its HMAC key, and the per-dataset ingest lock.

Layout (see the team's interfaces): ``<data dir>/vault/<owner checksum address>/`` holds ``key``
(32 random bytes, mode 0600) and ``datasets/<name>/v<N>/`` (one committed version each).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from eth_account import Account
from eth_utils.address import to_checksum_address

from ledger.settings import Settings
from ledger.vault.errors import DatasetNotFoundError, InvalidNameError, VaultBusyError

__all__ = ["NAME_PATTERN", "Vault", "check_name"]

NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_VERSION_DIR: Final = re.compile(r"v([1-9][0-9]*)")
STAGING_PREFIX: Final = ".staging-"


def check_name(name: str) -> str:
    """`name` if it is a valid dataset name.

    Raises:
        InvalidNameError: it does not match ``^[a-z0-9][a-z0-9_-]{0,62}$``.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidNameError(str(name))
    return name


class Vault:
    """One owner's vault: datasets, versions and the owner's HMAC key (never shown)."""

    __slots__ = ("owner", "root")

    def __init__(self, root: Path, owner: str) -> None:
        self.root = Path(root)
        self.owner = to_checksum_address(owner)

    @classmethod
    def for_owner(cls, settings: Settings, owner: str | None = None) -> Vault:
        """The vault of `owner` (a 0x address) under the settings' data dir; by default the
        owner is the address of ``settings.resolved_owner_key()``.

        Raises:
            SettingsError: no owner is given and no owner key can be resolved.
        """
        if owner is None:
            owner = Account.from_key(settings.resolved_owner_key()).address
        address = to_checksum_address(owner)
        return cls(settings.data_dir / "vault" / address, address)

    def __repr__(self) -> str:
        return f"Vault(owner={self.owner}, root={str(self.root)!r})"

    @property
    def datasets_dir(self) -> Path:
        """``datasets/`` of this vault."""
        return self.root / "datasets"

    def dataset_dir(self, name: str) -> Path:
        """``datasets/<name>/`` (checks the name)."""
        return self.datasets_dir / check_name(name)

    def version_dir(self, name: str, version: int) -> Path:
        """``datasets/<name>/v<version>/``."""
        return self.dataset_dir(name) / f"v{int(version)}"

    def data_dir(self, name: str, version: int) -> Path:
        """The Parquet partitions of a version (what compute reads)."""
        return self.version_dir(name, version) / "data"

    def versions(self, name: str) -> list[int]:
        """The committed versions of `name`, ascending (empty if none)."""
        directory = self.dataset_dir(name)
        if not directory.is_dir():
            return []
        found = []
        for entry in directory.iterdir():
            match = _VERSION_DIR.fullmatch(entry.name)
            if match and (entry / "manifest.json").is_file():
                found.append(int(match.group(1)))
        return sorted(found)

    def latest_version(self, name: str) -> int | None:
        """The highest committed version of `name`, or None."""
        versions = self.versions(name)
        return versions[-1] if versions else None

    def resolve_version(self, name: str, version: int | None) -> int:
        """`version` if committed, or the latest one when None.

        Raises:
            DatasetNotFoundError: the dataset or the version is not in the vault.
        """
        versions = self.versions(name)
        if not versions:
            raise DatasetNotFoundError(name)
        if version is None:
            return versions[-1]
        if version not in versions:
            raise DatasetNotFoundError(name, version)
        return version

    def names(self) -> list[str]:
        """Every dataset with at least one committed version."""
        if not self.datasets_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.datasets_dir.iterdir()
            if NAME_PATTERN.fullmatch(p.name) and self.versions(p.name)
        )

    def key(self) -> bytes:
        """The owner's 32-byte HMAC key, created (mode 0600) on first use. Never log it."""
        path = self.root / "key"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            fresh = secrets.token_bytes(32)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                data = path.read_bytes()  # another process created it first
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(fresh)
                    handle.flush()
                    os.fsync(handle.fileno())
                data = fresh
        if len(data) != 32:
            raise ValueError(f"vault key file {path} must hold exactly 32 bytes")
        return data

    @contextlib.contextmanager
    def ingest_lock(self, name: str) -> Iterator[Path]:
        """Hold the dataset's ingest lock; remove staging dirs a crashed ingest left behind.

        Raises:
            VaultBusyError: another process holds the lock.
        """
        directory = self.dataset_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".lock", "a+b") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise VaultBusyError(name) from None
            try:
                for stale in directory.glob(STAGING_PREFIX + "*"):
                    shutil.rmtree(stale, ignore_errors=True)
                yield directory
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
