"""What a training run depends on, as one frozen, validated object: :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mlpjax import data
from mlpjax.core import losses
from mlpjax.core import optimizers
from mlpjax.core import schedules
from mlpjax.core import metrics as metrics_lib
from mlpjax.errors import FieldError, check_int, check_name, check_number
from mlpjax.core.model import ModelConfig

MODEL_FIELDS = ("hidden", "activation", "dropout")  # ModelConfig's fields that a TrainConfig chooses
SEED_RANGE = (-(2**63), 2**63)  # what a PRNG seed can hold (int64)


def check_seed(seed: Any, count: int = 1) -> int:
    """``seed`` as an int such that it and the ``count - 1`` seeds after it are PRNG seeds (:data:`SEED_RANGE`)."""
    seed = check_int("seed", seed, SEED_RANGE[0])
    if seed > SEED_RANGE[1] - count:
        raise FieldError("seed", f"must be below 2**63, got {seed}" if count == 1 else
                         f"must be at most 2**63 - {count}, as it and the {count - 1} seeds after it are used; "
                         f"got {seed}")
    return seed


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; defaults are the tutorial's (MNIST, 512 relu, dropout 0.2, Adam).

    ``model`` chooses the architecture; its input width and class count come from the dataset
    (:meth:`model_config`). ``epochs`` None: the dataset's default; ``lr`` None: Keras' for the optimizer.
    Every field is checked on construction; an error names the field and the value.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int | None = None
    batch_size: int = 128
    model: ModelConfig = ModelConfig()
    optimizer: str = "adam"
    lr: float | None = None
    loss: str = "categorical_crossentropy"
    seed: int = 0
    validation_split: float = 0.0  # the last fraction of the training rows held out for val_* (0: the test set)
    early_stopping: int | None = None  # patience in epochs on val_loss (None: off); the best weights are restored
    lr_schedule: str = "constant"  # one of schedules.SCHEDULES, by step over the planned epochs
    reduce_lr_on_plateau: bool = False  # Keras' ReduceLROnPlateau on val_loss
    plateau_factor: float = 0.1  # the learning rate is multiplied by this on a plateau
    plateau_patience: int = 10  # epochs without improvement of val_loss before reducing
    metrics: tuple[str, ...] = ("accuracy",)  # metrics by Keras name kept in the history as val_<name>

    def __post_init__(self):
        spec = data.get_spec(self.dataset)
        if not isinstance(self.model, ModelConfig):
            raise FieldError("model", f"must be a ModelConfig, got {self.model!r}")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            object.__setattr__(self, "data_dir", str(self.data_dir))
        object.__setattr__(self, "epochs", check_int("epochs", spec.default_epochs if self.epochs is None
                                                     else self.epochs))
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size))
        check_name("optimizer", self.optimizer, optimizers.OPTIMIZERS)
        if self.lr is not None:
            object.__setattr__(self, "lr", optimizers.learning_rate(self.optimizer, self.lr))
        object.__setattr__(self, "loss", losses.canonical(self.loss))
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "validation_split", check_number("validation_split", self.validation_split,
                                                                  low=0.0, high=1.0))
        if self.early_stopping is not None:
            object.__setattr__(self, "early_stopping", check_int("early_stopping", self.early_stopping, 0))
        if self.lr_schedule not in schedules.SCHEDULES:
            raise FieldError("lr_schedule", f"{{field}} {self.lr_schedule!r} is unknown; valid: "
                             + ", ".join(schedules.SCHEDULES))
        if not isinstance(self.reduce_lr_on_plateau, bool):
            raise FieldError("reduce_lr_on_plateau", f"must be True or False, got {self.reduce_lr_on_plateau!r}")
        object.__setattr__(self, "plateau_factor", check_number("plateau_factor", self.plateau_factor, low=0.0,
                                                                high=1.0, low_open=True))
        object.__setattr__(self, "plateau_patience", check_int("plateau_patience", self.plateau_patience, 0))
        object.__setattr__(self, "metrics", metrics_lib.check_names(self.metrics))

    @property
    def validation(self) -> str:
        """Where ``val_*`` is measured: ``"split"`` (held-out training rows) or ``"test"`` (the test set)."""
        return "split" if self.validation_split > 0 else "test"

    def model_config(self, input_dim: int, num_classes: int) -> ModelConfig:
        """The architecture for a dataset of ``input_dim`` features and ``num_classes`` classes."""
        return self.model.for_data(input_dim, num_classes)

    @classmethod
    def flat_fields(cls) -> tuple[str, ...]:
        """The keys of :meth:`to_dict`: every field, the model's chosen ones in place of ``model``."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "model") + MODEL_FIELDS

    def to_dict(self) -> dict[str, Any]:
        """Flat and JSON-able, as ``metrics.json`` and checkpoints record it (the model's fields at top level)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        return {**d, "metrics": list(self.metrics), "hidden": list(self.model.hidden),
                "activation": self.model.activation,
                "dropout": self.model.dropout}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """From :meth:`to_dict`'s flat form (unknown keys ignored; missing ones take their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"model"}
        model = {k: d[k] for k in MODEL_FIELDS if k in d}
        if "hidden" in model and isinstance(model["hidden"], (list, tuple)):
            model["hidden"] = tuple(model["hidden"])
        flat = {k: v for k, v in d.items() if k in names}
        if isinstance(flat.get("metrics"), list):
            flat["metrics"] = tuple(flat["metrics"])
        return cls(**flat, model=ModelConfig(**model))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with flat ``changes`` (model fields included: ``replace(hidden=(256,), epochs=4)``)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})
