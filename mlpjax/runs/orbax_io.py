"""Orbax, as every checkpoint of mlpjax uses it: imported lazily, quieted, its epochs' completion marks read,
half-made epochs set aside, failures in one line, and paths of any characters (:class:`PlainPath`).

Run checkpoints (:mod:`mlpjax.runs.checkpoint`) and sweep checkpoints (:mod:`mlpjax.sweep.checkpoint`) both
go through this module: its functions are the one place that knows Orbax's files.

Paths of any characters: :class:`PlainPath`.

Orbax finds some of its own files with ``glob`` on the *whole* path (``<dir>/ocdbt.process_*`` when it merges
the per-process OCDBT stores, ``array_metadatas/process_*`` when it reads array metadata). In a directory
whose path holds glob characters (``*``, ``?``, ``[``), e.g. ``exp[1]``, the pattern matches nothing, and
Orbax silently writes a checkpoint that cannot be restored. So Orbax is given an alias of such a directory:
a symbolic link without special characters, in a private temporary directory, pointing to it. Everything is
read and written through the link, so the files land in the directory asked for.

Contract: :attr:`PlainPath.path` names the same directory as the one given and holds no glob character;
paths without glob characters are used as they are (absolute), so the common case makes no link. The link
lives until :meth:`PlainPath.close` (or garbage collection); the directory itself is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mlpjax.errors import UserInputError

GLOB_CHARACTERS = frozenset("*?[]{}")
COMPLETE_MARK = "_CHECKPOINT_METADATA"  # Orbax writes it into an epoch's directory before renaming it into place


def has_glob_characters(path: str | os.PathLike) -> bool:
    return any(c in GLOB_CHARACTERS for c in os.fspath(path))


class PlainPath:
    """``directory`` (an existing directory) under a name Orbax's globbing cannot misread: :attr:`path`."""

    def __init__(self, directory: str | os.PathLike):
        target = Path(os.path.abspath(directory))
        self._finalizer = None
        if not has_glob_characters(target):
            self.path = target
            return
        home = tempfile.mkdtemp(prefix="mlpjax-path-")
        self.path = Path(home) / "run"
        self._finalizer = weakref.finalize(self, shutil.rmtree, home, True)  # removes the link, not its target
        if has_glob_characters(self.path):
            self.close()
            raise UserInputError(f"{directory}: a path with glob characters ({''.join(sorted(GLOB_CHARACTERS))}) "
                                 f"needs a temporary directory without them, but it is {home}; set TMPDIR")
        os.symlink(target, self.path, target_is_directory=True)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        self.close()


def state_digest(arrays: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes (in tree order): detects silent corruption."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(arrays)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def orbax_checkpoint():
    import orbax.checkpoint as ocp  # imported lazily: it adds ~2 s to start-up

    return ocp


def reader(root: Path):
    """A CheckpointManager that only reads ``root`` (creates nothing, writes no root metadata)."""
    ocp = orbax_checkpoint()
    return ocp.CheckpointManager(root.absolute(), options=ocp.CheckpointManagerOptions(create=False))


def short_error(e: BaseException) -> str:
    """The first line of an exception (without TensorStore's pointer to more details), for one-line errors;
    an operating system's error (TensorStore's ``os_error_code``) as its text, e.g. ``No space left on device``."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    code = re.search(r"os_error_code='?(\d+)", str(e))
    if code:
        return os.strerror(int(code.group(1)))
    text = (str(e).strip().splitlines() or [""])[0].split(" See full TensorStore details")[0]
    return f"{type(e).__name__}: {text[:200]}"


@contextlib.contextmanager
def quiet():
    """Orbax's worker threads log a failed write with its traceback (absl's logger): the caller reports it in
    one line instead, so that logger is silenced while Orbax works."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def complete_steps(root: Path) -> list[int]:
    """The complete epochs in CheckpointManager directory ``root``, in order: numbered directories that hold
    Orbax's completion mark (temporary, empty or half-made ones are not epochs)."""
    return sorted(int(e.name) for e in entries(root) if e.name.isdigit() and e.is_dir(follow_symlinks=False)
                  and os.path.isfile(os.path.join(e.path, COMPLETE_MARK)))


def entries(root: Path) -> list[os.DirEntry]:
    """The entries of ``root`` (none where it cannot be listed)."""
    try:
        return list(os.scandir(root))
    except OSError:
        return []


def remove_partial(root: Path) -> None:
    """Remove Orbax's temporary directories in ``root`` (what an interrupted or failed save leaves)."""
    import shutil

    for entry in entries(root):
        if ".orbax-checkpoint-tmp" in entry.name:
            shutil.rmtree(entry.path, ignore_errors=True)


def set_aside_incomplete_steps(root: Path) -> None:
    """Clear the way for the next save into CheckpointManager directory ``root``: a numbered directory without
    Orbax's completion mark is no epoch (Orbax renames an epoch into place complete), yet Orbax would count it and
    refuse to save that epoch again. An empty one is removed; one holding anything is renamed ``N.incomplete``
    (``N.incomplete-2``, ...), which Orbax ignores, so that nothing in it is lost."""
    for entry in entries(root):
        if not (entry.name.isdigit() and entry.is_dir(follow_symlinks=False)) or \
                os.path.isfile(os.path.join(entry.path, COMPLETE_MARK)):
            continue
        try:
            os.rmdir(entry.path)  # only ever removes an empty directory
            continue
        except OSError:
            pass
        for n in range(1, 1000):
            aside = os.path.join(str(root), f"{entry.name}.incomplete" + (f"-{n}" if n > 1 else ""))
            if not os.path.lexists(aside):
                with contextlib.suppress(OSError):
                    os.rename(entry.path, aside)
                break
