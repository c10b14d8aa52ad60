"""One ulp in one weight against a vmapped sweep: how far float noise carries a training run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from mlpjax import plots
from mlpjax.core import summary
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import TrainState, create_train_state
from mlpjax.experiments import common
from mlpjax.training import train
from mlpjax.training.result import History, empty_history

QUESTION = (
    "How far apart do two runs drift when one weight differs by one ulp, and is a vmapped sweep's drift "
    "from single runs any larger?"
)
ORDER = 90  # beyond the tutorial: what 'the same numbers' can mean for many models at once
FULL_EPOCHS, FULL_SEEDS = 5, 4
QUICK_SEEDS = 2
SEEDS = max(FULL_SEEDS, QUICK_SEEDS)  # the seeds from --seed on that it trains (checked before it starts)
TOLERANCE = 1e-5  # the relative difference a sweep's models are asked to stay within of single runs
KEYS = ("loss", "val_loss")


def nudged_state(config: TrainConfig, dataset) -> tuple[TrainState, tuple[int, ...]]:
    """``mlpjax train``'s initial state for ``config`` with one first-layer weight moved up by one ulp, and that
    weight's ``(input, unit)``: the one of largest initial gradient on the first :data:`common.GRAD_BATCH`
    training examples (so that it matters). Consumes ``PRNGKey(config.seed)`` as ``fit`` does."""
    model_config = config.model_config(dataset.input_dim, dataset.num_classes)
    state = create_train_state(jax.random.PRNGKey(config.seed), config, model_config)
    grads = common.loss_gradients(state.params, config, dataset)
    first = model_config.layer_names()[0]
    kernel = np.array(state.params[first]["kernel"])
    where = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(grads[first]["kernel"])), kernel.shape))
    kernel[where] = np.nextafter(kernel[where], np.float32(np.inf))
    params = {**state.params, first: {**state.params[first], "kernel": jax.numpy.asarray(kernel)}}
    return state.replace(params=params), where


def relative_drift(reference: Sequence[History], other: Sequence[History], key: str) -> list[float]:
    """Per epoch, the largest ``|other - reference| / |reference|`` of ``key`` over the runs."""
    ref = np.array([h[key] for h in reference], dtype=float)
    return (np.abs(np.array([h[key] for h in other], dtype=float) - ref) / np.abs(ref)).max(axis=0).tolist()


def first_above(drift: Sequence[float], tolerance: float = TOLERANCE) -> int | None:
    """The 1-based epoch at which ``drift`` first exceeds ``tolerance`` (None: never)."""
    return next((e + 1 for e, d in enumerate(drift) if d > tolerance), None)


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: seeds ``seed, seed + 1, ...``, each trained three ways from ``PRNGKey(seed)``: one by one
    (``--strategy sequential``: the numbers of ``mlpjax train``, bit for bit), all seeds as one vmapped program
    (``--strategy vmap``), and one by one again from the same initial weights but one weight nudged by one ulp
    (:func:`nudged_state`). The same shuffles and dropout masks in all three."""
    from mlpjax import sweep

    ds = common.load_data(source, quick)
    epochs = common.epochs_for(quick, FULL_EPOCHS)
    seeds = list(range(seed, seed + (QUICK_SEEDS if quick else FULL_SEEDS)))
    configs = [TrainConfig(dataset=ds.name, epochs=epochs, seed=s) for s in seeds]
    log(f"  {len(seeds)} seeds, one by one")  # (no epoch lines: the three ways' would repeat one another)
    single = sweep.run_sweep(configs, ds, strategy="sequential")
    log(f"  {len(seeds)} seeds as one vmapped program")
    vmapped = sweep.run_sweep(configs, ds, strategy="vmap")
    log(f"  {len(seeds)} seeds, one weight nudged by one ulp")
    starts = [nudged_state(c, ds) for c in configs]
    nudged = [
        train.fit(c, ds, resume_from=train.Resumed(state, empty_history()))
        for c, (state, _) in zip(configs, starts, strict=True)
    ]
    reference = [r.history for r in single.runs]
    ways = {"vmap": [r.history for r in vmapped.runs], "one ulp": [r.history for r in nudged]}
    drift = {way: {key: relative_drift(reference, histories, key) for key in KEYS} for way, histories in ways.items()}
    final = {
        "vmap": [r.test_metrics["accuracy"] for r in vmapped.runs],
        "one ulp": [r.test_metrics["accuracy"] for r in nudged],
    }
    accuracy = [r.test_metrics["accuracy"] for r in single.runs]
    accuracy_gap = {way: float(np.max(np.abs(np.array(v) - accuracy))) for way, v in final.items()}
    seed_spread = common.mean_std(accuracy)[1]
    for way in ways:
        log(
            f"  {way}: relative drift of the training loss per epoch "
            + ", ".join(f"{d:.1e}" for d in drift[way]["loss"])
        )
    _plot(drift, out_dir / "drift.png", ds.name)
    params = summary.total_params(configs[0].model_config(ds.input_dim, ds.num_classes))
    findings = [
        _finding("one ulp", f"Moving one of the {params:,} weights up by one ulp (about 6e-8 of it)", drift, epochs),
        _finding("vmap", "Training the same seeds as one vmapped program", drift, epochs),
        f"The final test accuracy moves by at most {accuracy_gap['one ulp']:.4f} (one ulp) and "
        f"{accuracy_gap['vmap']:.4f} (vmap); the seeds themselves spread by {seed_spread:.4f} "
        "(sample std).",
        _tolerance_finding(drift),
    ]
    rows = [[e + 1] + [f"{drift[way][key][e]:.1e}" for way in ways for key in KEYS] for e in range(epochs)]
    return common.Report(
        results={
            "seeds": seeds,
            "tolerance": TOLERANCE,
            "drift": drift,
            "first_epoch_above_tolerance": {
                way: {key: first_above(d[key]) for key in KEYS} for way, d in drift.items()
            },
            "test_accuracy": {"sequential": accuracy, **final},
            "test_accuracy_gap": accuracy_gap,
            "seed_std": seed_spread,
            "nudged_weight": [list(w) for _, w in starts],
            "histories": {"sequential": reference, **ways},
        },
        tables=[
            common.Table(
                "Largest relative difference from the single runs, per epoch",
                ["epoch"] + [f"{way}: {key}" for way in ways for key in KEYS],
                rows,
            ),
            common.Table(
                "Final test accuracy",
                ["seed", "one by one", "vmap", "one ulp"],
                [
                    [s, f"{a:.4f}", f"{v:.4f}", f"{n:.4f}"]
                    for s, a, v, n in zip(seeds, accuracy, final["vmap"], final["one ulp"], strict=True)
                ],
            ),
        ],
        figures={
            "drift.png": f"Relative difference from the single runs per epoch (largest over {len(seeds)} "
            f"seeds), with the {TOLERANCE:g} tolerance."
        },
        findings=findings,
        dataset=common.describe(ds),
        budget={"epochs": epochs, "seeds": len(seeds), "batch size": TrainConfig().batch_size},
        timing={"groups": [g.record() for g in vmapped.groups]},
    )


def _finding(way: str, what: str, drift: dict, epochs: int) -> str:
    loss, val_loss = drift[way]["loss"], drift[way]["val_loss"]
    if not any(loss + val_loss):
        return f"{what} leaves every loss bit-identical over {epochs} epochs."
    return (
        f"{what} moves the training loss by up to {_rel(loss[0])} (relative) in epoch 1 and {_rel(loss[-1])} "
        f"in epoch {epochs}, the test loss by up to {_rel(val_loss[0])} and {_rel(val_loss[-1])}."
    )


def _rel(value: float) -> str:
    return "0" if value == 0.0 else f"{value:.1e}"


def _tolerance_finding(drift: dict) -> str:
    first = {way: first_above(d["loss"]) for way, d in drift.items()}
    if first["one ulp"] is None and first["vmap"] is None:
        return f"Neither way moves the training loss beyond a relative {TOLERANCE:g} on this budget."
    passed = ", ".join(f"{way} in epoch {e}" if e else f"{way} never" for way, e in first.items())
    return (
        f"The training loss passes a relative {TOLERANCE:g} ({passed}): where one ulp alone carries it there, "
        f"only bit-identical arithmetic stays within {TOLERANCE:g}, and a vmapped program sums in other orders "
        "than a single model's."
    )


def _plot(drift: dict, path: Path, dataset: str) -> None:
    series = {
        f"{way}: {'test' if key == 'val_loss' else 'train'} loss": d[key] for way, d in drift.items() for key in KEYS
    }
    plots.relative_differences(series, path, tolerance=TOLERANCE, title=f"Drift from single runs ({dataset})")
