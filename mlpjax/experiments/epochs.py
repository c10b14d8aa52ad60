"""Test accuracy of the tutorial's MLP after 2 and after 10 epochs, over several seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpjax import plots
from mlpjax.core.config import TrainConfig
from mlpjax.experiments import common
from mlpjax.training.result import HISTORY_KEYS

QUESTION = "What test accuracy do 2 and 10 epochs give (tutorial: 0.9716 and about 0.98), and how much does it vary?"
ORDER = 40  # the place of its question in the tutorial
FULL_EPOCHS, FULL_SEEDS = 10, 5
QUICK_SEEDS = 2
SEEDS = max(FULL_SEEDS, QUICK_SEEDS)  # the seeds from --seed on that it trains (checked before it starts)
TUTORIAL = {2: "0.9716", 10: "about 0.98"}


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: runs with seeds ``seed, seed + 1, ...`` (initial weights, shuffling, dropout masks), trained
    together through the sweep engine (:func:`common.train_many`): the numbers of one run per seed.

    Epoch ``e`` of a 10-epoch run is the same as the last epoch of an ``e``-epoch run with that seed (the
    shuffle and dropout keys depend only on the epoch and step), so one run per seed gives both numbers.
    """
    ds = common.load_data(source, quick)
    epochs = common.epochs_for(quick, FULL_EPOCHS)
    seeds = list(range(seed, seed + (QUICK_SEEDS if quick else FULL_SEEDS)))
    marks = [1, epochs] if quick else [2, epochs]  # the epochs whose test accuracy is tabulated
    sweep = common.train_many([TrainConfig(dataset=ds.name, epochs=epochs, seed=s) for s in seeds], ds, log)
    runs: list[dict[str, Any]] = [
        {"seed": s, "history": r.history, "test_metrics": r.test_metrics}
        for s, r in zip(seeds, sweep.runs, strict=True)
    ]
    histories = [r["history"] for r in runs]
    at = {e: [h["val_accuracy"][e - 1] for h in histories] for e in marks}
    summary = {
        str(e): {"mean": common.mean_std(v)[0], "std": common.mean_std(v)[1], "min": min(v), "max": max(v), "values": v}
        for e, v in at.items()
    }
    for e in marks:
        log(
            f"test accuracy after {e} epochs: {common.mean_pm_std(at[e])} over {len(seeds)} seeds "
            f"(min {min(at[e]):.4f}, max {max(at[e]):.4f}; tutorial: {TUTORIAL.get(e, '-')})"
        )
    plots.training_curves(
        {f"{len(seeds)} seeds": histories},
        out_dir / "curves.png",
        title=f"Tutorial MLP on {ds.name}: mean ± std over {len(seeds)} seeds",
    )
    per_epoch_rows = [
        [e + 1] + [common.mean_pm_std([h[k][e] for h in histories]) for k in HISTORY_KEYS] for e in range(epochs)
    ]
    first, last = marks[0], marks[-1]
    findings = [
        f"Test accuracy after {e} epochs: {common.mean_pm_std(at[e])} (mean ± sample std over {len(seeds)} "
        f"seeds, range {min(at[e]):.4f}-{max(at[e]):.4f}); the tutorial reports {TUTORIAL.get(e, 'nothing')}."
        for e in marks
    ]
    if first != last:
        gain = common.mean_std(at[last])[0] - common.mean_std(at[first])[0]
        findings.append(
            f"Going from {first} to {last} epochs adds {gain:+.4f} test accuracy on average, while "
            "the training loss keeps falling ("
            f"{common.mean_pm_std([h['loss'][first - 1] for h in histories])} "
            f"-> {common.mean_pm_std([h['loss'][last - 1] for h in histories])})."
        )
    return common.Report(
        results={"seeds": seeds, "test_accuracy_after": summary, "runs": runs},
        tables=[
            common.Table(
                "Test accuracy",
                ["epochs", f"mean ± std ({len(seeds)} seeds)", "min", "max", "tutorial"],
                [
                    [e, common.mean_pm_std(at[e]), f"{min(at[e]):.4f}", f"{max(at[e]):.4f}", TUTORIAL.get(e, "-")]
                    for e in marks
                ],
            ),
            common.Table(
                "Per seed",
                ["seed"] + [f"test acc @ {e}" for e in marks] + ["test loss @ end"],
                [
                    [r["seed"]]
                    + [f"{r['history']['val_accuracy'][e - 1]:.4f}" for e in marks]
                    + [f"{r['test_metrics']['loss']:.4f}"]
                    for r in runs
                ],
            ),
            common.Table(
                "Per epoch (mean ± std over seeds)",
                ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"],
                per_epoch_rows,
            ),
        ],
        figures={"curves.png": "Keras-style history (train dashed, test solid), mean ± std over seeds."},
        findings=findings,
        dataset=common.describe(ds),
        budget={"epochs": epochs, "seeds": len(seeds), "batch size": TrainConfig().batch_size},
        timing={"strategy": sweep.strategy, "groups": [g.record() for g in sweep.groups]},
    )
