"""Claim proofs from the stored epochs and the tree's nodes file, and claims sent to the vault."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session
from web3.logs import DISCARD

from ledger.chain.client import call
from ledger.chain.reverts import error_class
from ledger.chain.sender import TxSender
from ledger.settlement.errors import NoEntitlementError, NothingToClaimError, StaleProofError
from ledger.settlement.results import ClaimOutcome, ClaimProof, checked_address
from ledger.settlement.trees import read_proof, tree_files
from ledger.store.models.settlement import EpochStatus, SettlementEntitlement

if TYPE_CHECKING:
    from ledger.settlement.service import Settlement

__all__ = ["claim", "proof"]


def proof(settlement: Settlement, token: str, account: str, epoch: int | None = None) -> ClaimProof:
    """The proof of `account` in the latest published epoch of `token` (or `epoch`), with what
    the account claimed so far (read from the chain).

    Raises:
        NoEntitlementError: the account is not in that epoch's tree (or none is published).
        UnknownEpochError: `epoch` is not stored.
    """
    token = checked_address(token, "token")
    account = checked_address(account, "account")
    if epoch is None:
        published = [e for e in settlement.epochs(token) if e.status == EpochStatus.PUBLISHED]
        if not published:
            raise NoEntitlementError(token, account)
        row = published[-1]
    else:
        row = settlement.epoch(token, epoch)
    with Session(settlement.engine) as session:
        entitlement = session.get(SettlementEntitlement, (token, row.epoch, account))
    if entitlement is None:
        raise NoEntitlementError(token, account)
    path = read_proof(tree_files(Path(row.tree_file)).nodes, entitlement.tree_index)
    claimed = int(call(settlement.vault.functions.claimedOf(token, account)))
    return ClaimProof(token, account, row.epoch, row.root, entitlement.cumulative, claimed, path)


def claim(settlement: Settlement, token: str, account: str, sender: TxSender) -> ClaimOutcome:
    """Send `account`'s claim from `sender` (anyone may send; the account is paid).

    Raises:
        NoEntitlementError: the account is in no published tree.
        NothingToClaimError: everything due is claimed already (checked first; the contract's
            ``RevenueVaultNothingToClaim`` is translated too).
        StaleProofError: the chain's current root is another epoch's.
        ContractRevert, TransactionFailedError, RpcUnavailableError: sending failed.
    """
    found = proof(settlement, token, account)
    vault = settlement.vault
    chain_root = "0x" + bytes(call(vault.functions.distributionOf(found.token))[0]).hex()
    if chain_root != found.root:
        raise StaleProofError(found.token, found.epoch, found.root, chain_root)
    if found.claimable == 0:
        raise NothingToClaimError(found.token, found.account, found.cumulative, found.claimed)
    fn = vault.functions.claim(
        found.token, found.account, found.cumulative, [bytes.fromhex(p[2:]) for p in found.proof]
    )
    try:
        receipt = sender.send(fn)
    except error_class("RevenueVaultNothingToClaim") as exc:
        raise NothingToClaimError(
            found.token,
            found.account,
            int(exc.arguments["cumulative"]),
            int(exc.arguments["claimed"]),
        ) from None
    (event,) = vault.events.Claimed().process_receipt(receipt, DISCARD)
    return ClaimOutcome(
        found.token,
        found.account,
        int(event["args"]["amount"]),
        int(event["args"]["cumulative"]),
        receipt["transactionHash"].to_0x_hex(),
    )
