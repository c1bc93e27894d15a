"""The owners' side of the demo: each hospital ingests its export into its vault, registers the
dataset and allows the executor, and signs grants for the drug maker (relayed by the operator)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account
from web3.logs import DISCARD

from ledger.compute.catalog import entry
from ledger.demo.errors import DemoError
from ledger.demo.summary import GrantOutcome, eth
from ledger.demo.world import (
    BUDGET_MICRO,
    ETH_TOKEN,
    JOBS,
    PRICE_WEI,
    PURPOSE,
    SCHEMA_FILE,
    TABLE,
    short,
)
from ledger.registry.metadata import MetadataInput, TemporalCoverage
from ledger.registry.register import RegistryContext, register
from ledger.rights.signatures import verify_grant_signature
from ledger.rights.typed_data import Grant, grant_as_tuple, grant_typed_data
from ledger.samples import hospital_split
from ledger.vault.ingest import ingest
from ledger.vault.schema import Schema, load_schema

if TYPE_CHECKING:
    from ledger.demo.world import World

__all__ = ["grant_all", "ingest_all", "register_all"]


def ingest_all(world: World) -> list[str]:
    """Each hospital's export (CSV) and payout table into its vault, validated."""
    schema = load_schema(SCHEMA_FILE)
    # The raw exports (with medical record numbers) stay on the hospitals' side: they are
    # written to a scratch directory that is gone once the vaults hold the governed versions.
    with tempfile.TemporaryDirectory(prefix="ledger-demo-exports-") as scratch:
        return _ingest_from(world, schema, Path(scratch))


def _ingest_from(world: World, schema: Schema, exports: Path) -> list[str]:
    lines = []
    for hospital, frame in zip(
        world.hospitals, hospital_split(TABLE, len(world.hospitals)), strict=True
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


def register_all(world: World) -> list[str]:
    """Each owner registers its dataset (an ERC-721 data asset) and allows the executor."""
    registry = world.contracts["DataRegistry"]
    lines = []
    for hospital in world.hospitals:
        owner = world.sender(hospital.owner)
        ctx = RegistryContext(
            world.w3, owner, world.deployment, registry, world.engine, world.data_dir
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
        world.note_sent(f"owner:{hospital.name}", result.tx_hash)
        receipt = owner.send(
            registry.functions.setExecutor(result.dataset_id, world.operator.address, True)
        )
        hospital.executor_tx = receipt["transactionHash"].to_0x_hex()
        world.note_sent(f"owner:{hospital.name}", hospital.executor_tx)
        lines.append(
            f"{hospital.name} ({short(hospital.owner.address)}) registered dataset "
            f"{result.dataset_id} (tx {short(result.tx_hash)}), allowed the executor "
            f"(tx {short(hospital.executor_tx)})"
        )
    return lines


def grant_all(world: World) -> list[str]:
    """Each owner signs one grant per algorithm the drug maker asked it for (EIP-712,
    as a wallet's ``eth_signTypedData_v4``); the operator relays it with ``issueWithSig``."""

    grants_contract = world.contracts["AccessGrants"]
    relayer = world.sender(world.operator)
    now = int(world.w3.eth.get_block("latest")["timestamp"])
    lines = []
    for hospital in world.hospitals:
        wanted = [plan for plan in JOBS if world.hospitals.index(hospital) in plan.hospitals]
        for nonce, plan in enumerate(wanted):
            terms = Grant(
                dataset_id=hospital.dataset_id,
                grantor=hospital.owner.address,
                grantee=world.consumer.address,
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
            typed = grant_typed_data(terms, world.chain_id, grants_contract.address)
            signed = Account.sign_typed_data(hospital.owner.key, full_message=typed)
            signature = bytes(signed.signature)
            valid = verify_grant_signature(
                world.w3, terms, signature, world.chain_id, grants_contract.address
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
            world.grants.append(
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
