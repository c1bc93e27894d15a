"""Per-epoch settlement reports: CSV of entitlements, JSON summary, PNG chart (matplotlib Agg).

Reports show addresses and contributor pseudonyms only, never rows or raw identifiers. The chart
has three panels: revenue by dataset (owner, author and contributor parts), the top contributors
of the epoch (by pseudonym, shortened) and the cumulative published total per epoch.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger.settlement.errors import UnknownEpochError
from ledger.store.models.settlement import SettlementEntitlement, SettlementEpoch

__all__ = ["ReportFiles", "epoch_report", "write_report"]

_TOP: Final = 10


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The three files of an epoch's report."""

    csv: Path
    json: Path
    png: Path


def epoch_report(engine: Engine, token: str, epoch: int) -> dict[str, Any]:
    """The JSON summary of a stored epoch (amounts as decimal strings).

    Raises:
        UnknownEpochError: the epoch is not stored.
    """
    with Session(engine) as session:
        row = session.get(SettlementEpoch, (token, epoch))
        if row is None:
            raise UnknownEpochError(token, epoch, "unknown epoch (not stored here)")
        history = session.exec(
            select(SettlementEpoch)
            .where(SettlementEpoch.token == token, col(SettlementEpoch.epoch) <= epoch)
            .order_by(col(SettlementEpoch.epoch))
        ).all()
        top = session.exec(
            select(SettlementEntitlement)
            .where(SettlementEntitlement.token == token, SettlementEntitlement.epoch == epoch)
            .order_by(col(SettlementEntitlement.amount).desc(), col(SettlementEntitlement.account))
            .limit(_TOP)
        ).all()
    return {
        "token": row.token,
        "epoch": row.epoch,
        "from_block": row.from_block,
        "to_block": row.to_block,
        "status": str(row.status),
        "root": row.root,
        "tx_hash": row.tx_hash,
        "total": str(row.total),
        "distributable": str(row.distributable),
        "held_total": str(row.held_total),
        "accounts": row.accounts,
        "usages": row.usages,
        "by_dataset": row.summary.get("by_dataset", {}),
        "top_contributors": row.summary.get("top_contributors", [])[:_TOP],
        "contributors": row.summary.get("contributors", 0),
        "released": row.summary.get("released", "0"),
        "top_accounts": [
            {"account": e.account, "amount": str(e.amount), "cumulative": str(e.cumulative)}
            for e in top
        ],
        "history": [
            {
                "epoch": h.epoch,
                "total": str(h.total),
                "distributable": str(h.distributable),
                "held_total": str(h.held_total),
            }
            for h in history
        ],
    }


def write_report(engine: Engine, token: str, epoch: int, out_dir: Path) -> ReportFiles:
    """Write ``report.csv`` (account, amount this epoch, cumulative), ``report.json`` and
    ``report.png`` of a stored epoch into `out_dir`.

    Raises:
        UnknownEpochError: the epoch is not stored.
    """
    summary = epoch_report(engine, token, epoch)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out_dir / "report.csv", out_dir / "report.json", out_dir / "report.png")
    with Session(engine) as session, files.csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account", "amount", "cumulative"])
        rows = session.exec(
            select(
                SettlementEntitlement.account,
                SettlementEntitlement.amount,
                SettlementEntitlement.cumulative,
            )
            .where(SettlementEntitlement.token == token, SettlementEntitlement.epoch == epoch)
            .order_by(col(SettlementEntitlement.account))
        )
        for account, amount, cumulative in rows:
            writer.writerow([account, amount, cumulative])
    files.json.write_text(json.dumps(summary, indent=2) + "\n")
    _chart(summary, files.png)
    return files


def _short(value: str) -> str:
    return f"{value[:6]}…{value[-4:]}" if len(value) > 12 else value


def _chart(summary: dict[str, Any], path: Path) -> None:
    # A Figure on the Agg canvas directly: no pyplot, no global backend or figure registry.
    # Imported here: matplotlib costs every `ledger` command a quarter second at start-up.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4.5))
    FigureCanvasAgg(figure)
    by_dataset, top, history = figure.subplots(1, 3)
    datasets = sorted(summary["by_dataset"], key=int)
    parts = ("owner", "author", "pool")
    bottom = [0.0] * len(datasets)
    for part in parts:
        values = [float(summary["by_dataset"][d].get(part, "0")) for d in datasets]
        by_dataset.bar([f"#{d}" for d in datasets], values, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    by_dataset.set_title(f"Revenue by dataset, epoch {summary['epoch']}")
    by_dataset.set_ylabel("base units")
    by_dataset.legend()

    contributors = summary["top_contributors"]
    names = [f"#{c['dataset_id']} {_short(c['contributor'])}" for c in contributors][::-1]
    amounts = [float(c["amount"]) for c in contributors][::-1]
    top.barh(names, amounts, color="tab:green")
    top.set_title("Top contributors (pseudonyms)")
    top.set_xlabel("base units this epoch")

    epochs = [h["epoch"] for h in summary["history"]]
    history.plot(epochs, [float(h["total"]) for h in summary["history"]], marker="o")
    history.plot(
        epochs,
        [float(h["held_total"]) for h in summary["history"]],
        marker="x",
        label="held (no payout address)",
    )
    history.set_title("Cumulative published payouts")
    history.set_xlabel("epoch")
    history.set_ylabel("base units")
    history.legend(["published total", "held (no payout address)"])
    figure.tight_layout()
    figure.savefig(path, dpi=90)
