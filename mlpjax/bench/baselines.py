"""The same model trained by a minimal hand-written JAX loop, Flax NNX as its tutorial writes it, PyTorch (eager,
and through ``torch.compile``) and Keras 3 (on TensorFlow, and on JAX), for the benchmark.

Each builds the tutorial's network — Dense(512, relu) -> Dropout(0.2) -> Dense(10, softmax) with Glorot-uniform
kernels and zero biases — train it with Adam (lr 1e-3, eps 1e-7) on categorical cross-entropy with shuffled
batches of 128 (the last partial batch kept), and hand back two callables: ``epoch()`` trains one epoch and
``accuracy()`` returns the test accuracy. PyTorch and Keras are not dependencies of mlpjax: install the ``bench``
extra. The JAX loop is what a person would write by hand (plain matmuls, integer labels, no metrics): the bar
mlpjax's own epoch must beat. :data:`RUNNERS` is the registry: every name ``mlpjax bench --against`` accepts.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
from collections.abc import Callable

import numpy as np

Runner = tuple[Callable[[], None], Callable[[], float]]


@dataclasses.dataclass(frozen=True)
class Spec:
    """What every baseline builds: the hidden widths, the dropout rate, the batch size, the seed, and the CPU
    threads it may use (None: every core)."""

    hidden: tuple[int, ...] = (512,)
    dropout: float = 0.2
    batch_size: int = 128
    seed: int = 0
    threads: int | None = None


def unavailable() -> dict[str, str]:
    """Why each baseline that cannot run here cannot (a module it imports is missing, or torch.compile has no C++
    compiler), by name; the others are absent."""
    import importlib.util

    reasons = {}
    for name, baseline in RUNNERS.items():
        if not all(importlib.util.find_spec(module) is not None for module in baseline.needs):
            reasons[name] = "not installed (pip install -e '.[bench]')"
        elif baseline.compiler and not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")):
            reasons[name] = "torch.compile needs a C++ compiler on CPU (g++, clang++ or $CXX); none found"
    return reasons


def keras_backend_taken(backend: str) -> str | None:
    """The backend Keras already runs on in this process when it is not ``backend`` (one process holds one
    backend: Keras on TensorFlow and Keras on JAX are timed in separate ``mlpjax bench`` runs), else None."""
    import sys

    if "keras" not in sys.modules:
        return None
    taken = sys.modules["keras"].backend.backend()
    return taken if taken != backend else None


def jax_runner(x_train, y_train, x_test, y_test, spec: Spec | None = None) -> Runner:
    """A minimal JAX epoch: one jitted ``lax.scan`` over shuffled batches of float32 images (the last partial
    batch dropped: simpler than padding), Adam from optax, dropout from ``jax.random.bernoulli``.
    ``threads`` is ignored (XLA uses every core)."""
    spec = spec or Spec()
    hidden, dropout, batch_size, seed = spec.hidden, spec.dropout, spec.batch_size, spec.seed
    import jax
    import jax.numpy as jnp
    import optax

    key = jax.random.PRNGKey(seed)
    dims = (x_train.shape[1], *hidden, int(y_train.max()) + 1)
    params = []
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        params.append(
            (jax.nn.initializers.glorot_uniform()(jax.random.fold_in(key, i), (n_in, n_out)), jnp.zeros(n_out))
        )
    tx = optax.adam(1e-3, eps=1e-7)
    x, y = jnp.asarray(x_train), jnp.asarray(y_train, jnp.int32)
    xt, yt = jnp.asarray(x_test), jnp.asarray(y_test)
    steps = len(x_train) // batch_size

    def forward(params, h, key):
        for i, (w, b) in enumerate(params[:-1]):
            h = jax.nn.relu(h @ w + b)
            if key is not None:
                h = jnp.where(
                    jax.random.bernoulli(jax.random.fold_in(key, i), 1 - dropout, h.shape), h / (1 - dropout), 0
                )
        w, b = params[-1]
        return h @ w + b

    def loss(params, xb, yb, key):
        return optax.softmax_cross_entropy_with_integer_labels(forward(params, xb, key), yb).mean()

    @jax.jit
    def train_epoch(params, opt_state, key, x, y):
        order = jax.random.permutation(key, len(x))[: steps * batch_size].reshape(steps, batch_size)

        def step(carry, idx):
            params, opt_state, k = carry
            k, sub = jax.random.split(k)
            grads = jax.grad(loss)(params, x[idx], y[idx], sub)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, k), None

        return jax.lax.scan(step, (params, opt_state, key), order)[0][:2]

    state = {"params": params, "opt_state": tx.init(params), "epoch": 0}

    def epoch():
        params, opt_state = train_epoch(
            state["params"], state["opt_state"], jax.random.fold_in(key, state["epoch"]), x, y
        )
        jax.block_until_ready(params)
        state.update(params=params, opt_state=opt_state, epoch=state["epoch"] + 1)

    def accuracy() -> float:
        return float((forward(state["params"], xt, None).argmax(-1) == yt).mean())

    return epoch, accuracy


def torch_runner(x_train, y_train, x_test, y_test, spec: Spec | None = None) -> Runner:
    """PyTorch eager training on CPU tensors; ``threads`` defaults to the machine's cores."""
    return _torch_training(x_train, y_train, x_test, y_test, spec or Spec(), compile_mode=None)


def torch_compile_runner(
    x_train, y_train, x_test, y_test, spec: Spec | None = None, *, mode: str = "default"
) -> Runner:
    """The PyTorch training of :func:`torch_runner` through ``torch.compile(model, mode=mode)``, as PyTorch's
    tutorial writes it: the model compiled (by Inductor, to C++ on CPU), the loss, backward and Adam step left as
    they are. The first epoch compiles (the full batch, then the last partial one); later epochs reuse both.
    ``mode="reduce-overhead"`` adds CUDA graphs, which do not apply on CPU. Accuracy is taken by the same model,
    uncompiled."""
    return _torch_training(x_train, y_train, x_test, y_test, spec or Spec(), compile_mode=mode)


def _torch_training(x_train, y_train, x_test, y_test, spec: Spec, compile_mode: str | None) -> Runner:
    hidden, dropout, batch_size, seed, threads = spec.hidden, spec.dropout, spec.batch_size, spec.seed, spec.threads
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.manual_seed(seed)
    layers, width = [], x_train.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        width = h
    layers.append(torch.nn.Linear(width, int(y_train.max()) + 1))
    net = torch.nn.Sequential(*layers)
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    forward = net if compile_mode is None else torch.compile(net, mode=compile_mode)
    x, y = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train.astype(np.int64))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_test)), torch.from_numpy(y_test.astype(np.int64))

    def epoch():
        net.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(forward(x[idx]), y[idx]).backward()
            optimizer.step()

    def accuracy() -> float:
        net.eval()
        with torch.no_grad():
            return float((net(xt).argmax(-1) == yt).float().mean())

    return epoch, accuracy


def flax_nnx_runner(x_train, y_train, x_test, y_test, spec: Spec | None = None) -> Runner:
    """Flax NNX as its MNIST tutorial writes it: an ``nnx.Module`` of ``nnx.Linear`` and ``nnx.Dropout`` layers,
    ``nnx.Optimizer(model, optax.adam(...), wrt=nnx.Param)``, and an ``@nnx.jit`` ``train_step`` (``nnx.grad``
    then ``optimizer.update(model, grads)``) called from a Python loop over shuffled NumPy batches (the last partial
    batch kept: a second compilation, in the first epoch). No training metrics (the tutorial keeps an
    ``nnx.MultiMetric`` and so takes ``nnx.value_and_grad``; the other baselines keep none either). ``threads`` is
    ignored (XLA uses every core)."""
    spec = spec or Spec()
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, dims: tuple[int, ...], rate: float, *, rngs: nnx.Rngs):
            glorot = nnx.initializers.glorot_uniform()
            self.layers = nnx.List(
                [nnx.Linear(i, o, kernel_init=glorot, rngs=rngs) for i, o in zip(dims[:-1], dims[1:], strict=True)]
            )
            self.dropout = nnx.Dropout(rate, rngs=rngs)

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = self.dropout(nnx.relu(layer(x)))
            return self.layers[-1](x)

    model = MLP((x_train.shape[1], *spec.hidden, int(y_train.max()) + 1), spec.dropout, rngs=nnx.Rngs(spec.seed))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3, eps=1e-7), wrt=nnx.Param)

    def loss_fn(model: MLP, images, labels):
        return optax.softmax_cross_entropy_with_integer_labels(model(images), labels).mean()

    @nnx.jit
    def train_step(model: MLP, optimizer: nnx.Optimizer, images, labels):
        grads = nnx.grad(loss_fn)(model, images, labels)
        optimizer.update(model, grads)

    @nnx.jit
    def predict(model: MLP, images):
        return model(images).argmax(-1)

    rng = np.random.default_rng(spec.seed)
    x, y = np.ascontiguousarray(x_train, np.float32), y_train.astype(np.int32)

    def epoch():
        model.train()
        order = rng.permutation(len(x))
        for start in range(0, len(x), spec.batch_size):
            idx = order[start : start + spec.batch_size]
            train_step(model, optimizer, x[idx], y[idx])
        jax.block_until_ready(nnx.state(model))

    def accuracy() -> float:
        model.eval()
        return float((predict(model, np.asarray(x_test, np.float32)) == jnp.asarray(y_test)).mean())

    return epoch, accuracy


def keras_runner(x_train, y_train, x_test, y_test, spec: Spec | None = None) -> Runner:
    """Keras 3 on TensorFlow, ``model.fit(epochs=1)`` per epoch, as the tutorial writes it."""
    spec = spec or Spec()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if spec.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(spec.threads)
        except RuntimeError:  # already initialised in this process
            pass
    return _keras_fit(x_train, y_train, x_test, y_test, spec, steps_per_execution=1)


def keras_jax_runner(x_train, y_train, x_test, y_test, spec: Spec | None = None) -> Runner:
    """Keras 3 on JAX, as a Keras user would tune it: ``jit_compile`` at its default (XLA) and
    ``steps_per_execution`` the steps of one epoch, so that one compiled call trains the whole epoch.
    ``threads`` is ignored (XLA uses every core)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    steps = -(-len(y_train) // (spec or Spec()).batch_size)
    return _keras_fit(x_train, y_train, x_test, y_test, spec or Spec(), steps_per_execution=steps)


def _keras_fit(x_train, y_train, x_test, y_test, spec: Spec, steps_per_execution: int) -> Runner:
    hidden, dropout, batch_size, seed = spec.hidden, spec.dropout, spec.batch_size, spec.seed
    import keras

    keras.utils.set_random_seed(seed)
    num_classes = int(y_train.max()) + 1
    net = keras.Sequential(
        [keras.Input((x_train.shape[1],))]
        + [layer for h in hidden for layer in (keras.layers.Dense(h, activation="relu"), keras.layers.Dropout(dropout))]
        + [keras.layers.Dense(num_classes, activation="softmax")]
    )
    net.compile(
        optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"], steps_per_execution=steps_per_execution
    )
    y_onehot = keras.utils.to_categorical(y_train, num_classes)

    def epoch():
        net.fit(x_train, y_onehot, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)

    def accuracy() -> float:
        return float((net.predict(x_test, batch_size=1000, verbose=0).argmax(-1) == y_test).mean())

    return epoch, accuracy


@dataclasses.dataclass(frozen=True)
class Baseline:
    """One entry of :data:`RUNNERS`: ``build(x_train, y_train, x_test, y_test, spec)`` returns ``(epoch,
    accuracy)``; ``about`` is its description in ``mlpjax bench --help``; ``needs`` the modules it imports (it is
    skipped where one is missing); ``compiler``: it needs a C++ compiler (torch.compile on CPU);
    ``keras_backend``: the Keras backend it runs on (one per process)."""

    build: Callable[..., Runner]
    about: str
    needs: tuple[str, ...] = ()
    compiler: bool = False
    keras_backend: str | None = None


RUNNERS: dict[str, Baseline] = {
    "jax": Baseline(jax_runner, "a minimal hand-written loop: one jitted lax.scan an epoch"),
    "flax_nnx": Baseline(flax_nnx_runner, "Flax NNX as its MNIST tutorial writes it: an nnx.jit step per batch"),
    "torch": Baseline(torch_runner, "PyTorch, eager", needs=("torch",)),
    "torch_compile": Baseline(
        functools.partial(torch_compile_runner, mode="default"),
        "PyTorch, torch.compile(model)",
        needs=("torch",),
        compiler=True,
    ),
    "torch_compile_ro": Baseline(
        functools.partial(torch_compile_runner, mode="reduce-overhead"),
        "PyTorch, torch.compile(model, mode='reduce-overhead')",
        needs=("torch",),
        compiler=True,
    ),
    "keras": Baseline(keras_runner, "Keras 3 on TensorFlow", needs=("keras", "tensorflow"), keras_backend="tensorflow"),
    "keras_jax": Baseline(
        keras_jax_runner, "Keras 3 on JAX, one compiled call an epoch", needs=("keras",), keras_backend="jax"
    ),
}
