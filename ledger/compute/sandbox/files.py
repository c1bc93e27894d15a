"""Files crossing the sandbox's boundary: the mounts a run may have, the output directory's size,
and reading a result out of it without following anything the sandboxed code planted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ledger.compute.sandbox.errors import SandboxConfigError

__all__ = ["checked_input_dir", "checked_output_dir", "measure_dir", "read_output_file"]


def measure_dir(root: Path, max_entries: int) -> tuple[int, int]:
    """(bytes, entries) under `root`, never following symlinks; stops counting past
    `max_entries` + 1 entries (enough to say "too many")."""
    total = count = 0
    stack = [str(root)]
    while stack and count <= max_entries:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            count += 1
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += info.st_size
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total, count


def read_output_file(output_dir: Path, name: str, max_bytes: int) -> bytes | None:
    """Read `name` from a run's output directory, or None when it does not exist.

    Never follows a symlink (in the directory or the name) and refuses anything but a regular
    file of at most `max_bytes`; raises SandboxConfigError for a bad name and ValueError with
    the rule broken otherwise.
    """
    if not name or "/" in name or name in (".", ".."):
        raise SandboxConfigError("output file name", "a plain file name", name)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    dir_fd = os.open(output_dir, flags | os.O_DIRECTORY)
    try:
        try:
            fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValueError(f"a regular file, not a symlink ({exc.strerror})") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ValueError("a regular file")
            if info.st_size > max_bytes:
                raise ValueError(f"at most {max_bytes} bytes")
            data = os.read(fd, max_bytes + 1)
            if len(data) > max_bytes:
                raise ValueError(f"at most {max_bytes} bytes")
            return data
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def checked_output_dir(path: Path) -> Path:
    """The resolved output directory; raises SandboxConfigError unless it is an existing,
    empty, real directory."""
    if path.is_symlink() or not path.is_dir():
        raise SandboxConfigError("output_dir", "an existing directory (not a symlink)", str(path))
    resolved = path.resolve(strict=True)
    if any(resolved.iterdir()):
        raise SandboxConfigError("output_dir", "empty before the run", str(path))
    return resolved


def checked_input_dir(path: Path, out: Path, index: int) -> Path:
    """The resolved input (or code, `index` -1) directory; raises SandboxConfigError unless it
    exists, is a directory, is not / and does not overlap the output directory."""
    label = "code_dir" if index < 0 else f"inputs[{index}]"
    try:
        resolved = Path(path).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise SandboxConfigError(label, "an existing directory", str(path)) from exc
    if not resolved.is_dir():
        raise SandboxConfigError(label, "a directory", str(path))
    if resolved == Path("/") or out.is_relative_to(resolved) or resolved.is_relative_to(out):
        raise SandboxConfigError(
            label, "a directory that neither is / nor overlaps the output directory", str(path)
        )
    return resolved
