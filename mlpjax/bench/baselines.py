"""The same model trained by a minimal hand-written JAX loop, PyTorch (eager) and Keras 3 (on TensorFlow, and on
JAX), for the benchmark.

Each builds the tutorial's network — Dense(512, relu) -> Dropout(0.2) -> Dense(10, softmax) with Glorot-uniform
kernels and zero biases — train it with Adam (lr 1e-3, eps 1e-7) on categorical cross-entropy with shuffled
batches of 128 (the last partial batch kept), and hand back two callables: ``epoch()`` trains one epoch and
``accuracy()`` returns the test accuracy. PyTorch and Keras are not dependencies of mlpjax: install the ``bench``
extra. The JAX loop is what a person would write by hand (plain matmuls, integer labels, no metrics): the bar
mlpjax's own epoch must beat.
"""

from __future__ import annotations

import dataclasses
import os
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


def available() -> dict[str, bool]:
    """Which baseline frameworks can be imported."""
    import importlib.util

    keras = importlib.util.find_spec("keras") is not None
    return {
        "jax": True,
        "torch": importlib.util.find_spec("torch") is not None,
        "keras": keras and importlib.util.find_spec("tensorflow") is not None,
        "keras_jax": keras,
    }


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
    spec = spec or Spec()
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
    x, y = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train.astype(np.int64))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_test)), torch.from_numpy(y_test.astype(np.int64))

    def epoch():
        net.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            optimizer.step()

    def accuracy() -> float:
        net.eval()
        with torch.no_grad():
            return float((net(xt).argmax(-1) == yt).float().mean())

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


RUNNERS = {"jax": jax_runner, "torch": torch_runner, "keras": keras_runner, "keras_jax": keras_jax_runner}
KERAS_BACKENDS = {"keras": "tensorflow", "keras_jax": "jax"}
