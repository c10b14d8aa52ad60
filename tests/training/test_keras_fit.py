"""fit as Keras users expect: validation split, early stopping (also across a resume), learning rates, metrics."""

import json
import math

import jax
import numpy as np
import pytest
from conftest import small_config, toy_dataset

from mlpjax.data import split
from mlpjax.errors import FieldError
from mlpjax.runs import run
from mlpjax.training import train
from mlpjax.training.compiled import evaluate
from mlpjax.training.rows import Rows


def _assert_same_params(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_validation_split_holds_out_the_last_rows_and_tests_once_at_the_end():
    ds = toy_dataset(n_train=100)
    result = train.fit(small_config(validation_split=0.2, epochs=2), ds)
    assert int(result.state.step) == 2 * math.ceil(80 / 32)  # 80 rows trained on
    train_part, val_part = split.split(ds, 0.2)
    np.testing.assert_array_equal(val_part.encoded_test, ds.encoded_train[80:])
    np.testing.assert_array_equal(train_part.encoded_train, ds.encoded_train[:80])
    mc = result.state.model_config
    held_out = evaluate(result.state.params, Rows.from_dataset(val_part, "test"), model_config=mc)
    test = evaluate(result.state.params, Rows.from_dataset(ds, "test"), model_config=mc)
    assert result.history["val_loss"][-1] == held_out["loss"] and result.test_metrics == test
    record = result.record()
    assert record["validation"] == "split" and record["test_loss"] == test["loss"]
    assert train.fit(small_config(epochs=1), ds).record()["validation"] == "test"


def test_a_split_that_leaves_nothing_is_refused():
    with pytest.raises(FieldError, match="validation_split 0.99 of 70 training examples leaves 0 to train on"):
        train.fit(small_config(validation_split=0.99), toy_dataset())


def test_metrics_are_kept_in_the_history_as_val_names():
    result = train.fit(small_config(metrics=("accuracy", "f1", "mae")), toy_dataset())
    classes = result.state.model_config.num_classes
    assert {"val_mae", "lr", *(f"val_f1_score_{c}" for c in range(classes))} <= set(result.history)
    assert "val_f1_score" not in result.history  # Keras' F1Score is per class: one key each
    assert result.history[f"val_f1_score_{classes - 1}"][-1] == result.test_metrics[f"f1_score_{classes - 1}"]
    assert result.history["lr"] == [1e-3, 1e-3]


def _stopping_config(**kw):
    return small_config(epochs=40, early_stopping=2, lr=0.05, dropout=0.0, validation_split=0.3, **kw)


def test_early_stopping_stops_and_restores_the_best_epochs_weights():
    ds = toy_dataset(n_train=200)
    result = train.fit(_stopping_config(), ds)
    early = result.callbacks["early_stopping"]
    stopped, best = early["stopped_epoch"], early["best_epoch"]
    assert stopped is not None and stopped < 40 and stopped == best + 2 and len(result.history["loss"]) == stopped
    assert result.kept_epoch == best and early["restored_best_weights"]
    assert min(result.history["val_loss"]) == result.history["val_loss"][best - 1]
    _assert_same_params(result.state.params, train.fit(_stopping_config().replace(epochs=best), ds).state.params)


def test_early_stopping_survives_a_resume(tmp_path):
    ds = toy_dataset(n_train=200)
    whole = train.fit(_stopping_config(), ds)
    stopped = whole.callbacks["early_stopping"]["stopped_epoch"]
    run.start(tmp_path, _stopping_config().replace(epochs=stopped - 1)).fit(ds)  # killed one epoch early
    resumed = run.resume(tmp_path, {"epochs": 40}).fit(ds)
    assert resumed.history == whole.history and resumed.callbacks == whole.callbacks
    _assert_same_params(resumed.state.params, whole.state.params)
    again = run.resume(tmp_path, {"epochs": 40}).fit(ds)  # already stopped: trains nothing
    assert again.epoch_seconds == [] and again.history == whole.history
    _assert_same_params(again.state.params, whole.state.params)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["kept_epoch"] == whole.kept_epoch and record["early_stopping"]["stopped_epoch"] == stopped


def test_reduce_lr_on_plateau_cuts_the_learning_rate_of_the_next_epochs():
    ds = toy_dataset()
    result = train.fit(
        small_config(
            epochs=8, optimizer="sgd", lr=5.0, reduce_lr_on_plateau=True, plateau_patience=1, plateau_factor=0.5
        ),
        ds,
    )
    cuts = result.callbacks["reduce_lr_on_plateau"]["reduced_after_epochs"]
    assert cuts, result.history["val_loss"]
    lrs = result.history["lr"]
    assert lrs[0] == 5.0 and lrs[cuts[0]] == 2.5 and lrs[cuts[0] - 1] == 5.0


def test_a_schedule_records_the_learning_rate_of_each_epochs_last_step():
    result = train.fit(small_config(epochs=3, lr_schedule="cosine", lr=0.01), toy_dataset())
    lrs = result.history["lr"]
    steps = math.ceil(70 / 32)  # 3 a epoch, 9 in all: the last epoch ends one step before the decay's end
    assert lrs == pytest.approx([0.005 * (1 + math.cos(math.pi * (e * steps - 1) / 9)) for e in (1, 2, 3)])


def test_resuming_a_run_saved_without_lr_in_its_history_fills_it_in():
    ds = toy_dataset()
    half = train.fit(small_config(epochs=1), ds)
    old = {k: v for k, v in half.history.items() if k != "lr"}
    rest = train.fit(small_config(epochs=2), ds, resume_from=train.Resumed(half.state, old))
    assert rest.history["lr"] == [1e-3, 1e-3]


def test_a_run_with_a_split_keeps_the_test_set_out_of_metrics_json_until_the_end(tmp_path):
    ds = toy_dataset()
    seen = []
    metrics = tmp_path / "metrics.json"
    result = run.start(tmp_path, small_config(epochs=2, validation_split=0.25)).fit(
        ds, log=lambda line: seen.append(json.loads(metrics.read_text()) if metrics.exists() else None)
    )  # logged before the epoch is saved
    progress = [s for s in seen if s]
    assert progress and all("test_loss" not in s and s["validation"] == "split" for s in progress)
    final = json.loads((tmp_path / "metrics.json").read_text())
    assert final["validation"] == "split" and final["test_loss"] == result.test_metrics["loss"]


def test_early_stopping_may_be_added_on_resume(tmp_path):
    ds = toy_dataset(n_train=200)
    run.start(tmp_path, _stopping_config().replace(early_stopping=None, epochs=3)).fit(ds)
    assert not (tmp_path / "best").exists()
    resumed = run.resume(tmp_path, {"epochs": 40, "early_stopping": 2}).fit(ds)
    early = resumed.callbacks["early_stopping"]
    assert early["stopped_epoch"] is not None and early["best_epoch"] >= 3 and (tmp_path / "best").is_dir()
    assert resumed.config.early_stopping == 2
