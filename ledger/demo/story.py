"""The demo story, end to end, with the real modules on a chain and a database of its own.

`run_demo` starts its own anvil (a free loopback port), deploys the contracts into a fresh data
dir with a SQLite index there, and plays: three hospitals ingest their part of the breast cancer
table into their vaults (schema-validated, de-identified, departments as contributors with payout
addresses) and register it; each allows the platform's executor and signs EIP-712 grants for a
drug maker, which the platform relays with ``issueWithSig``; the drug maker pays for a DP mean,
a cohort count and a secure logistic regression across the three; each result's receipt is
verified against the chain over RPC only; the index catches up; an epoch is settled and a
department claims. Everything it started is stopped before it returns, also on failure.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from ledger.demo.errors import DemoDataDirError, DemoError
from ledger.demo.summary import DemoSummary, Progress, StepReport

__all__ = ["HOSPITAL_COUNT", "run_demo"]

#: Hospitals in the story (the breast cancer table is dealt round-robin into this many parts).
HOSPITAL_COUNT: Final = 3


@dataclass
class _Step:
    """Lines a step collects for its report."""

    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


@dataclass
class _Recorder:
    """Runs steps, turns their failures into `DemoError`, and reports them."""

    progress: Progress | None
    reports: list[StepReport] = field(default_factory=list)

    @contextmanager
    def step(self, name: str, title: str) -> Iterator[_Step]:
        started = time.monotonic()
        collected = _Step()
        try:
            yield collected
        except DemoError:
            raise
        except Exception as exc:  # any failure of a module becomes one line naming the step
            raise DemoError(name, _one_line(exc)) from exc
        report = StepReport(name, title, tuple(collected.lines), time.monotonic() - started)
        self.reports.append(report)
        if self.progress is not None:
            self.progress(report)


def run_demo(
    data_dir: Path | None = None,
    *,
    progress: Progress | None = None,
    port: int | None = None,
    keep: bool | None = None,
) -> DemoSummary:
    """Play the whole story (see the module notes) and return what happened.

    `data_dir` must be absent or empty; None uses a temporary directory. It is removed at the
    end unless `keep` (default: kept when `data_dir` is given). `port` is the anvil port
    (default: a free one). `progress` is called after every step.

    Raises:
        DemoDataDirError: `data_dir` exists and is not empty.
        DemoError: a step failed (names it and why), or a check of the outcome failed
            (`DemoCheckError`); everything started is stopped first.
    """
    if data_dir is not None:
        data_dir = Path(data_dir).resolve()
        if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
            raise DemoDataDirError(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        keep = True if keep is None else keep
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="ledger-demo-"))
        keep = False if keep is None else keep
    recorder = _Recorder(progress)
    try:
        return _play(data_dir, recorder, port=port, keep=keep)
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def _play(data_dir: Path, recorder: _Recorder, *, port: int | None, keep: bool) -> DemoSummary:
    # Imported here: `ledger --help` should not pay for the whole product's imports.
    from ledger.demo import jobs, ledger_steps, owners
    from ledger.demo.world import World

    started = time.monotonic()
    with ExitStack() as stack:
        with recorder.step("chain", "An embedded chain of its own") as step:
            world = stack.enter_context(World.start(data_dir, port=port))
            step.say(f"anvil on {world.rpc_url} (chain id {world.chain_id}), data in {data_dir}")
            step.say(f"contracts deployed by the operator {world.operator.address}")
            for name, address in world.deployment.addresses.items():
                step.say(f"  {name:<13} {address}")
        before = world.balances()
        with recorder.step("ingest", "Three hospitals ingest their records") as step:
            for line in owners.ingest_all(world):
                step.say(line)
        with recorder.step("register", "Datasets registered on chain") as step:
            for line in owners.register_all(world):
                step.say(line)
        with recorder.step("grants", "Owners sign grants for the drug maker") as step:
            for line in owners.grant_all(world):
                step.say(line)
        with recorder.step("jobs", "The drug maker pays for three computations") as step:
            for line in jobs.run_jobs(world):
                step.say(line)
        with recorder.step("provenance", "Receipts verified against the chain (RPC only)") as step:
            for line in jobs.verify_all(world):
                step.say(line)
        with recorder.step("index", "The index catches up") as step:
            for line in ledger_steps.index(world):
                step.say(line)
        with recorder.step("settle", "Revenue settled in an epoch") as step:
            for line in ledger_steps.settle(world):
                step.say(line)
        with recorder.step("claim", "A department claims its share") as step:
            for line in ledger_steps.claim(world):
                step.say(line)
        after = world.balances()
        with recorder.step("checks", "Balances add up") as step:
            checks = ledger_steps.check(world, before, after)
            for name, ok in checks.items():
                step.say(f"{'ok  ' if ok else 'FAIL'} {name.replace('_', ' ')}")
        summary = ledger_steps.summary(
            world, before, after, checks, kept=keep, seconds=time.monotonic() - started
        )
    # The chain is stopped here (the ExitStack closed); report that last.
    return replace(summary, steps=list(recorder.reports))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
