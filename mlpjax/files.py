"""The files and folders mlpjax reads and writes: opened for reading only when they are regular files, sizes checked
against the memory there is before anything is allocated, and every refusal one line in the right words.

Each function raises :class:`mlpjax.errors.UserInputError` naming the path and what would be right
("is a directory, expected a file", "symbolic link loop", "permission denied", ...), never "not found" for a
path that exists. Command-line flags are not named here: the caller adds them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlpjax.errors import UserInputError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words: "a directory", "a named pipe (FIFO)", ..."""
    default = "a regular file" if stat.S_ISREG(mode) else "a special file"
    return next((name for test, name in _KINDS if test(mode)), default)


def why_unusable(path: Path, error: OSError) -> str:
    """The words for an ``error`` raised on ``path``: a loop, a broken link, a parent that is a file, ..."""
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.EROFS:
        return "read-only file system"
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    if error.errno == errno.ENOTDIR:
        parent = first_existing_parent(path)
        return f"{parent} is a file, not a folder" if parent and not parent.is_dir() else "a parent is not a folder"
    if error.errno == errno.ENOENT:
        if os.path.islink(path):
            return f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
        return "does not exist"
    return error.strerror or str(error)


def first_existing_parent(path: Path) -> Path | None:
    """The nearest of ``path``'s parents that exists (as a directory entry), or None."""
    for parent in Path(path).parents:
        if os.path.lexists(parent):
            return parent
    return None


def open_regular(path: str | os.PathLike) -> io.FileIO:
    """``path`` opened for unbuffered binary reading, following symbolic links, if it is a regular file.

    A directory, FIFO, device (e.g. a link to ``/dev/zero``) or socket is refused without reading from it (a
    FIFO without a writer does not block the open); a missing file, a broken or looping link and a permission
    error are refused in those words.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno == errno.ENXIO:  # a socket, or a FIFO on some systems
            raise UserInputError(f"{path}: is {kind(os.stat(path).st_mode)}, expected a regular file") from None
        raise UserInputError(f"{path}: {why_unusable(path, e)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserInputError(f"{path}: is {kind(mode)}, expected a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0)


def check_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is a folder (following links); else "is a file, expected a folder", "does not exist", ..."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise UserInputError(f"{path}: {why_unusable(path, e)}") from None
    if not stat.S_ISDIR(mode):
        what = "a file" if stat.S_ISREG(mode) else kind(mode)
        raise UserInputError(f"{path}: is {what}, expected a folder")
    return path


def make_folder(path: str | os.PathLike) -> Path:
    """Create folder ``path`` and its parents unless they exist; "is a file, expected a folder" where ``path``
    or a parent is a file, and the reason in words where it cannot be created (permission, read-only, ...)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # path itself exists and is no folder (or is a link to none)
        return check_folder(path)
    except OSError as e:
        raise UserInputError(f"{path}: cannot create the folder: {why_unusable(path, e)}") from None
    return check_folder(path)


def check_new_file(path: str | os.PathLike) -> Path:
    """``path`` if a new file can be created there: nothing at ``path`` yet, and its nearest existing parent a
    folder. Else "already exists; give another path", "X is a file, not a folder", ..."""
    path = Path(path)
    if os.path.lexists(path):
        raise UserInputError(f"{path}: already exists; give another file name (or delete it first)")
    parent = first_existing_parent(path)
    if parent is not None and not parent.is_dir():
        raise UserInputError(f"{path}: {parent} is a file, not a folder")
    return path


def new_file_mode() -> int:
    """The permissions ``open()`` gives a new file: ``0o666`` less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Within it, an OSError (a full disk, a file where a folder goes, no permission) is the one line
    ``PATH: cannot write: <the reason in words>``, a UserInputError."""
    try:
        yield
    except OSError as e:
        raise UserInputError(f"{path}: cannot write: {why_unusable(Path(path), e)}") from None


def first_names(folder: str | os.PathLike, limit: int) -> list[str] | None:
    """The names of at most ``limit`` entries of ``folder`` (sorted), read without listing the rest (a folder of
    a million files costs as little as a small one); None where ``folder`` does not exist or a file stands in its
    path. A folder that cannot be read is a UserInputError ``FOLDER: cannot be read (reason)``."""
    try:
        with os.scandir(os.fspath(folder)) as entries:
            return sorted(e.name for _, e in zip(range(limit), entries, strict=False))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise UserInputError(f"{folder}: cannot be read ({e.strerror or e})") from None


def temporary_of(name: str, target: str) -> bool:
    """Whether the file name ``name`` is one of the temporary files :func:`write_atomic` makes beside a file
    named ``target`` (``.TARGET.XXXXXXXX.tmp``): what a process killed while it wrote ``target`` leaves."""
    return name.startswith(f".{target}.") and name.endswith(".tmp")


def remove_temporaries(
    folder: str | os.PathLike, targets: tuple[str, ...], limit: int = 4096, *, prefixes: tuple[str, ...] = ()
) -> list[str]:
    """Remove from ``folder`` the temporary files (or folders) of the names ``targets`` that an interrupted writer
    left (:func:`temporary_of`: ``.TARGET.XXXXXXXX.tmp``), and those whose names begin with one of ``prefixes``
    (another writer's temporary names), among its first ``limit`` entries; their names. Only the owner of
    ``folder`` may call it (a writer at work there would lose its file). What cannot be removed stays, unsaid: it
    holds nothing that is needed."""
    removed = []
    for name in first_names(folder, limit) or []:
        if name.startswith(prefixes) or any(temporary_of(name, target) for target in targets):
            path = Path(folder) / name
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(name)
    return removed


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object], *, replace: bool = True) -> Path:
    """Make the file ``path`` (its folders created) with ``write(tmp)``, which writes a temporary file beside it
    with the mode ``open()`` would give (:func:`new_file_mode`); the finished file then takes the name ``path``
    at once, so a reader never sees half a file. ``replace``: an existing ``path`` is replaced (``os.replace``);
    else it is refused, checked before writing and again atomically (a hard link) when the file is put in place.

    Any failure (a full disk, a parent that is a file, a folder at ``path``, no permission) is a UserInputError
    naming ``path`` and the reason in words; the temporary file never remains. Returns ``path``.
    """
    path = Path(path)
    if not replace:
        check_new_file(path)
    elif os.path.isdir(path):
        raise UserInputError(f"{path}: is a directory, expected a file")
    make_folder(path.parent)
    tmp = None
    try:
        with writing(path):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            os.chmod(tmp, new_file_mode())  # mkstemp makes 0600: give the file the mode open() would
            write(Path(tmp))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                _publish(Path(tmp), path)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def write_new(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """:func:`write_atomic` that never replaces a file: ``path`` existing is a UserInputError naming it."""
    return write_atomic(path, write, replace=False)


def write_text(path: str | os.PathLike, text: str, *, replace: bool = True) -> Path:
    """``text`` (UTF-8) into ``path`` through :func:`write_atomic`."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), replace=replace)


def write_json(path: str | os.PathLike, obj: Any, *, replace: bool = True) -> Path:
    """``obj`` as indented JSON into ``path`` through :func:`write_atomic`."""
    return write_text(path, json.dumps(obj, indent=2) + "\n", replace=replace)


def _publish(tmp: Path, path: Path) -> None:
    """Give the finished file ``tmp`` the name ``path`` unless ``path`` exists (then a UserInputError)."""
    exists = UserInputError(f"{path}: already exists; give another file name (or delete it first)")
    try:
        os.link(tmp, path)  # atomic, and fails where path exists
        return
    except FileExistsError:
        raise exists from None
    except OSError:
        pass  # a file system without hard links: an exclusive create and a copy
    try:
        with open(path, "xb") as f:
            f.write(tmp.read_bytes())
    except FileExistsError:
        raise exists from None
    except OSError:
        path.unlink(missing_ok=True)  # ours: created exclusively above
        raise
