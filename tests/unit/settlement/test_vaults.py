"""Finding vaults by dataset id and reading payout addresses from contributor tables."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eth_utils.address import to_checksum_address

from ledger.settlement.cli import AuthorsFileError, load_authors
from ledger.settlement.errors import VaultNotFoundError
from ledger.settlement.vaults import VaultIndex

P = [f"0x{i:064x}" for i in range(1, 4)]
PAYEE = "0x" + "ab" * 20
CHECKSUMMED = to_checksum_address(PAYEE)


def contributors(path: Path, payouts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "contributor_id": P[: len(payouts)],
            "kind": ["patient"] * len(payouts),
            "payout": payouts,
            "rows": [1] * len(payouts),
        }
    )
    pq.write_table(table, path)


def test_vaults_are_found_by_registration_and_payouts_merge_by_version(tmp_path: Path) -> None:
    dataset = tmp_path / "vault" / CHECKSUMMED / "datasets" / "lung"
    dataset.mkdir(parents=True)
    (dataset / "registration.json").write_text(json.dumps({"dataset_id": 7, "chain_id": 1}))
    contributors(dataset / "v1" / "contributors.parquet", [PAYEE, ""])
    contributors(dataset / "v2" / "contributors.parquet", ["", PAYEE, PAYEE])
    vaults = VaultIndex(tmp_path)
    assert vaults.dataset_dir(7) == dataset
    assert vaults.payouts(7, [1]) == {P[0]: CHECKSUMMED, P[1]: ""}
    assert vaults.payouts(7, [1, 2]) == {P[0]: "", P[1]: CHECKSUMMED, P[2]: CHECKSUMMED}
    assert vaults.payouts(7, [1, 3]) == {P[0]: CHECKSUMMED, P[1]: ""}
    with pytest.raises(VaultNotFoundError, match="dataset 8: no vault under"):
        vaults.dataset_dir(8)
    with pytest.raises(VaultNotFoundError, match=r"no contributors.parquet of versions \[3\]"):
        vaults.payouts(7, [3])
    explicit = VaultIndex(tmp_path / "elsewhere", {7: dataset})
    assert explicit.dataset_dir(7) == dataset
    assert VaultIndex(tmp_path, chain_id=1).dataset_dir(7) == dataset
    with pytest.raises(VaultNotFoundError, match="dataset 7"):
        VaultIndex(tmp_path, chain_id=31337).dataset_dir(7)


def test_authors_file_is_checked_entry_by_entry(tmp_path: Path) -> None:
    path = tmp_path / "authors.json"
    algo = "0x" + "cd" * 32
    path.write_text(json.dumps({algo.upper().replace("0X", "0x"): {"author": PAYEE, "bps": 250}}))
    authors = load_authors(path)
    assert authors[algo].author == CHECKSUMMED and authors[algo].bps == 250
    for entry, rule in (
        ({"0x12": {"author": PAYEE, "bps": 1}}, "key must be an algorithm hash"),
        ({algo: {"author": PAYEE, "bps": 10_001}}, r"bps must be an integer in \[0, 10000\]"),
        ({algo: {"author": "nobody", "bps": 1}}, "author must be an address"),
        ([1, 2], "must be a JSON object"),
    ):
        path.write_text(json.dumps(entry))
        with pytest.raises(AuthorsFileError, match=rule):
            load_authors(path)
