"""A job's lineage as W3C PROV (PROV-DM), serialized as PROV-JSON with the ``prov`` package.

Mapping (namespace ``ledger`` = ``urn:ledger:``, accounts under ``eth`` = ``urn:eth:``):

- entities: each dataset version (``ledger:dataset-<id>-v<n>``, with its commitment), the
  result (``ledger:result-<hash>``), the receipt (``ledger:receipt-<hash>``), each grant
  (``ledger:grant-<id>``) and the algorithm (``ledger:algorithm-<hash>``);
- activity: the job (``ledger:job-<id>``; start and end from the receipt's times);
- agents: the dataset owners, the consumer and the executor (``eth:<address>``);
- relations: the job ``used`` each dataset version, grant and the algorithm;
  the result and the receipt ``wasGeneratedBy`` the job; the job ``wasAssociatedWith`` the
  executor (role ``ledger:executor``, plan: the algorithm) and the consumer (role
  ``ledger:consumer``); each dataset version and grant ``wasAttributedTo`` its owner, the result
  to the consumer, the receipt to the executor; the result ``wasDerivedFrom`` each dataset
  version (through the job), the receipt ``wasDerivedFrom`` the result, and a version
  ``wasDerivedFrom`` its predecessor when the index knows it.

Integers beyond 2^31 (amounts, micro-epsilon) are written as strings so that PROV-JSON readers
do not narrow them; `ProvDocument.deserialize(..., format="json")` reads the export back equal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from prov.model import ProvDocument

from ledger.provenance.lineage import DatasetVersionNode, Lineage

__all__ = ["LEDGER_NAMESPACE", "prov_document", "prov_json"]

LEDGER_NAMESPACE: Final = "urn:ledger:"
ETH_NAMESPACE: Final = "urn:eth:"
_INT32: Final = 2**31 - 1


def prov_document(lin: Lineage) -> ProvDocument:
    """The PROV document of a lineage (see the module notes for the mapping)."""
    doc = ProvDocument()
    doc.add_namespace("ledger", LEDGER_NAMESPACE)
    doc.add_namespace("eth", ETH_NAMESPACE)
    agents: set[str] = set()

    def agent(address: str | None) -> str | None:
        if address is None:
            return None
        name = f"eth:{address}"
        if name not in agents:
            agents.add(name)
            doc.agent(name, {"prov:type": "ledger:Account", "ledger:address": address})
        return name

    job = f"ledger:job-{lin.job_id}"
    job_attrs = _attrs(
        {
            "prov:type": "ledger:Job",
            "ledger:jobId": lin.job_id,
            "ledger:purpose": lin.purpose,
            "ledger:parametersHash": lin.parameters_hash,
            "ledger:runtimeHash": lin.runtime_hash,
            "ledger:suppressionK": lin.suppression_k,
            "ledger:recordedBlock": lin.recorded.block_number if lin.recorded else None,
            "ledger:recordedTx": lin.recorded.tx_hash if lin.recorded else None,
        }
    )
    start = lin.requested_at or (lin.recorded.block_time if lin.recorded else None)
    end = lin.completed_at or (lin.recorded.block_time if lin.recorded else None)
    doc.activity(job, start, end, job_attrs)
    executor = agent(lin.executor)
    consumer = agent(lin.consumer)

    algorithm = None
    if lin.algorithm_hash is not None:
        algorithm = f"ledger:algorithm-{lin.algorithm_hash}"
        doc.entity(
            algorithm,
            {"prov:type": "ledger:Algorithm", "ledger:algorithmHash": lin.algorithm_hash},
        )
        doc.used(job, algorithm, None, None, {"prov:role": "ledger:algorithm"})
    if executor is not None:
        doc.wasAssociatedWith(job, executor, algorithm, None, {"prov:role": "ledger:executor"})
    if consumer is not None:
        doc.wasAssociatedWith(job, consumer, None, None, {"prov:role": "ledger:consumer"})

    versions: list[str] = []
    for node in lin.datasets:
        name = _version_entity(doc, node)
        versions.append(name)
        doc.used(job, name, None, None, {"prov:role": "ledger:input"})
        owner = agent(node.owner)
        if owner is not None:
            doc.wasAttributedTo(name, owner)
    for grant in lin.grants:
        name = f"ledger:grant-{grant.grant_id}"
        doc.entity(
            name,
            _attrs(
                {
                    "prov:type": "ledger:Grant",
                    "ledger:grantId": grant.grant_id,
                    "ledger:datasetId": grant.dataset_id,
                    "ledger:datasetVersion": grant.dataset_version,
                    "ledger:uses": grant.uses,
                    "ledger:epsilonMicro": grant.epsilon,
                    "ledger:token": grant.token,
                    "ledger:price": grant.price,
                    "ledger:fee": grant.fee,
                }
            ),
        )
        doc.used(job, name, None, None, {"prov:role": "ledger:grant"})
        grantor = agent(grant.grantor)
        if grantor is not None:
            doc.wasAttributedTo(name, grantor)

    result = None
    if lin.result_hash is not None:
        result = f"ledger:result-{lin.result_hash}"
        doc.entity(result, {"prov:type": "ledger:Result", "ledger:resultHash": lin.result_hash})
        doc.wasGeneratedBy(result, job, end)
        for version in versions:
            doc.wasDerivedFrom(result, version, job)
        if consumer is not None:
            doc.wasAttributedTo(result, consumer)
    if lin.receipt_hash is not None:
        receipt = f"ledger:receipt-{lin.receipt_hash}"
        doc.entity(
            receipt,
            _attrs(
                {
                    "prov:type": "ledger:Receipt",
                    "ledger:receiptHash": lin.receipt_hash,
                    "ledger:batchRoot": lin.batch_root,
                }
            ),
        )
        doc.wasGeneratedBy(receipt, job, end)
        if result is not None:
            doc.wasDerivedFrom(receipt, result)
        if executor is not None:
            doc.wasAttributedTo(receipt, executor)
    return doc


def prov_json(lin: Lineage, *, indent: int | None = 2) -> str:
    """The PROV-JSON text of a lineage."""
    text = prov_document(lin).serialize(format="json", indent=indent)
    assert text is not None  # serialize returns the text when given no destination
    return str(text)


def _version_entity(doc: ProvDocument, node: DatasetVersionNode) -> str:
    name = f"ledger:dataset-{node.dataset_id}-v{node.version}"
    doc.entity(
        name,
        _attrs(
            {
                "prov:type": "ledger:DatasetVersion",
                "ledger:datasetId": node.dataset_id,
                "ledger:version": node.version,
                "ledger:commitment": node.commitment,
            }
        ),
    )
    if node.previous_commitment is not None and node.version > 1:
        previous = f"ledger:dataset-{node.dataset_id}-v{node.version - 1}"
        doc.entity(
            previous,
            {
                "prov:type": "ledger:DatasetVersion",
                "ledger:datasetId": node.dataset_id,
                "ledger:version": node.version - 1,
                "ledger:commitment": node.previous_commitment,
            },
        )
        doc.wasDerivedFrom(name, previous, other_attributes={"prov:type": "prov:Revision"})
    return name


def _attrs(values: dict[str, Any]) -> dict[str, Any]:
    """Attributes without the unknown ones; big integers as strings, times as they are."""
    result: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT32:
            value = str(value)
        elif not isinstance(value, str | int | datetime):
            value = str(value)
        result[key] = value
    return result
