"""What a dataset read from the user's files was read from: a SHA-256 of its bytes, so that a run can tell whether
the data it was trained on has changed since.

A file's digest is the SHA-256 of its bytes; an image folder's, of each image's path relative to the folder (in
sorted order), its size and its bytes, so that a renamed, added, removed or edited image changes it. Reading is
streamed (:data:`CHUNK` bytes at a time): the memory taken is bounded whatever the sizes, and an image folder's
files are at most :data:`mlpjax.data.images.MAX_ENTRIES`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from mlpjax import files, memory
from mlpjax.errors import UserInputError

CHUNK = 2**20


@dataclasses.dataclass(frozen=True)
class Digest:
    """The SHA-256 (hex) of a dataset's bytes, their number and the number of files they are in."""

    sha256: str
    size: int
    files: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as a run's checkpoints, ``metrics.json`` and a sweep's plan record it."""
        return {"sha256": self.sha256, "bytes": self.size, "files": self.files}

    @classmethod
    def from_dict(cls, d: Any) -> Digest:
        """From :meth:`to_dict`'s form; anything else is a ValueError (its reader names the file it came from)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a dataset digest is a mapping, got {type(d).__name__}")
        sha, size, count = d.get("sha256"), d.get("bytes"), d.get("files", 1)
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError(f"a dataset digest's sha256 is 64 hex digits, got {sha!r}")
        return cls(sha, _whole("bytes", size), _whole("files", count))

    def words(self) -> str:
        """``"2.3 KiB, SHA-256 1a2b3c4d5e6f"``, with the number of files where there are several."""
        count = f"{self.files} files, " if self.files != 1 else ""
        return f"{count}{memory.format_bytes(self.size)}, SHA-256 {self.sha256[:12]}"


def _whole(what: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"a dataset digest's {what} is a whole number, got {n!r}")
    return n


def file_digest(path: str | os.PathLike) -> Digest:
    """The :class:`Digest` of the regular file ``path`` (read as :func:`mlpjax.files.open_regular` reads)."""
    sha, size = hashlib.sha256(), 0
    with files.open_regular(path) as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return Digest(sha.hexdigest(), size)


def folder_digest(root: str | os.PathLike, names: Iterable[str]) -> Digest:
    """The :class:`Digest` of the files ``names`` (paths relative to ``root``, with ``/``), in sorted order."""
    sha, size, count = hashlib.sha256(), 0, 0
    for name in sorted(names):
        one = file_digest(os.path.join(root, name))
        sha.update(f"{name}\0{one.size}\0{one.sha256}\n".encode("utf-8", "surrogateescape"))
        size, count = size + one.size, count + 1
    return Digest(sha.hexdigest(), size, count)


def check_unchanged(name: str, recorded: Digest | None, now: Digest | None, where: str) -> None:
    """Refuse data ``name`` whose digest ``now`` differs from the one ``recorded`` when ``where`` (a run) was
    trained on it: one UserInputError saying what it was and what it is. Nothing to compare (a run saved before
    digests were recorded, a dataset by name): no refusal."""
    if recorded is None or now is None or recorded == now:
        return
    raise UserInputError(
        f"{name}: changed since {where} was trained on it (then {recorded.words()}; now {now.words()}); put the "
        "data back as it was, or train a new model on it"
    )
