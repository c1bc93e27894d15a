"""Settlement epochs: compute entitlements from the index and the vaults, store them, publish the
root on ``RevenueVault``, serve proofs and send claims.

An epoch of a token covers the captured revenue of the blocks ``[from_block, to_block]``: the
first epoch starts at the deploy block, every later one right after the previous one ends (no
overlap, no gap), and it must end at or before the last final block (indexed, and with the
configured confirmations on the chain). Epoch numbers are the token's epochs on the chain.

Crash safety: an epoch is computed, its tree files written, and its rows stored (status
``computed``) in one database transaction before anything is sent. Publishing first reads the
chain: if the chain already holds the epoch with this root, the row is only marked published;
another root stops with `EpochConflictError`. The contract itself refuses a second publication
of an epoch (``RevenueVaultWrongEpoch``), so a rerun after a crash at any point never publishes
twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from eth_utils.address import to_checksum_address
from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select
from web3 import Web3
from web3.contract import Contract

from ledger.chain.client import call
from ledger.chain.deploy import Deployment, contracts_of
from ledger.chain.sender import TxSender
from ledger.settlement import claims
from ledger.settlement.allocation import AuthorShare, EpochAllocation, HeldKey, allocate_epoch
from ledger.settlement.errors import (
    EpochNotFinalError,
    EpochRangeError,
    UnknownEpochError,
    VaultNotFoundError,
)
from ledger.settlement.inputs import captured_usages, index_cursor, tokens_with_revenue, versions_by
from ledger.settlement.publication import Publisher
from ledger.settlement.results import (
    ClaimOutcome,
    ClaimProof,
    Computed,
    EpochOutcome,
    VerifyReport,
    checked_address,
)
from ledger.settlement.trees import build_tree, tree_indexes, write_tree
from ledger.settlement.vaults import VaultIndex
from ledger.store.models.settlement import (
    EpochStatus,
    SettlementEntitlement,
    SettlementEpoch,
    SettlementHeld,
)

__all__ = ["ETH", "PROOFS_FILE_LIMIT", "Settlement"]

#: The token address of ETH payments.
ETH: Final = to_checksum_address("0x" + "00" * 20)
_ZERO_ROOT: Final = "0x" + "00" * 32
#: Largest tree whose epoch directory also gets the all-proofs JSON (``tree.proofs.json``).
PROOFS_FILE_LIMIT: Final = 100_000
_TOP_CONTRIBUTORS: Final = 20


class Settlement:
    """Settlement of one deployment's revenue, on one database and the vaults under a data dir.

    Args:
        w3: the chain.
        deployment: the deployment whose ``RevenueVault`` is settled.
        engine: the (migrated) index database; settlement tables live there too.
        vaults: where the owners' vaults are found (weights and contributor tables).
        out_dir: where tree files go (``<out_dir>/<token>/epoch-<n>/tree.json``...).
        sender: the settler's sender (SETTLER_ROLE); needed only to publish.
        confirmations: blocks (the including one counted) before a block is final.
        authors: algorithm hash -> the author's share, for algorithms that name an author.
    """

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        engine: Engine,
        *,
        vaults: VaultIndex,
        out_dir: Path,
        sender: TxSender | None = None,
        confirmations: int = 1,
        authors: Mapping[str, AuthorShare] | None = None,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.engine = engine
        self.vaults = vaults
        self.out_dir = out_dir
        self.sender = sender
        self.confirmations = confirmations
        self.authors = {k.lower(): v for k, v in (authors or {}).items()}
        self.vault: Contract = contracts_of(w3, deployment)["RevenueVault"]
        self.publisher = Publisher(
            w3, self.vault, engine, sender, deploy_block=deployment.deploy_block
        )

    # ------------------------------------------------------------------ reading state

    def final_block(self) -> int:
        """The last block an epoch may end at: indexed, and final on the chain.

        Raises:
            EpochNotFinalError: the chain was never indexed.
        """
        cursor = index_cursor(self.engine, self.deployment.chain_id)
        if cursor is None:
            raise EpochNotFinalError(None, None, "this chain was never indexed")
        head = int(self.w3.eth.block_number)
        return min(cursor.block_number, head - self.confirmations + 1)

    def epochs(self, token: str) -> list[SettlementEpoch]:
        """Every stored epoch of `token`, oldest first."""
        token = checked_address(token, "token")
        with Session(self.engine) as session:
            query = select(SettlementEpoch).where(SettlementEpoch.token == token)
            return list(session.exec(query.order_by(col(SettlementEpoch.epoch))))

    def epoch(self, token: str, epoch: int) -> SettlementEpoch:
        """A stored epoch.

        Raises:
            UnknownEpochError: it was never computed here.
        """
        token = checked_address(token, "token")
        with Session(self.engine) as session:
            row = session.get(SettlementEpoch, (token, epoch))
        if row is None:
            known = [e.epoch for e in self.epochs(token)]
            shown = f"epochs 1-{known[-1]} exist" if known else "no epoch exists yet"
            raise UnknownEpochError(token, epoch, f"unknown epoch ({shown})")
        return row

    def tokens(self, to_block: int | None = None) -> list[str]:
        """Tokens with stored epochs or with captured revenue up to `to_block` (default: final)."""
        end = self.final_block() if to_block is None else to_block
        found = set(tokens_with_revenue(self.engine, 0, end))
        with Session(self.engine) as session:
            found.update(session.exec(select(SettlementEpoch.token).distinct()))
        return sorted(found)

    # ------------------------------------------------------------------ computing

    def plan(
        self,
        token: str,
        *,
        epoch: int | None = None,
        from_block: int | None = None,
        to_block: int | None = None,
    ) -> tuple[int, int, int]:
        """The next epoch of `token` as ``(epoch, from_block, to_block)``, checked; without
        `to_block` the range may be empty (``to_block < from_block``: nothing final is new).

        Raises:
            UnknownEpochError: `epoch` is not the next one.
            EpochRangeError: `from_block` overlaps the previous epoch or leaves a gap, or the
                range is empty.
            EpochNotFinalError: `to_block` is past the last final block.
        """
        token = checked_address(token, "token")
        stored = self.epochs(token)
        previous = stored[-1] if stored else None
        number = previous.epoch + 1 if previous else 1
        if epoch is not None and epoch != number:
            raise UnknownEpochError(
                token,
                epoch,
                f"the next epoch to compute is {number}"
                if epoch > number
                else f"epoch {epoch} exists (blocks {self._range_of(stored, epoch)})",
            )
        start = previous.to_block + 1 if previous else self.deployment.deploy_block
        if from_block is not None and from_block != start:
            if from_block < start and previous is not None:
                raise EpochRangeError(
                    token,
                    number,
                    "from_block",
                    f"{from_block} overlaps epoch {previous.epoch} (blocks "
                    f"{previous.from_block}-{previous.to_block}); it must be {start}",
                )
            raise EpochRangeError(
                token,
                number,
                "from_block",
                f"{from_block} must be {start}, right after the previous epoch (no gap)",
            )
        final = self.final_block()
        end = final if to_block is None else to_block
        if end > final:
            raise EpochNotFinalError(
                end, final, f"{self.confirmations} confirmation(s) and the index cursor"
            )
        if end < start and to_block is not None:
            raise EpochRangeError(
                token, number, "to_block", f"{end} must be at least from_block {start}"
            )
        return number, start, end

    def compute(self, token: str, epoch: int, from_block: int, to_block: int) -> Computed | None:
        """Compute epoch `epoch` of `token` over ``[from_block, to_block]`` on top of the stored
        epoch before it, storing nothing. None when it would change no entitlement.

        Raises:
            WeightsError: a job's weights are missing or malformed.
            VaultNotFoundError: a dataset's vault or contributor table is not here.
        """
        token = checked_address(token, "token")
        previous, held_before = self._state_after(token, epoch - 1)
        return self._compute(token, epoch, from_block, to_block, previous, held_before)

    def _compute(
        self,
        token: str,
        epoch: int,
        from_block: int,
        to_block: int,
        previous: dict[str, int],
        held_before: dict[HeldKey, int],
    ) -> Computed | None:
        usages = captured_usages(self.engine, token, from_block, to_block)
        paired = []
        for usage in usages:
            if not usage.owner:
                raise VaultNotFoundError(usage.dataset_id, "the index has no owner for it")
            weights = self.vaults.weights(usage.job_id, usage.dataset_id, usage.version)
            paired.append((usage, weights.weights))
        dataset_ids = sorted({u.dataset_id for u in usages} | {d for d, _ in held_before})
        versions = versions_by(self.engine, dataset_ids, to_block)
        payouts = {d: self.vaults.payouts(d, versions.get(d, [])) for d in dataset_ids}
        allocation = allocate_epoch(
            paired,
            previous=previous,
            held_before=held_before,
            payouts=payouts,
            authors=self.authors,
        )
        if not allocation.increments:
            return None
        tree, accounts = build_tree(allocation.cumulative)
        return Computed(
            token, epoch, from_block, to_block, len(usages), allocation, tree.root, accounts, tree
        )

    def _state_after(self, token: str, epoch: int) -> tuple[dict[str, int], dict[HeldKey, int]]:
        if epoch < 1:
            return {}, {}
        with Session(self.engine) as session:
            rows = session.exec(
                select(SettlementEntitlement.account, SettlementEntitlement.cumulative).where(
                    SettlementEntitlement.token == token, SettlementEntitlement.epoch == epoch
                )
            )
            cumulative = {a: c for a, c in rows}  # noqa: C416 - rows are not pairs to dict()
            held_rows = session.exec(
                select(
                    SettlementHeld.dataset_id, SettlementHeld.contributor, SettlementHeld.amount
                ).where(SettlementHeld.token == token, SettlementHeld.epoch == epoch)
            )
            held = {(d, p): a for d, p, a in held_rows}
        return cumulative, held

    # ------------------------------------------------------------------ running

    def run(
        self,
        token: str,
        *,
        epoch: int | None = None,
        from_block: int | None = None,
        to_block: int | None = None,
        dry_run: bool = False,
    ) -> list[EpochOutcome]:
        """Settle `token`: finish stored epochs not yet published, then compute, store and
        publish the next epoch if it changes any entitlement. Running again publishes nothing
        new. With `epoch` naming a stored epoch, only that one is finished (or reported).

        Raises:
            UnknownEpochError, EpochRangeError, EpochNotFinalError: the epoch asked for is not
                the next one, overlaps, leaves a gap, or is not final.
            WeightsError, VaultNotFoundError: the vaults lack what the epoch needs.
            EpochConflictError: the chain holds another root for an epoch.
            SettingsError: publishing is needed and there is no settler key.
            ContractRevert, TransactionFailedError, RpcUnavailableError: sending failed.
        """
        token = checked_address(token, "token")
        stored = self.epochs(token)
        outcomes: list[EpochOutcome] = []
        if epoch is not None and stored and epoch <= stored[-1].epoch:
            row = next(e for e in stored if e.epoch == epoch)
            for name, given, kept in (
                ("from_block", from_block, row.from_block),
                ("to_block", to_block, row.to_block),
            ):
                if given is not None and given != kept:
                    raise EpochRangeError(
                        token,
                        epoch,
                        name,
                        f"{given} overlaps the stored epoch {epoch} (blocks "
                        f"{row.from_block}-{row.to_block}); an epoch's range never changes",
                    )
            if dry_run or row.status == EpochStatus.PUBLISHED:
                return [self._outcome(row, sent=False)]
            for pending in stored:
                if pending.status == EpochStatus.COMPUTED and pending.epoch <= epoch:
                    outcomes.append(self.publish(token, pending.epoch))
            return outcomes
        if not dry_run:
            for pending in stored:
                if pending.status == EpochStatus.COMPUTED:
                    outcomes.append(self.publish(token, pending.epoch))
        number, start, end = self.plan(token, epoch=epoch, from_block=from_block, to_block=to_block)
        if end < start:  # no final block since the previous epoch: nothing to settle
            return outcomes
        computed = self.compute(token, number, start, end)
        if computed is None:
            return outcomes
        if dry_run:
            return [*outcomes, self._outcome_of(computed)]
        self.store(computed)
        outcomes.append(self.publish(token, number))
        return outcomes

    def store(self, computed: Computed) -> SettlementEpoch:
        """Write the tree files and store the epoch (status computed) in one transaction."""
        dump = self.tree_path(computed.token, computed.epoch)
        tree, accounts = computed.tree, computed.accounts
        # Proofs are served from the nodes file; the all-proofs JSON is for smaller trees only.
        write_tree(tree, dump, with_proofs=len(accounts) <= PROOFS_FILE_LIMIT)
        indexes = tree_indexes(tree)
        allocation = computed.allocation
        row = SettlementEpoch(
            token=computed.token,
            epoch=computed.epoch,
            chain_id=self.deployment.chain_id,
            from_block=computed.from_block,
            to_block=computed.to_block,
            root=computed.root,
            total=allocation.total,
            distributable=allocation.distributable,
            held_total=allocation.held_total,
            accounts=len(accounts),
            usages=computed.usages,
            summary=_summary(allocation),
            tree_file=str(dump),
            status=EpochStatus.COMPUTED,
            computed_at=datetime.now(UTC),
        )
        entitlements = [
            {
                "token": computed.token,
                "epoch": computed.epoch,
                "account": account,
                "cumulative": allocation.cumulative[account],
                "amount": allocation.increments.get(account, 0),
                "tree_index": indexes[i],
            }
            for i, account in enumerate(accounts)
        ]
        held = [
            {
                "token": computed.token,
                "epoch": computed.epoch,
                "dataset_id": dataset_id,
                "contributor": pseudonym,
                "amount": amount,
            }
            for (dataset_id, pseudonym), amount in sorted(allocation.held.items())
        ]
        with Session(self.engine) as session, session.begin():
            session.add(row)
            session.flush()
            for start in range(0, len(entitlements), 10_000):
                session.execute(insert(SettlementEntitlement), entitlements[start : start + 10_000])
            if held:
                session.execute(insert(SettlementHeld), held)
        return self.epoch(computed.token, computed.epoch)

    def tree_path(self, token: str, epoch: int) -> Path:
        """Where the dump of a token's epoch tree goes."""
        return self.out_dir / token / f"epoch-{epoch}" / "tree.json"

    # ------------------------------------------------------------------ publishing

    def publish(self, token: str, epoch: int) -> EpochOutcome:
        """Publish a stored epoch unless the chain has it already (then only mark it).

        Raises:
            UnknownEpochError: the epoch is not stored, or the one before it is not on chain.
            EpochConflictError: the chain holds another root or total for it.
            SettingsError: there is no settler sender.
            ContractRevert, TransactionFailedError, RpcUnavailableError: sending failed.
        """
        row = self.epoch(checked_address(token, "token"), epoch)
        if row.status == EpochStatus.PUBLISHED:
            return self._outcome(row, sent=False)
        row, sent = self.publisher.publish(row)
        return self._outcome(row, sent=sent)

    # ------------------------------------------------------------------ verifying

    def verify(self, token: str, epoch: int) -> VerifyReport:
        """Recompute epochs 1..`epoch` of `token` from the index and the vaults (their stored
        block ranges only) and compare the root with the stored and the published one.

        Raises:
            UnknownEpochError: the epoch is not stored.
            WeightsError, VaultNotFoundError: the vaults lack what the epochs need.
        """
        token = checked_address(token, "token")
        target = self.epoch(token, epoch)
        cumulative: dict[str, int] = {}
        held: dict[HeldKey, int] = {}
        recomputed: Computed | None = None
        for row in self.epochs(token):
            if row.epoch > epoch:
                break
            recomputed = self._compute(
                token, row.epoch, row.from_block, row.to_block, cumulative, held
            )
            if recomputed is not None:
                cumulative = recomputed.allocation.cumulative
                held = recomputed.allocation.held
        published = "0x" + bytes(call(self.vault.functions.epochRoot(token, epoch))).hex()
        stored, _ = self._state_after(token, epoch)
        differences = [
            {
                "account": account,
                "stored": str(stored.get(account, 0)),
                "recomputed": str(cumulative.get(account, 0)),
            }
            for account in sorted(set(stored) | set(cumulative))
            if stored.get(account, 0) != cumulative.get(account, 0)
        ][:20]
        root = recomputed.root if recomputed is not None else _ZERO_ROOT
        return VerifyReport(
            token=token,
            epoch=epoch,
            recomputed_root=root,
            recomputed_total=sum(cumulative.values()),
            stored_root=target.root,
            published_root=None if published == _ZERO_ROOT else published,
            differences=differences,
        )

    # ------------------------------------------------------------------ proofs and claims

    def proof(self, token: str, account: str, epoch: int | None = None) -> ClaimProof:
        """The proof of `account` in the latest published epoch of `token` (or `epoch`).

        Raises:
            NoEntitlementError: the account is not in that epoch's tree (or none is published).
            UnknownEpochError: `epoch` is not stored.
        """
        return claims.proof(self, token, account, epoch)

    def claim(self, token: str, account: str, sender: TxSender) -> ClaimOutcome:
        """Send `account`'s claim (from any sender: the payment goes to `account`).

        Raises:
            NoEntitlementError: the account is in no published tree.
            NothingToClaimError: everything due is claimed already.
            StaleProofError: the chain's current root is another epoch's.
            ContractRevert, TransactionFailedError, RpcUnavailableError: sending failed.
        """
        return claims.claim(self, token, account, sender)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _range_of(stored: list[SettlementEpoch], epoch: int) -> str:
        row = next((e for e in stored if e.epoch == epoch), None)
        return f"{row.from_block}-{row.to_block}" if row else "?"

    def _outcome(self, row: SettlementEpoch, *, sent: bool) -> EpochOutcome:
        return EpochOutcome(
            token=row.token,
            epoch=row.epoch,
            from_block=row.from_block,
            to_block=row.to_block,
            root=row.root,
            total=row.total,
            distributable=row.distributable,
            held_total=row.held_total,
            accounts=row.accounts,
            usages=row.usages,
            status=str(row.status),
            sent=sent,
            tx_hash=row.tx_hash,
            tree_file=row.tree_file,
        )

    def _outcome_of(self, computed: Computed) -> EpochOutcome:
        allocation = computed.allocation
        return EpochOutcome(
            token=computed.token,
            epoch=computed.epoch,
            from_block=computed.from_block,
            to_block=computed.to_block,
            root=computed.root,
            total=allocation.total,
            distributable=allocation.distributable,
            held_total=allocation.held_total,
            accounts=len(computed.accounts),
            usages=computed.usages,
            status="dry-run",
            sent=False,
            tx_hash=None,
            tree_file="",
        )


def _summary(allocation: EpochAllocation) -> dict[str, Any]:
    """What reports need of an epoch beyond the entitlement rows (pseudonyms, never rows)."""
    top = sorted(allocation.contributors.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "by_dataset": {
            str(d): {k: str(v) for k, v in parts.items()}
            for d, parts in sorted(allocation.by_dataset.items())
        },
        "top_contributors": [
            {"dataset_id": d, "contributor": p, "amount": str(a)}
            for (d, p), a in top[:_TOP_CONTRIBUTORS]
        ],
        "contributors": len(allocation.contributors),
        "released": str(sum(allocation.released.values())),
        "increments": str(sum(allocation.increments.values())),
    }
