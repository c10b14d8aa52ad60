"""Checkpoints: save, resume, best-only, load, evaluate, predict; atomicity under SIGKILL; bad checkpoints."""

from __future__ import annotations

import gc
import json
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import run_cli, tensorboard_events
from PIL import Image

import mlpjax
from mlpjax import cli
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.draw import predict
from mlpjax.errors import UserInputError
from mlpjax.runs import checkpoint, run
from mlpjax.runs.lock import LOCK_NAME
from mlpjax.training import result

# Small and fast: the digits (8x8, 1347 train images), one hidden layer of 16, dropout on (so the resumed
# PRNG stream matters), a learning rate at which it learns something in 2 epochs.
FLAGS = ["--dataset", "digits", "--hidden", "16", "--lr", "0.01", "--save-best", "--quiet"]


def snapshot(directory: Path) -> dict[str, tuple]:
    """Every path under ``directory`` with its bytes and modification time: to prove nothing was written
    (but the lock file, which a run's owner rewrites)."""
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.name != LOCK_NAME
    }  # the owner's lock is no data


def arrays_equal(a, b) -> bool:
    leaves = jax.tree_util.tree_leaves(
        jax.tree_util.tree_map(lambda x, y: np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y), a, b)
    )
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and all(leaves)  # type: ignore[operator]


def steps(root: Path) -> list[int]:
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """``mlpjax train --epochs 2 --output DIR`` on the digits; tests copy it before changing anything."""
    directory = tmp_path_factory.mktemp("base") / "run"
    assert cli.main(["train", *FLAGS, "--epochs", "2", "--output", str(directory)]) == 0
    return directory


@pytest.fixture
def run_copy(base_run, tmp_path) -> Path:
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def test_saved_run_layout_and_metrics(base_run):
    record = json.loads((base_run / "metrics.json").read_text())
    assert record["complete"] and record["epochs_done"] == 2 and len(record["history"]["val_loss"]) == 2
    assert steps(base_run / "checkpoints") == [1, 2]
    best_epoch = int(np.argmin(record["history"]["val_loss"])) + 1
    assert steps(base_run / "best") == [best_epoch]
    ckpt = checkpoint.restore(base_run)
    assert ckpt.epoch == 2 and ckpt.config.model.hidden == (16,) and ckpt.config.dataset == "digits"
    assert ckpt.model_config == model.ModelConfig(input_dim=64, hidden=(16,), num_classes=10)
    assert int(ckpt.state.step) == 2 * 11  # ceil(1347 / 128) steps an epoch
    assert ckpt.state.key.dtype == np.uint32 and ckpt.history == record["history"]


def test_resume_gives_the_same_params_and_history_as_one_run(base_run, run_copy, tmp_path, capsys):
    once = tmp_path / "once"
    assert run_cli(capsys, "train", *FLAGS, "--epochs", 4, "--output", once)[0] == 0
    code, out, _ = run_cli(capsys, "train", "--resume", run_copy, "--epochs", 4, "--quiet")
    assert code == 0 and "resuming" in out and "from epoch 2" in out
    a, b = checkpoint.restore(once), checkpoint.restore(run_copy)
    assert a.epoch == b.epoch == 4
    assert arrays_equal(a.state.arrays(), b.state.arrays())  # params, opt_state, step, key
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (once, run_copy))
    assert len(ma["history"]["loss"]) == 4 and ma["history"] == mb["history"]
    assert mb["resumed_from_epoch"] == 2 and mb["test_accuracy"] == ma["test_accuracy"]
    # the first two epochs of the history are the ones saved before resuming
    saved = json.loads((base_run / "metrics.json").read_text())["history"]
    assert all(mb["history"][k][:2] == saved[k] for k in saved)
    # --save-best carried over from the saved run: both runs keep the same best epoch
    assert steps(once / "best") == steps(run_copy / "best") == [int(np.argmin(ma["history"]["val_loss"])) + 1]
    assert steps(run_copy / "checkpoints") == [2, 3, 4]  # --keep 3 by default


def test_keep_and_best_only(tmp_path, base_run):
    """The Writer keeps the last N epochs and, apart, the one of lowest val_loss (Keras' save_best_only)."""
    ckpt = checkpoint.restore(base_run)
    writer = checkpoint.Writer(tmp_path, ckpt.config, keep=2, save_best=True)
    val_losses = [1.0, 0.5, 0.7, 0.4, 0.9, 0.45]
    states = {}
    try:
        for epoch in range(1, len(val_losses) + 1):
            history = {k: [0.1] * epoch for k in result.HISTORY_KEYS}
            history["val_loss"] = val_losses[:epoch]
            params = jax.tree_util.tree_map(lambda p, e=epoch: p + e, ckpt.state.params)
            states[epoch] = ckpt.state.replace(step=ckpt.state.step + epoch, params=params)
            writer.save(epoch, states[epoch], history)
    finally:
        writer.close()
    assert steps(tmp_path / "checkpoints") == [5, 6]
    assert steps(tmp_path / "best") == [4]
    best = checkpoint.restore(tmp_path, best=True)
    assert best.epoch == 4 and best.history["val_loss"] == val_losses[:4]
    assert arrays_equal(best.state.params, states[4].params)
    assert arrays_equal(mlpjax.load_model(tmp_path, best=True).params, states[4].params)
    assert arrays_equal(mlpjax.load_model(tmp_path).params, states[6].params)


def test_resume_repairs_a_best_checkpoint_that_missed_the_last_epoch(run_copy, capsys):
    """A kill between an epoch's two saves leaves DIR/best behind; the resumed run catches up first."""
    shutil.rmtree(run_copy / "best")
    # --epochs 2: no epoch left to train, yet the resumed epoch becomes the best (tracked from there on)
    code, out, _ = run_cli(capsys, "train", "--resume", run_copy, "--epochs", 2, "--quiet")
    assert code == 0 and "test accuracy" in out
    assert steps(run_copy / "best") == [2] and steps(run_copy / "checkpoints") == [1, 2]
    best = checkpoint.restore(run_copy, best=True)
    assert arrays_equal(best.state.arrays(), checkpoint.restore(run_copy).state.arrays())


def test_load_model_predicts_like_the_saved_params(base_run, digits):
    clf = mlpjax.load_model(base_run)
    assert isinstance(clf, model.Classifier) and clf.model_config.hidden == (16,)
    probs = clf.predict_proba(digits.x_test[:20])
    assert probs.shape == (20, 10) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    expected = model.predict_proba(
        checkpoint.restore(base_run).state.params, digits.x_test[:20], model_config=clf.model_config
    )
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(digits.x_test[:20]), probs.argmax(1))


def test_loading_never_unpickles(base_run, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    assert checkpoint.restore(base_run).epoch == 2
    assert checkpoint.restore(base_run, best=True).epoch >= 1


def test_evaluate_reproduces_the_test_accuracy_that_train_reported(base_run, capsys):
    record = json.loads((base_run / "metrics.json").read_text())
    code, out, _ = run_cli(capsys, "evaluate", base_run, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["test_accuracy"] == record["test_accuracy"] and report["epoch"] == 2
    assert report["test_loss"] == pytest.approx(record["test_loss"], rel=1e-6)
    assert set(report["test_metrics"]) >= {"precision", "recall", "f1_score_0", "precision_macro", "f1_macro"}
    code, out, _ = run_cli(capsys, "evaluate", base_run)
    assert code == 0 and f"accuracy {record['test_accuracy']:.4f}" in out
    assert f"f1_macro {report['test_metrics']['f1_macro']:.4f}" in out and "precision_macro" in out


def test_predict_index_writes_a_png_with_predicted_and_true_label(base_run, digits, tmp_path, capsys):
    out_png = tmp_path / "nine.png"
    code, out, _ = run_cli(capsys, "predict", base_run, "--index", 9, "--out", out_png)
    assert code == 0
    predicted = int(mlpjax.load_model(base_run).predict(digits.x_test[9]))
    assert f"predicted {predicted} " in out and f"true {int(digits.y_test[9])}" in out
    with Image.open(out_png) as image:
        assert image.format == "PNG" and min(image.size) > 100
        assert np.asarray(image.convert("L")).std() > 10  # not a blank picture
    code, _, err = run_cli(capsys, "predict", base_run, "--index", 450)
    assert code == 2 and "--index 450" in err and "0 to 449" in err


def test_predict_image_of_any_size_either_polarity(base_run, digits, tmp_path, capsys):
    digit = digits.x_test[9].reshape(8, 8)
    big = Image.fromarray(np.uint8(255 - 255 * digit)).resize((160, 120), Image.Resampling.NEAREST)  # black on white
    big.save(tmp_path / "black_on_white.png")
    Image.fromarray(np.uint8(255 * digit)).resize((40, 30), Image.Resampling.NEAREST).save(tmp_path / "white.png")
    a = predict.load_image(tmp_path / "black_on_white.png", 64)
    b = predict.load_image(tmp_path / "white.png", 64)
    assert a.shape == b.shape == (64,) and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    assert a.reshape(8, 8)[[0, -1]].mean() < 0.2 < a.max()  # white on black after inversion
    np.testing.assert_allclose(a, b, atol=0.25)  # same digit, other size and polarity
    code, out, _ = run_cli(capsys, "predict", base_run, "--image", tmp_path / "black_on_white.png")
    assert code == 0 and f"predicted {int(mlpjax.load_model(base_run).predict(a))} " in out
    (tmp_path / "text.png").write_text("not an image")
    for bad in (tmp_path / "missing.png", tmp_path / "text.png", tmp_path):
        code, _, err = run_cli(capsys, "predict", base_run, "--image", bad)
        assert code == 2 and str(bad) in err and "Traceback" not in err


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_loadable_checkpoint_then_resumes(tmp_path, capsys):
    directory, log = tmp_path / "run", tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpjax.cli", "train", *FLAGS, "--epochs", "100000", "--output", str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            root = directory / "checkpoints"
            names = [p.name for p in root.iterdir()] if root.is_dir() else []
            # kill while an epoch is being written (orbax's temporary directory) once one is complete
            saving = any(n.isdigit() for n in names) and any("tmp" in n for n in names)
            if saving or (any(n.isdigit() and int(n) >= 3 for n in names)):
                break
            time.sleep(0.002)
        assert proc.poll() is None, log.read_text()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    ckpt = checkpoint.restore(directory)  # the last complete epoch; a half-written one is ignored
    done = ckpt.epoch
    assert done >= 1 and len(ckpt.history["loss"]) == done
    clf = mlpjax.load_model(directory)
    assert clf.predict(np.zeros((2, 64), np.float32)).shape == (2,)
    code, out, err = run_cli(capsys, "train", "--resume", directory, "--epochs", done + 1, "--quiet")
    assert code == 0, err
    assert f"from epoch {done}" in out
    assert checkpoint.restore(directory).epoch == done + 1
    assert not [p for p in (directory / "checkpoints").iterdir() if "tmp" in p.name]  # leftovers cleaned
    record = json.loads((directory / "metrics.json").read_text())
    assert record["epochs_done"] == done + 1 and record["history"]["loss"][:done] == ckpt.history["loss"]


def test_a_half_written_epoch_is_ignored(run_copy):
    """What a kill during a save leaves: orbax's temporary directory, never a numbered one."""
    shutil.copytree(run_copy / "checkpoints" / "2", run_copy / "checkpoints" / "3.orbax-checkpoint-tmp-1234")
    shutil.rmtree(run_copy / "checkpoints" / "3.orbax-checkpoint-tmp-1234" / "state")
    assert checkpoint.restore(run_copy).epoch == 2


def _largest_state_file(run: Path) -> Path:
    return max(
        (p for p in (run / "checkpoints" / "2" / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )


def _truncate(run: Path):
    f = _largest_state_file(run)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])


def _flip_bytes(run: Path):
    f = _largest_state_file(run)
    raw = bytearray(f.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 32] = bytes(b ^ 0xFF for b in raw[middle : middle + 32])
    f.write_bytes(bytes(raw))


def _edit_meta(run: Path, edit):
    path = run / "checkpoints" / "2" / "meta" / "metadata"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


CORRUPTIONS = {
    "truncated arrays": _truncate,
    "flipped bytes": _flip_bytes,
    "arrays removed": lambda run: shutil.rmtree(run / "checkpoints" / "2" / "state"),
    "garbage metadata": lambda run: (run / "checkpoints" / "2" / "meta" / "metadata").write_text('{"format'),
    "metadata of another architecture": lambda run: _edit_meta(
        run, lambda m: (m["train_config"].update(hidden=[32]), m["model_config"].update(hidden=[32]))
    ),
    "wrong checksum": lambda run: _edit_meta(run, lambda m: m.update(digest="0" * 64)),
}


# orbax leaves its pending reads of a failed restore to the garbage collector, which reports them as unraisable
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupted_checkpoint_is_one_clear_error_and_nothing_is_overwritten(run_copy, capsys, kind):
    CORRUPTIONS[kind](run_copy)
    before = snapshot(run_copy)
    with pytest.raises(UserInputError, match=str(run_copy / "checkpoints" / "2")):
        mlpjax.load_model(run_copy)
    for argv in (
        ["evaluate", run_copy],
        ["train", "--resume", run_copy, "--epochs", 3, "--quiet"],
        ["predict", run_copy, "--index", 0],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and str(run_copy / "checkpoints" / "2") in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert snapshot(run_copy) == before
    gc.collect()  # while the filter above applies


def test_not_a_checkpoint_directory(tmp_path, capsys):
    (tmp_path / "empty").mkdir()  # as a kill before the first save leaves it (with the lock file, or not yet)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("hello")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    (tmp_path / "other" / "checkpoints").mkdir()
    (tmp_path / "file").write_text("x")
    cases = {
        "empty": "holds no checkpoint (a run interrupted before its first epoch was saved can be started again",
        "notes": "not an mlpjax checkpoint directory",
        "other": "holds no complete checkpoint",
        "file": "not a directory",
        "missing": "no such directory",
    }
    for name, message in cases.items():
        before = snapshot(tmp_path)
        for argv in (["evaluate", tmp_path / name], ["train", "--resume", tmp_path / name, "--quiet"]):
            code, _, err = run_cli(capsys, *argv)
            assert code == 2 and str(tmp_path / name) in err and message in err, err
        assert snapshot(tmp_path) == before
    with pytest.raises(UserInputError, match="has no best checkpoint"):
        checkpoint.restore(tmp_path / "other", best=True)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--hidden", "32"], "--hidden 32 contradicts"),
        (["--activation", "tanh"], "--activation tanh contradicts"),
        (["--dropout", "0.5"], "--dropout 0.5 contradicts"),
        (["--optimizer", "sgd"], "--optimizer sgd contradicts"),
        (["--dataset", "quadrants"], "--dataset quadrants contradicts"),
        # flags spelled at their defaults still contradict a run trained with other values
        (["--hidden", "512"], "--hidden 512 contradicts"),
        (["--dataset", "mnist"], "--dataset mnist contradicts"),
        (["--epochs", "1"], "already holds 2 epochs"),
    ],
)
def test_resume_with_contradicting_flags_is_refused(run_copy, capsys, flags, message):
    before = snapshot(run_copy)
    code, _, err = run_cli(capsys, "train", "--resume", run_copy, *flags, "--quiet")
    assert code == 2 and message in err and str(run_copy) in err
    assert snapshot(run_copy) == before


def test_output_into_an_existing_run_is_refused(run_copy, capsys):
    before = snapshot(run_copy)
    code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", run_copy)
    assert code == 2 and "already holds a training run" in err and f"--resume {run_copy}" in err
    assert snapshot(run_copy) == before


def test_divergence_names_the_epoch_and_keeps_the_last_good_and_best_checkpoints(run_copy, capsys):
    before = snapshot(run_copy)
    # --lr may change on resume (the optimizer is rebuilt); a huge one makes SGD's loss NaN in the next epoch
    code, _, err = run_cli(capsys, "train", "--resume", run_copy, "--lr", "1e30", "--epochs", 5, "--quiet")
    assert code == 2 and "diverged in epoch 3" in err and "kept" in err
    assert snapshot(run_copy) == before  # checkpoints, best and metrics.json untouched
    assert checkpoint.restore(run_copy).epoch == 2


def test_the_writer_writes_only_metadata_its_reader_accepts(base_run, tmp_path, monkeypatch):
    """The metadata bound is one number for writing and reading: metadata of exactly the bound is written and
    read back; one byte more is a SaveError before anything is written (the earlier epochs kept)."""
    from mlpjax.runs import orbax_io

    ckpt = checkpoint.restore(base_run)

    def save(directory, bound):
        monkeypatch.setattr(orbax_io, "MAX_METADATA_BYTES", bound)
        writer = checkpoint.Writer(directory, ckpt.config, keep=3, save_best=False)
        try:
            writer.save(ckpt.epoch, ckpt.state, ckpt.history)
        finally:
            writer.close()

    save(tmp_path / "measure", 2**30)
    size = (tmp_path / "measure" / "checkpoints" / str(ckpt.epoch) / "meta" / "metadata").stat().st_size
    save(tmp_path / "exact", size)
    assert checkpoint.restore(tmp_path / "exact").history == ckpt.history
    with pytest.raises(checkpoint.SaveError, match=f"cannot save epoch {ckpt.epoch}: its metadata .* would be"):
        save(tmp_path / "over", size - 1)
    assert not (tmp_path / "over").exists()  # refused before anything was written
    monkeypatch.setattr(orbax_io, "MAX_METADATA_BYTES", size - 1)
    with pytest.raises(UserInputError, match="of metadata; an mlpjax checkpoint's is at most"):
        checkpoint.restore(tmp_path / "exact")


class Killed(Exception):
    """Stands for a kill: raised from the per-epoch log as an epoch ends, before it is saved."""


def killed_at(epoch: int):
    """A ``log`` for Run.fit that kills the run as epoch ``epoch`` ends (before its save and its metrics)."""

    def log(line: str) -> None:
        if line.startswith(f"epoch {epoch}/"):
            raise Killed

    return log


def test_save_every_saves_its_epochs_and_a_run_killed_between_them_resumes_to_the_same_numbers(tmp_path, capsys):
    once = tmp_path / "once"
    assert run_cli(capsys, "train", *FLAGS, "--epochs", 7, "--save-every", 3, "--keep", 5, "--output", once)[0] == 0
    assert steps(once / "checkpoints") == [1, 3, 6, 7]  # the first, every third and the last
    saved = checkpoint.restore(once)
    assert saved.save_every == 3 and saved.keep == 5
    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        run.start(killed, saved.config, keep=5, save_best=True, save_every=3).fit(log=killed_at(5))
    assert steps(killed / "checkpoints") == [1, 3]  # epoch 4 was trained, not saved
    assert len(json.loads((killed / "metrics.json").read_text())["history"]["loss"]) == 4
    # resumed from epoch 3 with another --save-every: epochs 4 and 5 trained again, to the same numbers
    code, out, err = run_cli(capsys, "train", "--resume", killed, "--save-every", 2, "--quiet")
    assert code == 0 and "from epoch 3" in out, err
    assert steps(killed / "checkpoints") == [1, 3, 4, 6, 7] and checkpoint.restore(killed).save_every == 2
    assert arrays_equal(checkpoint.restore(killed).state.arrays(), saved.state.arrays())
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (once, killed))
    assert mb["history"] == ma["history"] and mb["test_accuracy"] == ma["test_accuracy"]
    assert steps(killed / "best") == steps(once / "best")
    # TensorBoard: the resumed event file marks a restart at epoch 4, hiding the killed run's epoch 4
    assert [e.step for e in tensorboard_events(killed / "tensorboard") if e.HasField("session_log")] == [4]


def test_early_stopping_resumed_from_before_a_best_saved_since_ends_as_one_run(tmp_path, digits):
    """With --save-every, DIR/best may hold an epoch after the last checkpoint (the best is saved when it is
    reached): a run killed then and resumed still stops and restores as the uninterrupted run."""
    config = TrainConfig(dataset="digits", model=model.ModelConfig(hidden=(16,)), lr=0.03, early_stopping=2, epochs=20)
    once = run.start(tmp_path / "once", config).fit(digits)
    losses, stop = once.history["val_loss"], len(once.history["val_loss"])
    assert stop < config.epochs  # early stopping stopped it
    # a checkpoint k whose best epoch so far is an earlier one, and a new best j after k (before 2k is saved)
    k, j = next(
        (k, j)
        for k in range(2, stop)
        for j in range(k + 1, min(stop, 2 * k))
        if min(losses[: k - 1]) < losses[k - 1] and losses[j - 1] < min(losses[:k])
    )
    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        run.start(killed, config, save_every=k).fit(digits, log=killed_at(j + 1))
    assert steps(killed / "checkpoints") == [1, k] and steps(killed / "best") == [j]  # best is ahead
    again = run.resume(killed).fit(digits)
    assert again.history == once.history and again.test_metrics == once.test_metrics
    assert again.callbacks == once.callbacks and again.kept_epoch == once.kept_epoch
    assert arrays_equal(again.state.params, once.state.params)
    assert steps(killed / "best") == steps(tmp_path / "once" / "best")


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "x"])
def test_a_bad_save_every_is_one_line_and_writes_nothing(tmp_path, capsys, value):
    code, out, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--save-every", value, "--output", tmp_path / "r")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--save-every" in err, err
    assert not (tmp_path / "r").exists()


def test_save_every_without_an_output_is_refused(capsys):
    code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--save-every", 2)
    assert code == 2 and "--save-every and --save-best need --output DIR" in err, err


NORMALIZED = ["--dataset", "iris", "--hidden", "16", "--normalize", "standard", "--validation-split", "0.2", "--quiet"]


@pytest.fixture(scope="module")
def normalized_run(tmp_path_factory) -> Path:
    """6 epochs of iris with --normalize standard and a validation split."""
    directory = tmp_path_factory.mktemp("normalized") / "run"
    assert cli.main(["train", *NORMALIZED, "--epochs", "6", "--output", str(directory)]) == 0
    return directory


def test_a_normalized_run_saves_its_scaling_and_resumes_to_the_same_numbers(normalized_run, tmp_path, capsys):
    """Interrupted after 3 epochs and resumed to 6: the history, the test figures and the weights of one run of
    6; every checkpoint holds the scaling fitted on the rows trained on."""
    half = tmp_path / "half"
    assert run_cli(capsys, "train", *NORMALIZED, "--epochs", "3", "--output", half)[0] == 0
    assert run_cli(capsys, "train", "--resume", half, "--epochs", "6", "--quiet")[0] == 0
    whole_record, half_record = (json.loads((d / "metrics.json").read_text()) for d in (normalized_run, half))
    for key in ("history", "test_loss", "test_accuracy", "scaling"):
        assert half_record[key] == whole_record[key], key
    assert whole_record["config"]["normalize"] == "standard" and whole_record["scaling"]["kind"] == "standard"
    whole, resumed = checkpoint.restore(normalized_run), checkpoint.restore(half)
    jax.tree_util.tree_map(np.testing.assert_array_equal, whole.state.params, resumed.state.params)
    from mlpjax.training import train

    fitted = train.fit_scaler(whole.config, whole.config.load_dataset())
    assert whole.scaler.same_as(fitted) and resumed.scaler.same_as(fitted)
    code, _, err = run_cli(capsys, "train", "--resume", half, "--epochs", "7", "--normalize", "minmax")
    assert code == 2 and "--normalize minmax contradicts the checkpoint (normalize 'standard')" in err


def test_evaluate_and_load_model_apply_the_saved_scaling(normalized_run, capsys):
    """evaluate gives the test figures training recorded; the loaded model takes raw rows and gives the
    probabilities of its params on the scaled rows."""
    record = json.loads((normalized_run / "metrics.json").read_text())
    code, out, _ = run_cli(capsys, "evaluate", normalized_run, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["test_accuracy"] == record["test_accuracy"]
    assert report["test_loss"] == pytest.approx(record["test_loss"], rel=1e-6)
    loaded = mlpjax.load_model(normalized_run)
    x = mlpjax.load_dataset("iris").x_test
    bare = model.Classifier(loaded.params, loaded.model_config)  # no scaling: the scaled rows by hand
    np.testing.assert_array_equal(loaded.predict_proba(x), bare.predict_proba(loaded.scaler.apply(x)))
    assert not np.allclose(loaded.predict_proba(x), bare.predict_proba(x), atol=1e-3)


def _write(directory: Path, config, state, scaler=None) -> None:
    trained_on = checkpoint.TrainedOn(scaler=scaler)
    writer = checkpoint.Writer(directory, config, keep=1, save_best=False, trained_on=trained_on)
    writer.save(1, state, {"loss": [1.0], "accuracy": [0.5], "val_loss": [1.0], "val_accuracy": [0.5]})
    writer.close()


def test_a_run_saved_before_scalings_were_recorded_loads_as_none(digits, tmp_path, monkeypatch):
    """A checkpoint whose config has no normalize (every run before it existed): normalize "none", no scaler,
    and the model predicts the raw features as it did."""
    from conftest import small_config, state_for

    config = small_config(epochs=1)
    state = state_for(config, digits)
    old = TrainConfig.to_dict
    monkeypatch.setattr(TrainConfig, "to_dict", lambda self: {k: v for k, v in old(self).items() if k != "normalize"})
    _write(tmp_path / "old", config, state)
    monkeypatch.undo()
    ckpt = checkpoint.restore(tmp_path / "old")
    assert ckpt.config.normalize == "none" and ckpt.scaler is None and ckpt.classifier.scaler is None
    np.testing.assert_array_equal(
        ckpt.classifier.predict_proba(digits.x_test[:5]),
        model.Classifier(state.params, state.model_config).predict_proba(digits.x_test[:5]),
    )


def test_a_saved_scaling_that_divides_by_zero_is_refused_in_one_line(digits, tmp_path, capsys):
    """Arrays with a matching checksum but a scale of 0 (a crafted checkpoint): refused as any altered one."""
    import types

    from conftest import small_config, state_for

    config = small_config(epochs=1, normalize="minmax")
    d = digits.input_dim
    crafted = types.SimpleNamespace(
        kind="minmax", arrays=lambda: {"shift": np.zeros(d, np.float32), "scale": np.zeros(d, np.float32)}
    )
    _write(tmp_path / "run", config, state_for(config, digits), crafted)
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "the saved feature scaling is invalid (scale must be positive; feature 0 is not)" in err
