"""The tutorial's MLP shape on scikit-learn's bundled tables, beside scikit-learn's own MLP and a logistic
regression trained on the same splits in the same run."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import data, plots
from mlpjax.core import optimizers
from mlpjax.core.config import TrainConfig
from mlpjax.experiments import common

QUESTION = (
    "How does the tutorial's MLP do on small tables (iris, wine, breast_cancer) beside scikit-learn's "
    "MLPClassifier and LogisticRegression?"
)
ORDER = 110  # beyond the tutorial: after drift
TABLES = ("iris", "wine", "breast_cancer")
QUICK_TABLES = ("iris",)
FULL_SEEDS, QUICK_SEEDS = 5, 2
SEEDS = max(FULL_SEEDS, QUICK_SEEDS)  # the seeds from --seed on that it trains (checked before it starts)
QUICK_EPOCHS = 20
METHODS = ("mlpjax", "sklearn MLPClassifier", "sklearn LogisticRegression")


def sklearn_mlp(config: TrainConfig, seed: int, rows: int):
    """scikit-learn's MLPClassifier in the tutorial's shape and budget: one hidden layer of ``config``'s
    width, ReLU, Adam at ``config``'s learning rate, its batch size (at most ``rows``, the training rows),
    exactly ``config.epochs`` passes (no early stop: ``n_iter_no_change`` beyond the budget). scikit-learn has no
    dropout; its default L2 penalty (alpha 1e-4) stays. Randomness: ``random_state=seed`` (initial weights and
    shuffling)."""
    from sklearn.neural_network import MLPClassifier

    epochs = int(config.epochs or 0)  # set by TrainConfig from the dataset's default
    return MLPClassifier(
        hidden_layer_sizes=config.model.hidden,
        activation="relu",
        solver="adam",
        learning_rate_init=optimizers.learning_rate(config.optimizer, config.lr),
        batch_size=min(config.batch_size, rows),
        max_iter=epochs,
        n_iter_no_change=epochs + 1,
        random_state=seed,
    )


def sklearn_logistic():
    """scikit-learn's LogisticRegression at its defaults (lbfgs, C = 1) with room to converge (deterministic)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000)


def fit_sklearn(estimator, ds: data.Dataset) -> tuple[float, float]:
    """Fit ``estimator`` on ``ds``'s training rows; its test accuracy and the seconds the fit took (its
    convergence warnings are expected on a fixed budget and silenced)."""
    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(ds.x_train, ds.y_train)
    seconds = time.perf_counter() - start
    return float(np.mean(estimator.predict(ds.x_test) == ds.y_test)), seconds


def run(out_dir: Path, *, quick: bool, data_dir: str | None, seed: int, log: common.Log) -> common.Report:
    """``quick``: iris only, :data:`QUICK_EPOCHS` epochs, :data:`QUICK_SEEDS` seeds.

    Randomness: seeds ``seed, seed + 1, ...`` give mlpjax's initial weights, shuffles and dropout masks
    and scikit-learn's MLP its ``random_state``; the test split is each table's fixed one (20 %, stratified,
    seed 0), the same for every method. ``data_dir`` is not used: the tables ship with scikit-learn.

    Seconds are wall-clock training time per model: mlpjax's include compiling (its models of one table
    share one program, trained through the sweep engine), scikit-learn's are its ``fit``.
    """
    del data_dir
    seeds = list(range(seed, seed + (QUICK_SEEDS if quick else FULL_SEEDS)))
    results: dict[str, Any] = {}
    rows = []
    tables = QUICK_TABLES if quick else TABLES
    for name in tables:
        ds = data.load_dataset(name)
        epochs = QUICK_EPOCHS if quick else data.get_spec(name).default_epochs
        configs = [TrainConfig(dataset=name, epochs=epochs, seed=s) for s in seeds]
        start = time.perf_counter()
        sweep = common.train_many(configs, ds, log)
        mlpjax_seconds = (time.perf_counter() - start) / len(seeds)
        ours = [r.test_metrics["accuracy"] for r in sweep.runs]
        theirs = [fit_sklearn(sklearn_mlp(configs[0], s, len(ds.y_train)), ds) for s in seeds]
        logistic, logistic_seconds = fit_sklearn(sklearn_logistic(), ds)
        accuracy = {
            "mlpjax": ours,
            "sklearn MLPClassifier": [a for a, _ in theirs],
            "sklearn LogisticRegression": [logistic],
        }
        seconds = {
            "mlpjax": mlpjax_seconds,
            "sklearn MLPClassifier": float(np.mean([s for _, s in theirs])),
            "sklearn LogisticRegression": logistic_seconds,
        }
        results[name] = {
            "dataset": common.describe(ds),
            "epochs": epochs,
            "seeds": seeds,
            "test_accuracy": accuracy,
            "seconds_per_model": seconds,
        }
        for method in METHODS:
            spread = (
                common.mean_pm_std(accuracy[method])
                if len(accuracy[method]) > 1
                else f"{accuracy[method][0]:.4f} (deterministic)"
            )
            rows.append([name, method, spread, f"{seconds[method]:.2f}"])
            log(f"{name}, {method}: test accuracy {spread}, {seconds[method]:.2f} s per model")
    findings = []
    for name in tables:
        acc = results[name]["test_accuracy"]
        best = max(METHODS, key=lambda m: float(np.mean(acc[m])))
        findings.append(
            f"{name} ({results[name]['dataset']['x_train'][0]} training rows, {results[name]['epochs']} epochs): "
            f"mlpjax {common.mean_pm_std(acc['mlpjax'])}, scikit-learn's MLP "
            f"{common.mean_pm_std(acc['sklearn MLPClassifier'])}, logistic regression "
            f"{acc['sklearn LogisticRegression'][0]:.4f}; highest mean: {best}."
        )
    plots.grouped_bars(
        {name: results[name]["test_accuracy"] for name in tables},
        out_dir / "accuracy.png",
        ylabel="test accuracy",
        title=f"Test accuracy, mean ± std over {len(seeds)} seeds",
    )
    return common.Report(
        results=results,
        tables=[
            common.Table(
                f"Test accuracy (mean ± sample std over {len(seeds)} seeds) and training seconds per model",
                ["table", "method", "test accuracy", "seconds per model"],
                rows,
            )
        ],
        figures={"accuracy.png": "Test accuracy per table and method (mean, with the sample std over the seeds)."},
        findings=findings,
        dataset={"name": ", ".join(tables), "tables": {name: results[name]["dataset"] for name in tables}},
        budget={"seeds": seeds, "epochs": {name: results[name]["epochs"] for name in tables}},
    )
