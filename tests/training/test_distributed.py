"""Data-parallel training: 1, 2 and 8 CPU devices and 2 real processes give one device's history.

The multi-device checks run in subprocesses (tests/workers/distributed_worker.py) because the number of CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``) must be set before JAX starts its backend.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from conftest import REPO, TIMEOUT, last_json, mnist_dir, worker_env

from mlpjax.training import mesh
from mlpjax.training.rows import batch_indices

WORKER = REPO / "tests" / "workers" / "distributed_worker.py"
RTOL = 1e-5  # float reassociation of the per-device partial sums; nothing else may differ


def start_worker(devices: int, *args: str) -> tuple:
    """A worker in the background, its output in files (a full pipe would stall it while another runs)."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    return (
        subprocess.Popen(
            [sys.executable, str(WORKER), *args], env=worker_env(devices), stdout=out, stderr=err, text=True
        ),
        out,
        err,
    )


def finish(workers: list) -> list[dict]:
    """Wait for every worker; each must exit 0 and print its JSON line."""
    outs = []
    try:
        for proc, out, err in workers:
            proc.wait(timeout=TIMEOUT)
            out.seek(0), err.seek(0)
            assert proc.returncode == 0, err.read()[-3000:]
            outs.append(last_json(out.read()))
    finally:
        for proc, out, err in workers:
            if proc.poll() is None:
                proc.kill()
            out.close(), err.close()
    return outs


def assert_close(a, b, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rel = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))
    assert rel <= RTOL, f"{what}: relative difference {rel:.2e} > {RTOL}: {a.tolist()} vs {b.tolist()}"


def assert_same_history(runs: dict, reference: dict):
    for name, run in runs.items():
        for key in ("loss", "val_loss"):
            assert_close(run["history"][key], reference["history"][key], f"{name}, {key}")
        for key in ("accuracy", "val_accuracy"):  # a count of argmax hits: only a near-tie may flip
            np.testing.assert_allclose(run["history"][key], reference["history"][key], atol=2e-3)


# --- in-process: no extra devices needed ---------------------------------------------------------------


def test_batches_are_padded_to_a_multiple_of_the_devices_with_weight_zero():
    import jax

    order = jax.random.permutation(jax.random.PRNGKey(0), 21)
    idx1, w1 = batch_indices(21, 10, order)
    idx8, w8 = batch_indices(21, 10, order, multiple=8)
    assert idx1.shape == (3, 10) and idx8.shape == (3, 16)
    np.testing.assert_array_equal(np.asarray(idx8)[:, :10], np.asarray(idx1))  # the same examples per step
    np.testing.assert_array_equal(np.asarray(w8)[:, :10], np.asarray(w1))
    assert float(np.asarray(w8)[:, 10:].sum()) == 0.0 and float(np.asarray(w8).sum()) == 21.0


def test_bad_parallel_flags_are_one_line_errors(capsys):
    import jax

    from mlpjax import cli

    assert cli.main(["train", "--dataset", "digits", "--devices", str(jax.local_device_count() + 1)]) == 2
    assert "--devices" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", "digits", "--process-id", "1", "--num-processes", "2"]) == 2
    assert "need --coordinator" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", "digits", "--coordinator", "nohost"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


# --- subprocesses with 8 CPU devices --------------------------------------------------------------------

DIGITS = {"dataset": "digits", "epochs": 3, "batch_size": 100, "hidden": [32], "lr": 0.01, "seed": 0}


@pytest.fixture(scope="module")
def eight_devices() -> dict:
    """Masks, and the digits (and an MNIST slice, where present) trained on 1, 2 and 8 devices."""
    specs = [{"digits": {"dataset": "digits", "config": DIGITS, "extra": True}}]
    folder = mnist_dir()
    if folder is not None:  # a second worker, alongside: their compilations use both cores
        specs.append(
            {
                "mnist": {
                    "dataset": "mnist",
                    "data_dir": str(folder),
                    "n_train": 500,
                    "n_test": 200,
                    "config": {"dataset": "mnist", "epochs": 2, "batch_size": 64, "hidden": [64], "seed": 3},
                }
            }
        )
    outs = finish(
        [start_worker(8, "devices", json.dumps(spec), *(["masks"] if i == 0 else [])) for i, spec in enumerate(specs)]
    )
    return {k: v for out in outs for k, v in out.items()}


def test_dropout_masks_do_not_depend_on_the_device_count(eight_devices):
    out = eight_devices["masks"]
    assert out["devices"] == 8 and out["partitionable"]
    assert out["equal_2"] and out["equal_8"]  # the same bits, whatever the sharding
    # jax_threefry_partitionable: each device draws only its own rows, with no communication ...
    assert out["collectives_2"] == [] and out["collectives_8"] == []
    # ... and padding a batch with more rows leaves the real rows' masks unchanged
    assert out["padded_prefix_equal"]
    assert 0.4 < out["keep_fraction"] < 0.6  # dropout 0.5: the masks are not degenerate
    # Without the flag: other bits (so the check above compares a real choice), still sharding-invariant.
    assert out["unpartitionable_differs"] and out["unpartitionable_equal_8"]


def test_padding_warns_only_where_it_would_change_the_dropout_masks():
    import warnings

    import jax

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mesh.check_padding(100, 8)  # partitionable bits: padding is harmless, no warning
        mesh.check_padding(128, 8)
    with jax.threefry_partitionable(False), pytest.warns(UserWarning, match="dropout masks differ"):
        mesh.check_padding(100, 8)


def check_devices(out: dict):
    reference = out["1"]
    assert reference["devices"] == 1
    assert reference["history"]["loss"][-1] < 0.9 * reference["history"]["loss"][0]  # it learns
    for n in ("2", "8"):
        assert out[n]["devices"] == int(n) and out[n]["step"] == reference["step"]
        assert out[n]["state_devices"] == [1]  # the returned state is this process's single-device copy
    assert_same_history({f"{n} devices": out[n] for n in ("2", "8")}, reference)


def test_1_2_and_8_devices_train_digits_to_the_same_history(eight_devices):
    # 1347 examples in batches of 100: neither divides by 8 (zero rows pad the data, weight-0 rows the batches)
    out = eight_devices["digits"]
    check_devices(out)
    # The multi-process layout on one process: rows sharded (1/8 a device), batches gathered by reduce-scatter
    rows = out["8_rows"]
    assert_close(rows["loss"], out["1"]["history"]["loss"], "8 devices, rows sharded, loss")
    assert rows["x_rows"] == 1352 and rows["x_shard_rows"] == [169] and rows["steps"] == 14
    # The command line: checkpoints written on 2 devices, resumed on 8, the same history as one device's.
    cli = out["cli"]
    assert cli["codes"] == [0, 0] and cli["devices"] == 8
    first_two = {"history": {k: v[:2] for k, v in out["1"]["history"].items()}}
    assert_same_history({"2 devices, then 8 resumed": cli}, first_two)


@pytest.mark.mnist
def test_1_2_and_8_devices_train_an_mnist_slice_to_the_same_history(mnist_path, eight_devices):
    check_devices(eight_devices["mnist"])


# --- two real processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_like_one_and_checkpoint_once(eight_devices, tmp_path):
    """2 processes x 2 CPU devices (gloo over loopback): one epoch saved collectively, then a second resumed
    through the command line; the single-process run's first two epochs, written once."""
    from mlpjax.runs import checkpoint

    run = tmp_path / "run"
    spec = {"dataset": "digits", "config": {**DIGITS, "epochs": 1}, "output": str(run)}
    port = str(free_port())
    outs = finish([start_worker(2, "process", json.dumps(spec), port, str(i), "2") for i in range(2)])
    first, second = outs
    assert first["process_count"] == 2 and first["devices"] == 4 and first["processes"] == 2
    assert first["shard_rows"] and second["shard_rows"]
    # Each process holds its own contiguous half of the 1347 training rows (1348 padded, 337 a device).
    assert first["rows"] == [0, 674] and second["rows"] == [674, 1347]
    assert len(first["lines"]) == 1 and second["lines"] == []  # only process 0 logs
    assert first["history"] == second["history"]  # replicated results: bit-identical on both processes
    reference = eight_devices["digits"]["1"]["history"]
    assert_same_history({"2 processes x 2 devices": first}, {"history": {k: v[:1] for k, v in reference.items()}})
    saved = checkpoint.restore(run)
    assert saved.epoch == 1 and saved.history == first["history"] and int(saved.state.step) == 14
    assert sorted(p.name for p in run.iterdir()) == [
        ".mlpjax-lock",
        "best",
        "checkpoints",
        "history.csv",
        "learning_curves.png",
        "metrics.json",
        "tensorboard",
    ]

    port = str(free_port())
    argv = ["train", "--resume", str(run), "--epochs", "2", "--quiet"]
    outs = finish([start_worker(2, "cli", json.dumps(argv), port, str(i), "2") for i in range(2)])
    assert [o["code"] for o in outs] == [0, 0]
    assert "resuming" in outs[0]["out"] and outs[1]["out"] == ""  # only process 0 speaks
    record = json.loads((run / "metrics.json").read_text())
    assert record["complete"] and record["processes"] == 2 and record["resumed_from_epoch"] == 1
    assert_same_history({"2 processes, resumed": record}, {"history": {k: v[:2] for k, v in reference.items()}})
    resumed = checkpoint.restore(run)
    assert resumed.epoch == 2 and int(resumed.state.step) == 28 and resumed.history == record["history"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1", "2"]
