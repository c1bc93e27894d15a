"""Ingest a CSV or Parquet file into a new version of a dataset, atomically.

The file is streamed in chunks (never whole in memory): each chunk is validated,
de-identified, written as a Parquet row group, and its leaf hashes appended to a staging file.
Everything goes into ``datasets/<name>/.staging-<random>/``, which becomes ``v<N>/`` by one
rename once the commitment, contributor table, report and manifest are written. Any failure
removes the staging directory; a crash leaves only a staging directory, which the next ingest
of the dataset removes (under the dataset's lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pyarrow.parquet as pq

from ledger.vault.commitment import CommitmentWriter
from ledger.vault.contributors import ContributorCounter, contributor_table, read_payouts
from ledger.vault.encoding import leaf_encoding, leaf_hashes
from ledger.vault.errors import EmptySourceError, ValidationFailedError
from ledger.vault.manifest import Manifest, Partition
from ledger.vault.schema import Schema
from ledger.vault.source import TableSource, check_columns, open_source
from ledger.vault.store import STAGING_PREFIX, Vault, check_name
from ledger.vault.validate import ChunkConverter, Report

__all__ = ["OnError", "Progress", "ingest"]

OnError = Literal["reject", "quarantine"]
#: Called with (rows read, bytes read, total bytes) after every chunk.
Progress = Callable[[int, int, int], None]
TREE_FILE: Final = "tree.bin"
TREE_INDEX_FILE: Final = "tree_index.bin"
_COMMIT_DIR: Final = "commit.tmp"


def ingest(
    vault: Vault,
    source: Path,
    schema: Schema,
    name: str,
    *,
    on_error: OnError = "reject",
    payouts: Path | None = None,
    progress: Progress | None = None,
    chunk_bytes: int = 2 << 20,
    partition_rows: int = 1_000_000,
) -> Manifest:
    """Validate, de-identify, store and commit `source` as the next version of `name`.

    `on_error` ``reject`` (default) writes nothing if any row breaks a rule; ``quarantine``
    drops bad rows (the report keeps their line numbers). `payouts` is a CSV of raw contributor
    values and payout addresses.

    Raises:
        InvalidNameError: `name` is not a valid dataset name.
        SourceError: the file is unreadable, empty, not UTF-8 in its header, malformed, or its
            columns are not the schema's (ColumnsMismatchError).
        ValidationFailedError: rows break rules (reject mode), or no row is left (quarantine).
        PayoutsError: the payouts file is malformed or names unknown contributors.
        VaultBusyError: another ingest of `name` is running.
    """
    check_name(name)
    table_source = open_source(Path(source), chunk_bytes=chunk_bytes)
    check_columns(table_source, schema.names)
    key = vault.key()
    payout_map = read_payouts(Path(payouts), schema, key) if payouts is not None else {}
    with vault.ingest_lock(name) as dataset_dir:
        previous_version = vault.latest_version(name)
        version = (previous_version or 0) + 1
        staging = dataset_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        failed = False
        try:
            manifest = _ingest_into(
                staging,
                vault=vault,
                table_source=table_source,
                schema=schema,
                name=name,
                version=version,
                key=key,
                on_error=on_error,
                payout_map=payout_map,
                progress=progress,
                partition_rows=partition_rows,
                previous=(
                    Manifest.load(vault.version_dir(name, previous_version) / "manifest.json")
                    if previous_version
                    else None
                ),
            )
            _fsync_tree(staging)
            os.rename(staging, vault.version_dir(name, version))
            _fsync_dir(dataset_dir)
        except BaseException:
            failed = True
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            if failed and not vault.versions(name):
                # A failed first version leaves no dataset directory behind either.
                (dataset_dir / ".lock").unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    dataset_dir.rmdir()
    return manifest


def _ingest_into(
    staging: Path,
    *,
    vault: Vault,
    table_source: TableSource,
    schema: Schema,
    name: str,
    version: int,
    key: bytes,
    on_error: OnError,
    payout_map: dict[str, str],
    progress: Progress | None,
    partition_rows: int,
    previous: Manifest | None,
) -> Manifest:
    data_dir = staging / "data"
    data_dir.mkdir(parents=True)
    report = Report(on_error=on_error)
    converter = ChunkConverter(schema, key, name, version, report)
    contributor_rows = ContributorCounter()
    partitions: list[Partition] = []
    writer: pq.ParquetWriter | None = None
    part_path: Path | None = None
    part_rows = 0
    malformed_seen = 0
    rejecting = False
    commitment_writer = CommitmentWriter(staging / _COMMIT_DIR)
    try:
        for chunk in table_source.chunks():
            fresh = table_source.malformed[malformed_seen:]
            malformed_seen = len(table_source.malformed)
            if fresh:
                report.add("malformed", "(row)", np.array(fresh, dtype=np.int64))
                report.rows_read += len(fresh)
                report.rows_rejected += len(fresh)
            rejecting = rejecting or (on_error == "reject" and report.failed)
            converted = converter.convert(chunk, build=not rejecting)
            rejecting = rejecting or (on_error == "reject" and report.failed)
            if converted is not None and not rejecting and converted.table.num_rows:
                commitment_writer.add(leaf_hashes(converted.words))
                contributor_rows.add(converted.contributors)
                table = converted.table
                offset = 0
                while offset < table.num_rows:
                    if writer is None:
                        part_path = data_dir / f"part-{len(partitions):05d}.parquet"
                        writer = pq.ParquetWriter(part_path, table.schema)
                        part_rows = 0
                    take = min(table.num_rows - offset, partition_rows - part_rows)
                    writer.write_table(table.slice(offset, take))
                    offset += take
                    part_rows += take
                    if part_rows >= partition_rows:
                        writer.close()
                        assert part_path is not None
                        partitions.append(_partition(part_path, part_rows, staging))
                        writer = None
            if progress is not None:
                progress(report.rows_read, table_source.bytes_read, table_source.size)
        tail = table_source.malformed[malformed_seen:]
        if tail:
            report.add("malformed", "(row)", np.array(tail, dtype=np.int64))
            report.rows_read += len(tail)
            report.rows_rejected += len(tail)
    except BaseException:
        commitment_writer.abort()
        raise
    if writer is not None:
        writer.close()
        assert part_path is not None
        partitions.append(_partition(part_path, part_rows, staging))
    row_count = converter.rows
    if report.rows_read == 0 or row_count == 0 or (on_error == "reject" and report.failed):
        commitment_writer.abort()
        if report.rows_read == 0:
            raise EmptySourceError(table_source.path, "the file has a header and no rows")
        raise ValidationFailedError(name, report.counts, report.to_json())
    root = commitment_writer.finish(staging / TREE_FILE, staging / TREE_INDEX_FILE)
    commitment = "0x" + root.hex()

    kind = schema.contributor.kind.value if schema.contributor else "owner"
    ids, counts = contributor_rows.result()
    del contributor_rows
    if schema.contributor is None:
        payout_map = {"0x" + bytes(32).hex(): vault.owner}
    table, root_of_contributors = contributor_table(ids, counts, kind, payout_map)
    pq.write_table(table, staging / "contributors.parquet")
    ids_hex = table.column("contributor_id").to_pylist()
    del table, ids
    contributor_map = dict(zip(ids_hex, counts.tolist(), strict=True))
    del ids_hex, counts

    report_json = report.to_json()
    (staging / "report.json").write_text(json.dumps(report_json, indent=2) + "\n")
    # Validated field by field except the contributor map (sound by construction, and at one
    # entry per patient too big to copy again).
    document: dict[str, Any] = {
        "name": name,
        "version": version,
        "owner": vault.owner,
        "schema_hash": schema.schema_hash(),
        "schema": schema.normalized(),
        "row_count": row_count,
        "commitment": commitment,
        "leaf_encoding": leaf_encoding(schema),
        "contributors_root": root_of_contributors,
        "contributor_rows": {},
        "partitions": partitions,
        "previous_commitment": previous.commitment if previous else None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "validation": report.summary(),
    }
    manifest = Manifest.model_validate(document).model_copy(
        update={"contributor_rows": contributor_map}
    )
    manifest.save(staging / "manifest.json")
    return manifest


def _partition(path: Path, rows: int, root: Path) -> Partition:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return Partition(path=str(path.relative_to(root)), rows=rows, sha256=digest.hexdigest())


def _fsync_tree(root: Path) -> None:
    """Flush every file of the staging directory to disk before it becomes visible."""
    for path in root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(root / "data")
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
