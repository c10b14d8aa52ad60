"""What a training run depends on, as one frozen, validated object: :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from mlpjax import data
from mlpjax.core import losses, optimizers, schedules
from mlpjax.core import metrics as metrics_lib
from mlpjax.core import model as model_lib
from mlpjax.core.model import ModelConfig
from mlpjax.data import scaling
from mlpjax.errors import FieldError, check_int, check_name, check_number

MODEL_FIELDS = ModelConfig.chosen_fields()  # ModelConfig's fields that a TrainConfig chooses: hidden, activation, ...
DATA_FIELDS = (
    "dataset",
    "data_dir",
    "label_column",
    "test_split",
    "image_size",
    "nan",
)  # the fields that choose the data
SEED_RANGE = (-(2**63), 2**63)  # what a PRNG seed can hold (int64)


def check_seed(seed: Any, count: int = 1) -> int:
    """``seed`` as an int such that it and the ``count - 1`` seeds after it are PRNG seeds (:data:`SEED_RANGE`)."""
    seed = check_int("seed", seed, SEED_RANGE[0])
    if seed > SEED_RANGE[1] - count:
        raise FieldError(
            "seed",
            f"must be below 2**63, got {seed}"
            if count == 1
            else f"must be at most 2**63 - {count}, as it and the {count - 1} seeds after it are used; got {seed}",
        )
    return seed


FLOAT32_MAX = float(np.finfo(np.float32).max)  # about 3.4e38


def check_float32(field: str, value: float) -> float:
    """``value`` (a positive float) if float32, in which training computes, holds it as a positive finite number;
    else a FieldError of ``field`` (above :data:`FLOAT32_MAX` it overflows to inf, below ~1.4e-45 it is 0)."""
    if value > FLOAT32_MAX or np.float32(value) == 0:
        raise FieldError(
            field, f"must be a positive number that float32 holds (from 1.4e-45 to {FLOAT32_MAX:.4g}), got {value!r}"
        )
    return value


def check_path(field: str, value: Any) -> str:
    """``value``, a path (str, :class:`os.PathLike` or bytes), as a str; bytes are decoded as the file system does
    (:func:`os.fsdecode`), so the str names the same file. Anything else is a FieldError of ``field``."""
    try:
        if isinstance(value, (str, bytes, os.PathLike)):
            return os.fsdecode(value)
    except TypeError:  # a PathLike whose __fspath__ gives neither str nor bytes
        pass
    raise FieldError(field, f"must be a folder path (str or os.PathLike), got {value!r}")


@dataclasses.dataclass(frozen=True)
class FieldHelp:
    """What a user is told about one flat :class:`TrainConfig` field (the command line builds its flags from it).

    ``text`` names other fields as ``{name}`` (:meth:`render` writes them); ``kind`` is how a value is written:
    ``"int"``, ``"float"``, ``"name"`` (one of ``choices``), ``"names"`` (several, comma-separated),
    ``"widths"`` (layer widths), ``"path"``, ``"text"`` (any string) or ``"switch"`` (True or False).
    ``choices`` gives the registry's names, each with its one-line description (``""``: none), at the time it is
    asked; ``default_text`` the words for a default that another field decides (``epochs``: the dataset's);
    ``off`` the word for None where None turns a setting off (``early_stopping``).
    """

    name: str
    default: Any
    text: str
    kind: str
    metavar: str | None = None
    choices: Callable[[], Mapping[str, str]] | None = None
    default_text: Callable[[], str] | None = None
    off: str | None = None

    def render(self, name_of: Callable[[str], str] = lambda name: name) -> str:
        """:attr:`text` with the fields it names as ``name_of(field)`` (the command line: their flags)."""
        return re.sub(r"\{(\w+)\}", lambda m: name_of(m.group(1)), self.text)

    def default_words(self) -> str:
        """The default as a user writes it: ``128``, ``relu``, ``512``, ``accuracy``, ``off``, ``mnist 2, ...``."""
        if self.default_text is not None:
            return self.default_text()
        if self.default is None and self.off is not None:
            return self.off
        if self.kind == "switch":
            return "on" if self.default else "off"
        if isinstance(self.default, tuple):
            return ",".join(map(str, self.default)) if self.kind == "names" else " ".join(map(str, self.default))
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)


def _about(text: str, kind: str, **more: Any) -> dict[str, Any]:
    """A field's metadata: its :class:`FieldHelp` but for the name and default."""
    return {"help": {"text": text, "kind": kind, **more}}


def _names(registry: Iterable[str]) -> dict[str, str]:
    """A registry's names, without descriptions."""
    return {name: "" for name in registry}


def _abouts(registry: Mapping[str, Any]) -> dict[str, str]:
    """A registry's names with their ``about`` line."""
    return {name: spec.about for name, spec in registry.items()}


def _default_epochs() -> str:
    return (
        "the dataset's: "
        + ", ".join(f"{name} {spec.default_epochs}" for name, spec in data.DATASETS.items())
        + f", a file or folder {data.datasets.FILE_EPOCHS}, tfds:NAME {data.datasets.TFDS_EPOCHS}"
    )


def _default_lr() -> str:
    return "Keras' for the optimizer: " + ", ".join(
        f"{name} {optimizers.default_learning_rate(name):g}" for name in optimizers.OPTIMIZERS
    )


# ModelConfig's fields that a TrainConfig chooses, described as TrainConfig's own fields are (FieldHelp)
MODEL_HELP = {
    "hidden": _about("hidden layer sizes", "widths", metavar="N"),
    "activation": _about(
        "the hidden layers' activation", "name", metavar="NAME", choices=lambda: _names(model_lib.ACTIVATIONS)
    ),
    "dropout": _about(
        "inverted dropout after each hidden layer, in training only; a rate in [0, 1)", "float", metavar="RATE"
    ),
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; defaults are the tutorial's (MNIST, 512 relu, dropout 0.2, Adam).

    ``model`` chooses the architecture; its input width and class count come from the dataset
    (:meth:`model_config`). ``epochs`` None: the dataset's default; ``lr`` None: Keras' for the optimizer.
    ``data_dir``: a str, :class:`os.PathLike` or bytes (decoded as :func:`os.fsdecode` does), kept as a str.
    Every field is checked on construction; an error names the field and the value. Each field's metadata
    describes it for a user (:func:`describe`).
    """

    dataset: str = dataclasses.field(
        default="mnist",
        metadata=_about(
            "the dataset: a file FILE.npz, FILE.csv, FILE.tsv or FILE.parquet, a folder of images DIR/ (one "
            "subfolder per class), tfds:NAME[:CONFIG] (docs/data.md), or a name",
            "name",
            metavar="NAME|FILE",
            choices=lambda: _abouts(data.DATASETS),
        ),
    )
    data_dir: str | None = dataclasses.field(
        default=None,
        metadata=_about(
            "folder with the four MNIST-format IDX files",
            "path",
            metavar="DIR",
            default_text=lambda: f"${data.DATA_DIR_ENV}, else tfds",
        ),
    )
    label_column: str | None = dataclasses.field(
        default=None,
        metadata=_about(
            "with a CSV, TSV or Parquet file as {dataset}: the column of the labels, by its name in the header",
            "text",
            metavar="NAME",
            default_text=lambda: "the last column",
        ),
    )
    test_split: float | None = dataclasses.field(
        default=None,
        metadata=_about(
            "the fraction of the examples split off as test examples (stratified, with the fixed seed 0), in (0, 1), "
            "for data without test examples of its own: a file, a folder of images, a tfds set without a test "
            "split, iris, wine, breast_cancer",
            "float",
            metavar="F",
            default_text=lambda: f"{data.tables.TEST_SPLIT:g}",
        ),
    )
    image_size: tuple[int, int] | None = dataclasses.field(
        default=None,
        metadata=_about(
            "with a folder of images or a tfds:NAME image set as {dataset}: the size every image is resized to, "
            "N or HxW (rows x columns)",
            "text",
            metavar="HxW",
            default_text=lambda: "the first image's",
        ),
    )
    normalize: str = dataclasses.field(
        default="none",
        metadata=_about(
            "scale each feature, fitted on the rows trained on (after {validation_split}, never validation or test "
            "rows) and saved with the model, which applies it to the raw features it predicts (docs/data.md)",
            "name",
            metavar="KIND",
            choices=lambda: dict(scaling.KINDS),
        ),
    )
    nan: str = dataclasses.field(
        default="error",
        metadata=_about(
            "with a file as {dataset}: what a NaN, an infinity or a missing value (an empty CSV cell, a Parquet null) "
            "does: error "
            "refuses the file, naming the row and column; drop drops the rows holding one and says how many",
            "name",
            metavar="WHAT",
            choices=lambda: _names(data.tables.NAN_CHOICES),
        ),
    )
    epochs: int | None = dataclasses.field(
        default=None, metadata=_about("epochs in all", "int", metavar="N", default_text=_default_epochs)
    )
    batch_size: int = dataclasses.field(
        default=128, metadata=_about("examples per step; the last partial batch is kept, as Keras", "int", metavar="N")
    )
    model: ModelConfig = dataclasses.field(default=ModelConfig(), metadata={"fields": MODEL_HELP})
    optimizer: str = dataclasses.field(
        default="adam",
        metadata=_about(
            "Keras' optimizer of that name, with its defaults",
            "name",
            metavar="NAME",
            choices=lambda: _names(optimizers.OPTIMIZERS),
        ),
    )
    lr: float | None = dataclasses.field(
        default=None, metadata=_about("learning rate", "float", metavar="X", default_text=_default_lr)
    )
    loss: str = dataclasses.field(
        default="categorical_crossentropy",
        metadata=_about(
            "the loss, on the softmax output as Keras", "name", metavar="NAME", choices=lambda: _names(losses.LOSSES)
        ),
    )
    seed: int = dataclasses.field(
        default=0, metadata=_about("PRNG seed for init, dropout and shuffling", "int", metavar="S")
    )
    validation_split: float = dataclasses.field(
        default=0.0,
        metadata=_about(
            "hold out the last F of the training rows (before shuffling, as Keras) for val_*; the test set is then "
            "evaluated once, at the end (0: val_* is measured on the test set)",
            "float",
            metavar="F",
        ),
    )
    early_stopping: int | None = dataclasses.field(
        default=None,
        metadata=_about(
            "stop when val_loss has not improved for PATIENCE epochs and restore the best weights",
            "int",
            metavar="PATIENCE",
            off="off",
        ),
    )
    lr_schedule: str = dataclasses.field(
        default="constant",
        metadata=_about(
            "learning rate by step over the planned epochs",
            "name",
            metavar="NAME",
            choices=lambda: _abouts(schedules.SCHEDULES),
        ),
    )
    reduce_lr_on_plateau: bool = dataclasses.field(
        default=False,
        metadata=_about(
            "multiply the learning rate by {plateau_factor} when val_loss has not improved for {plateau_patience} "
            "epochs (Keras' ReduceLROnPlateau)",
            "switch",
        ),
    )
    plateau_factor: float = dataclasses.field(
        default=0.1, metadata=_about("with {reduce_lr_on_plateau}: the factor, in (0, 1)", "float", metavar="X")
    )
    plateau_patience: int = dataclasses.field(
        default=10,
        metadata=_about(
            "with {reduce_lr_on_plateau}: epochs without improvement of val_loss before reducing", "int", metavar="N"
        ),
    )
    metrics: tuple[str, ...] = dataclasses.field(
        default=("accuracy",),
        metadata=_about(
            "computed on the validation data each epoch and kept in the history as val_NAME ("
            + ", ".join(f"{alias} is {name}" for alias, name in metrics_lib.ALIASES.items())
            + ")",
            "names",
            metavar="NAMES",
            choices=lambda: _names(metrics_lib.METRICS),
        ),
    )

    def __post_init__(self):
        spec = data.get_spec(self.dataset)
        if not isinstance(self.model, ModelConfig):
            raise FieldError("model", f"must be a ModelConfig, got {self.model!r}")
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", check_path("data_dir", self.data_dir))
        if self.test_split is not None:
            object.__setattr__(
                self, "test_split", check_number("test_split", self.test_split, low=0.0, high=1.0, low_open=True)
            )
        object.__setattr__(self, "image_size", data.check_image_size(self.image_size))
        data.check_options(
            self.dataset,
            label_column=self.label_column,
            test_split=self.test_split,
            image_size=self.image_size,
            nan=self.nan,
        )
        scaling.check_kind(self.normalize)
        object.__setattr__(
            self, "epochs", check_int("epochs", spec.default_epochs if self.epochs is None else self.epochs)
        )
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size))
        check_name("optimizer", self.optimizer, optimizers.OPTIMIZERS)
        if self.lr is not None:
            object.__setattr__(self, "lr", check_float32("lr", optimizers.learning_rate(self.optimizer, self.lr)))
        object.__setattr__(self, "loss", losses.canonical(self.loss))
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(
            self, "validation_split", check_number("validation_split", self.validation_split, low=0.0, high=1.0)
        )
        if self.early_stopping is not None:
            object.__setattr__(self, "early_stopping", check_int("early_stopping", self.early_stopping, 0))
        if not isinstance(self.lr_schedule, str) or self.lr_schedule not in schedules.SCHEDULES:
            raise FieldError(
                "lr_schedule", f"{{field}} {self.lr_schedule!r} is unknown; valid: " + ", ".join(schedules.SCHEDULES)
            )
        if not isinstance(self.reduce_lr_on_plateau, bool):
            raise FieldError("reduce_lr_on_plateau", f"must be True or False, got {self.reduce_lr_on_plateau!r}")
        object.__setattr__(
            self,
            "plateau_factor",
            check_number("plateau_factor", self.plateau_factor, low=0.0, high=1.0, low_open=True),
        )
        object.__setattr__(self, "plateau_patience", check_int("plateau_patience", self.plateau_patience, 0))
        if not isinstance(self.metrics, (str, list, tuple)):
            raise FieldError("metrics", f"must be a metric name or a sequence of them, got {self.metrics!r}")
        object.__setattr__(self, "metrics", metrics_lib.check_names(self.metrics))

    @property
    def validation(self) -> str:
        """Where ``val_*`` is measured: ``"split"`` (held-out training rows) or ``"test"`` (the test set)."""
        return "split" if self.validation_split > 0 else "test"

    def load_dataset(self) -> data.Dataset:
        """The dataset this config trains on (a table read with its :attr:`label_column`, a file or folder with its
        :attr:`test_split`, images resized to :attr:`image_size`)."""
        return data.load_dataset(
            self.dataset,
            self.data_dir,
            label_column=self.label_column,
            test_split=self.test_split,
            image_size=self.image_size,
            nan=self.nan,
        )

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
        return {**d, "metrics": list(self.metrics), **self.model.chosen()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """From :meth:`to_dict`'s flat form (unknown keys ignored; missing ones take their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"model"}
        model = {k: d[k] for k in MODEL_FIELDS if k in d}
        if "hidden" in model and isinstance(model["hidden"], (list, tuple)):
            model["hidden"] = tuple(model["hidden"])
        flat = {k: v for k, v in d.items() if k in names}
        if isinstance(flat.get("metrics"), list):
            flat["metrics"] = tuple(flat["metrics"])
        return cls(**flat, model=ModelConfig(**model))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with flat ``changes`` (model fields included: ``replace(hidden=(256,), epochs=4)``)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


def describe() -> dict[str, FieldHelp]:
    """Every flat field of :class:`TrainConfig` (those of :meth:`TrainConfig.flat_fields`, in the class's order,
    the model's in place of ``model``) with its default (the model's fields: :class:`ModelConfig`'s) and its
    description from the field's metadata."""
    found = {}
    for field in dataclasses.fields(TrainConfig):
        if field.name == "model":
            for name, meta in field.metadata["fields"].items():
                found[name] = FieldHelp(name, getattr(field.default, name), **meta["help"])
        else:
            found[field.name] = FieldHelp(field.name, field.default, **field.metadata["help"])
    return found
