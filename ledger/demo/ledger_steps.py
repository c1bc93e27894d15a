"""The demo's closing steps: the index, settlement, a contributor's claim, the consistency checks
and the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from ledger.demo.errors import DemoCheckError, DemoError
from ledger.demo.summary import Balances, DemoSummary, eth

if TYPE_CHECKING:
    from ledger.demo.world import World

__all__ = ["check", "claim", "index", "settle", "summary"]


def index(world: World) -> list[str]:
    """Bring the index up to the chain's head; read the catalog and a lineage from it."""
    from ledger.demo.world import short
    from ledger.indexer.service import Indexer, IndexerOptions
    from ledger.provenance.lineage import lineage
    from ledger.registry.catalog import dataset_detail, search_datasets
    from ledger.settlement.service import ETH

    report = Indexer(
        world.w3, world.deployment, world.engine, options=IndexerOptions(confirmations=1)
    ).run_once()
    page = search_datasets(world.engine, "breast cancer")
    world.index_report = {
        "events": report.events,
        "to_block": report.end_block,
        "catalog_hits": page.total,
        "datasets": {},
    }
    lines = [
        f"{report.events} events indexed up to block {report.end_block}; a catalog search for "
        f"'breast cancer' finds {page.total} datasets (metadata only, never rows)"
    ]
    for hospital in world.hospitals:
        detail = dataset_detail(world.engine, hospital.dataset_id)
        revenue = int(detail.usage.revenue.get(ETH, 0))
        world.index_report["datasets"][str(hospital.dataset_id)] = {
            "jobs": detail.usage.jobs,
            "uses": detail.usage.uses,
            "epsilon_micro": detail.usage.epsilon_micro,
            "revenue_wei": str(revenue),
        }
        lines.append(
            f"dataset {hospital.dataset_id} ({hospital.name}): "
            f"{_plural(detail.usage.jobs, 'job')}, "
            f"{detail.usage.epsilon_micro / 1e6:g} epsilon spent, {eth(revenue)} net revenue"
        )
    regression = world.jobs[-1]
    with Session(world.engine) as session:
        trace = lineage(session, regression.job_id)
    recorded = trace.recorded is not None
    world.index_report["lineage"] = {
        "job_id": regression.job_id,
        "datasets": len(trace.datasets),
        "grants": len(trace.grants),
        "recorded": recorded,
    }
    lines.append(
        f"lineage of job {short(regression.job_id)}: {len(trace.datasets)} dataset versions -> "
        f"{len(trace.grants)} grants -> algorithm {short(str(trace.algorithm_hash))} -> result "
        f"{short(str(trace.result_hash))}{', recorded on chain' if recorded else ''}"
    )
    if not recorded or len(trace.datasets) != len(world.hospitals):
        raise DemoError("index", "the lineage of the regression does not show its recorded use")
    return lines


def settle(world: World) -> list[str]:
    """Compute, store and publish epoch 1 of the ETH revenue; read every entitlement."""
    from ledger.demo.world import short
    from ledger.settlement.errors import NoEntitlementError
    from ledger.settlement.service import ETH, Settlement
    from ledger.settlement.vaults import VaultIndex

    service = Settlement(
        world.w3,
        world.deployment,
        world.engine,
        vaults=VaultIndex(
            world.data_dir,
            chain_id=world.chain_id,
            registry=world.deployment.addresses["DataRegistry"],
        ),
        out_dir=world.data_dir / "settlement" / str(world.chain_id),
        sender=world.sender(world.operator),
        confirmations=1,
    )
    world.settlement = service
    outcomes = service.run(ETH)
    if len(outcomes) != 1 or not outcomes[0].sent:
        raise DemoError("settle", f"expected one newly published epoch, got {len(outcomes)}")
    epoch = outcomes[0]
    entitled: dict[str, int] = {}
    for hospital in world.hospitals:
        for label, address in [
            (f"{hospital.name}/owner", hospital.owner.address),
            *((f"{hospital.name}/{d}", a.address) for d, a in hospital.payouts.items()),
        ]:
            try:
                entitled[label] = service.proof(ETH, address).cumulative
            except NoEntitlementError:
                entitled[label] = 0
    contributors = {k: v for k, v in entitled.items() if not k.endswith("/owner")}
    world.claimer = max(sorted(contributors), key=lambda k: contributors[k])
    world.epoch_report = {
        "token": epoch.token,
        "epoch": epoch.epoch,
        "from_block": epoch.from_block,
        "to_block": epoch.to_block,
        "root": epoch.root,
        "total_wei": str(epoch.total),
        "distributable_wei": str(epoch.distributable),
        "held_wei": str(epoch.held_total),
        "accounts": epoch.accounts,
        "usages": epoch.usages,
        "tx_hash": epoch.tx_hash,
        "entitlements_wei": {k: str(v) for k, v in entitled.items()},
    }
    owners = sum(v for k, v in entitled.items() if k.endswith("/owner"))
    paid = sum(j.paid_wei for j in world.jobs)
    fee_bps = int(world.contracts["RevenueVault"].functions.feeBps().call())
    return [
        f"epoch {epoch.epoch} (blocks {epoch.from_block}-{epoch.to_block}): {epoch.usages} "
        f"captured uses, {eth(paid)} paid less the {fee_bps / 100:g}% platform fee = "
        f"{eth(epoch.total)} to {epoch.accounts} accounts; root {short(epoch.root)} published "
        f"in tx {short(str(epoch.tx_hash))}",
        f"owners' share {eth(owners)}; departments' share {eth(sum(contributors.values()))}, "
        f"split by the records each job used",
        *(f"  {label}: {eth(amount)}" for label, amount in sorted(contributors.items())),
    ]


def claim(world: World) -> list[str]:
    """The department with the largest entitlement claims it; the operator relays the claim,
    so the department's fresh payout address needs no ETH for gas."""
    from ledger.demo.world import short
    from ledger.settlement.service import ETH

    hospital_name, department = world.claimer.split("/")
    hospital = next(h for h in world.hospitals if h.name == hospital_name)
    account = hospital.payouts[department]
    outcome = world.settlement.claim(ETH, account.address, world.sender(world.operator))
    world.claim_report = {
        "contributor": world.claimer,
        "account": outcome.account,
        "amount_wei": str(outcome.amount),
        "cumulative_wei": str(outcome.cumulative),
        "tx_hash": outcome.tx_hash,
    }
    return [
        f"{hospital_name}'s {department} department ({short(account.address)}) claimed "
        f"{eth(outcome.amount)} with its Merkle proof, relayed in tx {short(outcome.tx_hash)}"
    ]


def check(world: World, before: Balances, after: Balances) -> dict[str, bool]:
    """Whether the balances and outcomes add up; raises if one does not.

    Raises:
        DemoCheckError: names the first failed check.
    """
    paid = sum(j.paid_wei for j in world.jobs)
    captured = sum(j.captured_wei for j in world.jobs)
    claimed = int(world.claim_report["amount_wei"])
    claimer = world.claimer
    checks = {
        "three_datasets_registered": len({h.dataset_id for h in world.hospitals}) == 3,
        "three_jobs_done": len(world.jobs) == 3 and all(j.status == "done" for j in world.jobs),
        "receipts_verified": all(j.verified for j in world.jobs),
        "consumer_paid_equals_captured": paid == captured > 0,
        "consumer_balance_fell_by_payments_and_gas": (
            before.consumer - after.consumer == paid + world.gas_of("consumer")
        ),
        "owners_balances_fell_by_gas_only": all(
            before.owners[h.name] - after.owners[h.name] == world.gas_of(f"owner:{h.name}")
            for h in world.hospitals
        ),
        "epoch_total_within_captured": 0 < int(world.epoch_report["total_wei"]) <= captured,
        "claim_is_the_entitlement": (
            claimed == int(world.epoch_report["entitlements_wei"][claimer]) > 0
        ),
        "contributor_balance_rose_by_claim": (
            after.contributors[claimer] - before.contributors[claimer] == claimed
        ),
        "vault_holds_payments_less_claim": after.vault - before.vault == paid - claimed,
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise DemoCheckError(failed[0], f"{len(failed)} check(s) failed: {', '.join(failed)}")
    return checks


def summary(
    world: World,
    before: Balances,
    after: Balances,
    checks: dict[str, bool],
    *,
    kept: bool,
    seconds: float,
) -> DemoSummary:
    """The `DemoSummary` of the finished story."""
    from ledger.demo.summary import DatasetOutcome

    gas: dict[str, Any] = {"consumer": str(world.gas_of("consumer"))}
    gas["owners"] = {h.name: str(world.gas_of(f"owner:{h.name}")) for h in world.hospitals}
    return DemoSummary(
        chain_id=world.chain_id,
        data_dir=str(world.data_dir),
        kept=kept,
        contracts=dict(world.deployment.addresses),
        accounts={
            "operator": world.operator.address,
            "drug_maker": world.consumer.address,
            "hospitals": {h.name: h.owner.address for h in world.hospitals},
            "payouts": {
                f"{h.name}/{d}": a.address for h in world.hospitals for d, a in h.payouts.items()
            },
        },
        datasets=[
            DatasetOutcome(
                hospital=h.name,
                owner=h.owner.address,
                name=h.dataset,
                dataset_id=h.dataset_id,
                rows=h.rows,
                contributors=h.contributors,
                commitment=h.commitment,
                register_tx=h.register_tx,
                executor_tx=h.executor_tx,
            )
            for h in world.hospitals
        ],
        grants=list(world.grants),
        jobs=list(world.jobs),
        index=world.index_report,
        epoch=world.epoch_report,
        claim=world.claim_report,
        balances_before=before,
        balances_after=after,
        gas_wei=gas,
        checks=checks,
        seconds=seconds,
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
