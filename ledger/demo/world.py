"""The demo's world: its chain, contracts, database, cast, and what the story has done so far.

The steps (`ledger.demo.owners`, `ledger.demo.jobs`, `ledger.demo.ledger_steps`) act on a
`World` and return the lines that describe them; their outcomes accumulate on it for the
summary and the checks, with every transaction sent for an account (its gas is accounted for).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from eth_utils.crypto import keccak
from sqlalchemy import Engine
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import Deployment, contracts_of, deploy
from ledger.chain.embedded import EMBEDDED_CHAIN_ID
from ledger.chain.sender import SendPolicy, TxSender
from ledger.demo.accounts import DemoAccount, derive_many
from ledger.demo.summary import Balances, GrantOutcome, JobOutcome
from ledger.jobs.service import JobContext, open_context
from ledger.rights.typed_data import Grant
from ledger.samples import HOSPITALS
from ledger.settings import Settings
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade
from ledger.vault.store import Vault

__all__ = ["World"]

TABLE: Final = "breast_cancer"
SCHEMA_FILE: Final = (
    Path(__file__).resolve().parent.parent / "samples" / "schemas" / f"{TABLE}.yaml"
)
DEPARTMENTS: Final = ("oncology", "radiology", "surgery", "internal-medicine")
#: Price of one use of a grant: 0.01 ETH.
PRICE_WEI: Final = 10**16
#: Privacy budget of each grant: 2.0 epsilon.
BUDGET_MICRO: Final = 2_000_000
PURPOSE: Final = keccak(text="research.oncology.biomarkers")
ETH_TOKEN: Final = Web3.to_checksum_address("0x" + "00" * 20)
FEATURES: Final = ("mean_radius", "mean_texture", "mean_smoothness")
# Indexes of anvil's mnemonic: operator, three hospitals, drug maker; payouts from 10 on.
_OPERATOR, _HOSPITALS, _CONSUMER, _PAYOUTS = 0, (1, 2, 3), 4, 10


@dataclass(frozen=True)
class _JobPlan:
    name: str
    algorithm: str
    hospitals: tuple[int, ...]
    params: dict[str, Any]


#: The drug maker's three computations: on north, on central, and across all three.
JOBS: Final = (
    _JobPlan(
        "dp_mean",
        "dp_mean",
        (0,),
        {"column": "mean_radius", "bounds": {"lo": 0, "hi": 40}, "epsilon": 0.5},
    ),
    _JobPlan(
        "cohort_count",
        "cohort_count",
        (1,),
        {"group_by": {"column": "diagnosis", "categories": ["malignant", "benign"]}},
    ),
    _JobPlan(
        "logistic_regression",
        "secure_logistic_regression",
        (0, 1, 2),
        {
            "features": list(FEATURES),
            "label": "diagnosis",
            "positive_label": "malignant",
            "l2": 1.0,
        },
    ),
)


@dataclass
class _Hospital:
    name: str
    owner: DemoAccount
    payouts: dict[str, DemoAccount]
    vault: Vault
    dataset: str
    rows: int = 0
    contributors: int = 0
    commitment: str = ""
    dataset_id: int = -1
    register_tx: str = ""
    executor_tx: str = ""
    grants: dict[str, Grant] = field(default_factory=dict)


@dataclass
class World:
    """The demo's chain, contracts, database and cast (see the module notes)."""

    data_dir: Path
    rpc_url: str
    w3: Web3
    deployment: Deployment
    settings: Settings
    operator: DemoAccount
    consumer: DemoAccount
    hospitals: list[_Hospital]
    engine: Engine
    jobs_context: JobContext
    sent: dict[str, list[str]] = field(default_factory=dict)
    grants: list[GrantOutcome] = field(default_factory=list)
    jobs: list[JobOutcome] = field(default_factory=list)
    index_report: dict[str, Any] = field(default_factory=dict)
    epoch_report: dict[str, Any] = field(default_factory=dict)
    claim_report: dict[str, Any] = field(default_factory=dict)
    claimer: str = ""
    receipts: dict[str, Any] = field(default_factory=dict)
    settlement: Any = None

    # ------------------------------------------------------------------ set-up

    @classmethod
    @contextmanager
    def start(cls, data_dir: Path, *, port: int | None = None) -> Iterator[World]:
        """Start anvil, deploy, migrate the database; everything is stopped on exit."""
        # The chain's state is written under the data dir when it stops, so a kept demo can be
        # explored afterwards: LEDGER_DATA_DIR=<dir> ledger chain up, then any ledger command.
        node = Anvil(
            chain_id=EMBEDDED_CHAIN_ID,
            port=port,
            state=data_dir / "chain" / "state.json",
            startup_timeout=30.0,
        )
        with node, ExitStack() as cleanup:
            url = node.url
            w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
            w3.provider.cache_allowed_requests = True
            w3.provider.cacheable_requests = {RPCEndpoint("eth_chainId")}
            indexes = [_OPERATOR, *_HOSPITALS, _CONSUMER]
            payout_indexes = list(range(_PAYOUTS, _PAYOUTS + len(_HOSPITALS) * len(DEPARTMENTS)))
            accounts = derive_many(url, indexes + payout_indexes)
            operator, *owners, consumer = accounts[: len(indexes)]
            payouts = accounts[len(indexes) :]
            settings = Settings(
                data_dir=data_dir,
                rpc_url=url,
                database_url=f"sqlite:///{data_dir / 'ledger.db'}",
                executor_key=operator.key,  # type: ignore[arg-type]
                owner_key=None,
                dask_scheduler=None,
                confirmations=1,
                chain_id=None,
                anvil_port=node.port,
                deployments_dir=None,
            )
            sender = TxSender(w3, operator.key, SendPolicy(confirmations=1))
            deployment, _ = deploy(w3, sender, settings.resolved_deployments_dir)
            upgrade(settings.resolved_database_url)
            engine = open_engine(settings.resolved_database_url)
            cleanup.callback(engine.dispose)
            jobs_context = open_context(settings)
            cleanup.callback(jobs_context.close)
            hospitals = []
            for i, owner in enumerate(owners):
                name = HOSPITALS[i]
                mine = payouts[i * len(DEPARTMENTS) : (i + 1) * len(DEPARTMENTS)]
                hospitals.append(
                    _Hospital(
                        name=name,
                        owner=owner,
                        payouts=dict(zip(DEPARTMENTS, mine, strict=True)),
                        vault=Vault(data_dir / "vault" / owner.address, owner.address),
                        dataset=f"breast-cancer-{name}",
                    )
                )
            yield cls(
                data_dir=data_dir,
                rpc_url=url,
                w3=w3,
                deployment=deployment,
                settings=settings,
                operator=operator,
                consumer=consumer,
                hospitals=hospitals,
                engine=engine,
                jobs_context=jobs_context,
            )

    @property
    def chain_id(self) -> int:
        """The chain id of the demo's anvil."""
        return self.deployment.chain_id

    @property
    def contracts(self) -> dict[str, Contract]:
        """The deployed contracts, bound."""
        return contracts_of(self.w3, self.deployment)

    def sender(self, account: DemoAccount) -> TxSender:
        """A transaction sender for `account`."""
        return TxSender(self.w3, account.key, SendPolicy(confirmations=1))

    def note_sent(self, role: str, tx_hash: str) -> None:
        """Remember that the story sent `tx_hash` for `role` (its gas is accounted for)."""
        self.sent.setdefault(role, []).append(tx_hash)

    # ------------------------------------------------------------------ accounting

    def balances(self) -> Balances:
        """Balances of the consumer, owners, the claiming contributor and the vault now."""
        get = self.w3.eth.get_balance
        return Balances(
            consumer=int(get(self.consumer.address)),
            owners={h.name: int(get(h.owner.address)) for h in self.hospitals},
            contributors={
                f"{h.name}/{department}": int(get(account.address))
                for h in self.hospitals
                for department, account in h.payouts.items()
            },
            vault=int(get(self.contracts["RevenueVault"].address)),
        )

    def gas_of(self, role: str) -> int:
        """Wei `role` spent on gas in the transactions the story sent for it."""
        total = 0
        for tx_hash in self.sent.get(role, []):
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            total += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        return total


def short(value: str) -> str:
    """A hash or address shortened for reading: ``0x1234abcd…9f8e``."""
    return value if len(value) <= 16 else f"{value[:10]}…{value[-4:]}"
