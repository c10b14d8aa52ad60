"""Who owns a run directory: :class:`RunLock`, an exclusive ``flock`` on ``DIR/.mlpjax-lock``.

Contract:

- One process at a time trains into a run directory (a fresh run or a resumed one): it holds the lock from
  the moment the directory is claimed until the run ends (:meth:`RunLock.release`, or the process's exit).
- A second claimant is refused at once (:class:`RunLocked`, a :class:`~mlpjax.errors.FieldError`, naming the
  process that holds it); nothing waits.
- A lock left by a dead process is no lock: ``flock`` locks die with their process (SIGKILL included), so the
  lock file that remains is simply taken over. Its content (the owner's pid and host) is informative only.
- Readers (``evaluate``, ``predict``) take no lock: checkpoints are renamed into place when complete, so a
  reader sees whole epochs only.
- Claiming creates the directory (and its parents) and writes the lock file: it is also the check that the
  directory can be written, before anything is trained. An owner that gives the directory up unused
  (:meth:`RunLock.release` with ``remove_created``) removes what its claim created, where it holds nothing
  else; a claimant that finds its lock file removed so takes the lock anew.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import weakref
from pathlib import Path

from mlpjax import files
from mlpjax.errors import FieldError

LOCK_NAME = ".mlpjax-lock"
PROBE_PREFIX = ".mlpjax-probe-"  # the file that proves a claimed directory writable (removed at once)
# never through a link: a lock file planted as a link to another file must not get that file truncated
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 5  # claims of a lock file that its last owner keeps removing, before giving up

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]  # runs are then not locked


def claim_files(names: list[str]) -> set[str]:
    """Those of ``names`` that claiming a run directory writes: its lock file and a write probe (left by a
    kill at that moment)."""
    return {n for n in names if n == LOCK_NAME or n.startswith(PROBE_PREFIX)}


class RunLocked(FieldError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """The exclusive lock on run directory ``directory``, held from construction until :meth:`release`.

    ``field`` names the setting that chose the directory (``output`` or ``resume``) in errors. Raises
    :class:`RunLocked` if another process holds it, a :class:`~mlpjax.errors.FieldError` if the directory
    cannot be created or written. Released when the object is garbage collected, or the process ends.
    :attr:`created`: the folders and the lock file that taking it created, outermost first.
    """

    def __init__(self, directory: Path, field: str = "output"):
        self.directory, self.path = Path(directory), Path(directory) / LOCK_NAME
        self.created: list[Path] = []
        for _ in range(_ATTEMPTS):
            self._open(field)
            self._lock(field)
            if _same_file(self._fd, self.path):
                break
            self.release()  # its last owner removed the file as it gave the directory up: take the lock anew
        else:
            raise FieldError(field, f"{{field}} {self.directory}: its lock file keeps being removed; try again")
        try:  # the owner, for the message of the next claimant; a failed write means an unwritable directory
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            os.fsync(self._fd)
        except OSError as e:
            self.release(remove_created=True)
            raise FieldError(field, f"{{field}} {self.directory}: cannot be written ({_reason(e)})") from None

    def _open(self, field: str) -> None:
        """Create the directory and open (or create) the lock file, noting in :attr:`created` what was made."""
        missing = _missing(self.directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                fd, made = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o666), [self.path]
            except FileExistsError:
                fd, made = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | _NO_FOLLOW, 0o666), []
                _check_regular(fd, self.path, field)
        except OSError as e:
            raise FieldError(field, f"{{field}} {self.directory}: cannot be written ({_reason(e)})") from None
        folders = [p for p in self.created if p != self.path]  # made by an earlier attempt, still ours
        self.created = [*folders, *(p for p in missing if p not in folders), *made]
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)

    def _lock(self, field: str) -> None:
        """``flock`` the open lock file, or raise :class:`RunLocked` naming its owner."""
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = _owner(self._fd)
            self.release()
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _locked(field, self.directory, owner) from None
            raise FieldError(field, f"{{field}} {self.directory}: cannot be locked ({_reason(e)})") from None

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self, *, remove_created: bool = False) -> None:
        """Give the directory up (idempotent). The lock file stays: it is reused by the next owner.

        ``remove_created``: first remove what taking the lock created (:attr:`created`): the lock file, while
        still held, then the folders, innermost first, each only while it is empty. Nothing else is touched.
        """
        if remove_created and self.held:
            for path in reversed(self.created):
                try:
                    path.unlink() if path == self.path else path.rmdir()
                except OSError:  # not empty (or gone): it holds more than this claim made, keep it and its parents
                    break
        self._finalizer()


def _missing(directory: Path) -> list[Path]:
    """``directory`` and those of its parents that do not exist, outermost first."""
    missing = []
    for path in (directory, *directory.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    return missing[::-1]


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open ``fd`` is still the file at ``path`` (not removed, nor replaced)."""
    try:
        found, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


def refuse_if_locked(directory: Path, field: str = "resume") -> None:
    """Raise :class:`RunLocked` if a live process holds ``directory``'s lock; creates and writes nothing (for
    a claimant that must read the directory before it claims it)."""
    if fcntl is None:  # pragma: no cover
        return
    try:  # not blocking: a named pipe there would wait for a writer forever
        fd = os.open(Path(directory) / LOCK_NAME, os.O_RDONLY | os.O_NONBLOCK | _NO_FOLLOW)
    except OSError:
        return  # no lock file: never owned, or not readable (the claim will say)
    _check_regular(fd, Path(directory) / LOCK_NAME, field)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise _locked(field, Path(directory), _owner(fd)) from None
    finally:
        os.close(fd)


def _check_regular(fd: int, path: Path, field: str) -> None:
    """Close ``fd`` and raise a FieldError unless it is a regular file (a lock file replaced by a named pipe or a
    device is no lock: it is never read or waited on)."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FieldError(
            field, f"{{field}} {path.parent}: {path.name} is {files.kind(mode)}, not mlpjax's lock file; remove it"
        )
    os.set_blocking(fd, True)


def _locked(field: str, directory: Path, owner: str) -> RunLocked:
    return RunLocked(
        field,
        f"{{field}} {directory}: another mlpjax run is using it"
        f"{f' ({owner})' if owner else ''}; wait for it to end or choose another directory",
    )


def _owner(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _reason(e: OSError) -> str:
    return e.strerror or str(e)
