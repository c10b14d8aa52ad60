"""The tutorial's MLP shape on scikit-learn's bundled tables, beside scikit-learn's own MLP and a logistic
regression trained on the same splits in the same run, every method on the same features: standardized (mlpjax
``--normalize standard``, scikit-learn a ``StandardScaler`` in a pipeline, both fitted on the training rows) and
as they are."""

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
    "MLPClassifier and LogisticRegression, with the features standardized and as they are?"
)
ORDER = 110  # beyond the tutorial: after drift
OWN_DATA = True  # trains on scikit-learn's iris, wine and breast_cancer only: a dataset given to it is refused
TABLES = ("iris", "wine", "breast_cancer")
QUICK_TABLES = ("iris",)
FULL_SEEDS, QUICK_SEEDS = 5, 2
SEEDS = max(FULL_SEEDS, QUICK_SEEDS)  # the seeds from --seed on that it trains (checked before it starts)
QUICK_EPOCHS = 20
METHODS = ("mlpjax", "sklearn MLPClassifier", "sklearn LogisticRegression")
# The features every method is given, as --normalize names them: standardized on the training rows, then raw
SCALINGS = ("standard", "none")


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


def scaled(estimator, normalize: str):
    """``estimator`` given the features ``normalize`` names: ``"standard"``, behind scikit-learn's
    ``StandardScaler`` in a pipeline (fitted on the rows the pipeline is fitted on, as mlpjax's scaling is);
    ``"none"``, ``estimator`` itself."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), estimator) if normalize == "standard" else estimator


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


def compare(ds: data.Dataset, configs: list[TrainConfig], log: common.Log) -> dict[str, dict[str, Any]]:
    """The three methods on ``ds`` with the features ``configs[0].normalize`` names (every config one seed of
    mlpjax, the same normalize): each method's test accuracies (one a seed; the logistic regression is
    deterministic: one) and its training seconds per model."""
    normalize = configs[0].normalize
    start = time.perf_counter()
    sweep = common.train_many(configs, ds, log)
    mlpjax_seconds = (time.perf_counter() - start) / len(configs)
    rows = len(ds.y_train)
    theirs = [fit_sklearn(scaled(sklearn_mlp(configs[0], c.seed, rows), normalize), ds) for c in configs]
    logistic, logistic_seconds = fit_sklearn(scaled(sklearn_logistic(), normalize), ds)
    return {
        "test_accuracy": {
            "mlpjax": [r.test_metrics["accuracy"] for r in sweep.runs],
            "sklearn MLPClassifier": [a for a, _ in theirs],
            "sklearn LogisticRegression": [logistic],
        },
        "seconds_per_model": {
            "mlpjax": mlpjax_seconds,
            "sklearn MLPClassifier": float(np.mean([s for _, s in theirs])),
            "sklearn LogisticRegression": logistic_seconds,
        },
    }


def _spread(values: list[float]) -> str:
    """``mean ± std`` of several seeds, or the one value of a deterministic fit."""
    return common.mean_pm_std(values) if len(values) > 1 else f"{values[0]:.4f} (deterministic)"


def _finding(name: str, record: dict[str, Any]) -> str:
    """One sentence on table ``name``: each method standardized, the best of them, and what the raw features
    gave."""
    acc = {k: record["features"][k]["test_accuracy"] for k in SCALINGS}
    best = max(METHODS, key=lambda m: float(np.mean(acc["standard"][m])))
    return (
        f"{name} ({record['dataset']['x_train'][0]} training rows, {record['epochs']} epochs), standardized: "
        f"mlpjax {common.mean_pm_std(acc['standard']['mlpjax'])}, scikit-learn's MLP "
        f"{common.mean_pm_std(acc['standard']['sklearn MLPClassifier'])}, logistic regression "
        f"{acc['standard']['sklearn LogisticRegression'][0]:.4f}; highest mean: {best}. Raw features: mlpjax "
        f"{common.mean_pm_std(acc['none']['mlpjax'])}, scikit-learn's MLP "
        f"{common.mean_pm_std(acc['none']['sklearn MLPClassifier'])}, logistic regression "
        f"{acc['none']['sklearn LogisticRegression'][0]:.4f}."
    )


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """``quick``: iris only, :data:`QUICK_EPOCHS` epochs, :data:`QUICK_SEEDS` seeds.

    Every method is trained twice, on each of :data:`SCALINGS`: standardized features (mlpjax's ``normalize``
    ``"standard"``, scikit-learn's :func:`scaled` pipeline, both fitted on the training rows only) and the raw
    features. Randomness: seeds ``seed, seed + 1, ...`` give mlpjax's initial weights, shuffles and dropout
    masks and scikit-learn's MLP its ``random_state``; the test split is each table's fixed one (20 %,
    stratified, seed 0), the same for every method. ``source`` is not used: the tables ship with
    scikit-learn (:data:`OWN_DATA`).

    Seconds are wall-clock training time per model: mlpjax's include compiling (its models of one table and
    scaling share one program, trained through the sweep engine), scikit-learn's are its ``fit`` (the
    pipeline's, its scaler's fit included).
    """
    del source
    seeds = list(range(seed, seed + (QUICK_SEEDS if quick else FULL_SEEDS)))
    results: dict[str, Any] = {}
    rows = []
    tables = QUICK_TABLES if quick else TABLES
    for name in tables:
        ds = data.load_dataset(name)
        epochs = QUICK_EPOCHS if quick else data.get_spec(name).default_epochs
        features = {}
        for normalize in SCALINGS:
            configs = [TrainConfig(dataset=name, epochs=epochs, seed=s, normalize=normalize) for s in seeds]
            features[normalize] = compare(ds, configs, log)
            for method in METHODS:
                accuracy = features[normalize]["test_accuracy"][method]
                seconds = features[normalize]["seconds_per_model"][method]
                rows.append([name, normalize, method, _spread(accuracy), f"{seconds:.2f}"])
                log(f"{name}, --normalize {normalize}, {method}: test accuracy {_spread(accuracy)}, {seconds:.2f} s")
        results[name] = {"dataset": common.describe(ds), "epochs": epochs, "seeds": seeds, "features": features}
    plots.grouped_bars(
        {
            f"{name}, {normalize}": results[name]["features"][normalize]["test_accuracy"]
            for name in tables
            for normalize in SCALINGS
        },
        out_dir / "accuracy.png",
        ylabel="test accuracy",
        title=f"Test accuracy, mean ± std over {len(seeds)} seeds (standardized features, then raw)",
    )
    return common.Report(
        results=results,
        tables=[
            common.Table(
                f"Test accuracy (mean ± sample std over {len(seeds)} seeds) and training seconds per model, "
                "with the features standardized on the training rows (--normalize standard) and as they are (none)",
                ["table", "features", "method", "test accuracy", "seconds per model"],
                rows,
            )
        ],
        figures={
            "accuracy.png": "Test accuracy per table, features and method (mean, with the sample std over the seeds)."
        },
        findings=[_finding(name, results[name]) for name in tables],
        dataset={"name": ", ".join(tables), "tables": {name: results[name]["dataset"] for name in tables}},
        budget={"seeds": seeds, "epochs": {name: results[name]["epochs"] for name in tables}, "scalings": SCALINGS},
    )
