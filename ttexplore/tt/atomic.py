"""Writing a file whole or not at all, and saying in one line why a write failed.

Every file ttexplore writes (model files, checkpoints, JSON summaries, CSV and
markdown tables, figures, zips, uploads) goes through :func:`write_atomic`:

1. the content goes to a temporary file beside the target (``.<name>.<pid>.<id>.tmp``,
   same folder, so the rename stays on one file system), which is flushed and
   ``fsync``-ed;
2. the temporary file is renamed over the target (:func:`os.replace`, atomic on
   POSIX and Windows), and the folder is ``fsync``-ed so the rename survives a crash;
3. on *any* failure before the rename, ``KeyboardInterrupt`` included, the temporary
   file is removed and the target is left as it was (its old content, or absent).

A target that exists and is not a regular file (``/dev/full``, ``/dev/null``, a named
pipe, a terminal) cannot be replaced by a rename: it is written directly, with the
same error mapping.

An :class:`OSError` becomes a :class:`WriteError`: one line naming the file and the fix;
for a full disk (``ENOSPC``) also the bytes it needed and the bytes free
(:func:`shutil.disk_usage`). Pure Python (no torch): a writer callable lets a caller
stream any serialisation (``torch.save``) into the open file.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Union

__all__ = ["WriteError", "write_atomic", "write_problem", "human_size", "temporary_name"]

#: What :func:`write_atomic` writes: bytes, text (encoded), or a function that writes into a binary file.
Content = Union[bytes, bytearray, memoryview, str, Callable[[BinaryIO], None]]


class WriteError(OSError):
    """A file could not be written; ``str(error)`` is one line naming the file and the fix.

    Attributes:
        path: the target file.
        errno: the operating system's error number (``errno.ENOSPC`` for a full disk), or ``None``.
        needed: bytes the file needed (for a full disk), or ``None`` when unknown.
        free: bytes free on the target's file system (for a full disk), or ``None``.
    """

    def __init__(self, path: "str | os.PathLike", message: str, error_number: Optional[int] = None,
                 needed: Optional[int] = None, free: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path)
        self.errno = error_number
        self.strerror = message
        self.needed = needed
        self.free = free

    def __str__(self) -> str:
        return self.message


def human_size(size: Optional[int]) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``None`` -> ``"an unknown size"``."""
    if size is None:
        return "an unknown size"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover - the loop always returns


def _free_bytes(folder: Path) -> Optional[int]:
    """Bytes free to this user on ``folder``'s file system, ``None`` when it cannot be read."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_problem(path: "str | os.PathLike", error: OSError, needed: Optional[int] = None) -> WriteError:
    """The :class:`WriteError` for ``error`` raised while writing ``path`` (``needed``: the file's size, when known).

    Full disk, quota, read-only file system, permission, a missing folder and a folder in the
    way each get their own fix; anything else keeps the system's words.
    """
    if isinstance(error, WriteError):
        return error
    target = Path(path)
    code = error.errno
    reason = error.strerror or str(error)
    if code == errno.ENOSPC:
        regular = not target.exists() or target.is_file()
        free = _free_bytes(target.parent) if regular else None
        room = (f": it needed {human_size(needed)} and {human_size(free)} is free there" if regular and needed is not None
                else f": {human_size(free)} is free there" if regular and free is not None else "")
        return WriteError(target, f"cannot write {target}: no space left on the device{room}; free some space or "
                                  "choose another place", code, needed, free)
    if code == getattr(errno, "EDQUOT", -1):
        return WriteError(target, f"cannot write {target}: the disk quota is exceeded"
                                  + (f" (it needed {human_size(needed)})" if needed is not None else "")
                                  + "; remove some files or choose another place", code, needed)
    if code == errno.EROFS:
        return WriteError(target, f"cannot write {target}: the file system is read-only; choose a writable place", code)
    if code in (errno.EACCES, errno.EPERM):
        return WriteError(target, f"cannot write {target}: permission denied; make {target.parent} writable or "
                                  "choose another place", code)
    if code == errno.ENOENT:
        return WriteError(target, f"cannot write {target}: the folder {target.parent} does not exist; create it "
                                  "first", code)
    if code == errno.EISDIR:
        return WriteError(target, f"cannot write {target}: it is a folder; give a file name", code)
    if code == errno.ENOTDIR:
        return WriteError(target, f"cannot write {target}: a part of its folder path is a file, not a folder", code)
    return WriteError(target, f"cannot write {target}: {reason}", code)


class _Counting:
    """A binary sink that only counts what is written to it (the size a failed write needed)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.size


def _content_size(content: Content, encoding: str) -> Optional[int]:
    """Bytes ``content`` takes on disk; a writer is run into a counting sink (only after a failure)."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        return memoryview(content).nbytes
    if isinstance(content, str):
        return len(content.encode(encoding))
    sink = _Counting()
    try:
        content(sink)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a writer that needs a real file: the size stays unknown
        return None
    return sink.size


class _Recording:
    """A file seen through ``write``/``flush`` that keeps the first :class:`OSError` they raised: a
    serialiser calling back into Python (``torch.save``) may turn it into its own error on the way out."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: Optional[OSError] = None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name: str):
        return getattr(self.handle, name)


def _write_into(handle: BinaryIO, content: Content, encoding: str) -> None:
    """Write ``content`` into ``handle``; an :class:`OSError` a writer's own error hid is raised instead."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        handle.write(content)
    elif isinstance(content, str):
        handle.write(content.encode(encoding))
    else:
        recording = _Recording(handle)
        try:
            content(recording)  # type: ignore[arg-type]
        except Exception as error:
            if recording.error is not None and not isinstance(error, OSError):
                raise recording.error from error
            raise


def temporary_name(path: Path) -> Path:
    """The temporary file :func:`write_atomic` uses for ``path``: hidden, beside it, unique per call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")


def _open_new(path: Path) -> BinaryIO:
    """A new file at ``path`` for writing (never an existing one), its mode from the umask as ``open`` makes it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return os.fdopen(descriptor, "wb")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse a folder's fsync)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_atomic(path: "str | os.PathLike", content: Content, *, encoding: str = "utf-8", make_folder: bool = False,
                 durable: bool = True) -> Path:
    """Write ``content`` to ``path`` whole or not at all (see the module docstring); returns the path.

    Args:
        path: the target file (``~`` expanded). A special file (``/dev/full``, a pipe) is written directly.
        content: bytes, text (encoded with ``encoding``) or ``writer(binary_file)``.
        make_folder: create the target's folder first (with its parents).
        durable: ``fsync`` the file and its folder (off only for throw-away files).

    Raises:
        WriteError: (an :class:`OSError`) one line naming the file and the fix; the target is
            untouched and no temporary file is left.
        Any exception the writer raises, after the same clean-up.
    """
    target = Path(path).expanduser()
    try:
        mode = target.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return _write_special(target, content, encoding)
    if make_folder:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_problem(target, error) from None
    temporary = temporary_name(target)
    handle = None
    try:
        handle = _open_new(temporary)
        _write_into(handle, content, encoding)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        handle.close()
        handle = None
        if mode is not None:  # keep the permissions of the file it replaces
            os.chmod(temporary, stat.S_IMODE(mode))
        os.replace(temporary, target)
    except BaseException as error:
        if handle is not None:
            try:
                handle.close()
            except OSError:  # closing flushes: on a full disk this fails again
                pass
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            needed = _content_size(content, encoding) if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)) else None
            raise write_problem(target, error, needed) from None
        raise
    if durable:
        _fsync_folder(target.parent)
    return target


def _write_special(target: Path, content: Content, encoding: str) -> Path:
    """Write straight into a special file (a device or a pipe): there is nothing to rename or clean up."""
    try:
        with open(target, "wb") as handle:
            _write_into(handle, content, encoding)
            handle.flush()
    except OSError as error:
        if isinstance(error, WriteError):
            raise
        raise write_problem(target, error) from None
    return target
