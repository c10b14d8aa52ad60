"""Tensor parallel (``--model-parallel M``): the hidden layers' weights split over a ``model`` mesh axis give one
device's history, on meshes (data, model) = (8, 1), (4, 2), (2, 4), (1, 8) of 8 CPU devices.

The 8-device checks run in one subprocess (tests/workers/tensor_parallel_worker.py): the number of CPU devices must be
set before JAX starts its backend.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, TIMEOUT, last_json, run_cli, worker_env
from test_distributed import DIGITS, assert_close, assert_same_history

WORKER = REPO / "tests" / "workers" / "tensor_parallel_worker.py"


# --- in-process: no extra devices needed ---------------------------------------------------------------


def test_one_rule_splits_params_and_adam_state_by_their_key_paths():
    import jax

    from mlpjax.core.config import TrainConfig
    from mlpjax.core.model import ModelConfig
    from mlpjax.core.state import create_train_state
    from mlpjax.training import mesh

    config = TrainConfig(dataset="digits", model=ModelConfig(hidden=(32, 16)))
    model_config = config.model_config(64, 10)
    state = create_train_state(jax.random.PRNGKey(0), config, model_config)
    specs = {
        jax.tree_util.keystr(path): mesh.param_spec(path, leaf.ndim, model_config.tensor_splits())
        for path, leaf in jax.tree_util.tree_leaves_with_path(state)
    }
    columns, rows, whole = (None, "model"), ("model", None), ()
    expected = {
        "['hidden_0']['kernel']": columns,
        "['hidden_0']['bias']": ("model",),
        "['hidden_1']['kernel']": columns,
        "['hidden_1']['bias']": ("model",),
        "['output']['kernel']": rows,
        "['output']['bias']": whole,
    }
    for tree in (".params", ".opt_state[0].mu", ".opt_state[0].nu"):
        for leaf, spec in expected.items():
            assert tuple(specs[tree + leaf]) == spec, tree + leaf
    assert tuple(specs[".opt_state[0].count"]) == tuple(specs[".step"]) == tuple(specs[".key"]) == whole
    assert mesh.make_mesh(1).axis_names == ("data",)  # --model-parallel 1: the data-parallel mesh


def test_bad_model_parallel_flags_are_one_line_errors(capsys):
    import jax

    from mlpjax import cli

    local = jax.local_device_count()
    assert cli.main(["train", "--dataset", "digits", "--model-parallel", str(local + 1)]) == 2
    err = capsys.readouterr().err
    assert f"--model-parallel {local + 1}: the model axis must divide --devices {local}" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--model-parallel", "0")
    assert code == 2 and "--model-parallel" in err


# --- one subprocess with 8 CPU devices ------------------------------------------------------------------


@pytest.fixture(scope="module")
def eight_devices() -> dict:
    """Digits trained on one device and on 4 meshes, 2 placed states, the masks, 3 command lines."""
    proc = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(DIGITS)],
        env=worker_env(8),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return last_json(proc.stdout)


def test_every_mesh_shape_trains_to_one_devices_history(eight_devices):
    runs = eight_devices["runs"]
    reference = runs.pop("1")
    assert reference["history"]["loss"][-1] < 0.9 * reference["history"]["loss"][0]  # it learns
    for name, run in runs.items():
        assert run["devices"] == 8 and run["step"] == reference["step"], name
        assert run["state_devices"] == [1], name  # fit returns this process's single-device copy
    assert_same_history({f"mesh {name}": run for name, run in runs.items()}, reference)


def test_two_hidden_layers_split_by_columns_train_to_one_devices_history(eight_devices):
    runs = eight_devices["two_layers"]
    assert runs["2x4"]["state_devices"] == [1]
    assert_same_history({"mesh 2x4, hidden 32 16": runs["2x4"]}, runs["1"])


@pytest.mark.parametrize("mesh, model", [("4x2", 2), ("2x4", 4)])
def test_weights_and_adam_state_stay_split_over_model_while_training(eight_devices, mesh, model):
    out = eight_devices["placed"][mesh]
    assert out["mesh"] == {"data": 8 // model, "model": model}
    h = 32 // model
    split = {
        "['hidden_0']['kernel']": [[64, h]],
        "['hidden_0']['bias']": [[h]],
        "['output']['kernel']": [[h, 10]],
        "['output']['bias']": [[10]],
    }
    for tree in (".params", ".opt_state[0].mu", ".opt_state[0].nu"):
        for leaf, shards in split.items():
            assert out["shards"][tree + leaf] == shards, tree + leaf
    assert out["shards"][".step"] == [[]] and out["shards"][".key"] == [[2]]
    # runner.local gathers the whole of every leaf onto one device
    assert out["local"][".params['hidden_0']['kernel']"] == [[64, 32], 1]
    assert out["local"][".opt_state[0].mu['output']['kernel']"] == [[32, 10], 1]
    # the same compiled epoch as fit's on that mesh: the same first epoch
    assert_close([out["loss"]], eight_devices["runs"][mesh]["history"]["loss"][:1], f"{mesh}, placed epoch")


def test_dropout_masks_sharded_over_data_and_model_equal_the_unsharded_ones(eight_devices):
    out = eight_devices["masks"]
    assert out["partitionable"] and out["equal_4x2"] and out["equal_2x4"]
    assert 0.4 < out["keep_fraction"] < 0.6  # dropout 0.5: the masks are not degenerate


def test_the_command_line_trains_tensor_parallel_and_refuses_bad_splits(eight_devices):
    run = eight_devices["cli"]
    assert run["code"] == 0, run["err"]
    assert "8 devices: data-parallel over 4 x tensor-parallel over 2" in run["out"] and "test accuracy" in run["out"]
    for name, message in (
        ("cli_hidden", "--hidden 30: with --model-parallel 4 every hidden width must divide by 4"),
        ("cli_devices", "--model-parallel 3: the model axis must divide --devices 8"),
    ):
        bad = eight_devices[name]
        assert bad["code"] == 2 and message in bad["err"], bad["err"]
        assert len(bad["err"].strip().splitlines()) == 1 and "Traceback" not in bad["err"]
