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
  directory can be written, before anything is trained.
"""

from __future__ import annotations

import errno
import os
import socket
import weakref
from pathlib import Path

from mlpjax.errors import FieldError

LOCK_NAME = ".mlpjax-lock"
# never through a link: a lock file planted as a link to another file must not get that file truncated
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


class RunLocked(FieldError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """The exclusive lock on run directory ``directory``, held from construction until :meth:`release`.

    ``field`` names the setting that chose the directory (``output`` or ``resume``) in errors. Raises
    :class:`RunLocked` if another process holds it, a :class:`~mlpjax.errors.FieldError` if the directory
    cannot be created or written. Released when the object is garbage collected, or the process ends.
    """

    def __init__(self, directory: Path, field: str = "output"):
        self.directory, self.path = Path(directory), Path(directory) / LOCK_NAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NO_FOLLOW, 0o666)
        except OSError as e:
            raise FieldError(field, f"{{field}} {self.directory}: cannot be written ({_reason(e)})") from None
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                owner = _owner(fd)
                self.release()
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _locked(field, self.directory, owner) from None
                raise FieldError(field, f"{{field}} {self.directory}: cannot be locked ({_reason(e)})") from None
        try:  # the owner, for the message of the next claimant; a failed write means an unwritable directory
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            os.fsync(fd)
        except OSError as e:
            self.release()
            raise FieldError(field, f"{{field}} {self.directory}: cannot be written ({_reason(e)})") from None

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        """Give the directory up (idempotent). The lock file stays: it is reused by the next owner."""
        self._finalizer()


def refuse_if_locked(directory: Path, field: str = "resume") -> None:
    """Raise :class:`RunLocked` if a live process holds ``directory``'s lock; creates and writes nothing (for
    a claimant that must read the directory before it claims it)."""
    if fcntl is None:  # pragma: no cover
        return
    try:
        fd = os.open(Path(directory) / LOCK_NAME, os.O_RDONLY | _NO_FOLLOW)
    except OSError:
        return  # no lock file: never owned, or not readable (the claim will say)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise _locked(field, Path(directory), _owner(fd)) from None
    finally:
        os.close(fd)


def _locked(field: str, directory: Path, owner: str) -> RunLocked:
    return RunLocked(field, f"{{field}} {directory}: another mlpjax run is using it"
                     f"{f' ({owner})' if owner else ''}; wait for it to end or choose another directory")


def _owner(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _reason(e: OSError) -> str:
    return e.strerror or str(e)
