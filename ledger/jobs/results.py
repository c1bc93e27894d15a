"""Results on disk, for the grantee only: ``<data dir>/results/<job id>/`` holds ``result.json``
(the released result) and ``receipt.json`` (the signed receipt), each written atomically
(temporary file, fsync, rename, fsync of the directory) with mode 0600."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from ledger.jobs.errors import ResultStoreError

__all__ = ["ResultStore"]

RESULT_FILE = "result.json"
RECEIPT_FILE = "receipt.json"


class ResultStore:
    """The results directory of one data dir."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def job_dir(self, job_id: str) -> Path:
        """Directory of one job's files."""
        return self.root / job_id

    def result_path(self, job_id: str) -> Path:
        """Path of a job's result."""
        return self.job_dir(job_id) / RESULT_FILE

    def receipt_path(self, job_id: str) -> Path:
        """Path of a job's signed receipt."""
        return self.job_dir(job_id) / RECEIPT_FILE

    def write_result(self, job_id: str, data: bytes) -> Path:
        """Write a job's result atomically; returns its path.

        Raises:
            ResultStoreError: the file cannot be written.
        """
        return self._write(job_id, RESULT_FILE, data)

    def write_receipt(self, job_id: str, data: bytes) -> Path:
        """Write a job's signed receipt atomically; returns its path.

        Raises:
            ResultStoreError: the file cannot be written.
        """
        return self._write(job_id, RECEIPT_FILE, data)

    def read(self, job_id: str, name: str = RESULT_FILE) -> bytes:
        """A stored file of a job.

        Raises:
            ResultStoreError: it is missing or unreadable.
        """
        try:
            return (self.job_dir(job_id) / name).read_bytes()
        except OSError as exc:
            raise ResultStoreError(job_id, f"cannot read {name} ({type(exc).__name__})") from None

    def discard(self, job_id: str) -> None:
        """Remove a job's files (a failed job releases nothing)."""
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def _write(self, job_id: str, name: str, data: bytes) -> Path:
        directory = self.job_dir(job_id)
        target = directory / name
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise ResultStoreError(job_id, f"cannot write {name} ({type(exc).__name__})") from None
        return target
