"""The tutorial's small worked examples, each computed here and printed in the tutorial's order.

:func:`compute` returns every number as one JSON-ready dict (lists and floats, section by section);
:func:`render` turns that dict into the text of ``mlpjax basics``. Each section is a small pure function.
Randomness is explicit: the linear-collapse weights and the dropout masks come from ``jax.random.PRNGKey``
of a given seed; nothing else is random. The MNIST shapes are read from the IDX headers only (a few bytes).
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import data
from mlpjax.core import losses, model
from mlpjax.errors import UserInputError
from mlpjax.teaching import backprop, gradcheck

# What the tutorial prints or says, to set beside what is computed.
TUTORIAL: dict[str, Any] = {
    "hidden": (1.0, -2.0, 3.0, -4.0, 7.0),
    "step": (1, 0, 1, 0, 1),
    "relu": (1, 0, 3, 0, 7),
    "prediction": (0.90, 0.05, 0.03, 0.02),
    "truth": (1.0, 0.0, 0.0, 0.0),
    "cross_entropy": 0.046,
    "steps_per_epoch": 128,
    "total_steps": 128 * 10,
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
}

# The δ method's network (the tutorial's figures): 2 inputs -> neurons 1, 2, 3 -> 4, 5 -> 6, sigmoid, no biases.
# Kernels are (n_in, n_out): FIGURE_KERNELS[1][0, 1] is w15, from neuron 1 to neuron 5. Values chosen, not the
# tutorial's (its figures give none): small, of both signs, all different, so that no two gradients coincide.
FIGURE_KERNELS = (
    ((0.1, 0.3, -0.5), (0.2, 0.4, 0.6)),  # w(x1)1 w(x1)2 w(x1)3 / w(x2)1 w(x2)2 w(x2)3
    ((0.7, -0.1), (-0.8, 0.2), (0.9, 0.3)),  # w14 w15 / w24 w25 / w34 w35
    ((0.5,), (-0.4,)),  # w46 / w56
)
FIGURE_X, FIGURE_TARGET, FIGURE_LR = (1.0, 0.5), (0.9,), 0.5


def _floats(a) -> list:
    return np.asarray(a, np.float64).tolist()


def activations(hidden=TUTORIAL["hidden"]) -> dict:
    """``hidden`` ``(n,)`` through the step function, ReLU and sigmoid of :data:`mlpjax.core.model.ACTIVATIONS`."""
    h = jnp.asarray(hidden, jnp.float32)
    return {"hidden": _floats(h), **{n: _floats(model.ACTIVATIONS[n](h)) for n in ("step", "relu", "sigmoid")}}


def linear_collapse(seed: int = 0, sizes: tuple[int, int, int] = (3, 4, 2), batch: int = 4) -> dict:
    """Two linear layers ``y = W2 (W1 x + b1) + b2`` against one, ``W = W2 W1``, ``b = W2 b1 + b2``, in float32.

    ``sizes``: (inputs, hidden, outputs). Consumes ``PRNGKey(seed)``, split five ways into standard-normal
    ``W1`` (hidden, inputs), ``b1``, ``W2`` (outputs, hidden), ``b2`` and ``x`` (batch, inputs). Also the same
    stack with ReLU between, and ``g(a) + g(b) − g(a + b) − g(0)`` for the first two inputs, zero for any affine g.
    """
    n_in, n_h, n_out = sizes
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    w1, b1 = jax.random.normal(k[0], (n_h, n_in)), jax.random.normal(k[1], (n_h,))
    w2, b2 = jax.random.normal(k[2], (n_out, n_h)), jax.random.normal(k[3], (n_out,))
    x = jax.random.normal(k[4], (batch, n_in))
    w, b = w2 @ w1, w2 @ b1 + b2
    stacked = lambda v: (v @ w1.T + b1) @ w2.T + b2
    relu = lambda v: model.ACTIVATIONS["relu"](v @ w1.T + b1) @ w2.T + b2
    affine_gap = lambda g: float(jnp.abs(g(x[0]) + g(x[1]) - g(x[0] + x[1]) - g(jnp.zeros(n_in))).max())
    return {
        "seed": seed,
        "W1": _floats(w1),
        "b1": _floats(b1),
        "W2": _floats(w2),
        "b2": _floats(b2),
        "W": _floats(w),
        "b": _floats(b),
        "x": _floats(x),
        "two_layers": _floats(stacked(x)),
        "one_layer": _floats(x @ w.T + b),
        "max_abs_diff": float(jnp.abs(stacked(x) - (x @ w.T + b)).max()),
        "relu_two_layers": _floats(relu(x)),
        "relu_max_abs_diff": float(jnp.abs(relu(x) - (x @ w.T + b)).max()),
        "affine_gap": affine_gap(stacked),
        "relu_affine_gap": affine_gap(relu),
    }


def _probabilities(probabilities, truth) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(probabilities, np.float64), np.asarray(truth, np.float64)
    if p.shape != t.shape or p.ndim != 1 or np.any(p <= 0) or abs(p.sum() - 1) > 1e-9:
        raise UserInputError(f"probabilities {p.tolist()} must be positive, sum to 1 and match truth {t.tolist()}")
    return p, t


def softmax_example(probabilities=TUTORIAL["prediction"], truth=TUTORIAL["truth"]) -> dict:
    """Scores ``ln p − ln min p`` (logits whose softmax is ``p``, the smallest 0) and their softmax in float32."""
    p, t = _probabilities(probabilities, truth)
    scores = np.log(p) - np.log(p.min())
    probs = jax.nn.softmax(jnp.asarray(scores, jnp.float32))
    return {
        "scores": _floats(scores),
        "exp": _floats(np.exp(scores)),
        "probabilities": _floats(probs),
        "tutorial": _floats(p),
        "truth": _floats(t),
        "predicted_class": int(jnp.argmax(probs)),
        "true_class": int(np.argmax(t)),
    }


def cross_entropy_example(probabilities=TUTORIAL["prediction"], truth=TUTORIAL["truth"]) -> dict:
    """``−Σ t ln p``: :func:`mlpjax.core.losses.categorical_crossentropy` of the scores of :func:`softmax_example`
    (float32), the same in float64 (``natural_log``), and ``−Σ t log10 p`` (``log10``, the tutorial's figure)."""
    p, t = _probabilities(probabilities, truth)
    logits = jnp.asarray(softmax_example(p, t)["scores"], jnp.float32)[None]
    loss = losses.categorical_crossentropy(logits, jnp.asarray(t, jnp.float32)[None])[0]
    return {
        "p_true": float((p * t).sum()),
        "loss": float(loss),
        "natural_log": float(-(t * np.log(p)).sum()),
        "log10": float(-(t * np.log10(p)).sum()),
        "tutorial": TUTORIAL["cross_entropy"],
    }


def dropout_example(x=TUTORIAL["relu"], rate: float = 0.2, seed: int = 0, draws: int = 10_000) -> dict:
    """Inverted dropout of one layer output ``x`` ``(n,)`` at ``rate`` in training; unchanged at test time.

    The mask is ``model.dropout_masks(PRNGKey(seed), ...)`` for a batch of one; the mean over ``draws`` masks
    from ``PRNGKey(seed + 1)`` shows why kept units are scaled by ``1 / (1 − rate)``: on average, ``x``.
    """
    if not 0.0 <= rate < 1.0:
        raise UserInputError(f"dropout rate must be in [0, 1), got {rate}")
    x = jnp.asarray(x, jnp.float32)
    config = model.ModelConfig(input_dim=x.shape[0], hidden=(x.shape[0],), dropout=rate)
    keep = model.dropout_masks(jax.random.PRNGKey(seed), config, 1)[0][0]
    many = model.dropout_masks(jax.random.PRNGKey(seed + 1), config, draws)[0]
    return {
        "rate": rate,
        "seed": seed,
        "x": _floats(x),
        "keep": np.asarray(keep).tolist(),
        "scale": 1.0 / (1.0 - rate),
        "train": _floats(model.apply_dropout(x, keep, rate)),
        "test": _floats(x),
        "draws": draws,
        "mean_train": _floats(model.apply_dropout(x[None], many, rate).mean(axis=0)),
    }


def one_hot_example(label: int = 5, num_classes: int = 10) -> dict:
    """``keras.utils.to_categorical(label, num_classes)`` as :func:`mlpjax.core.model.one_hot`."""
    if not 0 <= label < num_classes:
        raise UserInputError(f"label {label} is outside 0..{num_classes - 1}")
    return {
        "label": label,
        "num_classes": num_classes,
        "one_hot": _floats(model.one_hot(jnp.asarray([label]), num_classes)[0]),
    }


def steps_example(examples: int = 60_000, batch_size: int = 128, epochs: int = 10) -> dict:
    """Optimizer steps: ``ceil(examples / batch_size)`` per epoch (the last batch partial, as Keras and mlpjax)."""
    if min(examples, batch_size, epochs) < 1:
        raise UserInputError(f"examples, batch_size and epochs must be positive: {examples}, {batch_size}, {epochs}")
    steps = math.ceil(examples / batch_size)
    return {
        "examples": examples,
        "batch_size": batch_size,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "last_batch": examples - (steps - 1) * batch_size,
        "total_steps": steps * epochs,
        "tutorial_steps_per_epoch": TUTORIAL["steps_per_epoch"],
        "tutorial_total_steps": TUTORIAL["total_steps"],
    }


def idx_shape(path: str | os.PathLike) -> list[int]:
    """The shape an IDX file (``.gz`` or raw) declares, from its header alone (:func:`mlpjax.data.read_idx_header`)."""
    return list(data.read_idx_header(path)[1])


def mnist_shapes(data_dir: str | os.PathLike | None = None) -> dict:
    """The four arrays' shapes from the IDX headers in ``data_dir`` (else ``$MLPJAX_DATA_DIR``; else not read)."""
    folder = data_dir or os.environ.get(data.DATA_DIR_ENV) or None
    record: dict[str, Any] = {
        "read": folder is not None,
        "source": None,
        "tutorial": {"x_train": list(TUTORIAL["x_train"]), "y_train": list(TUTORIAL["y_train"])},
    }
    if folder is not None:
        found = data.idx_files(folder, "mnist")
        record["source"] = str(found["x_train"].parent)
        record.update({key: idx_shape(path) for key, path in found.items()})
    return record


def figure_error(kernels, x, target):
    """jax: ``E = ½ Σ (target − y)²`` of a bias-free sigmoid network with ``(n_in, n_out)`` ``kernels``."""
    a = x
    for k in kernels:
        a = jax.nn.sigmoid(a @ k)
    return 0.5 * jnp.sum((target - a) ** 2)


def _weight_slots(kernels) -> list[tuple[str, int, int, int]]:
    """``(figure name, layer, i, j)`` of every weight, in :func:`mlpjax.teaching.backprop.figure_names`' order."""
    slots, first, labels = [], 1, [f"(x{m + 1})" for m in range(len(kernels[0]))]
    for l, k in enumerate(kernels):
        numbers = list(range(first, first + len(k[0])))
        slots += [(f"w{src}{n}", l, i, j) for j, n in enumerate(numbers) for i, src in enumerate(labels)]
        labels, first = [str(n) for n in numbers], first + len(numbers)
    return slots


def delta_method(kernels=FIGURE_KERNELS, x=FIGURE_X, target=FIGURE_TARGET, lr: float = FIGURE_LR) -> dict:
    """One step of the δ method (:func:`mlpjax.teaching.backprop.delta_backprop`) for a bias-free sigmoid network with
    one output (``kernels`` ``[(n_0, n_1), ..., (n_{L-1}, 1)]``, ``x`` ``(n_0,)``, ``target`` ``(1,)``), named as the
    figures and checked against ``jax.grad`` of :func:`figure_error` in float64; also the figures' literal rule
    (δ = z − y passed back as ``w·δ``, without the derivative of the neuron it came through; ``w⁺ = w + η δ f'(e) y``).
    Consumes no randomness."""
    kernels = [np.asarray(k, np.float64) for k in kernels]
    if np.shape(target) != (1,):
        raise UserInputError(f"the δ method's network has one output neuron: target must be one number, got {target}")
    trace = backprop.delta_backprop(kernels, x, target)
    names, slots = backprop.figure_names(trace), _weight_slots(kernels)
    with gradcheck.x64():
        jk = jax.grad(figure_error)(
            [jnp.asarray(k) for k in kernels], jnp.asarray(x, jnp.float64), jnp.asarray(target, jnp.float64)
        )
        jk = [np.asarray(k, np.float64) for k in jk]
    fig: list[Any] = [None] * len(kernels)  # the figures' δ of every layer, from the output back
    fig[-1] = np.asarray(target, np.float64) - trace.outs[-1]
    for l in range(len(kernels) - 2, -1, -1):
        fig[l] = kernels[l + 1] @ fig[l + 1]
    neurons = np.concatenate(trace.outs[1:])
    check = gradcheck.compare_grads({n: names[n] for n, *_ in slots}, {n: jk[l][i, j] for n, l, i, j in slots})
    return {
        "x": _floats(x),
        "target": _floats(target),
        "lr": lr,
        "layers": [len(k[0]) for k in kernels],
        "weights": {n: float(kernels[l][i, j]) for n, l, i, j in slots},
        "e": _floats(np.concatenate(trace.nets)),
        "y": _floats(neurons),
        "error": trace.total_error,
        "deltas": {n: v for n, v in names.items() if n.startswith("δ")},
        "figure_deltas": _floats(np.concatenate(fig)),
        "grads": {n: names[n] for n, *_ in slots},
        "jax_grads": {n: float(jk[l][i, j]) for n, l, i, j in slots},
        "max_abs_diff": check.max_abs_diff,
        "agrees": check.ok,
        "updated": {n: float(kernels[l][i, j] - lr * names[n]) for n, l, i, j in slots},
        "figure_updated": {
            n: float(
                kernels[l][i, j] + lr * fig[l][j] * trace.outs[l + 1][j] * (1 - trace.outs[l + 1][j]) * trace.outs[l][i]
            )
            for n, l, i, j in slots
        },
    }


def compute(data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every example, in the tutorial's order, as one JSON-ready dict. ``data_dir``: see :func:`mnist_shapes`."""
    return {
        "activations": activations(),
        "linear_collapse": linear_collapse(),
        "softmax": softmax_example(),
        "cross_entropy": cross_entropy_example(),
        "dropout": dropout_example(),
        "one_hot": one_hot_example(),
        "steps": steps_example(),
        "shapes": mnist_shapes(data_dir),
        "delta_method": delta_method(),
    }


def _n(x: float, digits: int = 6) -> str:
    return f"{x:.{digits}g}"


def _p(x: float, digits: int = 6) -> str:
    """A factor of a product: negatives in parentheses."""
    return f"({x:.{digits}g})" if x < 0 else f"{x:.{digits}g}"


def _v(values, digits: int = 6) -> str:
    return "(" + ", ".join(_n(x, digits) for x in values) + ")"


def _m(rows, digits: int = 4) -> str:
    return "[" + ", ".join(_v(r, digits) for r in rows) + "]"


def _render_delta(d: dict) -> list[str]:
    numbers = [list(map(int, n)) for n in np.split(np.arange(1, len(d["y"]) + 1), np.cumsum(d["layers"])[:-1])]
    sources = [[f"x{m}" for m in range(1, len(d["x"]) + 1)]] + [[f"y{n}" for n in layer] for layer in numbers[:-1]]
    value = {f"x{m}": v for m, v in enumerate(d["x"], 1)} | {f"y{n}": v for n, v in enumerate(d["y"], 1)}
    wname = lambda src, n: f"w({src}){n}" if src[0] == "x" else f"w{src[1:]}{n}"
    w, z, out, y = d["weights"], d["target"][0], len(d["y"]), d["y"][-1]
    lines = [
        f"9. The δ method (the tutorial's figures): inputs {', '.join(sources[0])} -> neurons "
        + " -> ".join(", ".join(map(str, layer)) for layer in numbers)
        + "; y = f(e) = sigmoid(e) in every "
        f"neuron, no biases; E = ½(z − y{out})²; δn = ∂E/∂en; w⁺ = w − η·∂E/∂w",
        "  in: " + ", ".join(f"{k} = {_n(value[k])}" for k in sources[0]) + f", z = {_n(z)}, η = {_n(d['lr'])}",
    ]
    lines += [
        "    " + ", ".join(f"{wname(s, n)} = {_n(w[wname(s, n)])}" for n in layer for s in srcs)
        for layer, srcs in zip(numbers, sources, strict=True)
    ]
    lines.append("  forward:")
    for layer, srcs in zip(numbers, sources, strict=True):
        lines += [
            f"    e{n} = "
            + " + ".join(f"{wname(s, n)}·{s}" for s in srcs)
            + " = "
            + " + ".join(f"{_p(w[wname(s, n)])}·{_p(value[s])}" for s in srcs)
            + f" = {_n(d['e'][n - 1], 9)};  y{n} = f(e{n}) = {_n(d['y'][n - 1], 9)}"
            for n in layer
        ]
    lines += [
        f"    E = ½(z − y{out})² = ½({_n(z)} − {_n(y, 9)})² = {_n(d['error'], 9)}",
        "  backward:",
        f"    δ{out} = −(z − y{out})·y{out}(1 − y{out}) = −({_n(z)} − {_n(y, 9)})·{_n(y * (1 - y), 9)}"
        f" = {_n(d['deltas'][f'δ{out}'], 9)}",
    ]
    for layer, nxt in reversed(list(zip(numbers, numbers[1:], strict=False))):
        lines += [
            f"    δ{n} = ("
            + " + ".join(f"w{n}{k}·δ{k}" for k in nxt)
            + f")·y{n}(1 − y{n}) = ("
            + " + ".join(f"{_p(w[f'w{n}{k}'])}·{_p(d['deltas'][f'δ{k}'], 9)}" for k in nxt)
            + f")·{_n(value[f'y{n}'] * (1 - value[f'y{n}']), 9)} = {_n(d['deltas'][f'δ{n}'], 9)}"
            for n in layer
        ]
    lines += [
        "  every weight: ∂E/∂w = δ of the neuron it feeds · its input, against jax.grad (float64):",
        f"    {'weight':<7}{'w':>6}{'∂E/∂w (δ method)':>20}{'jax.grad':>20}{'|diff|':>9}{'w⁺ = w − η∂E/∂w':>18}"
        f"{'figures w⁺':>14}",
    ]
    lines += [
        f"    {n:<7}{w[n]:>6.2f}{g:>20.12f}{d['jax_grads'][n]:>20.12f}{abs(g - d['jax_grads'][n]):>9.1e}"
        f"{d['updated'][n]:>18.12f}{d['figure_updated'][n]:>14.9f}"
        for n, g in d["grads"].items()
    ]
    last = [f"w{n}{out}" for n in numbers[-2]] if len(numbers) > 1 else []
    return lines + [
        f"  δ method and jax.grad {'agree' if d['agrees'] else 'DIFFER'}: max |diff| {d['max_abs_diff']:.1e}",
        f"  the figures' δ (δ{out} = z − y{out}, then δn = Σ_k wnk·δk): "
        + ", ".join(f"δ{n} = {_n(v)}" for n, v in enumerate(d["figure_deltas"], 1))
        + ";",
        f"  their update w⁺ = w + η·δ·f'(e)·input is gradient descent for {' and '.join(last) or 'every weight'},"
        " but they pass δ back",
        "  without the derivative f'(e) of the neuron it comes through, so the other weights' updates (last column)",
        "  are not the gradient's.",
    ]


def render(record: dict[str, Any]) -> str:
    """The text of ``mlpjax basics`` from a :func:`compute` record."""
    a, lc, s, ce = record["activations"], record["linear_collapse"], record["softmax"], record["cross_entropy"]
    do, oh, st, sh = record["dropout"], record["one_hot"], record["steps"], record["shapes"]
    same = lambda mine, theirs: "as the tutorial" if list(mine) == list(theirs) else f"tutorial: {_v(theirs)}"
    n_h, n_in = len(lc["W1"]), len(lc["W1"][0])
    lines = [
        "1. Activations: a hidden layer's values through f (mlpjax.core.model.ACTIVATIONS)",
        f"  in: hidden = {_v(a['hidden'])}",
        f"  step(x) = 1 if x > 0 else 0:  {_v(a['step'])}  ({same(a['step'], TUTORIAL['step'])})",
        f"  relu(x) = max(0, x):          {_v(a['relu'])}  ({same(a['relu'], TUTORIAL['relu'])})",
        f"  sigmoid(x) = 1 / (1 + e^−x):  {_v(a['sigmoid'])}  (the tutorial gives none)",
        "",
        "2. Linear collapse: y = W2 (W1 x + b1) + b2 = (W2·W1) x + (W2·b1 + b2) = W x + b, one linear layer",
        f"  in (standard normal, float32, from jax.random.PRNGKey({lc['seed']})):",
        f"    W1 ({n_h}×{n_in}) = {_m(lc['W1'])}, b1 = {_v(lc['b1'], 4)}",
        f"    W2 ({len(lc['W2'])}×{n_h}) = {_m(lc['W2'])}, b2 = {_v(lc['b2'], 4)}",
        f"  out: W = W2·W1 = {_m(lc['W'])}, b = W2·b1 + b2 = {_v(lc['b'], 4)}",
        f"  x = {_v(lc['x'][0], 4)}: two layers {_v(lc['two_layers'][0])}, W x + b {_v(lc['one_layer'][0])}",
        f"  max |two layers − (W x + b)| over {len(lc['x'])} inputs: {lc['max_abs_diff']:.1e}, "
        f"{lc['max_abs_diff'] / np.abs(lc['two_layers']).max():.1e} of the largest output (float32 rounding)",
        f"  with ReLU between, W2 relu(W1 x + b1) + b2: {_v(lc['relu_two_layers'][0])}; "
        f"max |difference from W x + b| {_n(lc['relu_max_abs_diff'], 4)}",
        f"  g(a) + g(b) − g(a + b) − g(0), zero for every linear (affine) g, on two inputs: "
        f"{lc['affine_gap']:.1e} without ReLU, {_n(lc['relu_affine_gap'], 4)} with it: no W, b can match",
        "",
        "3. Softmax: scores z -> probabilities p_i = e^z_i / Σ_j e^z_j",
        f"  in: z = {_v(s['scores'])} (ln p − ln min p: the scores behind the tutorial's example output)",
        f"  e^z = {_v(s['exp'])}, Σ = {_n(sum(s['exp']))}",
        f"  out: p = {_v(s['probabilities'])}, Σ = {_n(sum(s['probabilities']))} "
        f"({'as' if np.allclose(s['probabilities'], s['tutorial'], atol=1e-6) else 'not'} the tutorial's "
        f"{_v(s['tutorial'])})",
        f"  truth (one-hot) {_v(s['truth'])}: predicted class {s['predicted_class']}, true class {s['true_class']}",
        "",
        "4. Cross-entropy: loss = −Σ_i t_i ln p_i = −ln p_true",
        f"  in: p_true = {_n(ce['p_true'])}",
        f"  out: −ln {_n(ce['p_true'])} = {_n(ce['natural_log'], 9)} (mlpjax.core.losses.categorical_crossentropy of "
        f"the scores: {_n(ce['loss'], 7)})",
        f"  tutorial: −log 0.9 = {_n(ce['tutorial'])}, which is −log10 {_n(ce['p_true'])} = {_n(ce['log10'], 6)}: "
        f"Keras' loss uses the natural log, ln 10 = {_n(ce['natural_log'] / ce['log10'], 4)} times larger, so "
        f"{_n(ce['natural_log'], 3)}",
        "",
        f"5. Dropout, rate {_n(do['rate'])}: in training each unit is kept with probability {_n(1 - do['rate'])} "
        f"and scaled by 1/(1 − rate) = {_n(do['scale'])}; at test time the layer's output passes unchanged",
        f"  in: layer output {_v(do['x'])}; keep mask (jax.random.PRNGKey({do['seed']}), "
        f"model.dropout_masks) {_v(int(k) for k in do['keep'])}",
        f"  out: training {_v(do['train'])}, test {_v(do['test'])}",
        f"  mean over {do['draws']} training masks (PRNGKey({do['seed'] + 1})): {_v(do['mean_train'], 3)}, "
        "about the test output: that is what the scaling is for",
        "",
        "6. to_categorical (mlpjax.core.model.one_hot): a label -> a one-hot vector",
        f"  in: label {oh['label']}, {oh['num_classes']} classes; out: {_v(oh['one_hot'])}",
        "",
        "7. Steps per epoch = ⌈examples / batch_size⌉ (the last batch partial, as in Keras and mlpjax)",
        f"  in: {st['examples']} examples, batch_size {st['batch_size']}, {st['epochs']} epochs",
        f"  out: ⌈{st['examples']}/{st['batch_size']}⌉ = ⌈{_n(st['examples'] / st['batch_size'])}⌉ = "
        f"{st['steps_per_epoch']} steps per epoch ({st['steps_per_epoch'] - 1} full batches and a last one of "
        f"{st['last_batch']}), {st['total_steps']} for {st['epochs']} epochs",
        f"  tutorial: {st['tutorial_steps_per_epoch']} steps per epoch, {st['tutorial_total_steps']} for 10 epochs: "
        "batch_size is the number of examples in a step, not the number of parts an epoch is split into",
        "",
    ]
    tut = f"x_train {tuple(sh['tutorial']['x_train'])}, y_train {tuple(sh['tutorial']['y_train'])}"
    if sh["read"]:
        lines += [
            f"8. Shapes after loading MNIST (IDX headers in {sh['source']})",
            "  "
            + ", ".join(f"{k} {tuple(sh[k])}" for k in data.IDX_FILES)
            + "  ("
            + ("as the tutorial" if all(sh[k] == v for k, v in sh["tutorial"].items()) else f"tutorial: {tut}")
            + ")",
        ]
    else:
        lines += ["8. Shapes after loading MNIST", f"  not read (no MNIST folder given); the tutorial's: {tut}"]
    return "\n".join(lines + [""] + _render_delta(record["delta_method"]))
