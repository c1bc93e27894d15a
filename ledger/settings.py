"""The ledger's settings: one class, every field from a ``LEDGER_`` environment variable.

Unset values mean embedded defaults: no RPC URL starts anvil under the data dir, no database URL
uses a SQLite file there, and on the embedded chain the executor signs with anvil's first
development key (public, well known, and refused anywhere else).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.errors import SettingsError

__all__ = ["ANVIL_DEV_KEYS", "Settings", "get_settings", "load_settings"]

#: anvil's first development accounts' keys (derived from its public test mnemonic).
ANVIL_DEV_KEYS: Final = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)
_KEY = re.compile(r"0x[0-9a-fA-F]{64}")
_RPC_SCHEMES: Final = ("http://", "https://")
_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")
_DB_SCHEMES: Final = ("sqlite://", "postgresql://", "postgresql+psycopg://")


class Settings(BaseSettings):
    """Every setting of the ledger; the environment variable is ``LEDGER_`` + the field name."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path(".ledger"), description="Where state lives.")
    rpc_url: str | None = Field(
        default=None, description="JSON-RPC endpoint of any EVM node; unset = embedded anvil."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset = SQLite file in the data dir."
    )
    executor_key: SecretStr | None = Field(
        default=None, description="Private key the service signs with; required with an RPC URL."
    )
    owner_key: SecretStr | None = Field(
        default=None,
        description="Private key of the data owner the CLI registers datasets and signs grants as.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Dask scheduler address (tcp://host:port); unset = compute runs locally.",
    )
    confirmations: Annotated[int, Field(ge=1, le=128)] = Field(
        default=1, description="Blocks (the including block counts as 1) before a tx is final."
    )
    chain_id: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Expected chain id; checked against the node."
    )
    anvil_port: Annotated[int, Field(ge=1024, le=65535)] = Field(
        default=8545, description="Port of the embedded anvil on 127.0.0.1."
    )
    deployments_dir: Path | None = Field(
        default=None, description="Where deployment manifests go; unset = <data_dir>/deployments."
    )

    @field_validator("rpc_url")
    @classmethod
    def _check_rpc_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_RPC_SCHEMES):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_DB_SCHEMES):
            raise ValueError("must be a sqlite://, postgresql:// or postgresql+psycopg:// URL")
        return value

    @field_validator("executor_key", "owner_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # Never echo the value: it may be a real key with a typo.
        secret = value.get_secret_value()
        if not _KEY.fullmatch(secret):
            raise ValueError("must be 0x followed by 64 hexadecimal digits")
        if not 0 < int(secret, 16) < _SECP256K1_N:
            raise ValueError("must be a valid secp256k1 private key (0 < key < curve order)")
        return value

    @field_validator("dask_scheduler")
    @classmethod
    def _check_dask_scheduler(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(tcp|tls|inproc)://[^\s/]+", value):
            raise ValueError("must be a Dask scheduler address such as tcp://127.0.0.1:8786")
        return value

    @property
    def embedded(self) -> bool:
        """True when the service runs its own anvil (no RPC URL set)."""
        return self.rpc_url is None

    @property
    def resolved_rpc_url(self) -> str:
        """The RPC URL to use: the configured one, or the embedded anvil's."""
        return self.rpc_url or f"http://127.0.0.1:{self.anvil_port}"

    @property
    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one, or a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"

    @property
    def resolved_deployments_dir(self) -> Path:
        """Where deployment manifests are written and read."""
        return self.deployments_dir or self.data_dir / "deployments"

    def resolved_executor_key(self) -> str:
        """The executor's private key (hex); anvil's account 0 on the embedded chain.

        Raises:
            SettingsError: no key is set and the chain is not the embedded one.
        """
        return self._resolve_key(self.executor_key, "LEDGER_EXECUTOR_KEY", ANVIL_DEV_KEYS[0])

    def resolved_owner_key(self) -> str:
        """The data owner's private key (hex); anvil's account 1 on the embedded chain.

        Raises:
            SettingsError: no key is set and the chain is not the embedded one.
        """
        return self._resolve_key(self.owner_key, "LEDGER_OWNER_KEY", ANVIL_DEV_KEYS[1])

    def _resolve_key(self, value: SecretStr | None, variable: str, dev_key: str) -> str:
        if value is not None:
            key = value.get_secret_value()
            host = urlsplit(self.rpc_url).hostname if self.rpc_url else "127.0.0.1"
            if key.lower() in ANVIL_DEV_KEYS and host not in _LOOPBACK:
                raise SettingsError(
                    variable,
                    "anvil's public development keys are refused for a non-local LEDGER_RPC_URL",
                )
            return key
        if self.embedded:
            return dev_key
        raise SettingsError(
            variable, "a private key (0x + 64 hex digits) is required when LEDGER_RPC_URL is set"
        )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus `overrides`.

    Raises:
        SettingsError: a value is malformed; the message names the environment variable and
            what was expected, never the value of a secret.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"LEDGER_{field.upper()}", message) from None


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once; tests call ``get_settings.cache_clear()``."""
    return load_settings()
