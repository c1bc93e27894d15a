"""Building the pipeline from settings: the chain, the deployment, the database (migrated), the
executor's sender and the real steps. Used by ``ledger job worker`` and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from web3.types import RPCEndpoint

from ledger.chain.client import connect
from ledger.chain.deploy import load_deployment
from ledger.chain.sender import SendPolicy, TxSender
from ledger.jobs.adapters import (
    BatcherAnchors,
    EngineCompute,
    ProvenanceReceipts,
    SettlementWeights,
)
from ledger.jobs.chain import JobChain
from ledger.jobs.locator import VaultLocator
from ledger.jobs.pipeline import JobPipeline, PipelineOptions
from ledger.jobs.results import ResultStore
from ledger.jobs.store import JobStore
from ledger.settings import Settings
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade

__all__ = ["JobContext", "open_context", "open_pipeline", "results_dir"]


@dataclass
class JobContext:
    """What both sides of the pipeline share: chain, store and results."""

    settings: Settings
    chain: JobChain
    engine: Engine
    store: JobStore
    results: ResultStore

    def close(self) -> None:
        """Dispose of the database engine."""
        self.engine.dispose()


def results_dir(settings: Settings) -> ResultStore:
    """The results store under the data dir."""
    return ResultStore(settings.data_dir / "results")


def open_context(settings: Settings) -> JobContext:
    """Connect to the chain and the (migrated) database.

    Raises:
        RpcUnavailableError, WrongChainError: the node.
        DeploymentNotFoundError: no deployment on this chain (run ``ledger deploy``).
        DatabaseUnavailableError, MigrationError: the database.
    """
    w3 = connect(settings)
    # web3 asks the node for its chain id before every call and send (validation); a node's
    # chain id never changes, so only that answer is cached.
    w3.provider.cache_allowed_requests = True
    w3.provider.cacheable_requests = {RPCEndpoint("eth_chainId")}
    deployment = load_deployment(settings.resolved_deployments_dir, w3.eth.chain_id)
    url = settings.resolved_database_url
    upgrade(url)
    engine = open_engine(url)
    return JobContext(
        settings, JobChain(w3, deployment), engine, JobStore(engine), results_dir(settings)
    )


def open_pipeline(
    context: JobContext,
    options: PipelineOptions,
    *,
    batch_size: int = 100,
    batch_wait: float = 10.0,
    with_weights: bool = True,
    k: int = 10,
) -> JobPipeline:
    """The worker's pipeline, with the real compute engine, receipts and (in batched mode) the
    receipt batcher, signing with the executor key (``settings.resolved_executor_key()``).

    Raises:
        JobStepUnavailableError: a part is not installed.
        SettingsError: no executor key for a non-embedded chain.
    """
    settings = context.settings
    key = settings.resolved_executor_key()
    executor = TxSender(context.chain.w3, key, SendPolicy(settings.confirmations))
    anchors = None
    if options.batched:
        anchors = BatcherAnchors(
            context.engine,
            executor,
            context.chain.usage,
            max_receipts=batch_size,
            max_wait=batch_wait,
        )
    return JobPipeline(
        context.store,
        context.chain,
        executor,
        context.results,
        compute=EngineCompute(context.engine, k=k),
        receipts=ProvenanceReceipts(context.engine, key),
        locator=VaultLocator(
            settings.data_dir, context.chain.chain_id, context.chain.registry.address
        ),
        anchors=anchors,
        weights=SettlementWeights() if with_weights else None,
        options=options,
    )
