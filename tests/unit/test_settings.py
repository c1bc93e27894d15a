"""Settings: keys resolve to anvil accounts only on the embedded chain; errors name the variable."""

from __future__ import annotations

import pytest

from ledger.errors import SettingsError
from ledger.settings import ANVIL_DEV_KEYS, load_settings

_KEY = "0x" + "11" * 32


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RPC_URL", "EXECUTOR_KEY", "OWNER_KEY", "DASK_SCHEDULER", "DATABASE_URL"):
        monkeypatch.delenv(f"LEDGER_{name}", raising=False)


def test_embedded_chain_uses_anvil_accounts_0_and_1() -> None:
    settings = load_settings()
    assert settings.resolved_executor_key() == ANVIL_DEV_KEYS[0]
    assert settings.resolved_owner_key() == ANVIL_DEV_KEYS[1]


def test_external_chain_requires_each_key_by_its_variable() -> None:
    settings = load_settings(rpc_url="https://node.example:8545", executor_key=_KEY)
    assert settings.resolved_executor_key() == _KEY
    with pytest.raises(SettingsError, match="LEDGER_OWNER_KEY"):
        settings.resolved_owner_key()


@pytest.mark.parametrize("field", ["executor_key", "owner_key"])
def test_dev_keys_refused_off_loopback(field: str) -> None:
    settings = load_settings(rpc_url="https://node.example:8545", **{field: ANVIL_DEV_KEYS[2]})
    resolve = getattr(settings, f"resolved_{field}")
    with pytest.raises(SettingsError, match=f"LEDGER_{field.upper()}.*development keys"):
        resolve()


@pytest.mark.parametrize("bad", ["0x1234", "0x" + "00" * 32, "0x" + "ff" * 32, "not-a-key"])
def test_malformed_owner_key_names_the_variable_never_the_value(bad: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(owner_key=bad)
    assert "LEDGER_OWNER_KEY" in str(caught.value)
    assert bad not in str(caught.value)


def test_dask_scheduler_address_is_checked() -> None:
    assert load_settings(dask_scheduler="tcp://127.0.0.1:8786").dask_scheduler
    with pytest.raises(SettingsError, match="LEDGER_DASK_SCHEDULER.*tcp://"):
        load_settings(dask_scheduler="127.0.0.1:8786")
