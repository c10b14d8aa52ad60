"""Checking the hand-written gradients of :mod:`mlpjax.teaching.backprop` against ``jax.grad``, in float64.

:func:`compare_grads` compares two gradient pytrees (nested dicts of arrays) and names the worst parameter;
:func:`article_error` is the worked example's network as a tiny pure jax function, for ``jax.grad``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax.teaching import backprop


def x64() -> contextlib.AbstractContextManager:
    """Context manager: float64 in jax inside the block only (``jax_enable_x64``), restored on exit.

    Note that the random bits behind :func:`mlpjax.core.model.dropout_masks` depend on this mode (bernoulli draws
    uniforms of the default float type): draw masks inside the same block as the loss they are compared with.
    """
    return jax.enable_x64(True)  # jax >= 0.7 (pyproject.toml asks for 0.10.2)


def flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested mappings of arrays -> ``{"hidden_0/kernel": array, ...}`` (float64 numpy arrays)."""
    if isinstance(tree, Mapping):
        flat: dict[str, np.ndarray] = {}
        for key in sorted(tree):
            flat.update(flatten(tree[key], f"{prefix}/{key}" if prefix else str(key)))
        return flat
    return {prefix: np.asarray(tree, np.float64)}


@dataclasses.dataclass(frozen=True)
class GradCheck:
    """Result of :func:`compare_grads`. ``worst`` is the parameter furthest outside the tolerance
    (or with a missing/misshapen gradient), ``ratio`` its ``|manual − reference| / (atol + rtol |reference|)``."""

    ok: bool
    worst: str
    ratio: float
    max_abs_diff: float  # over every parameter
    abs_diffs: dict[str, float]  # max |manual − reference| per parameter (inf where shapes disagree)
    problems: tuple[str, ...]  # missing, extra and misshapen parameters

    def message(self) -> str:
        status = "gradients agree" if self.ok else "gradients differ"
        lines = [
            f"{status}: worst parameter {self.worst!r} (|diff| {self.abs_diffs.get(self.worst, math.inf):.3g}, "
            f"{self.ratio:.3g} x tolerance); max |diff| over all {self.max_abs_diff:.3g}"
        ]
        return "\n".join(lines + list(self.problems))


def compare_grads(manual: Any, reference: Any, *, rtol: float = 1e-9, atol: float = 1e-12) -> GradCheck:
    """Compare gradient pytrees parameter by parameter: ok where ``|manual − reference| <= atol + rtol |reference|``
    everywhere and both trees have the same parameters with the same shapes."""
    a, b = flatten(manual), flatten(reference)
    problems = [f"{p}: missing from the manual gradient" for p in b if p not in a]
    problems += [f"{p}: not a parameter of the reference" for p in a if p not in b]
    diffs: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for p in a.keys() & b.keys():
        if a[p].shape != b[p].shape:
            problems.append(f"{p}: shape {a[p].shape} but the reference has {b[p].shape}")
            diffs[p] = ratios[p] = math.inf
            continue
        diff = np.abs(a[p] - b[p])
        diffs[p] = float(diff.max(initial=0.0))
        ratios[p] = float((diff / (atol + rtol * np.abs(b[p]))).max(initial=0.0))
        if not np.all(np.isfinite(a[p])):
            problems.append(f"{p}: the manual gradient is not finite")
            ratios[p] = math.inf
    for p in a.keys() ^ b.keys():
        ratios[p] = math.inf
    worst = max(ratios, key=lambda p: (ratios[p], p)) if ratios else ""
    ok = not problems and all(r <= 1.0 for r in ratios.values())
    return GradCheck(
        ok=ok,
        worst=worst,
        ratio=ratios.get(worst, 0.0),
        max_abs_diff=max(diffs.values(), default=0.0),
        abs_diffs=diffs,
        problems=tuple(problems),
    )


def assert_grads_close(manual: Any, reference: Any, *, rtol: float = 1e-9, atol: float = 1e-12) -> GradCheck:
    """:func:`compare_grads`, raising ``AssertionError`` that names the worst parameter when they differ."""
    check = compare_grads(manual, reference, rtol=rtol, atol=atol)
    if not check.ok:
        raise AssertionError(check.message())
    return check


def article_error(weights: Mapping[str, jax.Array], example: backprop.WorkedExample) -> jax.Array:
    """E_total of the worked example written neuron by neuron in jax: sigmoid everywhere, shared biases,
    ``E = ½ Σ (target − out)²``. ``weights``: ``{"w1": scalar, ..., "w8": scalar}``."""
    w = weights
    (i1, i2), (t1, t2), (b1, b2) = example.inputs, example.targets, example.biases
    out_h1 = jax.nn.sigmoid(w["w1"] * i1 + w["w2"] * i2 + b1)
    out_h2 = jax.nn.sigmoid(w["w3"] * i1 + w["w4"] * i2 + b1)
    out_o1 = jax.nn.sigmoid(w["w5"] * out_h1 + w["w6"] * out_h2 + b2)
    out_o2 = jax.nn.sigmoid(w["w7"] * out_h1 + w["w8"] * out_h2 + b2)
    return 0.5 * (t1 - out_o1) ** 2 + 0.5 * (t2 - out_o2) ** 2


def article_jax_grads(example: backprop.WorkedExample = backprop.ARTICLE) -> dict[str, float]:
    """``jax.grad`` of :func:`article_error` at the example's weights, in float64: ``{w1..w8: float}``."""
    with x64():
        weights = {n: jnp.asarray(v, jnp.float64) for n, v in example.weight_dict().items()}
        grads = jax.grad(article_error)(weights, example)
        return {n: float(grads[n]) for n in backprop.WEIGHT_NAMES}
