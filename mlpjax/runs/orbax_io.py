"""Orbax, as every checkpoint of mlpjax uses it: imported lazily, quieted, its epochs' completion marks read,
half-made epochs set aside, failures in one line, and paths of any characters (:class:`PlainPath`).

Run checkpoints (:mod:`mlpjax.runs.checkpoint`) and sweep checkpoints (:mod:`mlpjax.sweep.checkpoint`) both
save through :class:`EpochWriter` and restore through :class:`EpochReader`: this module is the one place that
knows Orbax's files. An epoch is two Orbax items in ``<root>/<epoch>/``: ``state``, a pytree of arrays
(``StandardSave``, tensorstore), and ``meta``, JSON (``JsonSave``) that holds whatever the caller's format says
plus the SHA-256 of the arrays (:func:`state_digest`). What the caller's format means (which configs, which
histories) stays with the caller; the guards are here, the same for both:

- saving: a failure (a full disk, a vanished folder) is :class:`SaveError`, one line, the partial files removed
  and the earlier epochs intact; metadata larger than :data:`MAX_METADATA_BYTES`, which the reader refuses, is
  never written (a :class:`SaveError` before anything is written);
- restoring: the metadata is read only below :data:`MAX_METADATA_BYTES`; the arrays' declared size is checked
  against the files on disk and the memory available before anything is allocated
  (:func:`mlpjax.training.budget.check_restore`); shapes and dtypes, the digest and (:func:`check_finite`) the
  finiteness of weights are checked; every failure is a :class:`~mlpjax.errors.UserInputError` naming the epoch.

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
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mlpjax import files, memory
from mlpjax.errors import UserInputError
from mlpjax.training import budget

GLOB_CHARACTERS = frozenset("*?[]{}")
COMPLETE_MARK = "_CHECKPOINT_METADATA"  # Orbax writes it into an epoch's directory before renaming it into place
STATE, META = "state", "meta"  # an epoch's two Orbax items: the arrays, the JSON
# The JSON of an epoch (configs and histories): kilobytes; 4 history values an epoch take about 80 bytes, so this
# holds some 800 000 epochs of a run. The reader refuses more unread, so the writer never writes more.
MAX_METADATA_BYTES = 64 * 2**20


class SaveError(UserInputError):
    """An epoch could not be saved (a full disk, a vanished directory, metadata too large to read back); the
    earlier epochs are intact."""


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
            raise UserInputError(
                f"{directory}: a path with glob characters ({''.join(sorted(GLOB_CHARACTERS))}) "
                f"needs a temporary directory without them, but it is {home}; set TMPDIR"
            )
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


MAX_EPOCH_ENTRIES = 10_000  # files and folders of one epoch that are looked at (Orbax writes a few dozen)


def check_plain_files(root: Path, step: int, shown: Path | None = None) -> None:
    """Refuse, before Orbax opens anything, what would make its reading hang, grow without bound or fail with a
    traceback: in every epoch directory of ``root`` its completion mark, and everywhere under epoch ``step``,
    anything but folders and regular files (a named pipe, a device, a link), and a completion mark above
    :data:`MAX_METADATA_BYTES`. Errors name the file under ``shown`` (``root`` as the user gave it)."""
    shown = root if shown is None else shown

    def refuse(path: str, what: str) -> None:
        raise UserInputError(f"{shown / os.path.relpath(path, root)}: {what}; this is no checkpoint that mlpjax wrote")

    def check(path: str, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode) or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            refuse(path, f"is {files.kind(st.st_mode) if not stat.S_ISLNK(st.st_mode) else 'a link'}")
        if os.path.basename(path) == COMPLETE_MARK and st.st_size > MAX_METADATA_BYTES:
            refuse(path, f"{memory.format_bytes(st.st_size)} for a completion mark")

    for entry in entries(root):
        if entry.name.isdigit() and entry.is_dir(follow_symlinks=False):
            mark = os.path.join(entry.path, COMPLETE_MARK)
            with contextlib.suppress(FileNotFoundError):
                check(mark, os.lstat(mark))
    seen = 0
    for folder, names, file_names in os.walk(root / str(step)):
        for name in names + file_names:
            seen += 1
            if seen > MAX_EPOCH_ENTRIES:
                refuse(folder, f"holds more than {MAX_EPOCH_ENTRIES} files")
            path = os.path.join(folder, name)
            with contextlib.suppress(FileNotFoundError):
                check(path, os.lstat(path))


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
    return sorted(
        int(e.name)
        for e in entries(root)
        if e.name.isdigit() and e.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(e.path, COMPLETE_MARK))
    )


def entries(root: Path) -> list[os.DirEntry]:
    """The entries of ``root`` (none where it cannot be listed)."""
    try:
        return list(os.scandir(root))
    except OSError:
        return []


def remove_partial(root: Path, tries: int = 40, settled: int = 3) -> None:
    """Remove Orbax's temporary directories in ``root`` (what an interrupted or failed save leaves). A failed save's
    writer threads may still be finishing a file when its error arrives (seen on a full disk: a directory made
    again just after it was removed), so the look is repeated 50 ms apart, removing what it finds, until
    ``settled`` looks in a row find none (``tries`` looks at most: 2 s)."""
    clean = 0
    for attempt in range(tries):
        if attempt:
            time.sleep(0.05)
        partial = [e for e in entries(root) if ".orbax-checkpoint-tmp" in e.name]
        if not partial:
            clean += 1
            if clean >= settled:
                return
            continue
        clean = 0
        for entry in partial:
            shutil.rmtree(entry.path, ignore_errors=True)


def set_aside_incomplete_steps(root: Path) -> None:
    """Clear the way for the next save into CheckpointManager directory ``root``: a numbered directory without
    Orbax's completion mark is no epoch (Orbax renames an epoch into place complete), yet Orbax would count it and
    refuse to save that epoch again. An empty one is removed; one holding anything is renamed ``N.incomplete``
    (``N.incomplete-2``, ...), which Orbax ignores, so that nothing in it is lost."""
    for entry in entries(root):
        if not (entry.name.isdigit() and entry.is_dir(follow_symlinks=False)) or os.path.isfile(
            os.path.join(entry.path, COMPLETE_MARK)
        ):
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


def metadata_bytes(meta: Any) -> int:
    """The bytes of ``meta`` as Orbax's ``JsonSave`` writes it (``json.dumps``)."""
    return len(json.dumps(meta).encode())


def disk_bytes(path: Path) -> int:
    """The bytes of the files under ``path`` (links not followed; unreadable entries count 0)."""
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


class EpochWriter:
    """Saves epochs into CheckpointManager directories ``directory/<name>`` (``name`` may hold a ``/``).

    Each epoch is the arrays (``STATE``) and ``meta`` with the arrays' :func:`state_digest` added under
    ``"digest"`` (``META``). Saves are synchronous: when :meth:`save` returns, the epoch is on disk, each
    ``<name>`` keeping its last ``keep`` epochs. Nothing is created before the first save. With several processes
    (``jax.distributed``) every process calls :meth:`save` alike: Orbax's save is collective, process 0 writes.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._plain: PlainPath | None = None
        self._managers: dict[str, Any] = {}
        self._failed = False

    def _manager(self, name: str, keep: int):
        if name not in self._managers:
            ocp = orbax_checkpoint()
            if self._plain is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._plain = PlainPath(self.directory)
            set_aside_incomplete_steps(self.directory / name)
            self._managers[name] = ocp.CheckpointManager(
                self._plain.path / name,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=keep, enable_async_checkpointing=False, cleanup_tmp_directories=True
                ),
            )
        return self._managers[name]

    def save(self, epoch: int, arrays: Any, meta: Mapping[str, Any], into: Mapping[str, int]) -> None:
        """Save ``arrays`` (a pytree, copied to the host) and ``meta`` (JSON) as epoch ``epoch`` (1-based) of each
        ``name`` of ``into`` (name -> epochs kept), in that order.

        Raises :class:`SaveError` naming the epoch, after removing what it had begun to write: where a write
        fails (a full disk) and, before anything is written, where the metadata would exceed
        :data:`MAX_METADATA_BYTES`.
        """
        ocp = orbax_checkpoint()
        arrays = jax.device_get(arrays)  # host copies: the same bytes on every process, written once by process 0
        meta = {**meta, "digest": state_digest(arrays)}
        size = metadata_bytes(meta)
        if size > MAX_METADATA_BYTES:
            where = self.directory / next(iter(into), "") / str(epoch)
            raise SaveError(
                f"{where}: cannot save epoch {epoch}: its metadata (configs and history) would be"
                f" {memory.format_bytes(size)}, more than the "
                f"{memory.format_bytes(MAX_METADATA_BYTES)} a checkpoint may hold to be read back; the "
                "earlier epochs are intact"
            )
        args = ocp.args.Composite(**{STATE: ocp.args.StandardSave(arrays), META: ocp.args.JsonSave(meta)})
        for name, keep in into.items():
            where = self.directory / name / str(epoch)
            try:
                with quiet():
                    self._manager(name, keep).save(epoch, args=args, force=True)
            except Exception as e:  # orbax and tensorstore raise many types for an I/O failure
                self._failed = True
                with contextlib.suppress(Exception), quiet():  # let what the save began end before removing it
                    self._manager(name, keep).wait_until_finished()
                remove_partial(self.directory / name)
                raise SaveError(
                    f"{where}: cannot save epoch {epoch} ({short_error(e)}); its partial files are "
                    "removed and the earlier epochs are intact"
                ) from None

    def close(self) -> None:
        """Close the Orbax managers (after a failed save, quietly, removing its temporary directories once more) and
        the path alias."""
        try:
            for name, manager in self._managers.items():
                try:
                    with quiet():
                        manager.close()
                except Exception as e:
                    if not self._failed:
                        raise SaveError(
                            f"{self.directory / name}: cannot finish the checkpoints ({short_error(e)})"
                        ) from None
        finally:
            if self._failed:  # what a failed save's writers made after its removal (see remove_partial)
                for name in self._managers:
                    remove_partial(self.directory / name)
            self._managers.clear()
            if self._plain is not None:
                self._plain.close()


class EpochReader:
    """Epoch ``step`` of CheckpointManager directory ``root``, read through the guards. Use as a context
    manager: ``with EpochReader(root, step) as epoch: meta = epoch.meta(...); arrays = epoch.arrays(...)``.

    Every inconsistency is a :class:`~mlpjax.errors.UserInputError` naming :attr:`path`; Orbax's own warnings
    (an epoch a live run deletes, a half-made one) are silenced so that it is said once.
    """

    def __init__(self, root: str | os.PathLike, step: int):
        self.root, self.step = Path(root), step
        self.path = self.root / str(step)
        self._stack = contextlib.ExitStack()
        self._manager: Any = None  # an orbax CheckpointManager while open
        self._meta: dict[str, Any] | None = None

    def __enter__(self) -> EpochReader:
        with contextlib.ExitStack() as stack:
            plain = stack.enter_context(PlainPath(self.root))
            check_plain_files(plain, self.step, shown=self.root)
            stack.enter_context(quiet())
            try:
                self._manager = reader(plain)
            except Exception as e:  # Orbax reads every epoch's completion mark: a tampered one raises anything
                raise UserInputError(
                    f"{self.root}: cannot read the checkpoints ({short_error(e)}); this is no folder of "
                    "checkpoints that mlpjax wrote, or one changed since"
                ) from None
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def meta(self, format: str, version: int, what: str = "mlpjax checkpoint") -> dict[str, Any]:
        """The epoch's JSON, a dict whose ``format`` is ``format`` and ``version`` is ``version`` (``what``:
        the words for such a checkpoint in the errors); a file above :data:`MAX_METADATA_BYTES` is not read."""
        ocp = orbax_checkpoint()
        meta_file = self.path / META / "metadata"
        if meta_file.is_file() and meta_file.stat().st_size > MAX_METADATA_BYTES:
            raise UserInputError(
                f"{meta_file}: {memory.format_bytes(meta_file.stat().st_size)} of metadata; an "
                f"{what}'s is at most {memory.format_bytes(MAX_METADATA_BYTES)}: it is not one"
            )
        try:
            meta = self._manager.restore(self.step, args=ocp.args.Composite(**{META: ocp.args.JsonRestore()}))[META]
        except Exception as e:
            raise UserInputError(
                f"{self.path}: cannot read the checkpoint's metadata ({short_error(e)}); it is truncated or corrupted"
            ) from None
        if not isinstance(meta, dict) or meta.get("format") != format:
            raise UserInputError(f"{self.path}: not an {what} (its metadata has no format {format!r})")
        if meta.get("version") != version:
            raise UserInputError(
                f"{self.path}: checkpoint format version {meta.get('version')!r}; this mlpjax reads version {version}"
            )
        if not isinstance(meta.get("digest"), str):
            raise UserInputError(f"{self.path}: the checkpoint's metadata is invalid (no digest of its arrays)")
        self._meta = meta
        return meta

    def arrays(self, abstract: Any, architecture: str = "the saved architecture") -> Any:
        """The epoch's arrays as host numpy arrays, restored into ``abstract`` (a pytree of shape-dtype
        structs, built from the checked :meth:`meta`, which must be read first).

        Before anything is allocated, the bytes ``abstract`` declares are checked against the files on disk
        and the memory available (:func:`mlpjax.training.budget.check_restore`); after, the shapes, dtypes
        and the digest saved in the metadata (``architecture``: the words for what ``abstract`` came from).
        """
        if self._meta is None:
            raise RuntimeError("EpochReader.arrays needs meta() first: its digest and sizes")
        ocp = orbax_checkpoint()
        budget.check_restore(self.path, budget.tree_bytes(abstract), disk_bytes(self.path / STATE))
        try:
            arrays = self._manager.restore(
                self.step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract)})
            )[STATE]
        except Exception as e:
            raise UserInputError(
                f"{self.path}: cannot restore the saved arrays ({short_error(e)}); the checkpoint is "
                f"truncated or corrupted, or does not match {architecture}"
            ) from None
        expected = jax.tree_util.tree_map(lambda a: (tuple(a.shape), np.dtype(a.dtype)), abstract)
        if jax.tree_util.tree_map(lambda a: (np.shape(a), np.asarray(a).dtype), arrays) != expected:
            raise UserInputError(
                f"{self.path}: the saved arrays' shapes do not match {architecture}; the checkpoint is inconsistent"
            )
        if state_digest(arrays) != self._meta["digest"]:
            raise UserInputError(
                f"{self.path}: the saved arrays do not match their checksum; the checkpoint is corrupted"
            )
        return arrays


def check_finite(path: Path, tree: Any, what: str = "the saved weights or optimizer state") -> None:
    """Refuse ``tree`` (arrays restored from ``path``) if a float leaf holds NaN or an infinity: training never
    saves such weights for a model whose history is finite, so the checkpoint was altered."""
    if not all(
        np.isfinite(a).all() for a in jax.tree_util.tree_leaves(tree) if np.issubdtype(np.asarray(a).dtype, np.floating)
    ):
        raise UserInputError(
            f"{path}: {what} hold NaN or infinite values; training never saves such an epoch "
            "of a model whose history is finite, so the checkpoint was altered"
        )
