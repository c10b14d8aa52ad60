"""Sweeps (mlpjax.sweep.train, mlpjax.sweep.stack): the grid, the groups, and each model's numbers equal to training it
alone."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO, kill_at_instants, kill_instants, leftovers, run_cli, sigint_blocked, wait_for

from mlpjax import memory, sweep
from mlpjax.core import model
from mlpjax.errors import FieldError, UserInputError
from mlpjax.runs import orbax_io
from mlpjax.sweep import checkpoint as sweep_checkpoint
from mlpjax.sweep import stack
from mlpjax.training import train

RTOL = 1e-5  # vmap may reassociate floats; nothing else may differ
BASE = dict(dataset="digits", epochs=2, batch_size=32, hidden=(32,))
LISTS = {"seed": [0, 1], "lr": [0.001, 0.003], "dropout": [0.0, 0.3]}
SMALL = ("--dataset", "digits", "--epochs", "2", "--batch-size", "32", "--hidden", "32")


def assert_same_history(got, want, rtol=RTOL):
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, err_msg=key)


@pytest.fixture(scope="module")
def configs():
    return sweep.grid(BASE, LISTS)


@pytest.fixture(scope="module")
def alone(configs, digits):
    """Each config trained alone by train.fit: what `mlpjax train` with its single values gives."""
    return [train.fit(c, digits) for c in configs]


def test_grid_is_the_product_in_listed_order(configs):
    assert len(configs) == 8
    assert [(c.seed, c.lr, c.model.dropout) for c in configs[:3]] == [(0, 0.001, 0.0), (0, 0.001, 0.3), (0, 0.003, 0.0)]
    assert all(c.model.hidden == (32,) and c.dataset == "digits" for c in configs)
    more = sweep.grid(BASE, {"hidden": [(16,), (8, 8)], "seed": [0, 1], "optimizer": ["adam", "sgd"]})
    assert sweep.groups(more) == [[0, 4], [1, 5], [2, 6], [3, 7]]  # seeds together; hidden, optimizer apart


@pytest.mark.parametrize(
    "lists, field",
    [
        ({"lr": [0.1, -1.0]}, "lr"),
        ({"dropout": [1.5]}, "dropout"),
        ({"seed": [0, 0]}, "seed"),
        ({"epochs": []}, "epochs"),
        ({"data_dir": ["a", "b"]}, "data_dir"),
    ],
)
def test_grid_errors_name_the_field(lists, field):
    with pytest.raises(FieldError) as e:
        sweep.grid(BASE, lists)
    assert e.value.field == field and "--" not in str(e.value)


def test_grid_lists_every_training_field_and_all_but_seed_lr_dropout_group_apart():
    from mlpjax.core.config import TrainConfig

    assert set(sweep.LISTED) == set(TrainConfig.flat_fields()) - set(sweep.ONE_PER_SWEEP)
    assert set(sweep.ONE_PER_SWEEP) == {
        "dataset",
        "data_dir",
        "label_column",
        "test_split",
        "image_size",
        "nan",
    }  # one dataset
    more = sweep.grid(
        BASE,
        {
            "seed": [0, 1],
            "validation_split": [0.0, 0.2],
            "reduce_lr_on_plateau": [False, True],
            "metrics": [("accuracy",), ("accuracy", "f1")],
        },
    )
    assert len(more) == 16 and {c.metrics for c in more} == {("accuracy",), ("accuracy", "f1_score")}
    assert [len(g) for g in sweep.groups(more)] == [2] * 8  # the seeds of each setting together
    with pytest.raises(FieldError, match="one dataset") as e:
        sweep.grid(BASE, {"dataset": ["digits", "quadrants"]})
    assert e.value.field == "dataset"


@pytest.fixture
def no_config_built(monkeypatch):
    """TrainConfig.from_dict counted: how many configs grid built."""
    from mlpjax.core.config import TrainConfig

    built = []
    real = TrainConfig.from_dict
    monkeypatch.setattr(TrainConfig, "from_dict", classmethod(lambda cls, d: built.append(1) or real(d)))
    return built


def test_grid_refuses_more_models_than_the_limit_before_building_any(monkeypatch, no_config_built):
    monkeypatch.setattr(sweep.train, "MAX_MODELS", 11)
    with pytest.raises(FieldError) as e:
        sweep.grid(BASE, {"seed": [0, 1, 2, 3], "lr": [0.001, 0.003, 0.01]})
    assert e.value.field == "seed" and e.value.also == ("lr",) and not no_config_built
    assert "12 models" in str(e.value) and "11" in str(e.value) and "lr (3 values)" in str(e.value)
    assert len(sweep.grid(BASE, {"seed": [0, 1, 2, 3, 4], "lr": [0.001, 0.003]})) == 10 == len(no_config_built)
    # a product far beyond memory is refused as fast: its length is multiplied, never built
    with pytest.raises(FieldError, match="models"):
        sweep.grid(BASE, {"seed": range(10**9), "lr": [0.1 / (i + 1) for i in range(10**3)]})
    assert len(no_config_built) == 10


def test_grid_refuses_a_product_the_memory_cannot_hold(monkeypatch, no_config_built):
    monkeypatch.setattr(sweep.train.memory, "available_memory", lambda: 20 * sweep.train.BYTES_PER_MODEL)
    with pytest.raises(FieldError, match="memory available") as e:
        sweep.grid(BASE, {"seed": list(range(7)), "dropout": [0.0, 0.1, 0.2]})
    assert e.value.field == "seed" and not no_config_built


def test_cli_sweep_refuses_too_many_models_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sweep.train, "MAX_MODELS", 5)
    code, out, err = run_cli(capsys, "sweep", *SMALL, "--seed", "0,1,2", "--lr", "0.001,0.003")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "--seed (3 values) x --lr (2 values) make 6 models, more than the 5 a sweep may train" in err


def test_summary_and_curves_say_val_for_a_validation_split(tmp_path, monkeypatch):
    from mlpjax.core.config import TrainConfig
    from mlpjax.sweep import report

    def model_run(split, seed):
        history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.6], "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.5]}
        return sweep.ModelRun(
            TrainConfig(dataset="digits", validation_split=split, seed=seed), history, {"loss": 0.7, "accuracy": 0.5}
        )

    for splits, name in (([0.0], "test"), ([0.1], "val"), ([0.0, 0.1], "val")):
        runs = [model_run(split, seed) for split in splits for seed in (0, 1)]
        result = sweep.SweepResult(runs, [], "sequential", 1.0)
        assert report.val_name(runs) == name
        note = report.summary_markdown(result).splitlines()[-1]
        assert ("validation split" in note) == (name == "val") and "test = the test split" in note
    titles = []
    real = report.plots.training_curves
    monkeypatch.setattr(
        report.plots, "training_curves", lambda curves, path, **kw: titles.append(kw) or real(curves, path, **kw)
    )
    report.write(tmp_path, result)
    assert [p for p, _ in titles[0]["panels"]] == ["val loss", "val accuracy"] and "val curves" in titles[0]["title"]


def test_traced_dropout_rate_gives_the_static_rates_logits():
    mc = model.ModelConfig(input_dim=6, hidden=(8, 4), dropout=0.3, num_classes=2)
    params = model.init(jax.random.PRNGKey(0), mc)
    x, rng = jax.random.uniform(jax.random.PRNGKey(1), (5, 6)), jax.random.PRNGKey(2)
    want = model.apply(params, x, model_config=mc, train=True, rng=rng)
    got = jax.jit(lambda r: model.apply(params, x, model_config=mc, train=True, rng=rng, dropout_rate=r))(
        jnp.float32(0.3)
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)
    zero = model.apply(params, x, model_config=mc, train=True, rng=rng, dropout_rate=jnp.float32(0.0))
    np.testing.assert_array_equal(zero, model.apply(params, x, model_config=mc))


def test_stacked_state_holds_each_models_lr_dropout_and_key(configs, digits):
    mc = configs[0].model_config(digits.input_dim, digits.num_classes)
    state = stack.group_state(configs, mc)
    np.testing.assert_allclose(stack.learning_rates(state), [c.lr for c in configs])
    np.testing.assert_allclose(state.dropout_rate, [c.model.dropout for c in configs])
    from conftest import state_for

    one = state_for(configs[5], digits)
    np.testing.assert_array_equal(stack.member(state, 5).key, one.key)
    jax.tree_util.tree_map(np.testing.assert_array_equal, stack.member(state, 5).params, one.params)


def test_vmap_gives_each_models_history_alone(configs, alone, digits):
    result = sweep.run_sweep(configs, digits, strategy="vmap")
    assert [g.members for g in result.groups] == [list(range(8))] and result.groups[0].strategy == "vmap"
    for run, want in zip(result.runs, alone, strict=True):
        assert run.config == want.config
        assert_same_history(run.history, want.history)
        np.testing.assert_allclose(run.test_metrics["loss"], want.test_metrics["loss"], rtol=RTOL)


def test_sequential_gives_each_models_history_alone(configs, alone, digits):
    result = sweep.run_sweep(configs[:3], digits, strategy="sequential")
    assert result.strategy == "sequential" and len(result.groups[0].epoch_seconds) == 2
    for run, want in zip(result.runs, alone, strict=False):
        assert_same_history(run.history, want.history, rtol=0)  # the same program: the same bits


def test_strategy_auto_is_sequential_on_cpu_vmap_on_gpu():
    assert sweep.auto_strategy("cpu") == "sequential"
    assert sweep.auto_strategy("gpu") == sweep.auto_strategy("tpu") == "vmap"
    with pytest.raises(Exception, match="strategy"):
        sweep.resolve_strategy("parallel")


@pytest.mark.slow
def test_groups_of_different_shapes_train_apart(digits):
    configs = sweep.grid({**BASE, "epochs": 1}, {"hidden": [(16,), (8, 8)], "seed": [0, 1]})
    result = sweep.run_sweep(configs, digits, strategy="vmap")
    assert [g.members for g in result.groups] == [[0, 2], [1, 3]]
    for run, config in zip(result.runs, configs, strict=True):
        assert_same_history(run.history, train.fit(config, digits).history)


def test_cli_sweep_writes_results_summary_and_curves(tmp_path, capsys, alone):
    out = tmp_path / "sweep"
    code, stdout, err = run_cli(
        capsys,
        "sweep",
        *SMALL,
        "--seed",
        "0,1",
        "--lr",
        "0.001,0.003",
        "--dropout",
        "0,0.3",
        "--strategy",
        "vmap",
        "--output",
        out,
    )
    assert code == 0, err
    assert stdout.count("epoch 1/2") == 1 and stdout.count("epoch 2/2") == 1  # one line per epoch
    record = json.loads((out / "results.json").read_text())
    assert len(record["runs"]) == 8 and record["groups"][0]["members"] == list(range(8))
    assert set(record["groups"][0]) >= {"members", "strategy", "compile_seconds", "epoch_seconds"}
    for run, want in zip(record["runs"], alone, strict=True):
        assert run["config"] == want.config.to_dict() and set(run) >= {"history", "test_loss", "test_accuracy"}
        assert_same_history(run["history"], want.history)
    summary = (out / "summary.md").read_text()
    assert "lr 0.001, dropout 0.3 | 0, 1 |" in summary and summary.count("±") >= 12
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = run_cli(capsys, "sweep", *SMALL, "--output", out)
    assert code == 2 and "--output" in err and "--resume" in err


@pytest.mark.parametrize(
    "argv, shown",
    [
        (("--lr", "0.1,-1"), "--lr must be a positive number"),
        (("--dropout", "0,2"), "--dropout must be in [0, 1)"),
        (("--seed", "0,0"), "--seed lists 0 twice"),
        (("--activation", "relu,nope"), "unknown activation 'nope'"),
        (("--hidden", "32,0"), "--hidden sizes must be positive"),
        (("--strategy", "sequential", "--devices", "2"), "--devices splits"),
    ],
)
def test_cli_sweep_errors_name_the_flag(capsys, argv, shown):
    code, _, err = run_cli(capsys, "sweep", *SMALL[:6], *argv)
    assert code == 2 and shown in err, err


@pytest.mark.parametrize("name", ["sweep", "exp[1]*"])  # any characters: Orbax sees the folder by an alias
def test_resume_continues_a_sweep(name, tmp_path, capsys, configs, alone):
    out = tmp_path / name
    assert (
        run_cli(capsys, "sweep", *SMALL, "--seed", "0,1", "--dropout", "0.2", "--strategy", "vmap", "--output", out)[0]
        == 0
    )
    first = json.loads((out / "results.json").read_text())
    shutil.rmtree(out / "groups" / "0" / "2")  # as if killed during epoch 2
    (out / "results.json").unlink()
    code, stdout, err = run_cli(capsys, "sweep", "--resume", out)
    assert code == 0, err
    assert "epoch 1/2" not in stdout and "epoch 2/2" in stdout
    again = json.loads((out / "results.json").read_text())
    for a, b in zip(again["runs"], first["runs"], strict=True):
        assert a["config"] == b["config"]
        assert_same_history(a["history"], b["history"], rtol=0)
    code, _, err = run_cli(capsys, "sweep", "--resume", out, "--seed", "3")
    assert code == 2 and "--seed" in err


def test_resume_of_a_sequential_sweep(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert run_cli(capsys, "sweep", *SMALL, "--seed", "0,1", "--strategy", "sequential", "--output", out)[0] == 0
    assert (out / "runs" / "1" / "metrics.json").exists()
    first = json.loads((out / "results.json").read_text())
    code, stdout, err = run_cli(capsys, "sweep", "--resume", out)
    assert code == 0 and "epoch 1/2" not in stdout, err
    again = json.loads((out / "results.json").read_text())
    assert [r["history"] for r in again["runs"]] == [r["history"] for r in first["runs"]]
    # its epochs are run folders, which vmap cannot continue: another strategy is refused, not ignored
    code, stdout, err = run_cli(capsys, "sweep", "--resume", out, "--strategy", "vmap")
    assert code == 2 and stdout == "" and err.count("\n") == 1, err
    assert "--strategy vmap" in err and "saved with strategy sequential" in err
    assert run_cli(capsys, "sweep", "--resume", out, "--strategy", "sequential")[0] == 0  # the same one is fine


def test_load_plan_refuses_a_folder_without_one(tmp_path):
    with pytest.raises(UserInputError, match="holds no sweep.json .* can be started again"):
        sweep_checkpoint.load_plan(tmp_path)  # empty: as a sweep killed before it wrote its plan leaves it
    (tmp_path / "notes.txt").write_text("the user's")
    with pytest.raises(UserInputError, match="not a sweep folder"):
        sweep_checkpoint.load_plan(tmp_path)


@pytest.mark.slow
def test_model_axis_sharded_over_8_devices_gives_the_same_histories(digits):
    """6 models (padded to 8) over 8 forced CPU devices: each model's history as on one device."""
    import subprocess
    import sys

    from conftest import REPO, TIMEOUT, last_json, worker_env

    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "workers" / "sweep_worker.py"), "8", "0,1,2"],
        env=worker_env(8),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = last_json(proc.stdout)
    assert got["devices"] == 8
    configs = sweep.grid(BASE, {"seed": [0, 1, 2], "dropout": [0.0, 0.3]})
    want = sweep.run_sweep(configs, digits, strategy="vmap")
    for history, run in zip(got["histories"], want.runs, strict=True):
        assert_same_history(history, run.history)


def test_bench_models_per_second_quick(digits):
    from mlpjax.bench import benchmark as bench

    ds = digits.head(bench.QUICK_MODEL_STEPS * 16)
    rows = bench.models_per_second(ds, bench.BenchConfig(quick=True, batch_size=16, hidden=(16,)))
    assert [(r["models"], r["strategy"]) for r in rows] == [
        (k, s) for k in bench.QUICK_MODEL_COUNTS for s in ("vmap", "sequential")
    ]
    assert all(r["models_per_second"] > 0 and r["seconds"] > 0 for r in rows)
    assert rows[1]["x_one_model"] == 1.0
    text = bench.format_report(
        {
            "device": "cpu",
            "cpu_count": 2,
            "data": "digits",
            "train_examples": 160,
            "batch_size": 16,
            "hidden": [16],
            "matmul": {"shapes": {}},
            "mlpjax": {
                "step_gflop": 0,
                "xla_step_gflop": 0,
                "epoch_gflop": 0,
                "epoch_seconds": 1,
                "examples_per_second": 1,
                "gflops": 1,
                "fraction_of_ceiling": 0.1,
                "test_accuracy": 0.5,
                "compile_seconds": 1,
                "compiles_during_epochs": 0,
            },
            "baselines": {},
            "ratios": {},
            "predict": {"latency_ms_p50": 1, "latency_ms_p99": 1, "images": 1, "images_per_second": 1},
            "models_per_second": rows,
        }
    )
    assert "models per second" in text and "sequential" in text


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_experiments_epochs_and_dropout_train_through_the_sweep(tmp_path, monkeypatch, digits, strategy):
    """The quick `epochs` (2 seeds) and `dropout` (3 rates) experiments: each run's numbers are train.fit's."""
    from mlpjax.core.config import TrainConfig
    from mlpjax.experiments import common, dropout, epochs

    monkeypatch.setattr(common, "STRATEGY", strategy)
    monkeypatch.delenv("MLPJAX_DATA_DIR", raising=False)
    rtol = RTOL if strategy == "vmap" else 0
    report = epochs.run(tmp_path / "epochs", quick=True, source=common.DataChoice(), seed=0, log=lambda s: None)
    assert report.timing["strategy"] == strategy and report.results["seeds"] == [0, 1]
    for run in report.results["runs"]:
        want = train.fit(TrainConfig(dataset="digits", epochs=2, seed=run["seed"]), digits)
        assert_same_history(run["history"], want.history, rtol)
    report = dropout.run(tmp_path / "dropout", quick=True, source=common.DataChoice(), seed=0, log=lambda s: None)
    for rate, r in report.results["rates"].items():
        config = TrainConfig(dataset="digits", epochs=2, seed=0, model=model.ModelConfig(dropout=float(rate)))
        on_train = common.EpochEvaluator(config, digits, digits.x_train, digits.y_train)
        want = train.fit(config, digits, on_epoch_end=on_train)
        assert_same_history(r["history"], want.history, rtol)
        np.testing.assert_allclose(r["train_accuracy_per_epoch"], on_train.series("accuracy"), rtol=rtol)


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_diverging_model_is_recorded_and_the_others_train_on(digits, strategy):
    configs = sweep.grid({**BASE, "optimizer": "sgd"}, {"lr": [0.01, 1e30]})
    result = sweep.run_sweep(configs, digits, strategy=strategy)
    fine, bad = result.runs
    assert fine.diverged is None and all(np.isfinite(fine.history["loss"]))
    assert bad.diverged is not None and bad.diverged <= 2
    assert len(fine.history["loss"]) == 2


def test_a_vmapped_group_that_fits_one_model_at_a_time_only_is_refused_before_training(monkeypatch, configs, digits):
    from mlpjax.training import budget

    model_config = configs[0].model_config(digits.input_dim, digits.num_classes)
    parts = budget.training_bytes(configs[0], model_config, digits)
    one, together = sum(parts.values()), budget.group_bytes(parts, len(configs))
    assert together > one
    monkeypatch.setattr(memory, "free_memory", lambda: (one + together) // 2)
    sweep.check_sweep_memory(configs, digits, "sequential")  # one at a time fits
    with pytest.raises(FieldError) as e:
        sweep.run_sweep(configs, digits, strategy="vmap")
    assert e.value.field == "strategy" and f"its {len(configs)} models" in str(e.value)
    assert "sequential" in str(e.value)
    monkeypatch.setattr(memory, "free_memory", lambda: one - 1)
    with pytest.raises(FieldError) as e:
        sweep.check_sweep_memory(configs, digits, "sequential")
    assert e.value.field in ("batch_size", "hidden")


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_cli_sweep_too_large_for_memory_is_one_line_and_leaves_no_folder(tmp_path, capsys, strategy):
    out = tmp_path / "sweep"
    code, _, err = run_cli(
        capsys, "sweep", *SMALL[:6], "--hidden", "100000000", "--seed", "0,1", "--strategy", strategy, "--output", out
    )
    assert code == 2 and "--hidden 100000000: training would need" in err, err
    assert not out.exists()  # refused before the plan was written: the same --output can be used again


def test_a_sweep_into_a_folder_of_the_users_files_is_refused_and_they_are_kept(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "sweep", "--dataset", "digits", "--epochs", 1, "--seed", "0,1", "--output", tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "holds files that mlpjax did not write (notes.txt)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_an_earlier_sweep_and_keeps_the_users_files(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", "--dataset", "digits", "--epochs", 1, "--hidden", 8, "--output", out]
    assert run_cli(capsys, *argv, "--seed", "0,1,2")[0] == 0
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, *argv, "--seed", "0,1")
    assert code == 2 and "already holds a sweep" in err, err
    code, _, err = run_cli(capsys, *argv, "--seed", "0,1", "--overwrite")
    assert code == 0, err
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 2  # the new sweep's two models
    assert (out / "notes.txt").read_text() == "mine"
    assert run_cli(capsys, "sweep", "--resume", out)[0] == 0  # the new sweep resumes as any other


# -- the sweep's folder: checked paths, a bounded plan, the run checkpoints' guards ---------------------------


@pytest.mark.parametrize(
    "place, shown", [("under a file", "is a file, not a folder"), ("a dangling link", "broken symbolic link")]
)
def test_sweep_output_in_a_bad_place_is_one_line_naming_the_flag(tmp_path, capsys, place, shown):
    (tmp_path / "file").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    out = tmp_path / "file" / "sweep" if place == "under a file" else tmp_path / "link"
    code, stdout, err = run_cli(capsys, "sweep", *SMALL[:6], "--seed", "0,1", "--output", out)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"--output {out}" in err and shown in err, err
    assert (tmp_path / "file").read_text() == "mine" and not (tmp_path / "nowhere").exists()


def write_plan(folder, content) -> None:
    folder.mkdir()
    (folder / sweep_checkpoint.PLAN).write_text(content if isinstance(content, str) else json.dumps(content))


@pytest.mark.parametrize(
    "content, shown",
    [
        ({"format": "mlpjax-sweep", "version": 1, "strategy": "vmap", "configs": [1]}, "the plan is invalid"),
        ({"format": "mlpjax-sweep", "version": 1, "strategy": "vmap", "configs": []}, "the plan is invalid"),
        ({"format": "mlpjax-sweep", "version": 1, "strategy": 3, "configs": [{}]}, "the plan is invalid"),
        ({"format": "mlpjax-sweep", "version": 1, "strategy": "vmap", "configs": [{"hidden": [[1]]}]}, "invalid"),
        ({"format": "mlpjax-sweep", "version": 1, "strategy": "vmap", "configs": [{"epochs": "x"}]}, "epochs"),
        ('{"format": "mlpjax-sweep", "version": 1, "configs": ' + "[" * 100000 + "]" * 100000 + "}", "not valid JSON"),
        ([1, 2], "not an mlpjax sweep plan"),
    ],
)
def test_a_tampered_plan_is_one_line_naming_it(tmp_path, content, shown):
    write_plan(tmp_path / "sw", content)
    with pytest.raises(UserInputError, match=shown) as e:
        sweep_checkpoint.load_plan(tmp_path / "sw")
    assert str(tmp_path / "sw") in str(e.value)


def test_a_plan_that_is_no_regular_file_or_too_large_is_refused_unread(tmp_path, monkeypatch):
    import os

    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / sweep_checkpoint.PLAN)  # no writer: reading it would hang
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / sweep_checkpoint.PLAN).symlink_to("/dev/zero")
    for name, shown in (("fifo", "named pipe"), ("zero", "character device")):
        with pytest.raises(UserInputError, match=shown):
            sweep_checkpoint.load_plan(tmp_path / name)
    write_plan(tmp_path / "big", " " * 2000)
    monkeypatch.setattr(sweep_checkpoint, "MAX_PLAN_BYTES", 1000)
    with pytest.raises(UserInputError, match="a sweep plan is at most"):
        sweep_checkpoint.load_plan(tmp_path / "big")
    plan = sweep_checkpoint.Plan(sweep.grid(BASE, {"seed": list(range(5))}), "vmap")
    with pytest.raises(UserInputError, match="sweep fewer models"):  # what would not read back is not written
        sweep_checkpoint.SweepCheckpoints.open(tmp_path / "new", plan)
    assert not (tmp_path / "new").exists()


def saved_group(tmp_path, configs, digits, histories=None, edit=None):
    """Group 0 of ``configs`` saved as epoch 1 into sweep folder ``tmp_path/sw`` (``edit(arrays)`` changes its
    arrays first) and read back: the folder's hooks and the GroupStart."""
    mc = configs[0].model_config(digits.input_dim, digits.num_classes)
    state = stack.group_state(configs, mc)
    if edit is not None:
        state = state.replace(params=edit(state.params))
    histories = histories or [{k: [0.5] for k in ("loss", "accuracy", "val_loss", "val_accuracy")} for _ in configs]
    hooks = sweep_checkpoint.SweepCheckpoints.open(tmp_path / "sw", sweep_checkpoint.Plan(list(configs), "vmap"))
    try:
        hooks.group_saver(0)(1, sweep.GroupStart(state, histories))
    finally:
        hooks.close()
    return hooks, state


def test_sweep_checkpoints_have_the_run_checkpoints_guards(tmp_path, digits):
    configs = sweep.grid({**BASE, "epochs": 1}, {"seed": [0, 1]})
    nan_first = lambda params: jax.tree_util.tree_map(lambda a: a.at[0].set(jnp.nan), params)  # noqa: E731
    hooks, _ = saved_group(tmp_path, configs, digits, edit=nan_first)
    with pytest.raises(UserInputError, match="model 1's saved weights .* NaN or infinite"):
        hooks.group_start(0, configs)  # its history is finite: the weights were altered (the digest matches)
    diverged = [
        {k: [float("nan")] for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
        {k: [0.5] for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
    ]
    hooks, _ = saved_group(tmp_path / "diverged", configs, digits, histories=diverged, edit=nan_first)
    start = hooks.group_start(0, configs)  # a diverged model trains on with NaN weights: resumable
    assert np.isnan(start.histories[0]["loss"][0]) and start.histories[1]["loss"] == [0.5]
    hooks, state = saved_group(tmp_path / "plain", configs, digits)
    meta = tmp_path / "plain" / "sw" / "groups" / "0" / "1" / "meta" / "metadata"
    text = meta.read_text()
    meta.write_text(text.replace(json.loads(text)["digest"], "0" * 64))
    with pytest.raises(UserInputError, match="do not match their checksum"):
        hooks.group_start(0, configs)
    meta.write_text(text)
    np.testing.assert_array_equal(
        hooks.group_start(0, configs).state.params["output"]["kernel"], state.params["output"]["kernel"]
    )
    with pytest.raises(UserInputError, match="does not match the sweep's plan"):
        hooks.group_start(0, sweep.grid({**BASE, "epochs": 1}, {"seed": [0, 2]}))


def test_a_vmapped_groups_memory_is_checked_before_its_arrays_are_restored(tmp_path, digits, monkeypatch):
    configs = sweep.grid({**BASE, "epochs": 1}, {"seed": [0, 1]})
    hooks, _ = saved_group(tmp_path, configs, digits)
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(UserInputError, match="restoring it needs .* of memory"):
        hooks.group_start(0, configs)


def test_a_sequential_model_stopped_in_its_first_save_starts_again_on_resume(tmp_path, capsys):
    out = tmp_path / "sweep"
    flags = (*SMALL[:2], "--epochs", "1", *SMALL[4:], "--seed", "0,1", "--strategy", "sequential", "--quiet")
    assert run_cli(capsys, "sweep", *flags, "--output", out)[0] == 0
    first = json.loads((out / "results.json").read_text())
    shutil.rmtree(out / "runs" / "1")  # as if killed in model 2's first save: a half-made epoch, no metrics.json
    shutil.copytree(
        out / "runs" / "0" / "checkpoints" / "1", out / "runs" / "1" / "checkpoints" / "1.orbax-checkpoint-tmp-7"
    )
    (out / "results.json").unlink()
    code, _, err = run_cli(capsys, "sweep", "--resume", out, "--quiet")
    assert code == 0, err
    again = json.loads((out / "results.json").read_text())
    assert [r["history"] for r in again["runs"]] == [r["history"] for r in first["runs"]]
    assert not list((out / "runs" / "1" / "checkpoints").glob("*tmp*"))


def test_a_sweep_killed_while_it_wrote_its_plan_starts_again(tmp_path, capsys):
    """Found by the kill test: a kill in the plan's write left its temporary file, which --output took for the
    user's file and --resume for no sweep: both refused."""
    out = tmp_path / "sweep"
    out.mkdir()
    (out / ".sweep.json.k1ll3d__.tmp").write_text('{"format": "mlpjax-sw')
    code, _, err = run_cli(capsys, "sweep", "--resume", out)
    assert code == 2 and "can be started again with the same output folder" in err, err
    flags = (*SMALL[:2], "--epochs", "1", *SMALL[4:], "--seed", "0,1", "--strategy", "sequential", "--quiet")
    code, _, err = run_cli(capsys, "sweep", *flags, "--output", out)
    assert code == 0, err
    assert not list(out.glob(".sweep.json.*"))  # the leftover is removed once the plan is in place


# A sweep killed at any instant resumes, or starts again with the same command, to the numbers of a sweep never
# stopped (conftest.kill_at_instants). vmap: 4 models, two of which stop early at epoch 2 (their best weights kept
# in the group's checkpoints); sequential: 2 models, each a run folder.
KILLED_SWEEPS = {
    "vmap": ["--epochs", "3", "--seed", "0,1", "--lr", "0.03,0.1", "--validation-split", "0.2"]
    + ["--early-stopping", "1", "--strategy", "vmap"],
    "sequential": ["--epochs", "2", "--seed", "0,1", "--lr", "0.03", "--strategy", "sequential"],
}


def killed_sweep(strategy: str) -> list[str]:
    return ["sweep", "--dataset", "digits", "--hidden", "16", "--batch-size", "32", *KILLED_SWEEPS[strategy], "--quiet"]


def sweep_numbers(directory) -> list[dict]:
    runs = json.loads((directory / "results.json").read_text())["runs"]
    return [{k: r[k] for k in ("history", "test_metrics", "kept_epoch", "diverged")} for r in runs]


def resume_sweep(directory) -> list:
    return ["sweep", "--resume", directory, "--quiet"]


@pytest.mark.parametrize(
    "strategy, instants, sig",
    [
        # the first epoch whole; the report in writing
        pytest.param("vmap", [r"^groups/0/1$", r"^results\.json$"], signal.SIGKILL, id="vmap"),
        # model 2 in its first save (at the latest, once it is whole); the report in writing
        pytest.param(
            "sequential",
            [r"^runs/1/checkpoints/1(\.orbax-checkpoint-tmp)?$", r"^results\.json$"],
            signal.SIGKILL,
            id="sequential",
        ),
        # Ctrl-C: one line "interrupted", status 130, at once (in the first epoch's save; in model 2's first)
        pytest.param("vmap", [r"^groups/0/1(\.orbax-checkpoint-tmp)?"], signal.SIGINT, id="vmap-ctrl-c"),
        pytest.param("sequential", [r"^runs/1/checkpoints$"], signal.SIGINT, id="sequential-ctrl-c"),
    ],
)
def test_a_sweep_killed_at_an_instant_resumes_or_starts_again(capsys, cli_forker, tmp_path, strategy, instants, sig):
    argv = killed_sweep(strategy)
    outcomes = kill_at_instants(capsys, cli_forker, tmp_path, argv, resume_sweep, sweep_numbers, instants, sig)
    assert not [o for o in outcomes.values() if "ended" in o], outcomes  # each stopped before the end


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_ctrl_c_ends_a_sweep_at_once_with_one_line(tmp_path, strategy):
    """``mlpjax sweep`` is among the commands that Ctrl-C ends at once (SIGINT is waited for by a thread, not
    raised where the main thread happens to be: in a compiled epoch or an Orbax save): in the middle of training
    wide models, one line, status 130, within seconds, leaving its plan and its complete epochs (a folder that
    resumes: test_a_sweep_killed_at_an_instant_resumes_or_starts_again[*-ctrl-c])."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to see when the process is ready")
    out = tmp_path / "sweep"
    argv = ["sweep", "--dataset", "digits", "--hidden", "1024", "--epochs", "100000", "--seed", "0,1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpjax.cli", *argv, "--strategy", strategy, "--quiet", "--output", str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: sigint_blocked(proc.pid), timeout=60, proc=proc)  # before: never (a KeyboardInterrupt)
        first = out / ("groups/0" if strategy == "vmap" else "runs/0/checkpoints")
        wait_for(lambda: orbax_io.complete_steps(first), proc=proc)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - sent < 5, err  # about a second, on a busy machine
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines() == ["interrupted"], err
    assert not list(out.glob("*.json.*"))  # (the plan was whole before training began)
    assert (out / "sweep.json").is_file() and orbax_io.complete_steps(first)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_sweep_killed_after_any_path_it_creates_resumes_or_starts_again(capsys, cli_forker, tmp_path, strategy):
    """``MLPJAX_KILL_INSTANTS=all``: after every path (about 170 instants vmapped, 260 sequential)."""
    argv = killed_sweep(strategy)
    outcomes = kill_at_instants(capsys, cli_forker, tmp_path, argv, resume_sweep, sweep_numbers, kill_instants)
    print(
        f"{strategy}: {len(outcomes)} instants: {sum('resumed' in o for o in outcomes.values())} resumed, "
        f"{sum('started again' in o for o in outcomes.values())} started again"
    )


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_what_a_kill_leaves_of_unfinished_writing_is_removed_by_the_resumed_sweep(capsys, tmp_path, strategy):
    """The temporary files and folders a kill leaves (the report's, TensorBoard's staging folders, a group's or a
    model's Orbax folders, a model's logs) are removed by ``sweep --resume``, which ends with the same numbers."""
    out = tmp_path / "sweep"
    code, _, err = run_cli(capsys, *killed_sweep(strategy), "--output", out)
    assert code == 0, err
    want = sweep_numbers(out)
    planted = [
        ".results.json.k1ll3d__.tmp",
        ".summary.md.k1ll3d__.tmp",
        ".curves.png.k1ll3d__.tmp",
        ".tensorboard.k1ll3d__.tmp/events",
        ".tensorboard.old.k1ll3d__.tmp/tensorboard/events",
    ]
    planted += (
        ["groups/0/4.orbax-checkpoint-tmp-1733580000/state/x"]
        if strategy == "vmap"
        else ["runs/0/.metrics.json.k1ll3d__.tmp", "runs/1/checkpoints/3.orbax-checkpoint-tmp-1733580000/state/x"]
    )
    for name in planted:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"half")
    code, _, err = run_cli(capsys, *resume_sweep(out))
    assert code == 0, err
    assert not leftovers(out), leftovers(out)
    assert sweep_numbers(out) == want


# -- a full disk (a real, small tmpfs): one line, exit 2, no temporary files; the folder resumes --------------
# The tmpfs is mounted as root and always unmounted; the tests are skipped where mounting is not permitted. Sizes
# (digits, hidden 128, 3 epochs): a vmapped group of 2 models takes about 260 KiB an epoch, one model's run about
# 100-150 KiB an epoch plus its logs, so SMALL_DISK holds an epoch and not the whole sweep or run.

SMALL_DISK, LARGE_DISK = "360k", "64m"
FULL_SWEEP = (
    "--dataset",
    "digits",
    "--epochs",
    "3",
    "--batch-size",
    "64",
    "--hidden",
    "128",
    "--seed",
    "0,1",
    "--quiet",
)
FULL_TRAIN = ("--dataset", "digits", "--epochs", "3", "--batch-size", "64", "--hidden", "128", "--seed", "0", "--quiet")


def mount_tmpfs(where, size: str) -> None:
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here ({result.stderr.strip() or 'mount failed'}): needs root "
            "and a kernel that permits it"
        )


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of :data:`SMALL_DISK` at ``tmp_path/disk``; ``grow(size)`` remounts it larger, its files kept.
    Always unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mount_tmpfs(disk, SMALL_DISK)

    def grow(size: str = LARGE_DISK) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True, capture_output=True)

    try:
        yield disk, grow
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def sweep_results(folder) -> list[dict]:
    """Each model's config, history and final figures from a sweep's results.json."""
    runs = json.loads((folder / "results.json").read_text())["runs"]
    return [{k: r[k] for k in ("config", "history", "test_loss", "test_accuracy", "diverged")} for r in runs]


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_full_disk_during_a_sweep_is_one_line_and_the_sweep_resumes(small_disk, tmp_path, capsys, strategy):
    disk, grow = small_disk
    out = disk / "sweep"
    code, _, err = run_cli(capsys, "sweep", *FULL_SWEEP, "--strategy", strategy, "--output", out)
    # vmap: a group's save fails; sequential: a model's save or one of its logs, whichever the disk stops
    assert_one_line(
        code, err, "space left on", *(["cannot save epoch", "earlier epochs are intact"] if strategy == "vmap" else [])
    )
    assert not leftovers(out), leftovers(out)
    roots = [out / "groups" / "0"] if strategy == "vmap" else [out / "runs" / i / "checkpoints" for i in "01"]
    assert any(orbax_io.complete_steps(root) for root in roots)  # the disk held an epoch ...
    assert not (out / "results.json").exists()  # ... and not the whole sweep

    grow()
    code, _, err = run_cli(capsys, "sweep", "--resume", out, "--quiet")
    assert code == 0, err
    assert not leftovers(out), leftovers(out)
    whole = tmp_path / "whole"  # the same sweep, uninterrupted, on the ordinary disk
    assert run_cli(capsys, "sweep", *FULL_SWEEP, "--strategy", strategy, "--output", whole)[0] == 0
    assert sweep_results(out) == sweep_results(whole)


def test_a_full_disk_during_training_is_one_line_and_the_run_resumes(small_disk, tmp_path, capsys):
    disk, grow = small_disk
    out = disk / "run"
    code, _, err = run_cli(capsys, "train", *FULL_TRAIN, "--output", out)
    assert_one_line(code, err, "space left on")
    assert not leftovers(out), leftovers(out)
    assert orbax_io.complete_steps(out / "checkpoints")[-1:] in ([1], [2])

    grow()
    resumes_as_if_never_stopped(capsys, out, tmp_path / "whole")


def resumes_as_if_never_stopped(capsys, out, whole) -> None:
    """``train --resume out`` succeeds, leaves no temporary file and ends with the history, ``history.csv`` and
    a learning-curves figure of the same run never stopped (trained into ``whole``)."""
    code, _, err = run_cli(capsys, "train", "--resume", out, "--quiet")
    assert code == 0, err
    assert not leftovers(out), leftovers(out)
    assert run_cli(capsys, "train", *FULL_TRAIN, "--output", whole)[0] == 0
    history = [json.loads((d / "metrics.json").read_text())["history"] for d in (out, whole)]
    assert history[0] == history[1]
    assert (out / "history.csv").read_text() == (whole / "history.csv").read_text()
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def fill(disk) -> None:
    """Take every free block of the tmpfs ``disk`` (its file ``filler``): from now on, writes there fail with
    ENOSPC, until the filler is removed."""
    try:
        with open(disk / "filler", "ab") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError as e:
        assert e.errno == errno.ENOSPC, e


def fill_when_called(monkeypatch, disk, module, name: str, when=lambda *args, **kwargs: True) -> None:
    """The first call of ``module.name`` for which ``when(*args, **kwargs)`` holds fills ``disk`` first: the disk
    becomes full just as that file is written."""
    original, filled = getattr(module, name), list[bool]()

    def filling(*args, **kwargs):
        if not filled and when(*args, **kwargs):
            filled.append(True)
            fill(disk)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, filling)


@pytest.mark.parametrize("drawn", ["epoch 1", "last"])
def test_a_disk_that_fills_while_the_learning_curves_are_drawn_is_one_line_and_the_run_resumes(
    small_disk, tmp_path, capsys, monkeypatch, drawn
):
    """The figure is drawn on a thread. Its failure at epoch 1 is said at the next epoch's end (or the next save's
    failure, or the CSV's, is said first); the last figure's failure (the one marking the kept epoch, drawn after
    everything else was written) is said when the run ends. Either is one line saying the checkpoints are kept."""
    from mlpjax.runs import logs

    disk, grow = small_disk
    grow()  # room for the whole run: the disk fills only when the figure is drawn
    out = disk / "run"

    def when(history, *args, kept_epoch=None, **kwargs):
        return len(history["loss"]) == 1 if drawn == "epoch 1" else kept_epoch is not None

    fill_when_called(monkeypatch, disk, logs, "learning_curves", when)
    code, _, err = run_cli(capsys, "train", *FULL_TRAIN, "--output", out)
    assert_one_line(code, err, "space left on", "intact")  # (a save's line: "the earlier epochs are intact")
    if drawn == "last":
        assert f"{out / 'learning_curves.png'}: cannot write" in err, err
        assert err.rstrip().endswith("; the checkpoints saved so far are intact"), err
    assert not leftovers(out), leftovers(out)  # .learning_curves.png.XXXX.tmp among them
    assert orbax_io.complete_steps(out / "checkpoints")

    monkeypatch.undo()
    (disk / "filler").unlink()
    resumes_as_if_never_stopped(capsys, out, tmp_path / "whole")


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_disk_that_fills_while_a_sweeps_curves_are_drawn_is_one_line_and_the_sweep_resumes(
    small_disk, capsys, monkeypatch, strategy
):
    from mlpjax import plots

    disk, grow = small_disk
    grow()  # room for the whole sweep: the disk fills only when its curves.png is drawn
    out = disk / "sweep"
    fill_when_called(monkeypatch, disk, plots, "training_curves")
    code, _, err = run_cli(capsys, "sweep", *FULL_SWEEP, "--strategy", strategy, "--output", out)
    assert_one_line(code, err, f"{out / 'curves.png'}: cannot write: no space left on", "checkpoints are intact")
    assert not leftovers(out), leftovers(out)
    assert not (out / "curves.png").exists() and not (out / "tensorboard").exists()
    kept = sweep_results(out)  # results.json, written before curves.png, is kept

    monkeypatch.undo()
    (disk / "filler").unlink()
    code, _, err = run_cli(capsys, "sweep", "--resume", out, "--quiet")
    assert code == 0, err
    assert not leftovers(out), leftovers(out)
    assert sweep_results(out) == kept
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "tensorboard").is_dir()


def test_a_sweep_onto_a_read_only_disk_is_one_line_naming_the_flag(small_disk, capsys):
    disk, _ = small_disk
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, capture_output=True)
    code, _, err = run_cli(capsys, "sweep", *FULL_SWEEP, "--output", disk / "sweep")
    assert_one_line(code, err, f"--output {disk / 'sweep'}", "read-only file system")


def steps(root) -> list[int]:
    return orbax_io.complete_steps(root)


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_sweep_save_every_saves_its_epochs_changes_no_number_and_resumes_exactly(tmp_path, capsys, strategy):
    args = ("sweep", "--dataset", "digits", "--epochs", "5", "--batch-size", "32", "--hidden", "16")
    args += ("--seed", "0,1", "--dropout", "0.2", "--strategy", strategy, "--quiet")
    every, once = tmp_path / "every", tmp_path / "once"
    assert run_cli(capsys, *args, "--output", every)[0] == 0
    assert run_cli(capsys, *args, "--save-every", "3", "--output", once)[0] == 0
    assert json.loads((once / "sweep.json").read_text())["save_every"] == 3
    # saved: epochs 1, 3 and 5; kept: the last 2 of each group (vmap) or model (sequential)
    folders = (
        [once / "groups" / "0"] if strategy == "vmap" else [once / "runs" / str(i) / "checkpoints" for i in (0, 1)]
    )
    assert all(steps(f) == [3, 5] for f in folders)
    first = json.loads((once / "results.json").read_text())
    assert [r["history"] for r in first["runs"]] == [
        r["history"] for r in json.loads((every / "results.json").read_text())["runs"]
    ]  # bit for bit: saving changes no number
    # as if killed during epoch 5: the last saved epoch is 3, epoch 4 is trained again
    for f in folders:
        shutil.rmtree(f / "5")
    (once / "results.json").unlink()
    code, stdout, err = run_cli(capsys, "sweep", "--resume", once, "--save-every", "1")
    assert code == 0, err
    assert all(steps(f) == [4, 5] for f in folders)  # another --save-every on resume: every epoch from then on
    again = json.loads((once / "results.json").read_text())
    assert [r["history"] for r in again["runs"]] == [r["history"] for r in first["runs"]]
    assert [r["test_accuracy"] for r in again["runs"]] == [r["test_accuracy"] for r in first["runs"]]


@pytest.mark.parametrize(
    "argv, shown",
    [
        (("--save-every", "0", "--output", "OUT"), "--save-every must be at least 1, got 0"),
        (("--save-every", "-1", "--output", "OUT"), "--save-every must be at least 1, got -1"),
        (("--save-every", "2.5", "--output", "OUT"), "--save-every: expected an integer, got '2.5'"),
        (("--save-every", "2"), "--save-every needs --output DIR (or --resume DIR)"),
    ],
)
def test_a_bad_sweep_save_every_is_one_line_and_writes_nothing(tmp_path, capsys, argv, shown):
    argv = tuple(str(tmp_path / "out") if a == "OUT" else a for a in argv)
    code, out, err = run_cli(capsys, "sweep", *SMALL, "--seed", "0,1", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and shown in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_models_of_another_normalize_train_in_their_own_group_on_their_own_data(digits, strategy):
    """normalize changes the data a model trains on: models that differ in it never share a vmapped group, and
    each gives the history ``fit`` gives it alone (the scaling fitted on its own rows trained on)."""
    configs = sweep.grid(
        {**BASE, "epochs": 1, "validation_split": 0.2},
        {"normalize": ["none", "standard", "minmax"], "seed": [0, 1]},
    )
    result = sweep.run_sweep(configs, digits, strategy=strategy)
    assert [configs[i].normalize for i in range(3)] == ["none", "standard", "minmax"]  # seed 0, then seed 1
    assert [g.members for g in result.groups] == [[0, 3], [1, 4], [2, 5]]
    for run, config in zip(result.runs, configs, strict=True):
        assert_same_history(run.history, train.fit(config, digits).history)
    assert result.runs[0].history != result.runs[1].history != result.runs[2].history


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_sweep_over_normalize_resumes_to_its_numbers(tmp_path, capsys, strategy):
    """``sweep --normalize none,minmax,standard`` with either strategy: killed after its first epoch, it resumes
    to the numbers of the uninterrupted sweep (the scaling fitted again on the same rows, or read from the run);
    a sequential sweep's runs carry their scaling, as ``train``'s do."""
    from mlpjax.runs import checkpoint

    args = ("sweep", "--dataset", "digits", "--epochs", "2", "--batch-size", "64", "--hidden", "16", "--quiet")
    out = tmp_path / "sweep"
    argv = (*args, "--normalize", "none,minmax,standard", "--strategy", strategy, "--output", out)
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    first = json.loads((out / "results.json").read_text())
    assert [r["config"]["normalize"] for r in first["runs"]] == ["none", "minmax", "standard"]
    assert len({str(r["history"]) for r in first["runs"]}) == 3
    folders = (
        [out / "groups" / str(g) for g in range(3)]
        if strategy == "vmap"
        else [out / "runs" / str(i) / "checkpoints" for i in range(3)]
    )
    for f in folders:
        shutil.rmtree(f / "2")  # as if killed during epoch 2
    (out / "results.json").unlink()
    code, _, err = run_cli(capsys, "sweep", "--resume", out)
    assert code == 0, err
    again = json.loads((out / "results.json").read_text())
    assert [r["history"] for r in again["runs"]] == [r["history"] for r in first["runs"]]
    assert [r["test_accuracy"] for r in again["runs"]] == [r["test_accuracy"] for r in first["runs"]]
    if strategy == "sequential":
        kinds = [checkpoint.load_model(out / "runs" / str(i)).scaler for i in range(3)]
        assert kinds[0] is None and [s.kind for s in kinds[1:] if s] == ["minmax", "standard"]
