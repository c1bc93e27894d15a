"""The demo's cast: accounts derived from anvil's public test mnemonic, for a loopback anvil only.

anvil funds the first ten accounts of its mnemonic (10,000 ETH each). The demo uses
``m/44'/60'/0'/0/i``: 0 the platform operator (deployer, executor, settler and relayer),
1-3 the three hospitals, 4 the drug maker; contributors' payout addresses come from index 10
on, which anvil does not fund, so their balances start at zero. These keys are public: they are
refused for any node that is not on the loopback interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_typing import ChecksumAddress

from ledger.demo.errors import DemoError

__all__ = ["ANVIL_MNEMONIC", "DemoAccount", "derive", "derive_many"]

#: anvil's default mnemonic (public; development chains only).
ANVIL_MNEMONIC: Final = "test test test test test test test test test test test junk"
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A derived account: its index, address and key (the key never appears in a repr)."""

    index: int
    address: ChecksumAddress
    key: str

    def __repr__(self) -> str:
        return f"DemoAccount(index={self.index}, address={self.address})"


def derive_many(rpc_url: str, indexes: list[int]) -> list[DemoAccount]:
    """The accounts ``m/44'/60'/0'/0/i`` of anvil's mnemonic for each i of `indexes`.

    Raises:
        DemoError: `rpc_url` is not a loopback node (the keys are public).
    """
    host = urlsplit(rpc_url).hostname
    if host not in _LOOPBACK:
        raise DemoError("accounts", "anvil's public test keys are used on a loopback node only")
    Account.enable_unaudited_hdwallet_features()
    seed = seed_from_mnemonic(ANVIL_MNEMONIC, "")
    accounts = []
    for index in indexes:
        key = "0x" + key_from_seed(seed, f"m/44'/60'/0'/0/{index}").hex()
        accounts.append(DemoAccount(index, Account.from_key(key).address, key))
    return accounts


def derive(rpc_url: str, index: int) -> DemoAccount:
    """One account of anvil's mnemonic (see `derive_many`)."""
    return derive_many(rpc_url, [index])[0]
