"""The checkpoint file itself: safetensors bytes under a checksummed header, replaced atomically.

Writing: the bytes go to a temporary file ``.{name}.{pid}.{token}.tmp`` in
the target's directory, which is flushed, fsync'ed and renamed over the
target (``os.replace``); then the directory is fsync'ed. A crash at any point
leaves the old file or the new one, never a torn one. A save that was killed
leaves its temporary file behind: the next save of the same target removes
such leftovers (see :func:`remove_stale_temps`).

An existing target keeps its permission bits (a 0600 file stays 0600); a new
one gets the umask's, as ``open()`` would give. A target that is a symbolic
link is written through: the file it points to is replaced and the link
stays a link.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
import time
import warnings
from pathlib import Path

__all__ = ["CheckpointError", "FORMAT", "FORMAT_VERSION", "read_file", "write_file", "remove_stale_temps"]

FORMAT = "gdbp.checkpoint"
FORMAT_VERSION = 1

#: A temporary file nobody has written to for this long is a dead save's, whoever made it
#: (its pid may have been reused since).
STALE_SECONDS = 600.0
#: A temporary file whose process is gone is removed once it is this old: a save running on
#: another machine or container that shares the directory has a pid that means nothing here,
#: and it writes far more often than this.
GRACE_SECONDS = 60.0


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupted, edited or not a gdbp checkpoint."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"checkpoint {self.path!r}: {problem}")


def safetensors_numpy():
    """safetensors' NumPy face, or an ImportError that says how to install it."""
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(
            f"gdbp checkpoints need safetensors ({exc}): pip install 'gdbp[train]'"
        ) from None
    return safetensors.numpy


def _checksum(header: dict, payload) -> str:
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h = hashlib.sha256(canonical)
    h.update(payload)
    return h.hexdigest()


# -- writing ----------------------------------------------------------------------------------


def write_file(path, arrays: dict, metadata: dict) -> Path:
    """Write host arrays and string metadata as a checksummed safetensors file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The target; missing parent directories are created. A symbolic link
        is written through to the file it points to.
    arrays : dict
        Name -> C-contiguous NumPy array.
    metadata : dict
        str -> str; a ``sha256`` entry is added.

    Returns
    -------
    pathlib.Path
        ``path`` as given (the link, where it is one).
    """
    st = safetensors_numpy()
    blob = memoryview(st.save(arrays, metadata=metadata))
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(bytes(blob[8 : 8 + n]))
    payload = blob[8 + n :]
    header["__metadata__"]["sha256"] = _checksum(header, payload)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data to 8 bytes
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    _write_atomic(target, [len(text).to_bytes(8, "little"), text, payload])
    return path


def _write_atomic(path: Path, pieces) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open with mode 0o666 lets the umask decide a new file's permissions, as a plain open() would
    # (tempfile.mkstemp would leave it readable by its owner only); a file replaced keeps its own.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.chmod(tmp, mode)
            for piece in pieces:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # Make the rename itself durable (POSIX; Windows cannot open a directory).
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (True where that cannot be told)."""
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill would terminate the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    except (OverflowError, ValueError):  # no process can have such an id
        return False
    return True


def remove_stale_temps(target: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary files that killed saves of ``target`` left in its directory.

    A temporary file of this target (``.{name}.{pid}.{token}.tmp``) is stale
    when no one has written to it for ``STALE_SECONDS`` (10 minutes), or
    when its process is no longer alive on this machine and it is older
    than ``GRACE_SECONDS`` (a minute). A save of the same target running
    concurrently, in this process or another, is never removed: it is alive
    and writing. Files of other targets are left alone.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if age > STALE_SECONDS or (age > GRACE_SECONDS and not _alive(int(match.group(1)))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:  # removed meanwhile, by its own save or by another cleaner
            continue
        except OSError as exc:
            warnings.warn(f"could not remove the stale temporary file {entry.path!r}: {exc}", stacklevel=3)
    return removed


# -- reading ----------------------------------------------------------------------------------


def read_file(path: Path) -> tuple[dict, dict]:
    """The metadata (checked against its checksum) and the arrays of a checkpoint file, as host arrays.

    Raises
    ------
    CheckpointError
        The file is truncated, corrupted, edited, or not a gdbp checkpoint.
    FileNotFoundError
        There is no such file.
    """
    data = path.read_bytes()
    try:
        meta = _verified(path, data)
    except RecursionError:
        raise CheckpointError(path, "corrupted header: nested too deeply") from None
    try:
        host = safetensors_numpy().load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise CheckpointError(path, f"safetensors could not read the arrays: {exc}") from None
    return meta, host


def _verified(path: Path, data: bytes) -> dict:
    """The header's metadata, once the checksum over the header and the array bytes matches."""
    header, payload = _header(path, data)
    meta = header["__metadata__"]
    stored = meta.pop("sha256", None)  # the checksum covers the header without itself
    if stored is None:
        raise CheckpointError(path, "no sha256 checksum in the metadata; the header was edited")
    actual = _checksum(header, payload)
    if not isinstance(stored, str) or actual != stored:
        raise CheckpointError(
            path,
            f"checksum mismatch (stored sha256 {str(stored)[:12]}..., computed {actual[:12]}...): "
            "the file was modified or corrupted after it was written",
        )
    return meta


def _header(path: Path, data: bytes) -> tuple[dict, memoryview]:
    """The parsed header (its metadata checked to be a gdbp checkpoint's) and the array bytes."""
    if len(data) < 8:
        raise CheckpointError(path, f"truncated: {len(data)} bytes, too short to hold a header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise CheckpointError(
            path, f"truncated: the header says it is {n} bytes long but the file has {len(data) - 8} after the length"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(path, f"corrupted header (not valid JSON: {exc}); not a safetensors file?") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(path, "not a gdbp checkpoint (its header has no gdbp metadata); write one with gdbp.save")
    version = meta.get("format_version")
    if not isinstance(version, str) or not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise CheckpointError(path, f"corrupted metadata: format_version={version!r}")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(
            path, f"written in checkpoint format {version}, this gdbp reads up to {FORMAT_VERSION}: upgrade gdbp"
        )
    payload = memoryview(data)[8 + n :]
    try:
        needed = max((int(e["data_offsets"][1]) for k, e in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, IndexError, ValueError, OverflowError):
        raise CheckpointError(path, "corrupted header: an array entry has no valid data_offsets") from None
    if len(payload) < needed:
        raise CheckpointError(path, f"truncated: the arrays need {needed} bytes of data, the file holds {len(payload)}")
    return header, payload
