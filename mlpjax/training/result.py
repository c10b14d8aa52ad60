"""What a training run leaves behind: its Keras-style history and the record written to ``metrics.json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import TrainState
from mlpjax.data.scaling import Scaler
from mlpjax.versions import library_versions

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")  # in every history; also "lr", "val_<metric>"
History = dict[str, list[float]]  # Keras' History.history: a list of one value per epoch for each key


def empty_history() -> History:
    return {k: [] for k in HISTORY_KEYS}


@dataclasses.dataclass
class FitResult:
    """What :func:`mlpjax.training.train.fit` returns: the final state and a Keras-style record of the run.

    ``epoch_seconds`` and ``compile_seconds`` are wall-clock seconds of this call (a resumed run's earlier
    epochs are in ``earlier_epoch_seconds``); ``devices`` counts the mesh's devices, all axes and processes.
    """

    state: TrainState
    config: TrainConfig
    history: dict[str, list[float]]
    test_metrics: dict[str, float]
    epoch_seconds: list[float]
    compile_seconds: float
    dataset: dict[str, Any]
    devices: int = 1
    processes: int = 1
    kept_epoch: int | None = None  # the 1-based epoch whose weights ``state`` holds (early stopping restores one)
    callbacks: dict[str, Any] = dataclasses.field(default_factory=dict)  # early_stopping, reduce_lr_on_plateau
    scaler: Scaler | None = None  # the feature scaling trained with (config.normalize; None: "none")

    @property
    def classifier(self) -> model.Classifier:
        """The trained model, for prediction on raw features (the scaling, if any, applied inside)."""
        return model.Classifier(self.state.params, self.state.model_config, self.scaler)

    def record(self, earlier_epoch_seconds: Sequence[float] = ()) -> dict[str, Any]:
        """The JSON-able record written to ``metrics.json`` (``epoch_seconds`` of every epoch: earlier ones
        first, when resumed)."""
        return {
            "test_loss": self.test_metrics["loss"],
            "test_accuracy": self.test_metrics["accuracy"],
            "test_metrics": self.test_metrics,
            "history": self.history,
            "validation": self.config.validation,
            "kept_epoch": len(self.history["loss"]) if self.kept_epoch is None else self.kept_epoch,
            **self.callbacks,
            "epoch_seconds": [*earlier_epoch_seconds, *self.epoch_seconds],
            "compile_seconds": self.compile_seconds,
            "device": jax.devices()[0].platform,
            "devices": self.devices,
            "processes": self.processes,
            "config": self.config.to_dict(),
            "model": dataclasses.asdict(self.state.model_config),
            "dataset": self.dataset,
            **({"scaling": self.scaler.describe()} if self.scaler is not None else {}),
            "versions": library_versions(),
        }


def progress_record(
    config: TrainConfig, history: Mapping[str, list[float]], dataset: Mapping[str, Any], model: Mapping[str, Any]
) -> dict[str, Any]:
    """``metrics.json`` while training: the history so far and, validating on the test set, the last epoch's
    test figures (with a validation split, the test set is evaluated only at the end)."""
    test = (
        {}
        if config.validation == "split"
        else {"test_loss": history["val_loss"][-1], "test_accuracy": history["val_accuracy"][-1]}
    )
    return {
        "complete": False,
        "epochs_done": len(history["loss"]),
        **test,
        "validation": config.validation,
        "history": {k: list(v) for k, v in history.items()},
        "config": config.to_dict(),
        "model": dict(model),
        "dataset": dict(dataset),
    }
