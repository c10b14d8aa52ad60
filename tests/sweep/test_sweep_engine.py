"""One training engine: a vmapped group runs the epoch loop that ``fit`` runs (mlpjax.training.loop), so every
TrainConfig field means the same under ``--strategy vmap`` and ``--strategy sequential``."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from mlpjax import sweep
from mlpjax.core import schedules
from mlpjax.sweep import stack
from mlpjax.training import train

# docs/sweep.md ("Same numbers as one run"): on the tests' budget vmap stays within 1e-5 of single runs (measured
# at most 2.6e-7 here); beyond that only bit-identical arithmetic would (mlpjax experiment drift).
DRIFT = 1e-5
# Every setting that a single run honours, at once: a validation split, early stopping, a schedule, the plateau
# and more metrics; lr 0.03 makes the plateau cut and early stopping stop, lr 0.003 trains through.
EVERYTHING = dict(
    dataset="digits",
    epochs=10,
    batch_size=64,
    hidden=[32],
    validation_split=0.2,
    early_stopping=2,
    lr_schedule="cosine",
    reduce_lr_on_plateau=True,
    plateau_patience=1,
    metrics=["accuracy", "precision", "mse"],
)


@pytest.fixture(scope="module")
def both(digits):
    configs = sweep.grid(EVERYTHING, {"seed": [0, 1], "lr": [0.003, 0.03]})
    return {s: sweep.run_sweep(configs, digits, strategy=s).runs for s in ("sequential", "vmap")}


def test_both_strategies_record_the_same_keys_learning_rates_and_stopping_epochs(both):
    for seq, vm in zip(both["sequential"], both["vmap"], strict=True):
        assert (
            set(vm.history)
            == set(seq.history)
            == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "val_precision", "val_mse"}
        )
        assert len(vm.history["loss"]) == len(seq.history["loss"])
        np.testing.assert_allclose(vm.history["lr"], seq.history["lr"], rtol=1e-6)
        assert vm.callbacks == seq.callbacks  # stopped and best epochs, the plateau's cuts
        assert vm.kept_epoch == seq.kept_epoch
        for key in ("loss", "val_loss", "val_mse"):
            np.testing.assert_allclose(vm.history[key], seq.history[key], rtol=DRIFT, err_msg=key)
        for key in ("loss", "accuracy"):
            np.testing.assert_allclose(vm.test_metrics[key], seq.test_metrics[key], rtol=DRIFT, err_msg=key)


def test_the_sweep_exercises_every_setting(both):
    """The budget above really stops one model early, cuts a learning rate and schedules the rest."""
    runs = both["vmap"]
    stopped = [r for r in runs if r.callbacks["early_stopping"]["stopped_epoch"]]
    assert stopped and len(stopped) < len(runs)
    assert any(r.callbacks["reduce_lr_on_plateau"]["reduced_after_epochs"] for r in runs)
    for r in stopped:  # kept the best epoch's weights: its test loss is not the last epoch's
        assert r.kept_epoch == r.callbacks["early_stopping"]["best_epoch"] < len(r.history["loss"])
    lrs = runs[0].history["lr"]
    assert lrs[0] > lrs[-1] > 0  # cosine decay


def test_a_stopped_model_is_frozen_while_the_others_train_on(digits):
    """The stacked state of a model that stopped stays as it was; with its best weights restored at the end,
    its test figures are those of its best epoch."""
    configs = sweep.grid(EVERYTHING, {"lr": [0.003, 0.03], "seed": [0]})
    seen = {}
    runs = sweep.run_sweep(
        configs,
        digits,
        strategy="vmap",
        on_model_epoch=lambda i, epoch, params: seen.setdefault(i, {}).__setitem__(epoch, params),
    ).runs
    fast = runs[1]
    stop = fast.callbacks["early_stopping"]["stopped_epoch"]
    assert stop and len(seen[0]) == configs[0].epochs  # the slow model trained every epoch
    after = [e for e in seen[1] if e >= stop]
    for e in after[1:]:
        jax.tree_util.tree_map(np.testing.assert_array_equal, seen[1][e], seen[1][stop])
    alone = train.fit(configs[1], digits)
    np.testing.assert_allclose(fast.test_metrics["loss"], alone.test_metrics["loss"], rtol=DRIFT)


def test_a_group_optimizer_keeps_the_base_lr_in_its_state_and_follows_the_schedule(digits):
    configs = sweep.grid({**EVERYTHING, "lr_schedule": "warmup-cosine"}, {"lr": [0.01, 0.02]})
    plan = train.make_plan(configs[0], digits, check_memory=False)
    state = stack.group_state(configs, plan.model_config, plan.steps_per_epoch)
    np.testing.assert_allclose(stack.learning_rates(state), [0.01, 0.02])
    for config in configs:  # the group's schedule is lr x the schedule at lr 1: the single run's, to float error
        single = schedules.schedule_for(config, plan.steps_per_epoch)
        unit = schedules.SCHEDULES["warmup-cosine"].build(1.0, config.epochs * plan.steps_per_epoch)
        for step in (0, 3, 50, config.epochs * plan.steps_per_epoch - 1):
            assert math.isclose(float(single(step)), config.lr * float(unit(step)), rel_tol=1e-6, abs_tol=1e-12)


def test_a_diverged_model_ends_its_history_the_same_way_under_both_strategies(digits):
    configs = sweep.grid(
        {"dataset": "digits", "epochs": 3, "batch_size": 32, "hidden": [32], "optimizer": "sgd"}, {"lr": [0.01, 1e30]}
    )
    seq, vm = (sweep.run_sweep(configs, digits, strategy=s).runs for s in ("sequential", "vmap"))
    assert seq[1].diverged == vm[1].diverged is not None
    assert len(vm[1].history["loss"]) == len(seq[1].history["loss"]) == vm[1].diverged - 1
    assert all(map(math.isfinite, vm[1].history["loss"]))
    assert len(vm[0].history["loss"]) == 3 and vm[0].diverged is None


def test_a_vmapped_sweep_with_early_stopping_resumes_to_the_uninterrupted_numbers(tmp_path, capsys):
    """Killed after its last-but-one epoch, when one model has stopped and kept its best weights and another is
    waiting for a better epoch: the group checkpoint holds each model's best weights, so resuming gives the
    uninterrupted sweep's histories, stopping epochs and test figures exactly."""
    import json
    import shutil

    from conftest import run_cli

    out = tmp_path / "sw"
    argv = (
        "sweep",
        "--dataset",
        "digits",
        "--epochs",
        "10",
        "--batch-size",
        "64",
        "--hidden",
        "32",
        "--validation-split",
        "0.2",
        "--early-stopping",
        "2",
        "--lr-schedule",
        "cosine",
        "--reduce-lr-on-plateau",
        "--plateau-patience",
        "1",
        "--lr",
        "0.003,0.03",
        "--strategy",
        "vmap",
    )
    assert run_cli(capsys, *argv, "--output", out)[0] == 0
    first = json.loads((out / "results.json").read_text())
    assert any(r["early_stopping"]["stopped_epoch"] for r in first["runs"])
    epochs = sorted(int(p.name) for p in (out / "groups" / "0").iterdir() if p.name.isdigit())
    shutil.rmtree(out / "groups" / "0" / str(epochs[-1]))  # as if killed during the last epoch
    (out / "results.json").unlink()
    code, _, err = run_cli(capsys, "sweep", "--resume", out)
    assert code == 0, err
    again = json.loads((out / "results.json").read_text())
    for a, b in zip(again["runs"], first["runs"], strict=True):
        for key in ("history", "test_metrics", "kept_epoch", "early_stopping", "reduce_lr_on_plateau", "diverged"):
            assert a[key] == b[key], key
