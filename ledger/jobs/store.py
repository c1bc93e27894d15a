"""The pipeline's rows: jobs and their outbox. Every change is one short transaction; a status
moves only from the status the caller saw (a conditional UPDATE), so no step runs twice on top of
another worker's progress."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Engine, Table, or_, update
from sqlmodel import Session, col, select

from ledger.jobs.errors import JobError, JobNotFoundError
from ledger.store.models.jobs import (
    JobStatus,
    OutboxAction,
    OutboxEntry,
    OutboxStatus,
    PipelineJob,
)

__all__ = [
    "TERMINAL",
    "JobConflictError",
    "JobStore",
    "worker_identity",
]

TERMINAL: Final = frozenset({JobStatus.DONE, JobStatus.FAILED})
# Status and lease changes are plain (Core) UPDATEs of the table: the ORM's bulk-update path
# costs several times more CPU per statement, and no session holds these rows anyway.
_JOBS: Final = cast(Table, PipelineJob.__table__)  # type: ignore[attr-defined]


class JobConflictError(JobError):
    """Raised when a job's status is not what a step expected (another worker moved it)."""

    def __init__(self, job_id: str, expected: str) -> None:
        self.job_id = job_id
        self.expected = expected
        super().__init__(f"job {job_id} is no longer {expected}: another worker moved it")


def worker_identity() -> str:
    """``host:pid`` of this process (a lease owner)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


class JobStore:
    """Jobs and outbox entries in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, job: PipelineJob, outbox: Sequence[OutboxEntry] = ()) -> None:
        """Insert a new job and its first outbox entries in one transaction."""
        with Session(self.engine) as session:
            session.add(job)
            session.flush()
            for entry in outbox:
                session.add(entry)
            session.commit()

    def get(self, job_id: str) -> PipelineJob:
        """A job by id.

        Raises:
            JobNotFoundError: there is none.
        """
        with Session(self.engine, expire_on_commit=False) as session:
            job = session.get(PipelineJob, job_id)
            if job is None:
                raise JobNotFoundError(job_id)
            job.status = JobStatus(job.status)
            return job

    def outbox(self, job_id: str, action: OutboxAction | None = None) -> list[OutboxEntry]:
        """A job's outbox entries (of one action if given)."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(OutboxEntry).where(OutboxEntry.job_id == job_id)
            if action is not None:
                query = query.where(OutboxEntry.action == action)
            entries = list(session.exec(query).all())
            for entry in entries:
                entry.action = OutboxAction(entry.action)
                entry.status = OutboxStatus(entry.status)
            return entries

    def runnable(self, limit: int = 100) -> list[str]:
        """Ids of unfinished jobs, oldest first."""
        with Session(self.engine) as session:
            query = (
                select(PipelineJob.job_id)
                .where(col(PipelineJob.status).not_in([s.value for s in TERMINAL]))
                .order_by(col(PipelineJob.created_at))
                .limit(limit)
            )
            return list(session.exec(query).all())

    def advance(self, job_id: str, expected: JobStatus, new: JobStatus, **values: Any) -> None:
        """Move a job from `expected` to `new`, setting `values`, in one transaction.

        Raises:
            JobConflictError: the job is not in `expected` any more.
        """
        with Session(self.engine) as session:
            self._advance(session, job_id, expected, new, values)
            session.commit()

    def _advance(
        self,
        session: Session,
        job_id: str,
        expected: JobStatus,
        new: JobStatus,
        values: dict[str, Any],
    ) -> None:
        stmt = (
            update(_JOBS)
            .where(_JOBS.c.job_id == job_id, _JOBS.c.status == expected.value)
            .values(status=new.value, updated_at=_now(), **values)
        )
        if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            raise JobConflictError(job_id, expected.value)

    def intend(self, job_id: str, action: OutboxAction, key: str) -> OutboxEntry:
        """The outbox entry of a transaction, written (``intended``) before it is sent."""
        with Session(self.engine, expire_on_commit=False) as session:
            entry = session.get(OutboxEntry, (job_id, action.value, key))
            if entry is None:
                now = _now()
                entry = OutboxEntry(
                    job_id=job_id,
                    action=action,
                    key=key,
                    status=OutboxStatus.INTENDED,
                    created_at=now,
                    updated_at=now,
                )
            entry.attempts += 1
            entry.updated_at = _now()
            session.add(entry)
            session.commit()
            return entry

    def settle(
        self,
        job_id: str,
        action: OutboxAction,
        key: str,
        status: OutboxStatus,
        tx_hash: str | None,
        advance: tuple[JobStatus, JobStatus, dict[str, Any]] | None = None,
    ) -> None:
        """Mark an outbox entry confirmed or skipped, and optionally move the job, atomically."""
        with Session(self.engine) as session:
            entry = session.get(OutboxEntry, (job_id, action.value, key))
            now = _now()
            if entry is None:
                entry = OutboxEntry(
                    job_id=job_id,
                    action=action,
                    key=key,
                    status=status,
                    created_at=now,
                    updated_at=now,
                )
            entry.status = status
            entry.updated_at = now
            if tx_hash is not None:
                entry.tx_hash = tx_hash
            session.add(entry)
            session.flush()
            if advance is not None:
                expected, new, values = advance
                self._advance(session, job_id, expected, new, values)
            session.commit()

    def claim(self, job_id: str, owner: str, lease: float) -> bool:
        """Take the lease of a job for `lease` seconds; False if a live worker holds it.

        A lease held by a process of this host that is not alive any more (a crashed worker)
        is taken over at once.
        """
        now = _now()
        free = [
            _JOBS.c.lease_owner.is_(None),
            _JOBS.c.lease_until < now,
            _JOBS.c.lease_owner == owner,
        ]
        with Session(self.engine) as session:
            # Usually the lease is free: one UPDATE. Only when it is held is the holder read,
            # to take over the lease of a crashed local worker.
            if self._take(session, job_id, owner, now, lease, free):
                return True
            current = session.get(PipelineJob, job_id)
            if current is None:
                return False
            holder = current.lease_owner
            if holder is None or holder == owner or not _dead_local(holder):
                return False
            stale = [*free, _JOBS.c.lease_owner == holder]
            return self._take(session, job_id, owner, now, lease, stale)

    @staticmethod
    def _take(
        session: Session,
        job_id: str,
        owner: str,
        now: datetime,
        lease: float,
        conditions: list[Any],
    ) -> bool:
        stmt = (
            update(_JOBS)
            .where(_JOBS.c.job_id == job_id, or_(*conditions))
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease))
        )
        claimed = session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
        session.commit()
        return bool(claimed)

    def release(self, job_id: str, owner: str) -> None:
        """Give a lease back."""
        with Session(self.engine) as session:
            session.execute(
                update(_JOBS)
                .where(_JOBS.c.job_id == job_id, _JOBS.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )
            session.commit()


def _dead_local(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
