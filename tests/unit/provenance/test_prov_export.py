"""PROV-JSON export of lineages built by hand: the prov library reads every export back equal,
whatever facts the lineage has, and the mapping names the expected records."""

from __future__ import annotations

from datetime import UTC, datetime

from prov.model import ProvDocument

from ledger.provenance.lineage import DatasetVersionNode, GrantNode, Lineage, RecordNode
from ledger.provenance.prov_export import prov_document, prov_json

T = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)
OWNER = "0x" + "aA" * 20
CONSUMER = "0x" + "Bb" * 20
EXECUTOR = "0x" + "cC" * 20


def h(c: str) -> str:
    return "0x" + c * 64


def full() -> Lineage:
    return Lineage(
        job_id=h("1"),
        executor=EXECUTOR,
        consumer=CONSUMER,
        purpose=h("2"),
        algorithm_hash=h("3"),
        receipt_hash=h("4"),
        result_hash=h("5"),
        runtime_hash=h("6"),
        parameters_hash=h("7"),
        suppression_k=10,
        requested_at=T,
        completed_at=T,
        recorded=RecordNode(12, h("8"), T),
        batch_root=None,
        batch_anchored=None,
        datasets=[
            DatasetVersionNode(1, 2, h("a"), h("b"), OWNER, True),
            DatasetVersionNode(4, 1, h("c"), None, CONSUMER, True),
        ],
        grants=[
            GrantNode(
                h("d"), 1, 2, OWNER, CONSUMER, h("2"), h("3"), 1, 2**40, OWNER, 10**18, 2 * 10**16
            ),
            GrantNode(h("e"), 4, 1, CONSUMER, CONSUMER, h("2"), h("3"), 1, 5, OWNER, 0, 0),
        ],
    )


def kinds(doc: ProvDocument) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in doc.get_records():
        name = record.get_type().localpart
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_full_lineage_round_trips() -> None:
    doc = prov_document(full())
    back = ProvDocument.deserialize(content=prov_json(full()), format="json")
    assert back == doc
    assert kinds(back) == {
        "Activity": 1,
        "Agent": 3,  # owner, consumer (also an owner here), executor
        "Entity": 8,  # 2 versions + 1 predecessor, 2 grants, algorithm, result, receipt
        "Usage": 5,  # 2 versions, 2 grants, algorithm
        "Generation": 2,
        "Association": 2,
        "Attribution": 6,  # 2 versions, 2 grants, result, receipt
        "Derivation": 4,  # result from 2 versions, receipt from result, version 2 from 1
    }
    text = prov_json(full())
    assert '"ledger:epsilonMicro": "1099511627776"' in text  # beyond 2^31: a string


def test_index_only_and_receipt_only_lineages_round_trip() -> None:
    index_only = Lineage(
        job_id=h("1"),
        executor=EXECUTOR,
        consumer=CONSUMER,
        purpose=h("2"),
        algorithm_hash=h("3"),
        receipt_hash=h("4"),
        result_hash=None,
        runtime_hash=None,
        parameters_hash=None,
        suppression_k=None,
        requested_at=None,
        completed_at=None,
        recorded=RecordNode(3, h("8"), T),
        batch_root=None,
        batch_anchored=None,
        grants=[GrantNode(h("d"), 1, 1, None, None, None, None, None, None, None, None, None)],
        datasets=[DatasetVersionNode(1, 1, None, None, None, None)],
    )
    minimal = Lineage(
        job_id=h("1"),
        executor=None,
        consumer=None,
        purpose=None,
        algorithm_hash=None,
        receipt_hash=None,
        result_hash=None,
        runtime_hash=None,
        parameters_hash=None,
        suppression_k=None,
        requested_at=None,
        completed_at=None,
        recorded=None,
        batch_root=None,
        batch_anchored=None,
    )
    for lin in (index_only, minimal):
        doc = prov_document(lin)
        assert ProvDocument.deserialize(content=prov_json(lin), format="json") == doc
    assert kinds(prov_document(minimal)) == {"Activity": 1}
