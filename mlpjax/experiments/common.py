"""What the experiments share: the data they run on, logged training, per-epoch evaluation, and the report
(``results.json`` + ``results.md``) they leave behind."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import data, files
from mlpjax.core import losses, model
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import TrainState, create_train_state
from mlpjax.training import compiled, result, train
from mlpjax.training.rows import Rows

if TYPE_CHECKING:
    from mlpjax import sweep
    from mlpjax.sweep.train import ModelHook

Log = Callable[[str], None]
QUICK_EPOCHS = 2
QUICK_MNIST = (1000, 500)  # train and test images of the --quick MNIST slice
GRAD_BATCH = 128  # examples in the batch on which initial gradients are measured


@dataclasses.dataclass(frozen=True)
class Table:
    """A table for ``results.md``: ``rows`` are lists of cells (numbers are formatted by the experiment)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]

    def markdown(self) -> str:
        lines = [f"| {' | '.join(self.columns)} |", f"|{'|'.join('---' for _ in self.columns)}|"]
        lines += [f"| {' | '.join(str(c) for c in row)} |" for row in self.rows]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [[jsonable(c) for c in r] for r in self.rows],
        }


@dataclasses.dataclass
class Report:
    """What an experiment returns: its numbers, tables, figures (file name -> caption) and findings."""

    results: dict[str, Any]
    tables: list[Table]
    figures: dict[str, str]
    findings: list[str]  # one sentence each, measured values in them
    dataset: dict[str, Any]
    budget: dict[str, Any]  # the settings that define the run (epochs, seeds, sizes)
    timing: dict[str, Any] = dataclasses.field(default_factory=dict)  # seconds: not part of the reproducible results


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy/JAX scalars and arrays turned into Python numbers and lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return jsonable(np.asarray(obj).tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclasses.dataclass(frozen=True)
class DataChoice:
    """What an experiment trains on. ``dataset``: None for the tutorial's MNIST (digits for a quick run without
    an MNIST folder), else anything :func:`mlpjax.data.load_dataset` takes (a name, a CSV/TSV/Parquet/npz file,
    a folder of images, ``tfds:NAME``), loaded whole, quick or not, with ``test_split`` and ``image_size``
    (None: their defaults). ``data_dir``: the folder of the MNIST IDX files (default ``$MLPJAX_DATA_DIR``)."""

    dataset: str | None = None
    data_dir: str | None = None
    test_split: float | None = None
    image_size: Any = None


def load_data(choice: DataChoice, quick: bool, *, slice_quick: bool = True) -> data.Dataset:
    """The data of ``choice``: MNIST from its ``data_dir`` (else ``$MLPJAX_DATA_DIR``, else tfds) for a full run,
    or the ``dataset`` it names (whole).

    ``quick`` (MNIST only): the first :data:`QUICK_MNIST` images of MNIST where a data folder is given
    (``slice_quick``; the whole set otherwise), else scikit-learn's digits, which need no download.
    """
    data_dir = choice.data_dir
    if choice.dataset is not None:
        return data.load_dataset(choice.dataset, data_dir, test_split=choice.test_split, image_size=choice.image_size)
    if quick and not (data_dir or os.environ.get(data.DATA_DIR_ENV)):
        return data.load_dataset("digits")
    full = data.load_dataset("mnist", data_dir)
    if not (quick and slice_quick):
        return full
    n_train, n_test = QUICK_MNIST
    return full.head(n_train, n_test)


def describe(dataset: data.Dataset) -> dict[str, Any]:
    return {**dataset.describe(), "image_shape": list(dataset.image_shape or ())}


def fit(
    config: TrainConfig, dataset: data.Dataset, log: Log, label: str, on_epoch_end: train.EpochHook | None = None
) -> result.FitResult:
    """:func:`mlpjax.training.train.fit` with each epoch's line logged as ``label: epoch i/N ...``."""
    return train.fit(config, dataset, on_epoch_end=on_epoch_end, log=lambda line: log(f"  {label}: {line}"))


STRATEGY = "auto"  # how experiments train their seeds and settings: mlpjax.sweep.train's strategies


def train_many(
    configs: Sequence[TrainConfig], dataset: data.Dataset, log: Log, on_model_epoch: ModelHook | None = None
) -> sweep.SweepResult:
    """Train ``configs`` (e.g. several seeds or settings) through the sweep engine with :data:`STRATEGY`; each
    epoch's line logged. Each model's numbers are those of :func:`mlpjax.training.train.fit` of its config (up to
    float reassociation under vmap)."""
    from mlpjax import sweep

    return sweep.run_sweep(
        configs, dataset, strategy=STRATEGY, log=lambda line: log(f"  {line}"), on_model_epoch=on_model_epoch
    )


class EpochEvaluator:
    """An ``on_epoch_end`` hook that evaluates the params on ``(x, y)`` after every epoch (inference mode,
    no dropout), compiled once; ``.history`` holds one metrics dict per epoch."""

    def __init__(
        self, config: TrainConfig, dataset: data.Dataset, x: np.ndarray, y: np.ndarray, *, loss_name: str | None = None
    ):
        self.model_config = config.model_config(dataset.input_dim, dataset.num_classes)
        self.loss_name = loss_name or config.loss
        self.rows = Rows.place(jnp.asarray(x), jnp.asarray(y))
        self.evaluator: compiled.Evaluator | None = None
        self.history: list[dict[str, float]] = []

    def __call__(self, epoch: int, state: TrainState, history: dict[str, list[float]]) -> None:
        self.add(state.params)

    def add(self, params: model.Params) -> None:
        """Evaluate ``params`` (the next epoch's) and append the metrics."""
        if self.evaluator is None:
            self.evaluator = compiled.prepare_evaluate(
                params, self.rows, model_config=self.model_config, loss_name=self.loss_name
            )
        self.history.append(self.evaluator(params))

    def series(self, key: str) -> list[float]:
        return [m[key] for m in self.history]


def initial_params(config: TrainConfig, ds: data.Dataset) -> model.Params:
    """The params ``fit`` starts from: :func:`mlpjax.core.state.create_train_state` with ``PRNGKey(config.seed)``."""
    mcfg = config.model_config(ds.input_dim, ds.num_classes)
    return create_train_state(jax.random.PRNGKey(config.seed), config, mcfg).params


def loss_gradients(params: model.Params, config: TrainConfig, ds: data.Dataset) -> model.Params:
    """``dL/dparams`` of ``config``'s loss on the first ``GRAD_BATCH`` training examples (dropout off)."""
    mcfg = config.model_config(ds.input_dim, ds.num_classes)
    batch = {"image": jnp.asarray(ds.x_train[:GRAD_BATCH]), "label": jnp.asarray(ds.y_train[:GRAD_BATCH])}
    return jax.grad(lambda p: losses.loss(p, batch, None, model_config=mcfg, loss_name=config.loss, train=False)[0])(
        params
    )


def layer_gradient_norms(params: model.Params, config: TrainConfig, ds: data.Dataset) -> dict[str, float]:
    """``||dL/dW||`` of each layer's kernel on the first ``GRAD_BATCH`` training examples (dropout off)."""
    return {
        name: float(np.linalg.norm(layer["kernel"]))
        for name, layer in loss_gradients(params, config, ds).items()
        if "kernel" in layer
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else 0.0)


def mean_pm_std(values: Sequence[float], digits: int = 4) -> str:
    """``"mean ± std"`` of ``values``."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def epochs_for(quick: bool, full: int) -> int:
    return QUICK_EPOCHS if quick else full


def write_report(
    folder: Path, *, name: str, question: str, report: Report, quick: bool, seed: int, seconds: float
) -> dict[str, Any]:
    """Write ``results.json`` and ``results.md`` for ``report`` into ``folder``; return the JSON record."""
    record = jsonable(
        {
            "experiment": name,
            "question": question,
            "quick": quick,
            "seed": seed,
            "dataset": report.dataset,
            "budget": report.budget,
            "results": report.results,
            "findings": report.findings,
            "tables": [t.to_dict() for t in report.tables],
            "figures": report.figures,
            "timing": {"seconds": seconds, **report.timing},
            "environment": {
                "device": jax.devices()[0].platform,
                "cpu_count": os.cpu_count(),
                **result.library_versions(),
            },
        }
    )
    files.write_json(folder / "results.json", record)
    ds = report.dataset
    lines = [
        f"# {name}: {question}",
        "",
        f"{'Quick (smoke-test) run' if quick else 'Full run'} on **{ds.get('name')}**"
        + (f" ({ds['x_train'][0]} training / {ds['x_test'][0]} test examples)" if "x_train" in ds else "")
        + f", seed {seed}, "
        + ", ".join(f"{k} {v}" for k, v in report.budget.items())
        + f"; {seconds:.0f} s on "
        f"{record['environment']['device']} ({os.cpu_count()} cores).",
        "",
    ]
    lines += [f"- {f}" for f in report.findings]
    for table in report.tables:
        lines += ["", f"## {table.title}", "", table.markdown()]
    for file, caption in report.figures.items():
        lines += ["", f"![{caption}]({file})", "", f"*{caption}*"]
    files.write_text(folder / "results.md", "\n".join(lines) + "\n")
    return record
