"""Training: a jitted ``train_step``, a whole epoch as one ``lax.scan``, evaluation, and ``fit``.

Randomness: ``fit`` derives everything from ``config.seed``: ``init_key, state_key = split(PRNGKey(seed))``;
``init_key`` draws the initial params; ``state_key`` (kept in the TrainState, so a resumed run continues
the same stream) gives the dropout key of step ``s`` as ``fold_in(fold_in(state_key, 0), s)`` and the
shuffle of epoch ``e`` (0-based) as ``fold_in(fold_in(state_key, 1), e)``.

Several devices: pass ``fit(mesh=...)`` (see :mod:`mlpjax.distributed`): the same jitted epoch runs with the
params replicated (or, on a mesh with a ``model`` axis, each hidden layer's weights split over it) and every global
batch sharded over the mesh's ``data`` axis; the shuffle, the batches and the dropout masks are those of one device,
so the results are equal up to float reassociation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from mlpjax import data as data_lib
from mlpjax import distributed, losses, metrics, model, optimizers
from mlpjax.errors import UserInputError, check_name

_DROPOUT_STREAM, _SHUFFLE_STREAM = 0, 1
# The tutorial's 2 epochs on MNIST; the small sets need more passes to converge.
DEFAULT_EPOCHS = {"mnist": 2, "fashion_mnist": 2, "digits": 20, "quadrants": 300}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; defaults are the tutorial's (MNIST, 512 relu, dropout 0.2, Adam)."""

    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int | None = None  # None: DEFAULT_EPOCHS[dataset]
    batch_size: int = 128
    hidden: tuple[int, ...] = (512,)
    activation: str = "relu"
    dropout: float = 0.2
    optimizer: str = "adam"
    lr: float | None = None  # None: Keras' default for the optimizer
    loss: str = "categorical_crossentropy"
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        check_name("dataset", self.dataset, data_lib.DATASETS)
        if self.epochs is None:
            object.__setattr__(self, "epochs", DEFAULT_EPOCHS[self.dataset])
        check_name("optimizer", self.optimizer, optimizers.OPTIMIZERS)
        check_name("loss", self.loss, losses.LOSSES)
        if self.epochs < 1:
            raise UserInputError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UserInputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise UserInputError(f"--lr must be a positive number, got {self.lr}")
        model.ModelConfig(hidden=self.hidden, activation=self.activation, dropout=self.dropout)

    def model_config(self, input_dim: int, num_classes: int) -> model.ModelConfig:
        return model.ModelConfig(input_dim=input_dim, hidden=self.hidden, activation=self.activation,
                                 dropout=self.dropout, num_classes=num_classes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k == "hidden" else v) for k, v in d.items() if k in names})


@struct.dataclass
class TrainState:
    """Everything that changes during training, as one pytree; the static fields define the computation."""

    step: jax.Array  # int32 scalar: optimizer steps taken
    params: model.Params
    opt_state: optax.OptState
    key: jax.Array  # base PRNG key for dropout and shuffling (see module docstring)
    model: model.ModelConfig = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    loss_name: str = struct.field(pytree_node=False, default="categorical_crossentropy")


def create_train_state(key: jax.Array, config: TrainConfig, model_config: model.ModelConfig) -> TrainState:
    """Fresh state for ``config``; consumes ``key`` (split into the init key and the state key)."""
    init_key, state_key = jax.random.split(key)
    params = model.init(init_key, model_config)
    tx = optimizers.get_optimizer(config.optimizer, config.lr)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      key=state_key, model=model_config, tx=tx, loss_name=config.loss)


def dropout_key(state: TrainState) -> jax.Array:
    """The dropout key of the state's current step."""
    return jax.random.fold_in(jax.random.fold_in(state.key, _DROPOUT_STREAM), state.step)


def shuffle_key(state: TrainState, epoch: int | jax.Array) -> jax.Array:
    """The shuffle key of 0-based ``epoch``."""
    return jax.random.fold_in(jax.random.fold_in(state.key, _SHUFFLE_STREAM), epoch)


@jax.jit
def train_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step on ``batch`` (``image``, ``label``, optional ``weight``); returns mean loss/accuracy."""
    grad_fn = jax.value_and_grad(
        functools.partial(losses.loss, config=state.model, loss_name=state.loss_name, train=True), has_aux=True)
    (value, aux), grads = grad_fn(state.params, batch, dropout_key(state))
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, {"loss": value, "accuracy": aux["accuracy"]}


@functools.partial(jax.jit, static_argnames=("config", "loss_name"))
def eval_step(params: model.Params, batch: dict[str, jax.Array], *, config: model.ModelConfig,
              loss_name: str = "categorical_crossentropy") -> dict[str, jax.Array]:
    """Sums over ``batch`` (padding of weight 0 excluded): ``loss``, ``count``, ``mse``, ``mae``, ``confusion``."""
    logits = model.apply(params, batch["image"], config=config)
    targets = model.one_hot(batch["label"], config.num_classes)
    weight = batch.get("weight", jnp.ones(batch["label"].shape, jnp.float32))
    errors = metrics.probability_errors(jax.nn.softmax(logits), targets)
    return {
        "loss": jnp.sum(losses.get_loss(loss_name)(logits, targets) * weight),
        "count": jnp.sum(weight),
        "mse": jnp.sum(errors["mse"] * weight),
        "mae": jnp.sum(errors["mae"] * weight),
        "confusion": metrics.confusion_matrix(batch["label"], jnp.argmax(logits, -1), config.num_classes, weight),
    }


def batch_indices(n: int, batch_size: int, order: jax.Array | None = None, *,
                  multiple: int = 1) -> tuple[jax.Array, jax.Array]:
    """``(steps, width)`` example indices covering ``n`` examples and their weights (0 pads the last batch).

    ``width`` is ``batch_size`` rounded up to a ``multiple`` (the device count): each batch's extra columns are
    weight-0 copies of example 0, so the batches hold the same examples whatever ``multiple``.
    """
    steps = math.ceil(n / batch_size)
    order = jnp.arange(n) if order is None else order
    padded = jnp.concatenate([order, jnp.zeros(steps * batch_size - n, order.dtype)]).reshape(steps, batch_size)
    weight = (jnp.arange(steps * batch_size) < n).astype(jnp.float32).reshape(steps, batch_size)
    extra = -batch_size % multiple
    if extra:
        padded = jnp.concatenate([padded, jnp.zeros((steps, extra), padded.dtype)], axis=1)
        weight = jnp.concatenate([weight, jnp.zeros((steps, extra), weight.dtype)], axis=1)
    return padded, weight


def _batch(x, y, i, w, parallel: distributed.DataParallel | None,
           pixel_levels: int | None = None) -> dict[str, jax.Array]:
    """Rows ``i`` of ``(x, y)`` with weights ``w``: plain indexing, or gathered sharded over the mesh.

    With ``pixel_levels``, ``x`` holds uint8 levels (:func:`mlpjax.data.to_levels`) and the batch's images are
    looked up in the table of level values computed on the host, so they are the float dataset's bits exactly
    (XLA may turn a division by a constant into a multiplication, which can differ in the last bit)."""
    batch = {"image": x[i], "label": y[i], "weight": w} if parallel is None else parallel.batch(x, y, i, w)
    if pixel_levels is not None:
        batch["image"] = jnp.asarray(data_lib.level_values(pixel_levels))[batch["image"]]
    return batch


ProgressFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], None]


def train_epoch(state: TrainState, x: jax.Array, y: jax.Array, epoch: jax.Array, *, batch_size: int,
                progress: ProgressFn | None = None, parallel: distributed.DataParallel | None = None,
                num_examples: int | None = None,
                pixel_levels: int | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
    """One shuffled pass over ``x`` ``(N, D)``, ``y`` ``(N,)`` as a single ``lax.scan`` of ``train_step``.

    The last partial batch is kept (padded with weight-0 examples), so an epoch is ``ceil(N / batch_size)``
    steps, as in Keras. Returns the example-weighted mean ``loss`` and ``accuracy`` over the epoch.
    ``progress(step, loss_sum, correct_sum, seen)`` is called from the device about 50 times an epoch.
    With ``parallel``, ``x``/``y`` are placed by :meth:`~mlpjax.distributed.DataParallel.put_rows` (their first
    ``num_examples`` rows are the examples) and each batch is sharded over the mesh. With ``pixel_levels``, ``x``
    is uint8 (4x less memory than float32) and each batch is converted on the device.
    Jit it with the keyword arguments static (see :func:`compile_epoch`).
    """
    n = x.shape[0] if num_examples is None else num_examples
    idx, weight = batch_indices(n, batch_size, jax.random.permutation(shuffle_key(state, epoch), n),
                                multiple=1 if parallel is None else parallel.size)
    report_every = max(1, idx.shape[0] // 50)

    def body(carry, inputs):
        state, loss_sum, correct_sum, seen = carry
        i, w, s = inputs
        state, m = train_step(state, _batch(x, y, i, w, parallel, pixel_levels))
        count = jnp.sum(w)
        loss_sum, correct_sum, seen = loss_sum + m["loss"] * count, correct_sum + m["accuracy"] * count, seen + count
        if progress is not None:
            jax.lax.cond((s + 1) % report_every == 0, lambda: jax.debug.callback(
                progress, s + 1, loss_sum, correct_sum, seen), lambda: None)
        return (state, loss_sum, correct_sum, seen), None

    zero = jnp.zeros((), jnp.float32)
    steps = jnp.arange(idx.shape[0])
    (state, loss_sum, correct_sum, seen), _ = jax.lax.scan(body, (state, zero, zero, zero), (idx, weight, steps))
    return state, {"loss": loss_sum / seen, "accuracy": correct_sum / seen}


def _jit(fn, parallel: distributed.DataParallel | None, first: Any, num_args: int, *, returns_first: bool = False,
         **kwargs):
    """``jax.jit(fn)``; with ``parallel``, its shardings given explicitly: argument 0 (``first``, a state or params)
    as :meth:`~mlpjax.distributed.DataParallel.shardings` lays it out, then the dataset rows ``x``, ``y``, then
    ``num_args - 3`` replicated scalars; outputs replicated, or ``(like first, replicated)`` with ``returns_first``."""
    if parallel is None:
        return jax.jit(fn, **kwargs)
    rep, rows, placed = parallel.replicated, parallel.rows_sharding, parallel.shardings(first)
    return jax.jit(fn, in_shardings=(placed, rows, rows) + (rep,) * (num_args - 3),
                   out_shardings=(placed, rep) if returns_first else rep, **kwargs)


def compile_epoch(state: TrainState, x: jax.Array, y: jax.Array, *, batch_size: int,
                  progress: ProgressFn | None = None, parallel: distributed.DataParallel | None = None,
                  num_examples: int | None = None, pixel_levels: int | None = None):
    """Ahead-of-time compile :func:`train_epoch` (state donated); returns ``(compiled, seconds)``.

    With ``parallel``, ``state`` must be placed by :meth:`~mlpjax.distributed.DataParallel.put_state` and ``x``,
    ``y`` on its mesh; the compiled epoch then takes the epoch number as a replicated int32 scalar (see
    :class:`EpochRunner`).
    """
    fn = _jit(functools.partial(train_epoch, batch_size=batch_size, progress=progress, parallel=parallel,
                                num_examples=num_examples, pixel_levels=pixel_levels), parallel, state, 4,
              returns_first=True, donate_argnums=0)
    epoch = jax.ShapeDtypeStruct((), jnp.int32, sharding=parallel and parallel.replicated)
    start = time.perf_counter()
    compiled = fn.lower(state, x, y, epoch).compile()
    return compiled, time.perf_counter() - start


def _evaluate_sums(params, x, y, *, config: model.ModelConfig, loss_name: str, batch_size: int,
                   parallel: distributed.DataParallel | None = None, num_examples: int | None = None,
                   pixel_levels: int | None = None):
    n = x.shape[0] if num_examples is None else num_examples
    idx, weight = batch_indices(n, batch_size, multiple=1 if parallel is None else parallel.size)

    def body(total, inputs):
        i, w = inputs
        sums = eval_step(params, _batch(x, y, i, w, parallel, pixel_levels), config=config, loss_name=loss_name)
        return jax.tree_util.tree_map(jnp.add, total, sums), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(
        lambda: eval_step(params, {"image": x[:batch_size].astype(jnp.float32), "label": y[:batch_size]},
                          config=config, loss_name=loss_name)))
    return jax.lax.scan(body, zeros, (idx, weight))[0]


def compile_evaluate(params, x, y, *, config: model.ModelConfig, loss_name: str, batch_size: int = 1000,
                     parallel: distributed.DataParallel | None = None, num_examples: int | None = None,
                     pixel_levels: int | None = None):
    """Ahead-of-time compile the evaluation of ``params`` on ``(x, y)``; returns ``(compiled, seconds)``.

    ``pixel_levels``: ``x`` holds uint8 levels, converted batch by batch (as in :func:`train_epoch`).

    With ``parallel``: ``params`` and ``x``, ``y`` placed on its mesh, as for :func:`compile_epoch`.
    """
    n = x.shape[0] if num_examples is None else num_examples
    fn = _jit(functools.partial(_evaluate_sums, config=config, loss_name=loss_name,
                                batch_size=min(batch_size, n), parallel=parallel, num_examples=num_examples,
                                pixel_levels=pixel_levels),
              parallel, params, 3)
    start = time.perf_counter()
    compiled = fn.lower(params, x, y).compile()
    return compiled, time.perf_counter() - start


def summarize(sums: dict[str, jax.Array]) -> dict[str, float]:
    """Turn evaluation sums into loss, accuracy, precision, recall, f1_score, mse, mae."""
    count = float(sums["count"])
    out = {"loss": float(sums["loss"]) / count, **metrics.from_confusion(np.asarray(sums["confusion"])),
           "mse": float(sums["mse"]) / count, "mae": float(sums["mae"]) / count}
    return out


def evaluate(params: model.Params, x, y, *, config: model.ModelConfig,
             loss_name: str = "categorical_crossentropy", batch_size: int = 1000) -> dict[str, float]:
    """Loss and every metric of :mod:`mlpjax.metrics` of ``params`` on ``x`` ``(N, D)``, ``y`` ``(N,)``."""
    compiled, _ = compile_evaluate(params, jnp.asarray(x), jnp.asarray(y), config=config, loss_name=loss_name,
                                   batch_size=batch_size)
    return summarize(compiled(params, jnp.asarray(x), jnp.asarray(y)))


@dataclasses.dataclass(frozen=True)
class EpochRunner:
    """A compiled training epoch with its dataset on the devices: ``state, metrics = runner(state, epoch)``.

    Built by :func:`prepare_epoch`. ``state`` must be placed as :meth:`place` places it (replicated over the
    mesh, or its weights split over ``model``; as is on one device) and is donated; ``metrics`` (``loss``,
    ``accuracy``) and the new state are placed the same way: :meth:`local` gives this process's single-device
    copy of either.
    """

    compiled: Any  # the AOT-compiled train_epoch
    x: jax.Array  # (rows, D) training images, placed (rows >= num_examples)
    y: jax.Array  # (rows,) int32 labels, placed
    num_examples: int
    batch_size: int  # examples per global batch (before padding to a multiple of the device count)
    compile_seconds: float
    parallel: distributed.DataParallel | None = None

    @property
    def devices(self) -> int:
        """Devices of the mesh, all axes and processes together."""
        return 1 if self.parallel is None else self.parallel.mesh.size

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch: ``ceil(num_examples / batch_size)``, whatever the device count."""
        return math.ceil(self.num_examples / self.batch_size)

    def place(self, tree: Any) -> Any:
        """Put ``tree`` (a state, params) where the compiled epoch expects it."""
        return tree if self.parallel is None else self.parallel.put_state(tree)

    def local(self, tree: Any) -> Any:
        """This process's single-device copy of a placed ``tree`` (identity on one device)."""
        return tree if self.parallel is None else self.parallel.local(tree)

    def put_rows(self, a) -> jax.Array:
        """Put dataset rows ``a`` ``(n, ...)`` on the devices as :attr:`x` is (e.g. the test split)."""
        return jnp.asarray(a) if self.parallel is None else self.parallel.put_rows(a)

    def __call__(self, state: TrainState, epoch: int) -> tuple[TrainState, dict[str, jax.Array]]:
        """Train 0-based ``epoch`` (its shuffle) from the placed ``state``."""
        e = jnp.asarray(epoch, jnp.int32) if self.parallel is None else self.place(np.int32(epoch))
        return self.compiled(state, self.x, self.y, e)


def prepare_epoch(state: TrainState, x, y, *, batch_size: int, mesh: jax.sharding.Mesh | None = None,
                  shard_rows: bool | None = None, progress: ProgressFn | None = None,
                  pixel_levels: int | None = None) -> tuple[EpochRunner, TrainState]:
    """Put ``x`` ``(N, D)``, ``y`` ``(N,)`` and ``state`` on the devices and compile one epoch.

    ``pixel_levels`` (a dataset's :attr:`~mlpjax.data.Dataset.pixel_levels`): ``x`` is uint8 levels (a dataset's
    ``raw_train``) or floats that are multiples of ``1 / pixel_levels``, kept on the devices as uint8 levels and
    converted batch by batch, which trains on exactly the same numbers with a quarter of the memory.

    ``mesh`` None: the default device (what :func:`fit` does without a mesh). Else data-parallel over ``mesh``,
    e.g. ``distributed.make_mesh(4)`` for 4 local devices, and tensor-parallel over its ``model`` axis if any, e.g.
    ``make_mesh(8, model_parallel=2)`` (``shard_rows``: see :class:`~mlpjax.distributed.DataParallel`); with
    several processes there is no progress callback.
    Returns ``(runner, placed state)``. Use it to time an epoch on ``N`` devices.
    """
    n = len(x)
    parallel = None
    if mesh is not None:
        parallel = distributed.DataParallel(mesh, shard_rows)
        distributed.check_padding(batch_size, parallel.size)
        state = parallel.put_state(state)
        progress = progress if parallel.process_count == 1 else None
    put = jnp.asarray if parallel is None else parallel.put_rows
    x = put(data_lib.to_levels(np.asarray(x), pixel_levels) if pixel_levels is not None else x)
    y = put(y)
    compiled, seconds = compile_epoch(state, x, y, batch_size=batch_size, progress=progress, parallel=parallel,
                                      num_examples=n, pixel_levels=pixel_levels)
    return EpochRunner(compiled, x, y, n, batch_size, seconds, parallel), state


def library_versions() -> dict[str, str]:
    """Versions of Python and the numerical libraries, recorded with every result."""
    import platform

    import flax

    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "numpy": np.__version__}


class TrainingDiverged(UserInputError):
    """The training loss became NaN or infinite."""


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns: the final state and a Keras-style record of the run."""

    state: TrainState
    config: TrainConfig
    history: dict[str, list[float]]
    test_metrics: dict[str, float]
    epoch_seconds: list[float]
    compile_seconds: float
    dataset: dict[str, Any]
    devices: int = 1  # devices of the mesh, all axes and processes together
    processes: int = 1

    def record(self) -> dict[str, Any]:
        """The JSON-able record written to ``metrics.json``."""
        return {
            "test_loss": self.test_metrics["loss"],
            "test_accuracy": self.test_metrics["accuracy"],
            "test_metrics": self.test_metrics,
            "history": self.history,
            "epoch_seconds": self.epoch_seconds,
            "compile_seconds": self.compile_seconds,
            "device": jax.devices()[0].platform,
            "devices": self.devices,
            "processes": self.processes,
            "config": self.config.to_dict(),
            "model": dataclasses.asdict(self.state.model),
            "dataset": self.dataset,
            "versions": library_versions(),
        }


HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
EpochHook = Callable[[int, TrainState, dict[str, list[float]]], None]


def _tqdm_progress(steps: int) -> tuple[ProgressFn, Callable[[int], None], Callable[[], None]]:
    """A device-side progress callback drawing one tqdm bar per epoch: (callback, start(epoch), close())."""
    from tqdm.auto import tqdm

    holder: dict[str, Any] = {}

    def start(epoch: int):
        holder["bar"] = tqdm(total=steps, desc=f"epoch {epoch}", unit="step", leave=True)

    def callback(step, loss_sum, correct_sum, seen):
        bar = holder["bar"]
        bar.update(int(step) - bar.n)
        bar.set_postfix(loss=f"{float(loss_sum) / float(seen):.4f}", acc=f"{float(correct_sum) / float(seen):.4f}")

    def close():
        if "bar" in holder:
            holder.pop("bar").close()

    return callback, start, close


def fit(config: TrainConfig, dataset: data_lib.Dataset | None = None, *, quiet: bool = True,
        initial_state: TrainState | None = None, initial_history: dict[str, list[float]] | None = None,
        on_epoch_end: EpochHook | None = None, log: Callable[[str], None] | None = None,
        mesh: jax.sharding.Mesh | None = None) -> FitResult:
    """Train ``config`` for ``config.epochs`` epochs in all, evaluating on the test split after each.

    Resume by passing ``initial_state`` and ``initial_history`` (the epochs already done are
    ``len(initial_history["loss"])``). ``on_epoch_end(epoch, state, history)`` runs after each epoch
    (1-based ``epoch``), e.g. to save a checkpoint. Raises :class:`TrainingDiverged` if the loss is not finite.

    ``mesh`` (from :func:`mlpjax.distributed.make_mesh`; None: one device):
    train data-parallel over its ``data`` axis (and tensor-parallel over its ``model`` axis, if any), on one
    process or, after
    :func:`mlpjax.distributed.initialize`, several (each calls ``fit`` alike; each holds only its block of the
    rows on its devices). The states handed to ``on_epoch_end`` and returned are this process's
    single-device copies, as without a mesh. Several processes: no progress bar; every process calls ``log``
    and ``on_epoch_end``, so pass them on process 0 only to write once.
    """
    if dataset is None:
        dataset = data_lib.load_dataset(config.dataset, config.data_dir)
    model_config = config.model_config(dataset.input_dim, dataset.num_classes)
    state = initial_state or create_train_state(jax.random.PRNGKey(config.seed), config, model_config)
    if state.model != model_config:
        raise UserInputError(f"the saved model {state.model} does not match the flags ({model_config})")
    history = {k: list(v) for k, v in (initial_history or {k: [] for k in HISTORY_KEYS}).items()}
    done = len(history["loss"])

    steps = math.ceil(len(dataset.y_train) / config.batch_size)
    quiet = quiet or (mesh is not None and jax.process_count() > 1)
    progress, start_bar, close_bar = _tqdm_progress(steps) if not quiet else (None, None, None)
    runner, state = prepare_epoch(state, dataset.raw_train, dataset.y_train, batch_size=config.batch_size,
                                  mesh=mesh, progress=progress, pixel_levels=dataset.pixel_levels)
    x_test, y_test = runner.put_rows(dataset.raw_test), runner.put_rows(dataset.y_test)
    eval_fn, eval_compile = compile_evaluate(state.params, x_test, y_test, config=model_config,
                                             loss_name=config.loss, parallel=runner.parallel,
                                             num_examples=len(dataset.y_test), pixel_levels=dataset.pixel_levels)
    compile_seconds = runner.compile_seconds + eval_compile
    epoch_seconds, test_metrics = [], {}
    for epoch in range(done, config.epochs):
        if start_bar:
            start_bar(epoch + 1)
        t0 = time.perf_counter()
        state, train_metrics = runner(state, epoch)
        train_metrics = {k: float(v) for k, v in runner.local(train_metrics).items()}  # waits for the device
        epoch_seconds.append(time.perf_counter() - t0)
        if close_bar:
            close_bar()
        if not math.isfinite(train_metrics["loss"]):
            raise TrainingDiverged(f"training diverged in epoch {epoch + 1}: the loss is "
                                   f"{train_metrics['loss']}; try a lower --lr")
        test_metrics = summarize(runner.local(eval_fn(state.params, x_test, y_test)))
        for key, value in (("loss", train_metrics["loss"]), ("accuracy", train_metrics["accuracy"]),
                           ("val_loss", test_metrics["loss"]), ("val_accuracy", test_metrics["accuracy"])):
            history[key].append(value)
        if log:
            log(f"epoch {epoch + 1}/{config.epochs}: loss {train_metrics['loss']:.4f} "
                f"accuracy {train_metrics['accuracy']:.4f} val_loss {test_metrics['loss']:.4f} "
                f"val_accuracy {test_metrics['accuracy']:.4f} ({epoch_seconds[-1]:.2f} s)")
        if on_epoch_end:
            on_epoch_end(epoch + 1, runner.local(state), history)
    if not test_metrics:  # nothing left to train (resumed at the last epoch): still report the test figures
        test_metrics = summarize(runner.local(eval_fn(state.params, x_test, y_test)))
    return FitResult(state=runner.local(state), config=config, history=history, test_metrics=test_metrics,
                     epoch_seconds=epoch_seconds, compile_seconds=compile_seconds, dataset=dataset.describe(),
                     devices=runner.devices, processes=1 if mesh is None else runner.parallel.process_count)
