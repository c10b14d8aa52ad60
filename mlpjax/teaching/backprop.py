"""Backpropagation by hand: forward and backward passes written out with the chain rule, no autodiff.

numpy only, float64 throughout. Three views of one algorithm:

1. :func:`delta_backprop` — the per-neuron δ method for a sigmoid network with error
   ``E = ½ Σ (target − out)²`` (the 3-2-1 network of the tutorial's first figures, or any other sizes):
   the error of every neuron is computed backwards from the output, then every weight's gradient from it.
2. :func:`worked_step` / :func:`worked_train` — the tutorial's worked 2-2-2 example (:data:`ARTICLE`),
   reproduced number by number, built on (1).
3. :func:`loss_and_grads` — the library's MLP (:mod:`mlpjax.core.model`): any number of hidden layers,
   relu/sigmoid/tanh/step, softmax output with any loss of :mod:`mlpjax.core.losses`, dropout with given masks;
   the gradient of every kernel and bias, in the params pytree layout of :func:`mlpjax.core.model.init`.

Conventions. ``net`` is a neuron's weighted input (the tutorial's ``e``), ``out = f(net)`` its output.
``δ_j = ∂E/∂net_j`` (the gradient sign: a weight moves by ``−η ∂E/∂w``; the tutorial's figures call
``z − y = −∂E/∂y`` the error signal δ and *add* ``η δ df/de x`` to a weight, the same move). Every δ here
includes its own neuron's ``df/de`` before it is passed back, ``δ_j = f'(net_j) Σ_k w_jk δ_k``: that is what
makes the weight gradients exact (the tests check them against ``jax.grad``).
Kernels are ``(n_in, n_out)`` as in Flax: ``kernel[i, j]`` is the weight from neuron ``i`` to neuron ``j``.
None of these functions consumes randomness; dropout masks are inputs (:func:`mlpjax.core.model.dropout_masks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlpjax.errors import FieldError, UserInputError, check_name
from mlpjax.memory import available_memory, format_bytes

Array = np.ndarray


def sigmoid(x) -> Array:
    """Logistic function ``1 / (1 + e^−x)`` in float64 (``e^−x`` overflowing to inf gives 0, as it should)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


# --------------------------------------------------------------------------------------------------------
# 1. The δ method: a sigmoid network, E = ½ Σ (target − out)², one example.
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DeltaPass:
    """One forward and backward pass of :func:`delta_backprop`, layer by layer (layers ``1..L``).

    ``outs[0]`` is the input ``(n_0,)``; every other list holds one entry per layer ``l = 1..L`` at index
    ``l − 1``. ``d_out_parts[l−1][j, k] = w_jk · δ_k`` is ``∂E_k/∂out_j``, the part of neuron ``j``'s error
    that comes back through neuron ``k`` of the next layer (empty for the output layer).
    """

    outs: list[Array]  # [x (n_0,), out_1 (n_1,), ..., out_L (n_L,)]
    nets: list[Array]  # net_l (n_l,) = out_{l−1} @ kernel_l + bias_l
    d_out: list[Array]  # ∂E/∂out_l (n_l,)
    d_out_parts: list[Array]  # (n_l, n_{l+1}) for l < L; (n_L, 0) for the output layer
    deltas: list[Array]  # δ_l = ∂E/∂net_l = ∂E/∂out_l · out_l (1 − out_l), (n_l,)
    kernel_grads: list[Array]  # ∂E/∂w_ij = out_i · δ_j, (n_{l−1}, n_l)
    bias_grads: list[Array]  # ∂E/∂b: () for a bias shared by the layer (Σ_j δ_j), else (n_l,) (= δ_l)
    errors: Array  # ½ (target − out)² per output neuron (n_L,)
    total_error: float  # E = Σ errors


def delta_backprop(
    kernels: Sequence[Any],
    x: Any,
    target: Any,
    biases: Sequence[Any] | None = None,
) -> DeltaPass:
    """Forward pass, then the δ of every neuron backwards from the output, then every gradient.

    ``kernels``: ``[(n_0, n_1), (n_1, n_2), ...]``; ``x``: ``(n_0,)``; ``target``: ``(n_L,)``;
    ``biases``: per layer a scalar (one bias shared by the layer's neurons, as in the worked example) or an
    ``(n_l,)`` vector; ``None`` for no biases (the 3-2-1 network of the figures has none).
    Every neuron is a sigmoid; ``E = ½ Σ (target − out)²``.
    """
    kernels = [np.asarray(k, np.float64) for k in kernels]
    x = np.asarray(x, np.float64)
    target = np.asarray(target, np.float64)
    if biases is None:
        biases = [np.float64(0.0)] * len(kernels)
    biases = [np.asarray(b, np.float64) for b in biases]
    if len(biases) != len(kernels):
        raise UserInputError(f"got {len(kernels)} kernels but {len(biases)} biases")
    sizes = [x.shape[0]] + [k.shape[1] for k in kernels]
    for l, k in enumerate(kernels):
        if k.shape[0] != sizes[l]:
            raise UserInputError(f"kernel {l + 1} has shape {k.shape}, expected ({sizes[l]}, n)")
    for l, b in enumerate(biases):
        if b.shape not in ((), (sizes[l + 1],)):
            raise UserInputError(f"bias {l + 1} has shape {b.shape}, expected () (shared) or ({sizes[l + 1]},)")
    if target.shape != (sizes[-1],):
        raise UserInputError(f"target has shape {target.shape}, expected ({sizes[-1]},)")

    # Forward: net_j = Σ_i out_i w_ij + b_j, out_j = σ(net_j).
    outs, nets = [x], []
    for k, b in zip(kernels, biases, strict=True):
        nets.append(outs[-1] @ k + b)
        outs.append(sigmoid(nets[-1]))
    out = outs[-1]
    errors = 0.5 * (target - out) ** 2

    # Backward, one layer at a time from the output; within a layer every neuron j gets
    #   ∂E/∂out_j = −(target_j − out_j)                       (output neuron)
    #   ∂E/∂out_j = Σ_k ∂E_k/∂out_j = Σ_k w_jk δ_k             (hidden neuron: every path through the next layer)
    #   δ_j = ∂E/∂out_j · ∂out_j/∂net_j = ∂E/∂out_j · out_j (1 − out_j)
    L = len(kernels)
    d_out: list[Any] = [None] * L  # each filled below, from the output layer back
    d_out_parts: list[Any] = [None] * L
    deltas: list[Any] = [None] * L
    d_out[L - 1] = -(target - out)
    d_out_parts[L - 1] = np.zeros((sizes[-1], 0))
    for l in range(L - 1, -1, -1):  # layer l + 1 in the docstring's numbering
        if l < L - 1:
            d_out_parts[l] = kernels[l + 1] * deltas[l + 1][None, :]  # w_jk · δ_k, the next layer's weights
            d_out[l] = d_out_parts[l].sum(axis=1)
        deltas[l] = d_out[l] * outs[l + 1] * (1.0 - outs[l + 1])

    # Gradients: ∂E/∂w_ij = ∂E/∂net_j · ∂net_j/∂w_ij = δ_j · out_i;  ∂E/∂b = Σ over the neurons b feeds.
    kernel_grads = [np.outer(outs[l], deltas[l]) for l in range(L)]
    bias_grads = [deltas[l].sum() if biases[l].ndim == 0 else deltas[l].copy() for l in range(L)]
    return DeltaPass(
        outs=outs,
        nets=nets,
        d_out=d_out,
        d_out_parts=d_out_parts,
        deltas=deltas,
        kernel_grads=kernel_grads,
        bias_grads=bias_grads,
        errors=errors,
        total_error=float(errors.sum()),
    )


def figure_names(trace: DeltaPass) -> dict[str, float]:
    """The figures' names for a bias-free pass: neurons numbered ``1, 2, ...`` through the layers, inputs
    ``x1, x2, ...``; returns ``δn`` (= ∂E/∂net_n) for every neuron and the gradient of every weight,
    ``w(xm)n`` from input ``m`` and ``wmn`` between neurons (``w14``, ``w46`` for the 3-2-1 network)."""
    names: dict[str, float] = {}
    first = 1  # number of the layer's first neuron
    labels = [f"(x{m + 1})" for m in range(trace.outs[0].shape[0])]
    for l, grad in enumerate(trace.kernel_grads):
        numbers = list(range(first, first + grad.shape[1]))
        for j, n in enumerate(numbers):
            names[f"δ{n}"] = float(trace.deltas[l][j])
            for i, src in enumerate(labels):
                names[f"w{src}{n}"] = float(grad[i, j])
        labels = [str(n) for n in numbers]
        first += grad.shape[1]
    return names


# --------------------------------------------------------------------------------------------------------
# 2. The worked example: 2 inputs, 2 hidden, 2 outputs.
# --------------------------------------------------------------------------------------------------------

WEIGHT_NAMES = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8")

# The article's wiring, name -> (layer, from, to) in the (n_in, n_out) kernels:
# w1, w2: i1, i2 -> h1;  w3, w4: i1, i2 -> h2;  w5, w6: h1, h2 -> o1;  w7, w8: h1, h2 -> o2.
WIRING: dict[str, tuple[int, int, int]] = {
    "w1": (0, 0, 0),
    "w2": (0, 1, 0),
    "w3": (0, 0, 1),
    "w4": (0, 1, 1),
    "w5": (1, 0, 0),
    "w6": (1, 1, 0),
    "w7": (1, 0, 1),
    "w8": (1, 1, 1),
}


def kernels_from_weights(weights: Mapping[str, float]) -> list[Array]:
    """``{w1..w8}`` -> ``[hidden (2, 2), output (2, 2)]`` kernels."""
    kernels = [np.zeros((2, 2)), np.zeros((2, 2))]
    for name, (layer, i, j) in WIRING.items():
        kernels[layer][i, j] = weights[name]
    return kernels


def weights_from_kernels(kernels: Sequence[Array]) -> dict[str, float]:
    """``[hidden (2, 2), output (2, 2)]`` -> ``{w1..w8}`` (also for gradients)."""
    return {name: float(kernels[layer][i, j]) for name, (layer, i, j) in WIRING.items()}


@dataclasses.dataclass(frozen=True)
class WorkedExample:
    """The classic 2-2-2 sigmoid network. Each layer's bias is shared by its neurons and never updated."""

    inputs: tuple[float, float] = (0.05, 0.10)  # i1, i2
    targets: tuple[float, float] = (0.01, 0.99)  # for o1, o2
    weights: tuple[float, ...] = (0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55)  # w1..w8
    biases: tuple[float, float] = (0.35, 0.60)  # b1 (hidden), b2 (output)
    lr: float = 0.5  # η

    def __post_init__(self):
        if len(self.weights) != len(WEIGHT_NAMES):
            raise UserInputError(f"the worked example has 8 weights w1..w8, got {len(self.weights)}")

    def weight_dict(self) -> dict[str, float]:
        return dict(zip(WEIGHT_NAMES, map(float, self.weights), strict=True))

    def with_weights(self, weights: Mapping[str, float]) -> WorkedExample:
        return dataclasses.replace(self, weights=tuple(float(weights[n]) for n in WEIGHT_NAMES))


ARTICLE = WorkedExample()


@dataclasses.dataclass(frozen=True)
class WorkedStep:
    """One forward pass, backward pass and gradient-descent update of the worked example."""

    example: WorkedExample
    trace: DeltaPass
    grads: dict[str, float]  # ∂E_total/∂w for w1..w8
    updated: dict[str, float]  # w − η ∂E_total/∂w, every gradient taken at the weights before the update

    def values(self) -> dict[str, float]:
        """The named quantities of the walk-through: ``i1``; ``net_h1``, ``out_o2``; ``E_o1``, ``E_total``;
        ``dE_dout_o1`` (∂E_total/∂out_o1), ``dout_dnet_o1`` (∂out_o1/∂net_o1), ``delta_h2`` (∂E_total/∂net_h2);
        ``dE_o2_dout_h1`` (∂E_o2/∂out_h1: the part of h1's error that comes back through o2)."""
        t = self.trace
        v = {"E_total": t.total_error}
        for j in range(2):
            v[f"i{j + 1}"] = t.outs[0][j]
            v[f"E_o{j + 1}"] = t.errors[j]
            for k in range(2):
                v[f"dE_o{k + 1}_dout_h{j + 1}"] = t.d_out_parts[0][j, k]
            for layer, prefix in ((1, "h"), (2, "o")):
                n, out = f"{prefix}{j + 1}", t.outs[layer][j]
                v[f"net_{n}"] = t.nets[layer - 1][j]
                v[f"out_{n}"] = out
                v[f"dE_dout_{n}"] = t.d_out[layer - 1][j]
                v[f"dout_dnet_{n}"] = out * (1.0 - out)
                v[f"delta_{n}"] = t.deltas[layer - 1][j]
        return {name: float(x) for name, x in v.items()}


def worked_step(example: WorkedExample = ARTICLE) -> WorkedStep:
    """Backpropagate the worked example once and update all eight weights (biases stay as they are)."""
    trace = delta_backprop(
        kernels_from_weights(example.weight_dict()), example.inputs, example.targets, biases=example.biases
    )
    grads = weights_from_kernels(trace.kernel_grads)
    updated = {n: w - example.lr * grads[n] for n, w in example.weight_dict().items()}
    return WorkedStep(example=example, trace=trace, grads=grads, updated=updated)


@dataclasses.dataclass(frozen=True)
class WorkedRun:
    """``iterations`` updates of the worked example."""

    example: WorkedExample  # where it started
    errors: Array  # (iterations + 1,): errors[k] is E_total after k updates (errors[0]: before any)
    weights: dict[str, float]  # after the last update
    outputs: tuple[float, float]  # out_o1, out_o2 after the last update


def worked_train(example: WorkedExample = ARTICLE, iterations: int = 10_000) -> WorkedRun:
    """Repeat the update of :func:`worked_step` ``iterations`` times on the same example. The error after each
    update is kept: more of them than the memory available holds are refused before anything is allocated."""
    if iterations < 0:
        raise UserInputError(f"iterations must be 0 or more, got {iterations}")
    need, free = 8 * (iterations + 1), available_memory()
    if need > free:
        raise FieldError(
            "iterations",
            f"{{field}} {iterations}: the error after each update would need "
            f"{format_bytes(need)} of memory but {format_bytes(free)} is available; choose fewer",
        )
    errors = np.empty(iterations + 1)
    kernels = kernels_from_weights(example.weight_dict())
    for n in range(iterations + 1):
        trace = delta_backprop(kernels, example.inputs, example.targets, biases=example.biases)
        errors[n] = trace.total_error
        if n < iterations:  # the same update as worked_step, on the kernels directly
            kernels = [k - example.lr * g for k, g in zip(kernels, trace.kernel_grads, strict=True)]
    return WorkedRun(
        example=example,
        errors=errors,
        weights=weights_from_kernels(kernels),
        outputs=(float(trace.outs[-1][0]), float(trace.outs[-1][1])),
    )


def _num(x: float) -> str:
    return f"{x:.9g}"


def walkthrough(step: WorkedStep, reference: Mapping[str, float] | None = None) -> str:
    """The worked example step by step, as the tutorial tells it: forward pass, the chain rule for w5 and
    w1, then a table of every weight (with ``reference`` gradients, e.g. jax.grad, and their difference)."""
    ex, w = step.example, step.example.weight_dict()
    v = step.values()
    b1, b2 = ex.biases
    lines = [
        "The worked example: inputs i1, i2 -> hidden h1, h2 -> outputs o1, o2; sigmoid in every neuron;",
        f"E_total = Σ ½(target − out)²; learning rate η = {_num(ex.lr)}; b1 = {_num(b1)}, b2 = {_num(b2)} are shared",
        "by the neurons of their layer and not updated.",
        f"  i1 = {_num(ex.inputs[0])}, i2 = {_num(ex.inputs[1])}; targets {_num(ex.targets[0])}, {_num(ex.targets[1])}",
        "  " + ", ".join(f"{n} = {_num(w[n])}" for n in WEIGHT_NAMES),
        "",
        "Forward pass",
    ]
    for h, (wa, wb) in (("h1", ("w1", "w2")), ("h2", ("w3", "w4"))):
        lines.append(
            f"  net_{h} = {wa}·i1 + {wb}·i2 + b1 = {_num(w[wa])}·{_num(v['i1'])} + {_num(w[wb])}·"
            f"{_num(v['i2'])} + {_num(b1)} = {_num(v['net_' + h])}   out_{h} = σ(net_{h}) = "
            f"{_num(v['out_' + h])}"
        )
    for o, (wa, wb) in (("o1", ("w5", "w6")), ("o2", ("w7", "w8"))):
        lines.append(
            f"  net_{o} = {wa}·out_h1 + {wb}·out_h2 + b2 = {_num(w[wa])}·{_num(v['out_h1'])} + {_num(w[wb])}·"
            f"{_num(v['out_h2'])} + {_num(b2)} = {_num(v['net_' + o])}   out_{o} = σ(net_{o}) = "
            f"{_num(v['out_' + o])}"
        )
    for k, o in enumerate(("o1", "o2")):
        lines.append(
            f"  E_{o} = ½(target_{o} − out_{o})² = ½({_num(ex.targets[k])} − {_num(v['out_' + o])})²"
            f" = {_num(v['E_' + o])}"
        )
    lines += [
        f"  E_total = E_o1 + E_o2 = {_num(v['E_total'])}",
        "",
        "Backward pass, output layer: ∂E_total/∂w5 = ∂E_total/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5",
        f"  ∂E_total/∂out_o1 = −(target_o1 − out_o1) = {_num(v['dE_dout_o1'])}",
        f"  ∂out_o1/∂net_o1 = out_o1 (1 − out_o1) = {_num(v['dout_dnet_o1'])}",
        f"  ∂net_o1/∂w5 = out_h1 = {_num(v['out_h1'])}",
        f"  ∂E_total/∂w5 = {_num(v['dE_dout_o1'])} · {_num(v['dout_dnet_o1'])} · {_num(v['out_h1'])}"
        f" = {_num(step.grads['w5'])}",
        f"  (δ_o1 = ∂E_total/∂net_o1 = {_num(v['delta_o1'])}, so ∂E_total/∂w5 = δ_o1 · out_h1)",
        f"  w5⁺ = w5 − η · ∂E_total/∂w5 = {_num(w['w5'])} − {_num(ex.lr)} · {_num(step.grads['w5'])}"
        f" = {_num(step.updated['w5'])}",
        "",
        "Backward pass, hidden layer: w1 reaches E_total through both outputs (with w5, w7 before the update)",
        "  ∂E_total/∂w1 = ∂E_total/∂out_h1 · ∂out_h1/∂net_h1 · ∂net_h1/∂w1",
        f"  ∂E_o1/∂out_h1 = ∂E_o1/∂net_o1 · ∂net_o1/∂out_h1 = δ_o1 · w5 = {_num(v['delta_o1'])} · {_num(w['w5'])}"
        f" = {_num(v['dE_o1_dout_h1'])}",
        f"  ∂E_o2/∂out_h1 = ∂E_o2/∂net_o2 · ∂net_o2/∂out_h1 = δ_o2 · w7 = {_num(v['delta_o2'])} · {_num(w['w7'])}"
        f" = {_num(v['dE_o2_dout_h1'])}",
        f"  ∂E_total/∂out_h1 = ∂E_o1/∂out_h1 + ∂E_o2/∂out_h1 = {_num(v['dE_dout_h1'])}",
        f"  ∂out_h1/∂net_h1 = out_h1 (1 − out_h1) = {_num(v['dout_dnet_h1'])}",
        f"  ∂net_h1/∂w1 = i1 = {_num(v['i1'])}",
        f"  ∂E_total/∂w1 = {_num(v['dE_dout_h1'])} · {_num(v['dout_dnet_h1'])} · {_num(v['i1'])} = "
        f"{_num(step.grads['w1'])}",
        f"  w1⁺ = w1 − η · ∂E_total/∂w1 = {_num(w['w1'])} − {_num(ex.lr)} · {_num(step.grads['w1'])}"
        f" = {_num(step.updated['w1'])}",
        "",
        "Every weight",
    ]
    header = f"  {'weight':<6} {'value':>8} {'∂E/∂w (manual)':>19}"
    if reference is not None:
        header += f" {'∂E/∂w (jax.grad)':>19} {'|difference|':>12}"
    lines.append(header + f" {'updated':>13}")
    for n in WEIGHT_NAMES:
        row = f"  {n:<6} {w[n]:>8.6g} {step.grads[n]:>19.12f}"
        if reference is not None:
            row += f" {reference[n]:>19.12f} {abs(step.grads[n] - reference[n]):>12.1e}"
        lines.append(row + f" {step.updated[n]:>13.9f}")
    return "\n".join(lines)


def training_lines(run: WorkedRun) -> str:
    """The error falling over a :func:`worked_train` run: after 0, 1, 2, 5, 10, 20, 50, ... and all updates."""
    n, targets = len(run.errors) - 1, run.example.targets
    marks = sorted({0, n} | {m * 10**e for e in range(12) for m in (1, 2, 5) if m * 10**e < n})
    lines = [f"Training: {n} updates of w1..w8 (biases fixed)", f"  {'updates':>9}  {'E_total':>14}"]
    lines += [f"  {k:>9}  {run.errors[k]:>14.10g}" for k in marks]
    if n >= 1:
        lines.append(
            f"  E_total in forward pass {n} (before its update, after {n - 1} updates): {_num(run.errors[n - 1])}"
        )
    lines.append(
        f"  after {n}: out_o1 = {_num(run.outputs[0])} (target {_num(targets[0])}), "
        f"out_o2 = {_num(run.outputs[1])} (target {_num(targets[1])})"
    )
    return "\n".join(lines)


def worked_record(
    step: WorkedStep, reference: Mapping[str, float] | None = None, run: WorkedRun | None = None
) -> dict[str, Any]:
    """The walk-through as one JSON-ready dict: ``total_error``, ``grads``, ``updated`` (w1..w8 -> number),
    with ``reference`` also ``jax_grads`` and ``max_abs_diff``, with ``run`` also ``iterations``,
    ``total_error_after``, ``outputs_after`` ({o1, o2}) and ``weights_after``."""
    record: dict[str, Any] = {
        "total_error": step.trace.total_error,
        "grads": dict(step.grads),
        "updated": dict(step.updated),
    }
    if reference is not None:
        record["jax_grads"] = {n: float(reference[n]) for n in WEIGHT_NAMES}
        record["max_abs_diff"] = max(abs(step.grads[n] - reference[n]) for n in WEIGHT_NAMES)
    if run is not None:
        record["iterations"] = len(run.errors) - 1
        record["total_error_after"] = float(run.errors[-1])
        record["outputs_after"] = {"o1": run.outputs[0], "o2": run.outputs[1]}
        record["weights_after"] = dict(run.weights)
    return record


# --------------------------------------------------------------------------------------------------------
# 3. The library's MLP: batches, any depth, softmax output, any loss of mlpjax.core.losses, dropout.
# --------------------------------------------------------------------------------------------------------

# name -> (f(net), f'(net) given net and out), matching mlpjax.core.model.ACTIVATIONS and jax's derivatives
# (relu'(0) = 0; the step function has derivative 0 everywhere jax differentiates it).
ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array, Array], Array]]] = {
    "relu": (lambda net: np.maximum(net, 0.0), lambda net, out: (net > 0).astype(np.float64)),
    "sigmoid": (sigmoid, lambda net, out: out * (1.0 - out)),
    "step": (lambda net: (net > 0).astype(np.float64), lambda net, out: np.zeros_like(net)),
    "tanh": (np.tanh, lambda net, out: 1.0 - out**2),
}

_KERAS_EPSILON = 1e-7  # as mlpjax.core.losses: probabilities are clipped to [eps, 1 − eps] before logs


def softmax(logits: Array) -> Array:
    """Row-wise softmax of ``(batch, C)`` logits."""
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _mse(p: Array, t: Array) -> tuple[Array, Array]:
    return np.mean((p - t) ** 2, -1), 2.0 * (p - t) / p.shape[-1]


def _binary_crossentropy(p: Array, t: Array) -> tuple[Array, Array]:
    pc = np.clip(p, _KERAS_EPSILON, 1.0 - _KERAS_EPSILON)
    inside = (p > _KERAS_EPSILON) & (p < 1.0 - _KERAS_EPSILON)  # clip passes the gradient only inside
    loss = -np.mean(t * np.log(pc) + (1.0 - t) * np.log1p(-pc), -1)
    return loss, -(t / pc - (1.0 - t) / (1.0 - pc)) * inside / p.shape[-1]


def _hinge(p: Array, t: Array) -> tuple[Array, Array]:
    s = 2.0 * t - 1.0
    margin = 1.0 - s * p
    return np.mean(np.maximum(margin, 0.0), -1), np.where(margin > 0, -s, 0.0) / p.shape[-1]


def _huber_loss(p: Array, t: Array) -> tuple[Array, Array]:  # delta = 1
    err = p - t
    quadratic = np.minimum(np.abs(err), 1.0)
    loss = np.mean(0.5 * quadratic**2 + (np.abs(err) - quadratic), -1)
    return loss, np.clip(err, -1.0, 1.0) / p.shape[-1]


# Losses of the probabilities p = softmax(logits), name -> (per-example loss (B,), ∂loss/∂p (B, C)).
PROBABILITY_LOSSES: dict[str, Callable[[Array, Array], tuple[Array, Array]]] = {
    "mse": _mse,
    "binary_crossentropy": _binary_crossentropy,
    "hinge": _hinge,
    "huber_loss": _huber_loss,
}
LOSS_NAMES = ("categorical_crossentropy", *PROBABILITY_LOSSES)


def output_gradient(logits: Array, targets: Array, loss_name: str, weight: Array | None = None) -> tuple[float, Array]:
    """Mean loss over the batch and ``∂loss/∂logits`` ``(B, C)``, i.e. the output layer's δ.

    ``targets``: one-hot ``(B, C)``; ``weight``: ``(B,)`` or ``None``. The mean is that of
    :func:`mlpjax.core.losses.weighted_mean`: ``Σ_b weight_b loss_b / max(Σ_b weight_b, 1)``.
    Cross-entropy: ``∂/∂z = softmax(z) − t``. A loss ℓ of the probabilities goes through the softmax's
    Jacobian ``∂p_c/∂z_j = p_c (1[c = j] − p_j)``: ``∂ℓ/∂z_j = p_j (g_j − Σ_c g_c p_c)`` with ``g = ∂ℓ/∂p``.
    """
    check_name("loss", loss_name, LOSS_NAMES)
    logits = np.asarray(logits, np.float64)
    targets = np.asarray(targets, np.float64)
    p = softmax(logits)
    if loss_name == "categorical_crossentropy":
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        per_example, d_logits = -(targets * log_p).sum(-1), p - targets
    else:
        per_example, g = PROBABILITY_LOSSES[loss_name](p, targets)
        d_logits = p * (g - (g * p).sum(-1, keepdims=True))
    if weight is None:
        scale = np.full(len(logits), 1.0 / len(logits))
    else:
        weight = np.asarray(weight, np.float64)
        scale = weight / max(weight.sum(), 1.0)
    return float((per_example * scale).sum()), d_logits * scale[:, None]


@dataclasses.dataclass(frozen=True)
class MLPTrace:
    """What the backward pass of the MLP needs from the forward pass; lists are per hidden layer."""

    inputs: list[Array]  # input of every dense layer, hidden_0 .. output: (B, n_in)
    nets: list[Array]  # hidden nets (B, h)
    outs: list[Array]  # hidden activations f(net) before dropout (B, h)
    masks: list[Array] | None  # keep-masks (B, h) bool, or None for no dropout


DENSE_KINDS = {"hidden", "dropout", "output"}  # the kinds of layer (mlpjax.core.model.LAYER_KINDS) done by hand here


def _layer_names(model_config) -> list[str]:
    """The params' layers of ``model_config`` in order; a UserInputError if it has a kind not done by hand."""
    other = sorted({layer.kind for layer in model_config.layers()} - DENSE_KINDS)
    if other:
        raise UserInputError(
            f"the hand-written backward pass knows Dense layers and dropout only, not {', '.join(other)}"
        )
    return model_config.layer_names()


def mlp_forward(
    params: Mapping[str, Any], x: Any, *, model_config, masks: Sequence[Any] | None = None
) -> tuple[Array, MLPTrace]:
    """Logits ``(B, C)`` of :class:`mlpjax.core.model.MLP` for ``x`` ``(B, input_dim)``, in float64.

    ``model_config`` is a :class:`mlpjax.core.model.ModelConfig`. ``masks``: one ``(B, h)`` keep-mask per hidden layer
    (from :func:`mlpjax.core.model.dropout_masks`) for inverted dropout at rate ``model_config.dropout``, as
    ``model.apply(train=True)``; ``None`` for inference.
    """
    f, _ = ACTIVATIONS[check_name("activation", model_config.activation, ACTIVATIONS)]
    names = _layer_names(model_config)
    if masks is not None:
        masks = [np.asarray(m, bool) for m in masks]
        if len(masks) != len(model_config.hidden):
            raise UserInputError(
                f"need one dropout mask per hidden layer ({len(model_config.hidden)}), got {len(masks)}"
            )
    a = np.asarray(x, np.float64)
    inputs, nets, outs = [], [], []
    for i, name in enumerate(names[:-1]):
        inputs.append(a)
        nets.append(a @ np.asarray(params[name]["kernel"], np.float64) + np.asarray(params[name]["bias"], np.float64))
        outs.append(f(nets[-1]))
        a = outs[-1] if masks is None else np.where(masks[i], outs[-1] / (1.0 - model_config.dropout), 0.0)
    inputs.append(a)
    out = params["output"]
    logits = a @ np.asarray(out["kernel"], np.float64) + np.asarray(out["bias"], np.float64)
    return logits, MLPTrace(inputs=inputs, nets=nets, outs=outs, masks=masks)


def mlp_backward(
    params: Mapping[str, Any], trace: MLPTrace, d_logits: Array, *, model_config
) -> dict[str, dict[str, Array]]:
    """Gradients ``{layer: {"kernel", "bias"}}`` (the params layout) from ``δ_output = ∂loss/∂logits`` ``(B, C)``.

    Per dense layer with input ``a`` and δ = ``∂loss/∂net`` ``(B, n_out)``: ``∂kernel = aᵀ δ`` (summed over the
    batch), ``∂bias = Σ_b δ``, and the error of its input ``∂loss/∂a = δ kernelᵀ``. Through dropout
    ``∂loss/∂out = ∂loss/∂a · keep / (1 − rate)``; through the activation ``δ = ∂loss/∂out · f'(net)``.
    """
    _, df = ACTIVATIONS[check_name("activation", model_config.activation, ACTIVATIONS)]
    names = _layer_names(model_config)
    delta = np.asarray(d_logits, np.float64)
    grads: dict[str, dict[str, Array]] = {}
    for i in range(len(names) - 1, -1, -1):
        kernel = np.asarray(params[names[i]]["kernel"], np.float64)
        grads[names[i]] = {"kernel": trace.inputs[i].T @ delta, "bias": delta.sum(axis=0)}
        if i == 0:
            break
        d_a = delta @ kernel.T  # ∂loss/∂(input of layer i) = output of hidden layer i − 1
        h = i - 1
        d_out = d_a if trace.masks is None else np.where(trace.masks[h], d_a / (1.0 - model_config.dropout), 0.0)
        delta = d_out * df(trace.nets[h], trace.outs[h])
    return {name: grads[name] for name in names}


def loss_and_grads(
    params: Mapping[str, Any],
    batch: Mapping[str, Any],
    *,
    model_config,
    loss_name: str = "categorical_crossentropy",
    masks: Sequence[Any] | None = None,
) -> tuple[float, dict[str, dict[str, Array]]]:
    """The loss of :func:`mlpjax.core.losses.loss` and its gradient with respect to every kernel and bias, by hand.

    ``batch``: ``image`` ``(B, input_dim)``, ``label`` ``(B,)`` int, optional ``weight`` ``(B,)``.
    ``masks`` as :func:`mlp_forward`: pass ``mlpjax.core.model.dropout_masks(rng, model_config, B)`` to get the
    gradient of ``losses.loss(..., rng, train=True)``; ``None`` for ``train=False`` (or dropout 0).
    """
    logits, trace = mlp_forward(params, batch["image"], model_config=model_config, masks=masks)
    labels = np.asarray(batch["label"])
    targets = np.eye(model_config.num_classes)[labels]
    value, d_logits = output_gradient(logits, targets, loss_name, batch.get("weight"))
    return value, mlp_backward(params, trace, d_logits, model_config=model_config)
