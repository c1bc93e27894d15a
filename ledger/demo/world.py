"""The demo's world: its chain, contracts, database, accounts, and what the story has done so far.

Each method of `World` is one step of the story (see `ledger.demo.story`) and returns the lines
that describe it; the outcomes accumulate on the world for the summary and the checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from eth_account import Account
from eth_utils.crypto import keccak
from sqlalchemy import Engine
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import Deployment, contracts_of, deploy
from ledger.chain.sender import SendPolicy, TxSender
from ledger.demo.accounts import DemoAccount, derive_many
from ledger.demo.errors import DemoError
from ledger.demo.summary import Balances, DemoSummary, GrantOutcome, JobOutcome, eth
from ledger.jobs.service import JobContext, open_context
from ledger.registry.metadata import MetadataInput, TemporalCoverage
from ledger.registry.register import RegistryContext, register
from ledger.rights.signatures import verify_grant_signature
from ledger.rights.typed_data import Grant, grant_as_tuple, grant_typed_data
from ledger.samples import HOSPITALS, hospital_split
from ledger.settings import Settings
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade
from ledger.vault.ingest import ingest
from ledger.vault.schema import load_schema
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
        node = Anvil(port=port, startup_timeout=30.0)
        with node:
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
            jobs_context = open_context(settings)
            try:
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
            finally:
                jobs_context.close()
                engine.dispose()

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

    # ------------------------------------------------------------------ story steps

    def ingest_all(self) -> list[str]:
        """Each hospital's export (CSV) and payout table into its vault, validated."""
        schema = load_schema(SCHEMA_FILE)
        exports = self.data_dir / "exports"
        exports.mkdir(parents=True, exist_ok=True)
        lines = []
        for hospital, frame in zip(
            self.hospitals, hospital_split(TABLE, len(self.hospitals)), strict=True
        ):
            source = exports / f"{hospital.name}.csv"
            frame.to_csv(source, index=False)
            payouts = exports / f"{hospital.name}-payouts.csv"
            payouts.write_text(
                "contributor,address\n"
                + "".join(f"{d},{a.address}\n" for d, a in hospital.payouts.items())
            )
            manifest = ingest(hospital.vault, source, schema, hospital.dataset, payouts=payouts)
            hospital.rows = manifest.row_count
            hospital.contributors = len(manifest.contributor_rows)
            hospital.commitment = manifest.commitment
            lines.append(
                f"{hospital.name}: {manifest.row_count} records into {hospital.dataset} v1, "
                f"patient ids pseudonymized, {hospital.contributors} departments as contributors "
                f"(payout addresses set); commitment {short(manifest.commitment)}"
            )
        return lines

    def register_all(self) -> list[str]:
        """Each owner registers its dataset (an ERC-721 data asset) and allows the executor."""
        registry = self.contracts["DataRegistry"]
        lines = []
        for hospital in self.hospitals:
            owner = self.sender(hospital.owner)
            ctx = RegistryContext(
                self.w3, owner, self.deployment, registry, self.engine, self.data_dir
            )
            metadata = MetadataInput(
                title=f"Breast cancer diagnostics, {hospital.name} hospital",
                description=(
                    "Cell nucleus measurements of breast masses (Wisconsin diagnostic) with the "
                    "diagnosis, exported by the hospital's departments."
                ),
                keywords=["breast cancer", "oncology", "diagnostics"],
                license="cc-by-4.0",
                publisher=f"{hospital.name.title()} Hospital",
                temporal_coverage=TemporalCoverage(start=date(2019, 1, 1), end=date(2023, 12, 31)),
            )
            result = register(ctx, hospital.dataset, metadata)
            hospital.dataset_id = result.dataset_id
            hospital.register_tx = result.tx_hash
            self.note_sent(f"owner:{hospital.name}", result.tx_hash)
            receipt = owner.send(
                registry.functions.setExecutor(result.dataset_id, self.operator.address, True)
            )
            hospital.executor_tx = receipt["transactionHash"].to_0x_hex()
            self.note_sent(f"owner:{hospital.name}", hospital.executor_tx)
            lines.append(
                f"{hospital.name} ({short(hospital.owner.address)}) registered dataset "
                f"{result.dataset_id} (tx {short(result.tx_hash)}), allowed the executor "
                f"(tx {short(hospital.executor_tx)})"
            )
        return lines

    def grant_all(self) -> list[str]:
        """Each owner signs one grant per algorithm the drug maker asked it for (EIP-712,
        as a wallet's ``eth_signTypedData_v4``); the operator relays it with ``issueWithSig``."""
        from ledger.compute.catalog import entry

        grants_contract = self.contracts["AccessGrants"]
        relayer = self.sender(self.operator)
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        lines = []
        for hospital in self.hospitals:
            wanted = [plan for plan in JOBS if self.hospitals.index(hospital) in plan.hospitals]
            for nonce, plan in enumerate(wanted):
                terms = Grant(
                    dataset_id=hospital.dataset_id,
                    grantor=hospital.owner.address,
                    grantee=self.consumer.address,
                    algorithm_hash=bytes.fromhex(entry(plan.algorithm).hash[2:]),
                    purpose=PURPOSE,
                    valid_from=now - 60,
                    valid_until=now + 30 * 86_400,
                    max_uses=5,
                    epsilon_budget=BUDGET_MICRO,
                    payment_token=ETH_TOKEN,
                    price_per_use=PRICE_WEI,
                    nonce=nonce,
                    deadline=now + 3_600,
                )
                typed = grant_typed_data(terms, self.chain_id, grants_contract.address)
                signed = Account.sign_typed_data(hospital.owner.key, full_message=typed)
                signature = bytes(signed.signature)
                valid = verify_grant_signature(
                    self.w3, terms, signature, self.chain_id, grants_contract.address
                )
                if not valid:
                    raise DemoError("grants", f"{hospital.name}'s signature does not verify")
                receipt = relayer.send(
                    grants_contract.functions.issueWithSig(grant_as_tuple(terms), signature)
                )
                (event,) = grants_contract.events.GrantIssued().process_receipt(receipt, DISCARD)
                grant_id = "0x" + bytes(event["args"]["grantId"]).hex()
                tx_hash = receipt["transactionHash"].to_0x_hex()
                hospital.grants[plan.algorithm] = terms
                self.grants.append(
                    GrantOutcome(
                        hospital.name,
                        hospital.dataset_id,
                        plan.algorithm,
                        grant_id,
                        PRICE_WEI,
                        valid,
                        tx_hash,
                    )
                )
                lines.append(
                    f"{hospital.name} signed grant {short(grant_id)} on dataset "
                    f"{hospital.dataset_id} for {plan.algorithm}: {eth(PRICE_WEI)} a use, "
                    f"5 uses, budget 2.0 epsilon; relayed in tx {short(tx_hash)}"
                )
        return lines

    def run_jobs(self) -> list[str]:
        """The drug maker submits and pays for each job; the executor's pipeline runs them."""
        from ledger.demo.jobs import run_jobs

        return run_jobs(self)

    def verify_all(self) -> list[str]:
        """Each job's result and signed receipt, checked against the chain by RPC alone."""
        from ledger.demo.jobs import verify_all

        return verify_all(self)

    def index(self) -> list[str]:
        """Every event into the index; the catalog and the lineage read from it."""
        from ledger.demo.ledger_steps import index

        return index(self)

    def settle(self) -> list[str]:
        """Compute, store and publish the first epoch of ETH revenue."""
        from ledger.demo.ledger_steps import settle

        return settle(self)

    def claim(self) -> list[str]:
        """The department with the largest entitlement claims it (relayed by the operator)."""
        from ledger.demo.ledger_steps import claim

        return claim(self)

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

    def check(self, before: Balances, after: Balances) -> dict[str, bool]:
        """The consistency checks (see `ledger.demo.ledger_steps.check`)."""
        from ledger.demo.ledger_steps import check

        return check(self, before, after)

    def summary(
        self,
        before: Balances,
        after: Balances,
        checks: dict[str, bool],
        *,
        kept: bool,
        seconds: float,
    ) -> DemoSummary:
        """The `DemoSummary` of the story so far."""
        from ledger.demo.ledger_steps import summary

        return summary(self, before, after, checks, kept=kept, seconds=seconds)


def short(value: str) -> str:
    """A hash or address shortened for reading: ``0x1234abcd…9f8e``."""
    return value if len(value) <= 16 else f"{value[:10]}…{value[-4:]}"
