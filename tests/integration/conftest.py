"""A real anvil per test module, with the four contracts deployed from ledger/artifacts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3

from ledger.chain.anvil import Anvil
from tests.integration.chain import LedgerContracts, deploy_ledger, dev_accounts
from tests.integration.databases import (  # noqa: F401 - fixtures for every integration test
    database_url,
    postgres_database,
    postgres_server,
)


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    """An anvil node (chain id 31337) for the module, stopped afterwards."""
    with Anvil() as node:
        yield node


@pytest.fixture(scope="module")
def w3(anvil: Anvil) -> Web3:
    """web3 connected to the module's anvil."""
    return Web3(Web3.HTTPProvider(anvil.url))


@pytest.fixture(scope="module")
def ledger(w3: Web3) -> LedgerContracts:
    """The contracts, deployed by anvil's account 0 and administered by its account 1."""
    deployer, admin = dev_accounts(w3)[:2]
    return deploy_ledger(w3, deployer=deployer, admin=admin)
