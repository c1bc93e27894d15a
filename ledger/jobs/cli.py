"""``ledger job ...``: submit a job, follow it, fetch its result, run the worker.

`install(app)` adds the group to the ``ledger`` command. The consumer's key is read from an
environment variable (``--key-env``, default ``LEDGER_CONSUMER_KEY``), never from the command
line, and never printed.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console

from ledger.jobs.errors import JobRequestError
from ledger.settings import get_settings

if TYPE_CHECKING:
    from ledger.jobs.pipeline import PipelineOptions

__all__ = ["install", "job_app"]

DEFAULT_KEY_ENV: Final = "LEDGER_CONSUMER_KEY"
_KEY: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_console = Console()

job_app = typer.Typer(
    help="Jobs: pay for a computation under grants, follow it, fetch the result.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
KeyEnvOption = Annotated[
    str,
    typer.Option(
        "--key-env",
        help="Environment variable holding the consumer's private key (the grantee's).",
    ),
]


def install(app: typer.Typer) -> None:
    """Add the ``job`` group to `app`."""
    app.add_typer(job_app, name="job")


def _consumer_key(variable: str) -> str:
    value = os.environ.get(variable, "")
    if not _KEY.fullmatch(value):
        raise JobRequestError(
            f"{variable} (consumer key)", "set to 0x followed by 64 hex digits in the environment"
        )
    return value


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines:
            _console.print(line, soft_wrap=True)


@job_app.command("submit")
def submit(
    grant: Annotated[
        list[Path], typer.Option("--grant", help="Grant terms JSON (one per dataset).")
    ],
    algorithm: Annotated[str, typer.Option("--algorithm", help="Catalog name or code hash.")],
    dataset: Annotated[list[str], typer.Option("--dataset", help="ID[:VERSION]; repeatable.")],
    params: Annotated[str, typer.Option("--params", help="Parameters as a JSON object.")] = "{}",
    pay: Annotated[
        int | None,
        typer.Option("--pay", min=0, help="Most you agree to escrow in all (base units)."),
    ] = None,
    executor_address: Annotated[
        str | None,
        typer.Option(
            "--executor",
            envvar="LEDGER_EXECUTOR_ADDRESS",
            help="The service's executor address (default: that of LEDGER_EXECUTOR_KEY).",
        ),
    ] = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
    as_json: JsonOption = False,
) -> None:
    """Submit a job: check the grants on chain, then escrow the payment with your key."""
    from eth_account import Account
    from web3 import Web3

    from ledger.chain.sender import SendPolicy, TxSender
    from ledger.jobs.adapters import resolve_algorithm
    from ledger.jobs.request import build_request, load_grants, parse_dataset, parse_params
    from ledger.jobs.service import open_context
    from ledger.jobs.submit import submit_job

    settings = get_settings()
    grants = tuple(g for path in grant for g in load_grants(path))
    parsed_params = parse_params(params)
    datasets = tuple(parse_dataset(d) for d in dataset)
    key = _consumer_key(key_env)
    consumer = Account.from_key(key).address
    request = build_request(
        consumer=consumer,
        grants=grants,
        algorithm=algorithm,
        algorithm_hash=bytes.fromhex(resolve_algorithm(algorithm)[2:]),
        params=parsed_params,
        datasets=datasets,
    )
    context = open_context(settings)
    try:
        sender = TxSender(context.chain.w3, key, SendPolicy(settings.confirmations))
        if executor_address is None:
            executor = Account.from_key(settings.resolved_executor_key()).address
        elif Web3.is_address(executor_address):
            executor = Web3.to_checksum_address(executor_address)
        else:
            raise JobRequestError("executor", "a 0x-prefixed 20-byte address")
        submitted = submit_job(
            context.store, context.chain, sender, request, executor=executor, pay=pay
        )
    finally:
        context.close()
    paid = ", ".join(f"{amount} of {token}" for token, amount, _ in submitted.escrows) or "nothing"
    _emit(
        {
            "job_id": submitted.job_id,
            "status": submitted.status,
            "escrows": [{"token": t, "amount": str(a), "tx": h} for t, a, h in submitted.escrows],
        },
        as_json,
        [
            f"job {submitted.job_id} submitted; escrowed {paid}",
            f"follow it with `ledger job status {submitted.job_id}`",
        ],
    )


@job_app.command("status")
def status(
    job_id: Annotated[str, typer.Argument(help="The job id (0x...).")],
    as_json: JsonOption = False,
) -> None:
    """Show a job's status (and why it failed, if it did)."""
    from ledger.jobs.queries import job_status
    from ledger.jobs.service import open_context

    context = open_context(get_settings())
    try:
        data = job_status(context.store, job_id)
    finally:
        context.close()
    lines = [f"job {data['job_id']}: [bold]{data['status']}[/bold]"]
    if data["reason"]:
        lines.append(f"failed ({data['reason']}): {data['detail']}")
    if data["record_tx"]:
        lines.append(f"recorded in {data['record_tx']}; receipt {data['receipt_hash']}")
    _emit(data, as_json, lines)


@job_app.command("result")
def result(
    job_id: Annotated[str, typer.Argument(help="The job id (0x...).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the result JSON here (and the receipt next to it as <FILE>.receipt.json).",
        ),
    ] = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
    as_json: JsonOption = False,
) -> None:
    """Fetch a job's result and receipt (the grantee only: your key's address must match)."""
    from eth_account import Account

    from ledger.jobs.queries import job_result
    from ledger.jobs.service import open_context

    caller = Account.from_key(_consumer_key(key_env)).address
    context = open_context(get_settings())
    try:
        data = job_result(context.store, context.results, job_id, caller)
    finally:
        context.close()
    lines = [f"job {data['job_id']}: result {data['result_hash']}"]
    if out is not None:
        out.write_text(json.dumps(data["result"], indent=2, sort_keys=True) + "\n")
        receipt_out = out.with_name(out.name + ".receipt.json")
        receipt_out.write_text(json.dumps(data["receipt"], indent=2, sort_keys=True) + "\n")
        lines.append(f"written to {out} (receipt {receipt_out})")
    else:
        lines.append(json.dumps(data["result"], indent=2, sort_keys=True))
    _emit(data, as_json, lines)


@job_app.command("worker")
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Advance every job as far as it goes, then exit.")
    ] = False,
    batched: Annotated[
        bool,
        typer.Option(
            "--batched/--per-job",
            envvar="LEDGER_JOBS_BATCHED",
            help="Anchor receipts in Merkle batches (LEDGER_JOBS_BATCHED).",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, envvar="LEDGER_JOBS_BATCH_SIZE")
    ] = 100,
    batch_wait: Annotated[
        float, typer.Option("--batch-wait", min=0.0, envvar="LEDGER_JOBS_BATCH_WAIT")
    ] = 10.0,
    payment_timeout: Annotated[
        float, typer.Option("--payment-timeout", min=0.0, help="Seconds to wait for escrows.")
    ] = 600.0,
    interval: Annotated[float, typer.Option("--interval", min=0.05)] = 1.0,
    threads: Annotated[
        int, typer.Option("--threads", min=1, max=64, help="Jobs advanced at once.")
    ] = 1,
    k: Annotated[
        int,
        typer.Option("--k", min=2, envvar="LEDGER_JOBS_K", help="Small-cell threshold."),
    ] = 10,
    extra_key_env: Annotated[
        list[str] | None,
        typer.Option(
            "--extra-executor-key-env",
            help="Environment variable holding another executor key (repeatable): one more "
            "worker process per key, each allowed as executor of the datasets "
            "(DataRegistry.setExecutor); jobs split between the processes by id.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the pipeline: take paid jobs to recorded results (restartable at any step)."""
    from ledger.jobs.pipeline import PipelineOptions
    from ledger.jobs.service import open_context, open_pipeline

    if extra_key_env:
        _worker_processes(
            [_executor_key(name) for name in extra_key_env],
            PipelineOptions(payment_timeout=payment_timeout, batched=batched),
            once=once,
            interval=interval,
            threads=threads,
            batch_size=batch_size,
            batch_wait=batch_wait,
            k=k,
            as_json=as_json,
        )
        return
    context = open_context(get_settings())
    options = PipelineOptions(payment_timeout=payment_timeout, batched=batched)
    pipeline = open_pipeline(context, options, batch_size=batch_size, batch_wait=batch_wait, k=k)
    stop = threading.Event()
    steps = 0
    try:
        while True:
            steps += pipeline.run_pending(force_anchor=once, threads=threads)
            if once or stop.wait(interval):
                break
    except KeyboardInterrupt:
        stop.set()
    finally:
        context.close()
    faults = [
        {"job_id": j, "status": st, "error": e, "message": m} for j, st, e, m in pipeline.faults
    ]
    lines = [f"worker done: {steps} steps"]
    lines += [f"[yellow]{f['job_id']} at {f['status']}: {f['message']}[/yellow]" for f in faults]
    _emit({"steps": steps, "faults": faults}, as_json, lines)
    if once and faults:
        raise typer.Exit(1)


def _executor_key(variable: str) -> str:
    value = os.environ.get(variable, "")
    if not _KEY.fullmatch(value):
        raise JobRequestError(
            f"{variable} (executor key)", "set to 0x followed by 64 hex digits in the environment"
        )
    return value


def _worker_processes(
    extra_keys: list[str],
    options: PipelineOptions,
    *,
    once: bool,
    interval: float,
    threads: int,
    batch_size: int,
    batch_wait: float,
    k: int,
    as_json: bool,
) -> None:
    """``ledger job worker`` with one process per executor key (`WorkerPool`)."""
    from ledger.jobs.workers import WorkerPool

    settings = get_settings()
    keys = [settings.resolved_executor_key(), *extra_keys]
    stop = threading.Event()
    steps = 0
    with WorkerPool(
        settings,
        keys,
        options,
        threads=threads,
        batch_size=batch_size,
        batch_wait=batch_wait,
        k=k,
    ) as pool:
        try:
            while True:
                steps += pool.run_pending(force_anchor=once)
                if once or stop.wait(interval):
                    break
        except KeyboardInterrupt:
            stop.set()
        faults = pool.faults
    lines = [f"worker done: {steps} steps in {len(keys)} processes"]
    if faults:
        lines.append(f"[yellow]{faults} faults (jobs left at their step for a retry)[/yellow]")
    _emit({"steps": steps, "processes": len(keys), "faults": faults}, as_json, lines)
    if once and faults:
        raise typer.Exit(1)
