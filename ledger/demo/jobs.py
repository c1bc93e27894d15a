"""The drug maker's jobs in the demo: submitted and paid from its own key, run by the executor's
pipeline (compute engine, DP, MPC parties, receipts, ``recordUsage``, weights), and verified."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from web3.logs import DISCARD

from ledger.demo.errors import DemoError
from ledger.demo.summary import JobOutcome, eth

if TYPE_CHECKING:
    from ledger.demo.world import World

__all__ = ["run_jobs", "verify_all"]

#: Seconds a job may wait for its escrows (they are sent before the pipeline runs).
_PAYMENT_TIMEOUT = 120.0


def run_jobs(world: World) -> list[str]:
    """Submit every job of `ledger.demo.world.JOBS`, run the pipeline, collect the outcomes."""
    from ledger.compute.catalog import entry
    from ledger.demo.world import JOBS, short
    from ledger.jobs.pipeline import PipelineOptions
    from ledger.jobs.queries import job_result, job_status
    from ledger.jobs.request import DatasetSpec, build_request
    from ledger.jobs.service import open_pipeline
    from ledger.jobs.submit import submit_job

    context = world.jobs_context
    consumer = world.sender(world.consumer)
    pipeline = open_pipeline(context, PipelineOptions(payment_timeout=_PAYMENT_TIMEOUT))
    vault = world.contracts["RevenueVault"]
    lines = []
    for plan in JOBS:
        hospitals = [world.hospitals[i] for i in plan.hospitals]
        grants = tuple(h.grants[plan.algorithm] for h in hospitals)
        request = build_request(
            consumer=world.consumer.address,
            grants=grants,
            algorithm=plan.algorithm,
            algorithm_hash=bytes.fromhex(entry(plan.algorithm).hash[2:]),
            params=plan.params,
            datasets=tuple(DatasetSpec(h.dataset_id) for h in hospitals),
        )
        price = sum(g.price_per_use for g in grants)
        submitted = submit_job(
            context.store,
            context.chain,
            consumer,
            request,
            executor=world.operator.address,
            pay=price,
        )
        escrow_txs = tuple(tx for _, _, tx in submitted.escrows)
        for tx in escrow_txs:
            world.note_sent("consumer", tx)
        pipeline.run_pending(force_anchor=True)
        status = job_status(context.store, submitted.job_id)
        if status["status"] != "done":
            raise DemoError(
                "jobs",
                f"job {plan.name} ({submitted.job_id}) ended {status['status']}"
                + (f" ({status['reason']}: {status['detail']})" if status["reason"] else ""),
            )
        released = job_result(context.store, context.results, submitted.job_id, consumer.address)
        record_tx = str(status["record_tx"])
        receipt = world.w3.eth.get_transaction_receipt(record_tx)  # type: ignore[arg-type]
        captured = sum(
            int(e["args"]["amount"]) + int(e["args"]["fee"])
            for e in vault.events.Captured().process_receipt(receipt, DISCARD)
        )
        world.jobs.append(
            JobOutcome(
                name=plan.name,
                algorithm=plan.algorithm,
                job_id=submitted.job_id,
                status=str(status["status"]),
                dataset_ids=tuple(h.dataset_id for h in hospitals),
                paid_wei=sum(amount for _, amount, _ in submitted.escrows),
                captured_wei=captured,
                escrow_txs=escrow_txs,
                record_tx=record_tx,
                receipt_hash=str(released["receipt_hash"]),
                result_hash=str(released["result_hash"]),
                result=dict(released["result"]),
                verified=False,
                verdict="not verified yet",
            )
        )
        world.receipts[submitted.job_id] = released["receipt"]
        where = ", ".join(f"{h.name} ({h.dataset_id})" for h in hospitals)
        lines.append(
            f"{plan.name} on {where}: job {short(submitted.job_id)} paid {eth(price)} "
            f"(escrow tx {', '.join(short(t) for t in escrow_txs)}), recorded in tx "
            f"{short(record_tx)}, receipt {short(str(released['receipt_hash']))}"
        )
        lines.append(f"  result: {describe(plan.name, released['result'], plan.params)}")
    return lines


def verify_all(world: World) -> list[str]:
    """Verify each job's released result and signed receipt with nothing but the RPC endpoint
    (a fresh web3 client, no database, no settings)."""
    from web3 import Web3

    from ledger.demo.world import short
    from ledger.provenance.canonical import canonical_json
    from ledger.provenance.verify import verify_result

    outsider = Web3(Web3.HTTPProvider(world.rpc_url, request_kwargs={"timeout": 30}))
    lines = []
    for i, job in enumerate(world.jobs):
        verdict = verify_result(
            canonical_json(job.result),
            world.receipts[job.job_id],
            outsider,
            from_block=world.deployment.deploy_block,
        )
        text = "verified" if verdict.verified else f"REJECTED ({verdict.reason}: {verdict.message})"
        world.jobs[i] = _replace(job, verified=verdict.verified, verdict=text)
        if not verdict.verified:
            raise DemoError("provenance", f"the receipt of job {job.name} was {text}")
        lines.append(
            f"{job.name}: result {short(job.result_hash)} and receipt {short(job.receipt_hash)} "
            f"{text} (signed by the executor, recorded on UsageLedger, dataset commitments match)"
        )
    return lines


def describe(name: str, result: dict[str, Any], params: dict[str, Any]) -> str:
    """A readable line for a released result of job `name` run with `params`."""
    from ledger.demo.world import BUDGET_MICRO

    if name == "dp_mean":
        return (
            f"mean radius {result.get('mean'):.3f} over about {result.get('n')} records "
            f"(differentially private: {params.get('epsilon')} epsilon of the grant's "
            f"{BUDGET_MICRO / 1e6:g})"
        )
    if name == "cohort_count":
        cells = ", ".join(
            f"{c['label']} {'suppressed' if c['count'] is None else c['count']}"
            for c in result.get("cells", [])
        )
        return f"{cells}; total {result.get('count')} (cells below k=10 would be suppressed)"
    coefficients = ", ".join(
        f"{c['feature']} {c['coefficient']:+.3f}" for c in result.get("coefficients", [])
    )
    return (
        f"n={result.get('n')}, intercept {result.get('intercept'):+.3f}, {coefficients} "
        f"({'converged' if result.get('converged') else 'not converged'} in "
        f"{result.get('iterations')} iterations)"
    )


def _replace(job: JobOutcome, **changes: Any) -> JobOutcome:
    from dataclasses import replace

    return replace(job, **changes)
