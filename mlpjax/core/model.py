"""The tutorial's MLP as a Flax module wrapped in pure functions over a params pytree.

Shapes: ``x`` is ``(batch, features)`` float32 in [0, 1]; logits are ``(batch, num_classes)``.
Params: ``{"hidden_0": {"kernel": (in, h0), "bias": (h0,)}, ..., "output": {"kernel": (h_last, C), "bias": (C,)}}``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from mlpjax.errors import FieldError, check_int, check_name, check_number

Params = Mapping[str, Any]


def step(x: jax.Array) -> jax.Array:
    """Heaviside step: 1 where x > 0, else 0. Its gradient is zero almost everywhere."""
    return (x > 0).astype(x.dtype)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "step": step,
    "tanh": jnp.tanh,
}


MAX_WIDTH = 2**63 - 1  # the most units of a layer: an array dimension is an int64 (XLA); memory refuses far fewer


def _layer_width(width: Any, hidden: Sequence[Any]) -> int:
    """One of the widths ``hidden`` as an int from 1 to :data:`MAX_WIDTH`; else a FieldError showing them all."""
    try:
        width = check_int("hidden", width)
    except FieldError:
        raise FieldError("hidden", f"sizes must be positive integers, got {list(hidden)}") from None
    if width > MAX_WIDTH:
        raise FieldError("hidden", f"sizes must be below 2**63 (an array dimension), got {list(hidden)}")
    return width


@dataclasses.dataclass(frozen=True)
class LayerKind:
    """What the package outside this module knows of a kind of layer.

    ``keras``: the Keras class that computes the same (``model.summary()`` names and lists the layer after it).
    ``splits``: for each of its params, the axis that a tensor-parallel mesh splits over its ``model`` axis
    (params not named are replicated on every device of that axis).
    """

    keras: str
    splits: Mapping[str, int] = dataclasses.field(default_factory=dict)


# The kinds of layer of :class:`MLP` (one registry: summary, memory estimate and tensor parallelism read it
# through :meth:`ModelConfig.layers`). A hidden layer splits its units (kernel columns and bias), the output
# layer its inputs (kernel rows; its bias is replicated), so that every product stays local but the last.
LAYER_KINDS: dict[str, LayerKind] = {
    "hidden": LayerKind("Dense", {"kernel": 1, "bias": 0}),
    "dropout": LayerKind("Dropout"),
    "output": LayerKind("Dense", {"kernel": 0}),
}


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of the MLP, in the order data flows through it (:meth:`ModelConfig.layers`).

    ``name``: its key in the params tree (``hidden_0``, ``output``), None for a layer without params (dropout);
    ``kind``: a key of :data:`LAYER_KINDS`; ``units``: its output width per example; ``shapes``: each param's
    shape by name, e.g. ``{"kernel": (784, 512), "bias": (512,)}`` (empty without params).
    """

    name: str | None
    kind: str
    units: int
    shapes: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)

    @property
    def param_count(self) -> int:
        """Trainable scalars of this layer."""
        return sum(math.prod(shape) for shape in self.shapes.values())

    @property
    def splits(self) -> dict[str, tuple[bool, ...]]:
        """For each param that a tensor-parallel mesh splits: per axis of its shape, whether that axis is split."""
        return {
            param: tuple(i == axis for i in range(len(self.shapes[param])))
            for param, axis in LAYER_KINDS[self.kind].splits.items()
            if param in self.shapes
        }

    @property
    def keras(self) -> str:
        """The Keras class of this layer (:data:`LAYER_KINDS`)."""
        return LAYER_KINDS[self.kind].keras


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the MLP: ``input_dim -> hidden... -> num_classes``."""

    input_dim: int = 784
    hidden: tuple[int, ...] = (512,)
    activation: str = "relu"
    dropout: float = 0.2
    num_classes: int = 10

    def __post_init__(self):
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise FieldError("hidden", f"must be a sequence of layer widths, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(_layer_width(h, self.hidden) for h in self.hidden))
        check_name("activation", self.activation, ACTIVATIONS)
        object.__setattr__(self, "input_dim", check_int("input_dim", self.input_dim, maximum=MAX_WIDTH))
        object.__setattr__(self, "dropout", check_number("dropout", self.dropout, low=0.0, high=1.0))
        object.__setattr__(self, "num_classes", check_int("num_classes", self.num_classes, 2, MAX_WIDTH))

    def for_data(self, input_dim: int, num_classes: int) -> ModelConfig:
        """This architecture with the input width and class count of a dataset."""
        return dataclasses.replace(self, input_dim=input_dim, num_classes=num_classes)

    @classmethod
    def chosen_fields(cls) -> tuple[str, ...]:
        """The fields a training config chooses (all but ``input_dim`` and ``num_classes``, which come from the
        dataset), in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("input_dim", "num_classes"))

    def chosen(self) -> dict[str, Any]:
        """The :meth:`chosen_fields` as JSON-able values (sequences as lists)."""
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in self.chosen_fields()}

    def widths(self) -> tuple[int, ...]:
        """The widths of the chain of Dense layers: ``(input_dim, *hidden, num_classes)``."""
        return (self.input_dim, *self.hidden, self.num_classes)

    def layers(self) -> tuple[Layer, ...]:
        """Every layer of :class:`MLP` in order, as :class:`Layer` (names, kinds, widths and param shapes): for
        each hidden width a ``hidden`` Dense layer (followed by the activation), then ``dropout`` when the rate is
        above zero; last the ``output`` Dense layer. The same tree as :func:`init`, allocating nothing."""
        out, width = [], self.input_dim
        for i, units in enumerate(self.hidden):
            out.append(Layer(f"hidden_{i}", "hidden", units, {"kernel": (width, units), "bias": (units,)}))
            if self.dropout > 0:
                out.append(Layer(None, "dropout", units))
            width = units
        out.append(
            Layer(
                "output", "output", self.num_classes, {"kernel": (width, self.num_classes), "bias": (self.num_classes,)}
            )
        )
        return tuple(out)

    def layer_names(self) -> list[str]:
        """The keys of the params tree, in the order data flows (the first reads the input, the last is the output)."""
        return [layer.name for layer in self.layers() if layer.name is not None]

    def param_shapes(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """The shape of every param: ``{layer: {param: shape}}``, the tree of :func:`init` without allocating it."""
        return {layer.name: dict(layer.shapes) for layer in self.layers() if layer.name is not None}

    def param_count(self) -> int:
        """Trainable scalars in all (equals :func:`param_count` of :func:`init`'s params)."""
        return sum(layer.param_count for layer in self.layers())

    def tensor_splits(self) -> dict[str, dict[str, tuple[bool, ...]]]:
        """How a tensor-parallel mesh splits the params: ``{layer: {param: (split?, ...) per axis}}``, e.g.
        ``{"hidden_0": {"kernel": (False, True), "bias": (True,)}, "output": {"kernel": (True, False)}}``; a param
        not listed is replicated."""
        return {layer.name: layer.splits for layer in self.layers() if layer.name is not None and layer.splits}

    def split_widths(self) -> tuple[int, ...]:
        """The sizes of the axes :meth:`tensor_splits` splits (the hidden widths): each must divide by the
        size of a tensor-parallel mesh's ``model`` axis. Sorted, without repeats."""
        shapes = self.param_shapes()
        return tuple(
            sorted(
                {
                    shapes[name][param][axis]
                    for name, splits in self.tensor_splits().items()
                    for param, split in splits.items()
                    for axis, s in enumerate(split)
                    if s
                }
            )
        )

    def activation_units(self) -> int:
        """Floats per example that one forward pass produces: the input and the output of every layer with params
        (dropout masks in place). A memory estimate multiplies it by the copies a step keeps alive."""
        return self.input_dim + sum(layer.units for layer in self.layers() if layer.shapes)


# Output widths up to this get their weight gradient formed as (N, K) and transposed, on CPU (see matmul).
NARROW_OUTPUT = 64


def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` for ``x`` ``(..., K)``, ``w`` ``(K, N)``, laid out so that its weight gradient is fast on CPU.

    Autodiff forms the gradient of ``w`` as ``x.T @ g`` ``(K, N)``, and XLA:CPU's matmul is slow at writing a
    narrow ``(K, N)`` such as the output layer's ``(512, 10)`` but fast at ``(N, K)`` (measured in
    ``docs/speed.md``). For a narrow ``w`` (``N`` at most
    :data:`NARROW_OUTPUT` and below ``K``) on CPU, the product goes through ``w.T`` behind an optimization
    barrier, whose transpose keeps the gradient ``g.T @ x`` in that layout before it is transposed back. The
    values are the same; every autodiff mode works; other platforms and wide layers compute ``x @ w`` plainly.
    """
    k, n = w.shape
    if n > NARROW_OUTPUT or n >= k:
        return x @ w
    w_t = jax.lax.platform_dependent(w, cpu=lambda w: jax.lax.optimization_barrier(w.T), default=lambda w: w.T)
    return x @ w_t.T


def dense_dot_general(x, kernel, dimension_numbers, precision=None, preferred_element_type=None):
    """``nn.Dense``'s product ``x (..., K) @ kernel (K, N)`` through :func:`matmul`."""
    if dimension_numbers != (((x.ndim - 1,), (0,)), ((), ())) or precision or preferred_element_type:
        return jax.lax.dot_general(
            x, kernel, dimension_numbers, precision=precision, preferred_element_type=preferred_element_type
        )
    return matmul(x, kernel)


class MLP(nn.Module):
    """Dense(h, act) -> Dropout ... -> Dense(num_classes); returns logits (softmax is in the loss).

    Kernels are Glorot-uniform and biases zero, as Keras' Dense. Dropout is inverted dropout and takes its
    keep-masks explicitly (one ``(batch, h)`` bool array per hidden layer), so that the same masks can be
    handed to the hand-written backward pass in :mod:`mlpjax.teaching.backprop`.
    """

    model_config: ModelConfig

    @nn.compact
    def __call__(
        self, x: jax.Array, masks: Sequence[jax.Array] | None = None, rate: jax.Array | None = None
    ) -> jax.Array:
        """``rate`` (a scalar, may be traced): the dropout rate of ``masks`` instead of ``model_config.dropout``."""
        model_config = self.model_config
        act = ACTIVATIONS[model_config.activation]
        for i, width in enumerate(model_config.hidden):
            x = nn.Dense(
                width, kernel_init=nn.initializers.glorot_uniform(), dot_general=dense_dot_general, name=f"hidden_{i}"
            )(x)
            x = act(x)
            self.sow("intermediates", "hidden", x)  # for hidden_outputs; nothing unless asked for
            if masks is not None:
                x = apply_dropout(x, masks[i], model_config.dropout if rate is None else rate)
        return nn.Dense(
            model_config.num_classes,
            kernel_init=nn.initializers.glorot_uniform(),
            dot_general=dense_dot_general,
            name="output",
        )(x)


def apply_dropout(x: jax.Array, keep: jax.Array, rate: float | jax.Array) -> jax.Array:
    """Inverted dropout: kept units are scaled by ``1 / (1 - rate)``, dropped ones are zero (``rate`` may be a
    traced scalar)."""
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def dropout_masks(
    rng: jax.Array, model_config: ModelConfig, batch_size: int, rate: jax.Array | None = None
) -> list[jax.Array]:
    """Keep-masks for every hidden layer: ``[(batch_size, h) bool, ...]``, each unit kept with ``1 - rate``.

    ``rate`` None: ``model_config.dropout``; else a scalar that may be traced (one per model of a sweep).
    Consumes ``rng`` only: layer ``i`` uses ``jax.random.fold_in(rng, i)``.
    """
    keep = 1.0 - (model_config.dropout if rate is None else rate)
    return [
        jax.random.bernoulli(jax.random.fold_in(rng, i), keep, (batch_size, width))
        for i, width in enumerate(model_config.hidden)
    ]


def init(key: jax.Array, model_config: ModelConfig) -> Params:
    """Fresh params for ``model_config``; consumes ``key`` (Glorot-uniform kernels, zero biases)."""
    dummy = jnp.zeros((1, model_config.input_dim), jnp.float32)
    return MLP(model_config).init(key, dummy)["params"]


def apply(
    params: Params,
    x: jax.Array,
    *,
    model_config: ModelConfig,
    train: bool = False,
    rng: jax.Array | None = None,
    dropout_rate: jax.Array | None = None,
) -> jax.Array:
    """Logits ``(batch, num_classes)`` for ``x`` ``(batch, input_dim)``.

    With ``train=True`` and a dropout rate above zero, dropout is active and needs ``rng``
    (consumed through :func:`dropout_masks`); otherwise ``rng`` is ignored. ``dropout_rate`` (a scalar that
    may be traced, e.g. one per model under ``vmap``) replaces ``model_config.dropout``: with ``train=True``
    masks are then always drawn from ``rng`` (a rate of 0 keeps every unit: the same values as no dropout).
    """
    masks = None
    if train and (dropout_rate is not None or model_config.dropout > 0.0):
        if rng is None:
            raise ValueError("apply(train=True) with dropout needs an explicit PRNG key: rng=...")
        masks = dropout_masks(rng, model_config, x.shape[0], dropout_rate)
    # without mutable collections flax's apply returns the output alone, not (output, variables)
    return MLP(model_config).apply({"params": params}, x, masks, dropout_rate)  # type: ignore[return-value]


def hidden_outputs(params: Params, x: jax.Array, *, model_config: ModelConfig) -> list[jax.Array]:
    """Each hidden layer's output ``(batch, h)`` (after its activation, before dropout) for ``x``
    ``(batch, input_dim)``, in inference mode: what the next layer reads."""
    _, found = MLP(model_config).apply({"params": params}, x, mutable=["intermediates"])
    return list(found.get("intermediates", {}).get("hidden", ()))


def predict_proba(params: Params, x: jax.Array, *, model_config: ModelConfig) -> jax.Array:
    """Class probabilities ``(batch, num_classes)``: softmax of the inference-mode logits."""
    return jax.nn.softmax(apply(params, x, model_config=model_config), axis=-1)


def one_hot(labels: jax.Array, num_classes: int) -> jax.Array:
    """Integer labels ``(batch,)`` to float32 one-hot ``(batch, num_classes)``, like ``keras.utils.to_categorical``."""
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def param_count(params: Params) -> int:
    """Number of trainable scalars."""
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))


PREDICT_BATCH = 4096  # rows a call of the compiled model in Classifier.predict_proba


@dataclasses.dataclass(frozen=True)
class Classifier:
    """Trained params bound to their architecture, for prediction: what ``load_model`` returns."""

    params: Params
    model_config: ModelConfig

    def predict_proba(self, x, *, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """Class probabilities of ``x``: float32 ``(n, num_classes)``, each row the softmax of the inference-mode
        logits (dropout off), summing to 1; for one row ``(input_dim,)``, ``(num_classes,)``. Deterministic.

        ``x`` holds real numbers (a NumPy or JAX array, or what ``np.asarray`` takes), shaped

        - ``(n, input_dim)``: rows of features, in the training data's column order;
        - ``(n, H, W)`` with ``H * W == input_dim``: images, flattened row by row, e.g. ``(n, 28, 28)`` for MNIST,
          their pixels as the model was trained on them (MNIST: in [0, 1], white on black; an image file goes
          through :func:`mlpjax.draw.predict.load_image` first);
        - ``(input_dim,)``: one row.

        Features are used as given, as training used them (no run saves a scaling yet: when ``--normalize``
        comes, its saved scaling is applied here, to each batch, so that the command line, which predicts
        through this method, and Python agree). ``batch_size`` rows go through the model at a time, each
        converted to float32 in turn: beyond ``x`` and the result, memory holds one batch, whatever ``n``.

        A shape other than these, values that are not real numbers, NaN or infinity: a FieldError of ``x``
        naming the shape, or the row and column of the value.
        """
        check_int("batch_size", batch_size)
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as e:  # ragged nested lists
            raise FieldError("x", f"must be an array of numbers ({e})") from None
        if a.dtype.kind not in "biuf":
            raise FieldError("x", f"must hold real numbers, got dtype {a.dtype}")
        d, single = self.model_config.input_dim, a.ndim == 1
        if not (a.shape == (d,) or a.ndim in (2, 3) and math.prod(a.shape[1:]) == d):
            one = "; one image is x[None]" if a.ndim == 2 and a.size == d else ""
            raise FieldError(
                "x", f"must be (n, {d}) rows, (n, H, W) images of H x W = {d} or one ({d},) row, got {a.shape}{one}"
            )
        rows = a[None] if single else a
        out = np.empty((len(rows), self.model_config.num_classes), np.float32)
        for start in range(0, len(rows), batch_size):
            with np.errstate(over="ignore"):  # beyond float32: inf, refused below
                part = rows[start : start + batch_size].reshape(-1, d).astype(np.float32, copy=False)
            bad = ~np.isfinite(part)
            if bad.any():
                row, column = (int(i) for i in np.argwhere(bad)[0])
                value = rows[start + row].reshape(-1)[column]
                where = f"row {start + row}, column {column}"
                raise FieldError("x", f"{where} is {value}; features must be finite (in float32)")
            probs = _predict_proba_jit(self.params, part, model_config=self.model_config)  # numpy in: no copy program
            out[start : start + len(part)] = np.asarray(probs)
        return out[0] if single else out

    def predict(self, x, *, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """Predicted class indices ``(n,)`` (or one int for one row): the argmax of :meth:`predict_proba`."""
        return np.argmax(self.predict_proba(x, batch_size=batch_size), axis=-1)


_predict_proba_jit = jax.jit(predict_proba, static_argnames=("model_config",))
