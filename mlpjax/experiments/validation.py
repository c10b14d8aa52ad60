"""With the test set kept out of every choice: a validation split, early stopping, and ReduceLROnPlateau."""

from __future__ import annotations

from pathlib import Path

from mlpjax import plots
from mlpjax.core.config import TrainConfig
from mlpjax.experiments import common

QUESTION = (
    "With --validation-split 0.1, what test accuracy do 10 epochs give, and where does --early-stopping 3 "
    "stop over 50 epochs, with and without --reduce-lr-on-plateau?"
)
ORDER = 45  # after the epochs experiment
SPLIT = 0.1
FULL = {"epochs": 10, "seeds": 3, "stop_epochs": 50, "patience": 3, "short_plateau": 2}
QUICK = {"epochs": 2, "seeds": 2, "stop_epochs": 6, "patience": 1, "short_plateau": 1}
SEEDS = max(FULL["seeds"], QUICK["seeds"])  # the seeds from --seed on that it trains (checked before it starts)


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: seeds ``seed, seed + 1, ...`` for the fixed-epoch runs; the early-stopping runs use ``seed``.
    Every run holds out the last 10 % of the training rows (Keras' ``validation_split=0.1``): ``val_*`` is
    measured on them, and the test set is evaluated once, on the weights kept."""
    ds = common.load_data(source, quick)
    budget = QUICK if quick else FULL
    seeds = list(range(seed, seed + budget["seeds"]))
    fixed = []
    for s in seeds:
        config = TrainConfig(dataset=ds.name, epochs=budget["epochs"], seed=s, validation_split=SPLIT)
        result = common.fit(config, ds, log, f"seed {s}")
        fixed.append(
            {
                "seed": s,
                "val_accuracy": result.history["val_accuracy"][-1],
                "test_accuracy": result.test_metrics["accuracy"],
                "test_loss": result.test_metrics["loss"],
            }
        )
    stops = {}
    # Keras' plateau patience (10) exceeds the early-stopping patience: it can act only on a run of tiny
    # improvements (below its min_delta 1e-4); a shorter plateau patience shows what a cut does
    short = budget["short_plateau"]
    for label, plateau in (
        ("early stopping", {}),
        ("+ plateau (Keras' patience 10)", {"reduce_lr_on_plateau": True}),
        (f"+ plateau (patience {short})", {"reduce_lr_on_plateau": True, "plateau_patience": short}),
    ):
        config = TrainConfig(
            dataset=ds.name,
            epochs=budget["stop_epochs"],
            seed=seed,
            validation_split=SPLIT,
            early_stopping=budget["patience"],
            **plateau,
        )
        result = common.fit(config, ds, log, label)
        early = result.callbacks["early_stopping"]
        stops[label] = {
            "stopped_epoch": early["stopped_epoch"],
            "best_epoch": early["best_epoch"],
            "epochs_run": len(result.history["loss"]),
            "best_val_loss": min(result.history["val_loss"]),
            "test_accuracy": result.test_metrics["accuracy"],
            "test_loss": result.test_metrics["loss"],
            "lr_cuts_after": (result.callbacks["reduce_lr_on_plateau"] or {}).get("reduced_after_epochs"),
            "history": result.history,
        }
    labels = {"val_loss": "validation loss", "val_accuracy": "validation accuracy", "lr": "learning rate"}
    plots.training_curves(
        {k: v["history"] for k, v in stops.items()},
        out_dir / "early_stopping.png",
        panels=(("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy")), ("learning rate", ("lr",))),
        key_labels=labels,
        log_panels=("learning rate",),
        title=(f"{ds.name}, validation split {SPLIT:g}, early stopping (patience {budget['patience']}, seed {seed})"),
    )
    tests = [r["test_accuracy"] for r in fixed]
    findings = [
        f"With a {SPLIT:g} validation split, {budget['epochs']} epochs give test accuracy "
        f"{common.mean_pm_std(tests)} over {len(seeds)} seeds (range {min(tests):.4f}-{max(tests):.4f})."
    ]
    for label, r in stops.items():
        where = (
            f"stops after epoch {r['stopped_epoch']} and keeps epoch {r['best_epoch']}"
            if r["stopped_epoch"]
            else f"never stops in {r['epochs_run']} epochs (best epoch {r['best_epoch']})"
        )
        findings.append(
            f"{label} (early-stopping patience {budget['patience']}) {where}: test accuracy "
            f"{r['test_accuracy']:.4f}"
            + (f"; the learning rate was cut after epochs {r['lr_cuts_after']}" if r["lr_cuts_after"] else "")
            + "."
        )
    return common.Report(
        results={"seeds": seeds, "fixed_epochs": fixed, "early_stopping": stops},
        tables=[
            common.Table(
                f"{budget['epochs']} epochs, validation split {SPLIT:g}",
                ["seed", "val_accuracy (last epoch)", "test accuracy", "test loss"],
                [
                    [r["seed"], f"{r['val_accuracy']:.4f}", f"{r['test_accuracy']:.4f}", f"{r['test_loss']:.4f}"]
                    for r in fixed
                ],
            ),
            common.Table(
                f"Early stopping (patience {budget['patience']}, up to {budget['stop_epochs']} epochs)",
                ["run", "stopped after epoch", "kept epoch", "best val_loss", "test accuracy", "lr cut after epochs"],
                [
                    [
                        label,
                        r["stopped_epoch"] or "-",
                        r["best_epoch"],
                        f"{r['best_val_loss']:.4f}",
                        f"{r['test_accuracy']:.4f}",
                        ", ".join(map(str, r["lr_cuts_after"] or [])) or "-",
                    ]
                    for label, r in stops.items()
                ],
            ),
        ],
        figures={
            "early_stopping.png": (
                "Training (dashed) and validation (solid) curves of the early-stopping runs, and their learning rate."
            )
        },
        findings=findings,
        dataset=common.describe(ds),
        budget={**budget, "validation_split": SPLIT, "batch size": TrainConfig().batch_size},
    )
