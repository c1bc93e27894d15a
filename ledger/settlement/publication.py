"""Publishing a stored epoch's root on ``RevenueVault``, at most once whatever crashes.

`Publisher.publish` reads the chain first: an epoch the chain already holds with this root is
only marked published (its transaction found in the ``EpochPublished`` logs); another root is an
`EpochConflictError`; a publication of the settler still pending is waited for. Only then is
``publishEpoch`` sent, and the row marked once the receipt is confirmed. A crash between the
send and the mark is repaired by the next run's chain check; and the contract refuses a second
publication of an epoch anyway (``RevenueVaultWrongEpoch``), which is taken as "already there"
when the chain shows our root.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine
from sqlmodel import Session
from web3 import Web3
from web3.contract import Contract

from ledger.chain.client import call
from ledger.chain.sender import TxSender
from ledger.errors import ContractRevert, SettingsError
from ledger.settlement.errors import EpochConflictError, UnknownEpochError
from ledger.store.models.settlement import EpochStatus, SettlementEpoch

__all__ = ["Publisher"]

_PENDING_WAIT: Final = 60.0


class Publisher:
    """Publishes stored epochs with the settler's sender (SETTLER_ROLE); see the module notes."""

    def __init__(
        self,
        w3: Web3,
        vault: Contract,
        engine: Engine,
        sender: TxSender | None,
        *,
        deploy_block: int,
    ) -> None:
        self.w3 = w3
        self.vault = vault
        self.engine = engine
        self.sender = sender
        self.deploy_block = deploy_block

    def publish(self, row: SettlementEpoch) -> tuple[SettlementEpoch, bool]:
        """Publish `row`'s epoch unless the chain has it; returns the updated row and whether
        this call sent the publication.

        Raises:
            UnknownEpochError: the epoch before it is not on chain.
            EpochConflictError: the chain holds another root or total for it.
            SettingsError: there is no settler sender.
            ContractRevert, TransactionFailedError, RpcUnavailableError: sending failed.
        """
        deadline = time.monotonic() + _PENDING_WAIT
        while True:
            found = self.on_chain(row)
            if found is not None:
                return self._mark_published(row, *found), False
            if self.sender is None:
                raise SettingsError(
                    "LEDGER_EXECUTOR_KEY", "a settler key (SETTLER_ROLE) is needed to publish"
                )
            if not self._settler_has_pending() or time.monotonic() > deadline:
                break
            # An earlier run's publication may still be pending: wait for it rather than race.
            time.sleep(0.5)
        try:
            tx_hash, block = self._send(row)
        except ContractRevert as exc:
            if exc.error != "RevenueVaultWrongEpoch":
                raise
            found = self.on_chain(row)  # another run published it in the meantime
            if found is None:
                raise
            return self._mark_published(row, *found), False
        return self._mark_published(row, tx_hash, block), True

    def on_chain(self, row: SettlementEpoch) -> tuple[str, int] | None:
        """(tx hash, block) of the epoch's publication if the chain holds it with our root, None
        if the chain is at the epoch before.

        Raises:
            UnknownEpochError: the chain is more than one epoch behind.
            EpochConflictError: the chain holds another root or total for the epoch.
        """
        distribution = call(self.vault.functions.distributionOf(row.token))
        chain_epoch = int(distribution[3])
        if chain_epoch < row.epoch - 1:
            raise UnknownEpochError(
                row.token,
                row.epoch,
                f"the chain is at epoch {chain_epoch}: epoch {row.epoch - 1} must be "
                "published first",
            )
        if chain_epoch < row.epoch:
            return None
        root = "0x" + bytes(call(self.vault.functions.epochRoot(row.token, row.epoch))).hex()
        if root != row.root:
            raise EpochConflictError(row.token, row.epoch, row.root, root)
        logs = self.vault.events.EpochPublished().get_logs(
            argument_filters={"token": row.token, "epoch": row.epoch},
            from_block=self.deploy_block,
        )
        for log in logs:
            if "0x" + bytes(log["args"]["root"]).hex() == row.root:
                if int(log["args"]["total"]) != row.total:
                    raise EpochConflictError(
                        row.token, row.epoch, f"total {row.total}", f"total {log['args']['total']}"
                    )
                return log["transactionHash"].to_0x_hex(), int(log["blockNumber"])
        return "", 0

    def _settler_has_pending(self) -> bool:
        assert self.sender is not None
        address = self.sender.address
        pending = self.w3.eth.get_transaction_count(address, "pending")
        return pending > self.w3.eth.get_transaction_count(address, "latest")

    def _send(self, row: SettlementEpoch) -> tuple[str, int]:
        assert self.sender is not None
        fn = self.vault.functions.publishEpoch(
            row.token, row.epoch, bytes.fromhex(row.root[2:]), row.total
        )
        receipt = self.sender.send(fn)
        return receipt["transactionHash"].to_0x_hex(), int(receipt["blockNumber"])

    def _mark_published(self, row: SettlementEpoch, tx_hash: str, block: int) -> SettlementEpoch:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            stored = session.get(SettlementEpoch, (row.token, row.epoch))
            assert stored is not None
            stored.status = EpochStatus.PUBLISHED
            stored.tx_hash = tx_hash or None
            stored.published_block = block or None
            stored.published_at = datetime.now(UTC)
            session.add(stored)
        return stored
