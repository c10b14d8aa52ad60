"""A run's logs beside its ``metrics.json``: Keras' ``CSVLogger`` and ``TensorBoard``, and a learning-curves figure.

In run directory ``DIR`` (``mlpjax train --output DIR``), after every epoch:

* ``DIR/history.csv``: one row per epoch, as Keras' ``CSVLogger`` writes it: ``epoch`` (0-based, as Keras
  counts), then ``loss, accuracy, val_loss, val_accuracy, lr`` and any further history keys in sorted order;
  rewritten whole and atomically from the history, so a resumed run's file holds every epoch once.
* ``DIR/tensorboard/``: tensorboardX event files (no TensorFlow needed): every history value as a scalar at
  step = the 1-based epoch, and, for image datasets whose pixels are the model's input, the first layer's
  weights of up to :data:`IMAGE_UNITS` of its units as grey images (``hidden_0/kernel``; ``output/kernel`` without
  hidden layers), each scaled to [0, 1].
  A resumed run adds a new event file (named by its first epoch too); TensorBoard shows them as one run. The
  new file starts with a restart mark at its first epoch (tensorboardX's ``purge_step``): TensorBoard hides the
  earlier files' events from that epoch on, those of epochs trained after the last checkpoint and trained again.
* ``DIR/learning_curves.png``: loss and accuracy per epoch (and the learning rate when it changes), with the
  best epoch (lowest ``val_loss``) and the kept one (whose weights the run ends with) marked; redrawn and
  replaced atomically.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import files

CSV, TENSORBOARD, CURVES = "history.csv", "tensorboard", "learning_curves.png"
FIRST_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")
IMAGE_UNITS = 16  # first-layer units drawn as images in TensorBoard


def csv_text(history: Mapping[str, Sequence[float]]) -> str:
    """The ``history.csv`` of ``history``: a header and one row per epoch (module docstring)."""
    keys = [k for k in FIRST_KEYS if k in history] + sorted(k for k in history if k not in FIRST_KEYS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history["loss"])):
        writer.writerow([epoch, *(repr(float(history[k][epoch])) for k in keys)])
    return out.getvalue()


def kernel_images(kernel: np.ndarray, image_shape: tuple[int, ...], units: int = IMAGE_UNITS) -> np.ndarray:
    """The input weights of the first ``units`` columns of ``kernel`` ``(H*W, units_all)`` as images
    ``(n, 1, H, W)`` float32, each scaled to [0, 1] (min to max; a constant one is 0.5)."""
    kernel = np.asarray(kernel, np.float32)
    w = kernel[:, :units].T.reshape(-1, 1, *image_shape)
    lo, hi = w.min(axis=(1, 2, 3), keepdims=True), w.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (w - lo) / span, 0.5).astype(np.float32)


def marks(history: Mapping[str, Sequence[float]], kept_epoch: int | None = None) -> dict[str, int]:
    """The epochs the learning curves mark, by label: the best (the first of the lowest ``val_loss``) and the
    kept one (``kept_epoch``, the epoch whose weights the run keeps; None: the last); one mark where they agree."""
    done = len(history["loss"])
    losses = np.asarray(history.get("val_loss", []), dtype=float)
    if not done:
        return {}
    kept = done if kept_epoch is None else kept_epoch
    if not len(losses) or not np.isfinite(losses).any():
        return {f"kept weights: epoch {kept}": kept}
    best = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan))) + 1
    if best == kept:
        return {f"best val_loss, kept weights: epoch {best}": best}
    return {f"best val_loss: epoch {best}": best, f"kept weights: epoch {kept}": kept}


def learning_curves(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    *,
    validation: str = "test",
    label: str = "run",
    kept_epoch: int | None = None,
) -> Path:
    """Draw ``history``'s curves into ``path``, replacing it atomically (:func:`mlpjax.files.write_atomic`: a
    reader never sees half a PNG); ``validation`` (``"test"`` or ``"split"``) names the val_* curves, ``label``
    the run in the legends; the best and the kept epoch are marked (:func:`marks`)."""
    val = "test" if validation == "test" else "validation"
    panels: list[tuple[str, tuple[str, ...]]] = [
        ("loss", ("loss", "val_loss")),
        ("accuracy", ("accuracy", "val_accuracy")),
    ]
    if "lr" in history and len(set(history["lr"])) > 1:
        panels.append(("learning rate", ("lr",)))
    labels = {"val_loss": f"{val} loss", "val_accuracy": f"{val} accuracy", "lr": "learning rate"}
    from mlpjax import plots  # matplotlib (about 1 s to import) only where a figure is drawn: not for evaluate

    figure = plots.curves_figure(
        {label: history},
        panels=panels,
        key_labels=labels,
        log_panels=("learning rate",),
        marks=marks(history, kept_epoch),
    )
    return plots.save(figure, path)


class _Redrawer:
    """Draws the learning curves on a background thread, so that training does not wait for matplotlib: each
    :meth:`submit` replaces the history waiting to be drawn (the latest wins); :meth:`close` draws the last one
    and re-raises the first error of the thread."""

    def __init__(self, draw):
        self.draw, self.pending, self.error = draw, None, None
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="mlpjax-learning-curves", daemon=True)
        self.thread.start()

    def submit(self, history: Mapping[str, Sequence[float]]) -> None:
        """Have ``history`` drawn next; first re-raise the error of an earlier drawing (a full disk), so that a
        run stops at the epoch after the one whose figure failed rather than at its end."""
        if self.error is not None:
            raise self.error
        with self.cond:
            self.pending = {k: list(v) for k, v in history.items()}
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while self.pending is None and not self.closed:
                    self.cond.wait()
                if self.pending is None:
                    return
                history, self.pending = self.pending, None
            try:
                self.draw(history)
            except Exception as e:  # kept for close(), which raises it in the training thread
                self.error = self.error or e

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join()
        if self.error is not None:
            raise self.error


def events_writer(folder: Path, suffix: str = "") -> Any:
    """A TensorBoard event file in ``folder``, named as tensorboardX's ``SummaryWriter`` names it: its synchronous
    ``EventsWriter`` (``write_event``, ``flush``, ``close``). ``SummaryWriter`` writes on a thread of its own,
    which dies on a full disk and leaves the writer waiting forever for room in its queue; here a failed write is
    an OSError in the caller's thread."""
    from tensorboardX.event_file_writer import EventsWriter

    return EventsWriter(str(folder / "events"), filename_suffix=suffix)


class RunLogs:
    """The logs of a run into ``directory`` (module docstring); ``image_shape`` ``(H, W)`` of an image dataset
    (None: no weight images). Use :meth:`epoch_end` as ``fit``'s hook and :meth:`close` at the end: the figure
    is drawn on a background thread and is complete once :meth:`close` returns."""

    def __init__(
        self, directory: str | os.PathLike, image_shape: tuple[int, ...] | None = None, validation: str = "test"
    ):
        self.directory, self.image_shape, self.validation = Path(directory), image_shape, validation
        self.writer: Any = None  # opened at the first epoch (a tensorboardX EventsWriter)
        self.redrawer: _Redrawer | None = None
        self.kept_epoch: int | None = None  # None: the last epoch's weights are kept
        self.history: Mapping[str, Sequence[float]] | None = None  # the last one submitted

    def _draw(self, history: Mapping[str, Sequence[float]]) -> None:
        learning_curves(
            history,
            self.directory / CURVES,
            validation=self.validation,
            label=self.directory.resolve().name or "run",
            kept_epoch=self.kept_epoch,
        )

    def finish(self, kept_epoch: int | None, history: Mapping[str, Sequence[float]] | None = None) -> None:
        """The run ended with ``history`` (None: the last one of :meth:`epoch_end`), keeping the weights of
        1-based ``kept_epoch`` (early stopping restores the best): the CSV is written and the figure drawn once
        more, marking it. A resumed run that had no epoch left to train (its last epoch saved, then a kill or a
        full disk before its logs were written) writes them here."""
        self.kept_epoch = kept_epoch
        history = self.history if history is None else history
        if history is None:
            return
        files.write_text(self.directory / CSV, csv_text(history))
        self.redrawer = self.redrawer or _Redrawer(self._draw)
        self.history = history
        self.redrawer.submit(history)

    def epoch_end(self, epoch: int, state, history: Mapping[str, Sequence[float]]) -> None:
        """After 1-based ``epoch``: rewrite the CSV, add the epoch's TensorBoard events, redraw the figure (an
        earlier figure that could not be written raises its error here: a UserInputError naming the file)."""
        files.write_text(self.directory / CSV, csv_text(history))
        self._tensorboard(epoch, state, history)
        self.redrawer = self.redrawer or _Redrawer(self._draw)
        self.history = history
        self.redrawer.submit(history)

    def _tensorboard(self, epoch: int, state, history: Mapping[str, Sequence[float]]) -> None:
        with files.writing(self.directory / TENSORBOARD):  # a full disk, a file where the folder goes: one line
            self._write_events(epoch, state, history)

    def _write_events(self, epoch: int, state, history: Mapping[str, Sequence[float]]) -> None:
        from tensorboardX import summary
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        now = time.time()
        if self.writer is None:
            folder = self.directory / TENSORBOARD
            folder.mkdir(exist_ok=True)
            # the suffix keeps a resume within the same second from overwriting the previous file
            self.writer = events_writer(folder, suffix=f".epoch{epoch}")
            if epoch > 1:  # a resumed run: TensorBoard drops what earlier files hold from this epoch on
                self.writer.write_event(
                    Event(wall_time=now, step=epoch, session_log=SessionLog(status=SessionLog.START))
                )
        for key, values in history.items():
            self.writer.write_event(
                Event(wall_time=now, step=epoch, summary=summary.scalar(key, float(values[epoch - 1])))
            )
        first = state.model_config.layer_names()[0]  # the layer that reads the input
        kernel = np.asarray(state.params[first]["kernel"]) if "kernel" in state.params[first] else None
        if self.image_shape is not None and kernel is not None and kernel.shape[0] == int(np.prod(self.image_shape)):
            images = summary.image(f"{first}/kernel", kernel_images(kernel, self.image_shape), dataformats="NCHW")
            self.writer.write_event(Event(wall_time=now, step=epoch, summary=images))
        self.writer.flush()

    def close(self) -> None:
        """Flush the TensorBoard events and wait for the last figure (re-raising an error of its drawing)."""
        redrawer, self.redrawer = self.redrawer, None
        writer, self.writer = self.writer, None
        try:
            if writer is not None:
                with files.writing(self.directory / TENSORBOARD):
                    writer.close()
        finally:
            if redrawer is not None:
                redrawer.close()
