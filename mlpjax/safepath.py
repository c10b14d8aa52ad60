"""Paths of any characters for Orbax: :class:`PlainPath`.

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

import os
import shutil
import tempfile
import weakref
from pathlib import Path

from mlpjax.errors import UserInputError

GLOB_CHARACTERS = frozenset("*?[]{}")


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
