"""Which executors (compute services' keys) may record jobs on a dataset (`setExecutor`).

Approvals belong to the owner's ownership epoch: a transfer of the data asset lapses them all, so
the new owner approves again. Setting an approval that is already in place sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.address import is_address, to_checksum_address

from ledger.registry.errors import DatasetNotFoundError, NotOwnerError, RegistryArgumentError
from ledger.registry.register import RegistryContext

__all__ = ["ExecutorApproval", "set_executor"]


@dataclass(frozen=True)
class ExecutorApproval:
    """An executor's approval on a dataset after `set_executor`; `tx_hash` is None when the
    chain already held it and nothing was sent."""

    dataset_id: int
    executor: str
    allowed: bool
    tx_hash: str | None


def set_executor(
    ctx: RegistryContext, dataset_id: int, executor: str, *, allowed: bool = True
) -> ExecutorApproval:
    """Allow (or, with ``allowed=False``, disallow) `executor` to record jobs on `dataset_id`,
    as the dataset's owner (the context's sender).

    Raises:
        RegistryArgumentError: `executor` is not an address, or `dataset_id` is not positive.
        DatasetNotFoundError: no such dataset on chain.
        NotOwnerError: the sender does not own the dataset.
        ContractRevert: the chain refused the transaction.
    """
    if dataset_id < 1:
        raise RegistryArgumentError("dataset_id", f"must be positive, got {dataset_id}")
    if not is_address(executor) or int(executor, 16) == 0:
        raise RegistryArgumentError("executor", "must be a non-zero 0x-prefixed 20-byte address")
    executor = to_checksum_address(executor)
    registry = ctx.registry
    if dataset_id > registry.functions.datasetCount().call():
        raise DatasetNotFoundError(
            f"dataset {dataset_id}", "on chain; find ids with `ledger dataset search`"
        )
    owner = to_checksum_address(registry.functions.ownerOf(dataset_id).call())
    if owner != ctx.owner:
        raise NotOwnerError(dataset_id, owner, ctx.owner)
    if registry.functions.isExecutor(dataset_id, executor).call() == allowed:
        return ExecutorApproval(dataset_id, executor, allowed, None)
    receipt = ctx.sender.send(registry.functions.setExecutor(dataset_id, executor, allowed))
    return ExecutorApproval(dataset_id, executor, allowed, receipt["transactionHash"].to_0x_hex())
