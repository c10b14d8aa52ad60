"""Run directories and checkpoints under abuse (issue 13): any path, one owner, bounded memory, unwritable or full
disks, interruptions, empty step directories, relative data folders. Each test names the promise it shows
(``docs/reliability.md``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    REPO,
    kill_at_instants,
    kill_instants,
    leftovers,
    mount_small_tmpfs,
    run_cli,
    sigint_blocked,
    small_config,
    unmount,
    wait_for,
)

from mlpjax import memory
from mlpjax.errors import FieldError, UserInputError
from mlpjax.runs import checkpoint, orbax_io, run
from mlpjax.runs.lock import LOCK_NAME, RunLock, RunLocked
from mlpjax.training import train

FLAGS = ["--dataset", "digits", "--hidden", "16", "--lr", "0.01", "--quiet"]


def cli_process(*argv, **kwargs) -> subprocess.Popen:
    """``mlpjax ARGV`` in a subprocess (stdout and stderr piped, text)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "mlpjax.cli", *map(str, argv)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-epoch digits run; tests copy it (:func:`copy_of`) before changing anything."""
    directory = tmp_path_factory.mktemp("trained") / "run"
    from mlpjax import cli

    assert cli.main(["train", *FLAGS, "--epochs", "2", "--output", str(directory)]) == 0
    return directory


def copy_of(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


# -- 1. any path ---------------------------------------------------------------------------------------------


def test_a_run_directory_with_glob_characters_saves_loads_and_resumes(tmp_path, capsys):
    directory = tmp_path / "exp[1]*?{a,b}"
    assert run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", directory)[0] == 0
    assert checkpoint.restore(directory).epoch == 1
    assert not leftovers(directory), leftovers(directory)  # the probe a kill left is removed
    code, out, err = run_cli(capsys, "evaluate", directory)
    assert code == 0 and "epoch 1" in out, err
    code, out, err = run_cli(capsys, "train", "--resume", directory, "--epochs", 2, "--quiet")
    assert code == 0 and "from epoch 1" in out, err
    assert checkpoint.restore(directory).epoch == 2
    assert sorted(p.name for p in (directory / "checkpoints").iterdir()) == ["1", "2"]


# -- 2. one owner ------------------------------------------------------------------------------------------


def test_a_run_directory_has_one_owner_and_a_dead_owner_holds_nothing(tmp_path):
    first = RunLock(tmp_path / "run")
    with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
        RunLock(tmp_path / "run")
    first.release()
    RunLock(tmp_path / "run").release()
    # a process killed while it holds the lock leaves the file, not the lock
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from mlpjax.runs.lock import RunLock; "
            f"lock = RunLock({str(tmp_path / 'run')!r}); print('held', flush=True); "
            "time.sleep(600)",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"):
            RunLock(tmp_path / "run")
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "run" / LOCK_NAME).exists()
    RunLock(tmp_path / "run").release()  # stale: taken over


@pytest.mark.slow
def test_a_second_training_or_resume_is_refused_while_a_run_trains_and_evaluate_reads(tmp_path):
    directory = tmp_path / "run"
    both = [cli_process("train", *FLAGS, "--epochs", 100000, "--output", directory) for _ in range(2)]
    try:
        wait_for(lambda: any(p.poll() is not None for p in both), timeout=240)
        loser = next(p for p in both if p.poll() is not None)
        trainer = next(p for p in both if p is not loser)
        _, err = loser.communicate()
        one_line_error(loser.returncode, err, str(directory))
        assert "another mlpjax run is using it" in err or "already holds a training run" in err
        wait_for(lambda: orbax_io.complete_steps(directory / "checkpoints"), proc=trainer)
        proc = cli_process("train", "--resume", directory, "--epochs", 100000, "--quiet")
        _, err = proc.communicate(timeout=120)
        one_line_error(proc.returncode, err, str(directory), "another mlpjax run is using it", f"pid {trainer.pid}")
        proc = cli_process("evaluate", directory)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "accuracy" in out, err
        assert trainer.poll() is None  # undisturbed
    finally:
        for p in both:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            p.wait(timeout=60)
    err = trainer.stderr.read()
    assert trainer.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted"
    done = checkpoint.restore(directory).epoch
    proc = cli_process("train", "--resume", directory, "--epochs", done + 1, "--quiet")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert checkpoint.restore(directory).epoch == done + 1


# -- 3. flags that allocate --------------------------------------------------------------------------------


def test_a_batch_larger_than_the_training_set_is_the_training_set(digits):
    n = len(digits.y_train)
    huge = train.fit(small_config(epochs=1, batch_size=10**9), digits)
    exact = train.fit(small_config(epochs=1, batch_size=n), digits)
    assert huge.config.batch_size == n and huge.record()["config"]["batch_size"] == n
    assert huge.history == exact.history and int(huge.state.step) == 1


def test_a_width_beyond_any_array_dimension_is_one_line(capsys):
    """Found by the flag fuzz: a width of 2**63 made the memory estimate's abstract arrays raise JAX's TypeError."""
    for command in (["train", *FLAGS], ["sweep", "--dataset", "digits", "--quiet"], ["summary"]):
        code, _, err = run_cli(capsys, *command, "--hidden", 2**63)
        one_line_error(code, err, "--hidden sizes must be below 2**63 (an array dimension)", str(2**63))


def test_a_model_that_cannot_fit_in_memory_is_refused_before_allocating(tmp_path, capsys):
    start = time.monotonic()
    code, out, err = run_cli(
        capsys, "train", *FLAGS, "--hidden", 1_000_000_000, "--epochs", 1, "--output", tmp_path / "run"
    )
    one_line_error(code, err, "--hidden 1000000000", "of memory", "available")
    assert time.monotonic() - start < 30 and "epoch 1/" not in out
    assert not (tmp_path / "run").exists()  # claimed, then given up: nothing left, not even the lock file


QUADRANTS = ["--dataset", "quadrants", "--hidden", "4", "--epochs", "1", "--quiet"]
REFUSALS = {
    "memory": ["--hidden", 1_000_000_000],
    "data": ["--dataset", "mnist", "--data-dir", "/nonexistent"],
    "diverged": ["--dataset", "digits", "--lr", "1e30"],
}  # NaN within the first epoch


@pytest.mark.parametrize("why", sorted(REFUSALS))
def test_a_run_refused_before_its_first_epoch_leaves_nothing_it_created(tmp_path, capsys, why):
    """Refused for memory, for its data, or diverged in epoch 1: the directory (and the parents) it created go."""
    code, _, err = run_cli(capsys, "train", *QUADRANTS, *REFUSALS[why], "--output", tmp_path / "new" / "run")
    one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_run_keeps_the_directory_the_user_had_and_what_it_holds(tmp_path, capsys):
    empty, kept, stale = tmp_path / "empty", tmp_path / "kept", tmp_path / "stale"
    for directory in (empty, kept, stale):
        directory.mkdir()
    (kept / "notes.txt").write_text("mine")
    RunLock(stale).release()  # the lock file of an earlier run, killed in its first save
    for directory in (empty, kept, stale):
        code, _, err = run_cli(capsys, "train", *QUADRANTS, *REFUSALS["memory"], "--output", directory)
        # a folder of the user's own files is refused for that first; the others for the memory
        one_line_error(
            code,
            err,
            "holds files that mlpjax did not write (notes.txt)" if directory == kept else "--hidden 1000000000",
        )
    assert list(empty.iterdir()) == []  # still there; the lock file it made is gone
    assert [p.name for p in kept.iterdir()] == ["notes.txt"] and (kept / "notes.txt").read_text() == "mine"
    assert [p.name for p in stale.iterdir()] == [LOCK_NAME]


def test_a_run_that_fails_after_its_first_epoch_keeps_all_of_it(tmp_path, monkeypatch):
    save = checkpoint.Writer.save

    def full_disk_at_epoch_2(self, epoch, *args, **kwargs):
        if epoch == 2:
            raise checkpoint.SaveError("no space left on device")
        return save(self, epoch, *args, **kwargs)

    monkeypatch.setattr(checkpoint.Writer, "save", full_disk_at_epoch_2)
    directory = tmp_path / "new" / "run"
    fresh = run.start(directory, small_config(dataset="quadrants", hidden=(4,), epochs=2))
    with pytest.raises(checkpoint.SaveError):
        fresh.fit()
    assert checkpoint.restore(directory).epoch == 1 and (directory / LOCK_NAME).exists()


def test_a_lock_file_removed_by_its_last_owner_is_taken_anew(tmp_path, monkeypatch):
    """A claimant that opened the lock file just before its owner removed it (giving up an unused directory)
    locks the new file, not the removed one: two claimants can never both hold the directory."""
    directory, original, removed = tmp_path / "run", RunLock._lock, []

    def owner_leaves_first(self, field):
        if not removed:
            removed.append(self.path)
            self.path.unlink()  # what a refused run does between this claimant's open and its flock
        original(self, field)

    monkeypatch.setattr(RunLock, "_lock", owner_leaves_first)
    first = RunLock(directory)
    assert removed and os.fstat(first._fd).st_ino == os.stat(first.path).st_ino
    with pytest.raises(RunLocked):
        RunLock(directory)
    first.release(remove_created=True)
    assert not directory.exists()


def test_activations_that_cannot_fit_name_the_batch_size(digits, monkeypatch, capsys):
    monkeypatch.setattr(memory, "available_memory", lambda: 2_000_000)
    code, _, err = run_cli(capsys, "train", *FLAGS, "--batch-size", 1_000_000, "--epochs", 1)
    one_line_error(code, err, "--batch-size 1000000", "activations")


# -- 4. checkpoint bombs and crafted metadata ----------------------------------------------------------------


def _edit_meta(directory: Path, edit, step: int = 2) -> None:
    path = directory / "checkpoints" / str(step) / "meta" / "metadata"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _declare_hidden(width):
    def edit(meta):
        meta["train_config"]["hidden"] = [width]
        meta["model_config"]["hidden"] = [width]

    return edit


CRAFTED = {
    "huge widths": (_declare_hidden(4_000_000), "declares"),
    "infinite widths": (_declare_hidden(float("inf")), "hidden"),
    "huge seed": (lambda m: m["train_config"].update(seed=2**70), "seed"),
    "string seed": (lambda m: m["train_config"].update(seed="x"), "seed"),
    "fractional epoch": (lambda m: m.update(epoch=2.5), "epoch"),
    "fractional batch": (lambda m: m["train_config"].update(batch_size=1.5), "batch_size"),
    "string keep": (lambda m: m.update(keep="3"), "keep"),
    "infinite learning rate": (lambda m: m["train_config"].update(lr=float("inf")), "lr"),
    "huge learning rate": (lambda m: m["train_config"].update(lr=10**400), "lr"),
}


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_checkpoint_metadata_is_one_line_before_any_array_is_restored(trained, tmp_path, capsys, kind):
    directory = copy_of(trained, tmp_path)
    edit, needle = CRAFTED[kind]
    _edit_meta(directory, edit)
    start = time.monotonic()
    with pytest.raises(UserInputError, match=needle):
        checkpoint.restore(directory)
    for argv in (["evaluate", directory], ["train", "--resume", directory, "--epochs", 3, "--quiet"]):
        code, _, err = run_cli(capsys, *argv)
        one_line_error(code, err, str(directory / "checkpoints" / "2"))
    assert time.monotonic() - start < 30


def test_a_checkpoint_declaring_more_than_memory_is_refused(trained, tmp_path, monkeypatch):
    directory = copy_of(trained, tmp_path)
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(UserInputError, match="needs .* of memory"):
        checkpoint.restore(directory)


# -- 5. unwritable and full disks ----------------------------------------------------------------------------


def test_an_output_under_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, out, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", tmp_path / "file" / "run")
    one_line_error(code, err, "--output", "cannot be written")
    assert out == ""  # refused before the data is even loaded


def test_an_output_holding_the_users_files_is_refused_and_they_are_kept(tmp_path, capsys):
    out = tmp_path / "U"
    out.mkdir()
    (out / "history.csv").write_text("mine\n")  # mlpjax's own names, but the user's files
    (out / "learning_curves.png").write_bytes(b"mine")
    code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", out)
    one_line_error(
        code, err, f"--output {out}: holds files that mlpjax did not write", "history.csv, learning_curves.png"
    )
    assert (out / "history.csv").read_text() == "mine\n" and (out / "learning_curves.png").read_bytes() == b"mine"
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "learning_curves.png"]  # no lock left


def test_overwrite_replaces_an_earlier_run_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *FLAGS, "--epochs", 2, "--save-best", "--output", out)[0] == 0
    (out / "notes.txt").write_text("mine")  # the user's own file beside the run
    code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", out)
    one_line_error(code, err, f"--output {out}: already holds a training run", "--resume")
    code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", out, "--overwrite")
    assert code == 0, err
    record = json.loads((out / "metrics.json").read_text())
    assert len(record["history"]["loss"]) == 1 and not (out / "best").exists()  # the new run's, not the old
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["1"]
    assert (out / "notes.txt").read_text() == "mine"
    for argv in (["--overwrite"], ["--resume", out, "--overwrite"]):
        code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 2, *argv)
        one_line_error(code, err, "--overwrite starts --output DIR afresh")


def test_overwrite_keeps_a_folder_of_the_users_files(tmp_path, capsys):
    out = tmp_path / "U"
    out.mkdir()
    (out / "history.csv").write_text("mine\n")
    code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", out, "--overwrite")
    one_line_error(code, err, f"--output {out}: holds files that mlpjax did not write", "history.csv")
    assert sorted(p.name for p in out.iterdir()) == ["history.csv"] and (out / "history.csv").read_text() == "mine\n"


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (as root), unmounted afterwards; skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mount_small_tmpfs(mount, "2m")
    yield mount
    unmount(mount)


def test_a_read_only_output_is_refused_before_training(small_disk, capsys):
    (small_disk / "run").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, out, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", small_disk / "run")
    one_line_error(code, err, "--output", "cannot be written")
    assert out == ""


def test_a_full_disk_during_a_save_is_one_line_and_the_earlier_epochs_survive(small_disk, capsys):
    directory = small_disk / "run"
    # about 0.6 MB an epoch (hidden 1024): the third save cannot fit in 2 MB
    code, out, err = run_cli(
        capsys, "train", "--dataset", "digits", "--hidden", 1024, "--epochs", 6, "--quiet", "--output", directory
    )
    one_line_error(code, err, "cannot save epoch", "earlier epochs are intact")
    ckpt = checkpoint.restore(directory)
    assert ckpt.epoch >= 1
    assert not [p for p in (directory / "checkpoints").iterdir() if "tmp" in p.name]
    assert f"epoch {ckpt.epoch + 1}" in err


def test_a_full_disk_while_tensorboard_is_written_is_an_error_at_once_not_a_hang(trained, small_disk):
    # tensorboardX's SummaryWriter writes on a thread that dies on a full disk, after which it waits forever
    from mlpjax.runs import logs

    state = checkpoint.restore(trained).state
    history = {"loss": [0.5], "accuracy": [0.9], "val_loss": [0.6], "val_accuracy": [0.8]}
    run_logs = logs.RunLogs(small_disk / "run", image_shape=(8, 8))
    (small_disk / "run").mkdir()
    with open(small_disk / "filler", "wb") as f, pytest.raises(OSError):  # every page of the disk taken
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    start = time.monotonic()
    with pytest.raises(UserInputError, match=r"/run/tensorboard: cannot write: no space left on the device$"):
        run_logs._tensorboard(1, state, history)  # (epoch_end's history.csv would fail first)
    with pytest.raises(UserInputError, match="cannot write: no space left"):
        run_logs.close()  # what the writer still holds cannot be written either: the same one line
    assert time.monotonic() - start < 30


def test_a_png_that_a_full_disk_cannot_hold_is_one_line_and_leaves_no_temporary_file(trained, small_disk, capsys):
    """``evaluate --confusion`` and ``predict --out`` (matplotlib's PNG, written into a temporary file and linked
    into place) on a disk with no block left: one line naming the flag and the file, nothing left on the disk."""
    with open(small_disk / "filler", "wb") as f, pytest.raises(OSError):  # every page of the disk taken
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    for argv, flag, png in [
        (["evaluate", trained], "--confusion", small_disk / "cm.png"),
        (["predict", trained, "--index", "3"], "--out", small_disk / "three.png"),
    ]:
        code, _, err = run_cli(capsys, *argv, flag, png)
        one_line_error(code, err, f"{flag} {png}: cannot write: no space left on the device")
        assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


# -- 6. interruptions ----------------------------------------------------------------------------------------


def test_a_run_interrupted_in_its_first_save_can_be_started_again(trained, tmp_path, capsys):
    directory = tmp_path / "run"
    partial = directory / "checkpoints" / "1.orbax-checkpoint-tmp-1234"
    shutil.copytree(trained / "checkpoints" / "1", partial)
    shutil.rmtree(partial / "state")
    code, _, err = run_cli(capsys, "train", "--resume", directory, "--quiet")
    one_line_error(code, err, "holds no complete checkpoint", "started again with the same output directory")
    code, _, err = run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", directory)
    assert code == 0, err
    assert checkpoint.restore(directory).epoch == 1 and not partial.exists()


@pytest.mark.slow
@pytest.mark.parametrize("when", ["start-up", "training"])
def test_ctrl_c_prints_one_line_and_stops_at_once(tmp_path, when):
    """At start-up (once Python runs mlpjax: the interpreter's own start is out of reach) and in the middle
    of an epoch or a save of a wide model: one line, status 130, within about a second; the directory
    resumes."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to see when the process is ready")
    directory = tmp_path / "run"
    proc = cli_process(
        "train", "--dataset", "digits", "--hidden", 2048, "--epochs", 100000, "--quiet", "--output", directory
    )
    wait_for(lambda: sigint_blocked(proc.pid), proc=proc)
    if when == "training":
        wait_for(lambda: orbax_io.complete_steps(directory / "checkpoints"), proc=proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 5  # about a second, on a busy machine
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Error" not in err, err
    if when == "training":
        done = checkpoint.restore(directory).epoch
        resumed = cli_process("train", "--resume", directory, "--epochs", done + 1, "--quiet")
        assert resumed.wait(timeout=300) == 0
        assert checkpoint.restore(directory).epoch == done + 1


def test_ctrl_c_during_the_first_save_leaves_a_directory_that_starts_again(tmp_path):
    """What Ctrl-C (or a kill) in the first save leaves: the lock and Orbax's temporary directory."""
    directory = tmp_path / "run"
    (directory / "checkpoints" / "1.orbax-checkpoint-tmp").mkdir(parents=True)
    RunLock(directory).release()
    with pytest.raises(UserInputError, match="started again with the same output directory"):
        run.resume(directory)
    fresh = run.start(directory, small_config(epochs=1))
    fresh.fit()
    assert checkpoint.restore(directory).epoch == 1
    assert not leftovers(directory), leftovers(directory)


def test_a_run_killed_before_its_first_save_began_starts_again(tmp_path, capsys):
    """What a kill between the claim and the first save leaves: the lock file (and a write probe)."""
    directory = tmp_path / "run"
    RunLock(directory).release()
    (directory / ".mlpjax-probe-x1y2z3").write_bytes(b"mlpjax")
    code, _, err = run_cli(capsys, "train", "--resume", directory, "--quiet")
    one_line_error(code, err, f"{directory}: holds no checkpoint", "started again with the same output directory")
    assert run_cli(capsys, "train", *FLAGS, "--epochs", 1, "--output", directory)[0] == 0
    assert checkpoint.restore(directory).epoch == 1


def test_a_run_killed_between_its_first_checkpoint_and_best_resumes(tmp_path, capsys):
    """Found by the kill test: killed after epoch 1's checkpoint and before its first best save (``best/``
    made, empty; no metrics.json), --resume and --output were both refused. The resumed epoch is the best."""
    whole, directory = tmp_path / "whole", tmp_path / "run"
    flags = [*FLAGS, "--epochs", 2, "--validation-split", 0.2, "--early-stopping", 1]
    assert run_cli(capsys, "train", *flags, "--output", whole)[0] == 0
    shutil.copytree(whole / "checkpoints" / "1", directory / "checkpoints" / "1")
    (directory / "best").mkdir()
    code, _, err = run_cli(capsys, "train", "--resume", directory, "--quiet")
    assert code == 0, err
    assert train_numbers(directory) == train_numbers(whole)
    assert orbax_io.complete_steps(directory / "best") == orbax_io.complete_steps(whole / "best")


def test_what_a_kill_leaves_of_unfinished_writing_is_removed_by_the_resumed_run(trained, tmp_path, capsys):
    """A kill leaves the temporary files of the writes it stopped (files.write_atomic's, Orbax's folders, a write
    probe): the resumed run removes them all (it owns the folder), keeps a set-aside epoch (``N.incomplete``,
    which may hold something) and ends with the numbers of the run never stopped."""
    directory = copy_of(trained, tmp_path)
    before = json.loads((directory / "metrics.json").read_text())
    planted = [
        ".metrics.json.k1ll3d__.tmp",
        ".history.csv.k1ll3d__.tmp",
        ".learning_curves.png.k1ll3d__.tmp",
        ".mlpjax-probe-k1ll3d__",
        "checkpoints/3.orbax-checkpoint-tmp-1733580000/state/x",
        "best/1.orbax-checkpoint-tmp-1733580001/state/x",
    ]
    for name in planted:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(b"half")
    (directory / "checkpoints" / "9.incomplete").mkdir()
    assert leftovers(directory)
    code, _, err = run_cli(capsys, "train", "--resume", directory, "--quiet")
    assert code == 0, err
    assert not leftovers(directory), leftovers(directory)
    assert (directory / "checkpoints" / "9.incomplete").is_dir()
    after = json.loads((directory / "metrics.json").read_text())
    assert after["history"] == before["history"] and after["test_metrics"] == before["test_metrics"]


def test_a_run_stopped_after_its_last_checkpoint_writes_its_logs_when_resumed(trained, tmp_path, capsys):
    """Found by the full-disk test: a run whose last epoch was saved and whose logs were not (a kill, or a disk
    that filled while the figure was drawn) resumed with no epoch left to train, and said it wrote history.csv and
    learning_curves.png without writing them (or left the figure of an earlier epoch)."""
    directory = copy_of(trained, tmp_path)
    (directory / "history.csv").write_text("epoch,loss\n0,1.0\n")  # an earlier epoch's
    (directory / "learning_curves.png").unlink()
    code, out, err = run_cli(capsys, "train", "--resume", directory, "--quiet")
    assert code == 0, err
    assert "resuming" in out and "learning_curves.png" in out
    assert (directory / "history.csv").read_text() == (trained / "history.csv").read_text()
    assert (directory / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# A run killed or interrupted at any instant resumes, or starts again with the same command, to the numbers of a
# run never stopped (conftest.kill_at_instants): early stopping stops it after epoch 2, keeping epoch 1's weights.
STOPPED = ["train", "--dataset", "digits", "--hidden", "16", "--lr", "0.1", "--batch-size", "32", "--epochs", "3"]
STOPPED += ["--validation-split", "0.2", "--early-stopping", "1", "--save-best", "--quiet"]


def train_numbers(directory: Path) -> dict:
    record = json.loads((directory / "metrics.json").read_text())
    return {k: record[k] for k in ("history", "test_metrics", "kept_epoch", "epochs_done")}


def resume_train(directory: Path) -> list:
    return ["train", "--resume", directory, "--quiet"]


@pytest.mark.parametrize(
    "sig, instants",
    [
        # epoch 1 whole, its best save not begun; in the second epoch's save (at the latest, once it is whole)
        pytest.param(signal.SIGKILL, [r"^checkpoints/1$", r"^checkpoints/2(\.orbax-checkpoint-tmp)?$"], id="kill"),
        # in the first save (at the latest, once it is whole); once the first best is saved
        pytest.param(signal.SIGINT, [r"^checkpoints/1(\.orbax-checkpoint-tmp)?$", r"^best/1$"], id="ctrl-c"),
    ],
)
def test_a_run_stopped_at_an_instant_resumes_or_starts_again(capsys, cli_forker, tmp_path, sig, instants):
    outcomes = kill_at_instants(capsys, cli_forker, tmp_path, STOPPED, resume_train, train_numbers, instants, sig)
    assert not [o for o in outcomes.values() if "ended" in o], outcomes  # each stopped before the end


@pytest.mark.slow
def test_a_run_killed_after_any_path_it_creates_resumes_or_starts_again(capsys, cli_forker, tmp_path):
    """``MLPJAX_KILL_INSTANTS=all``: after every path (about 180 instants)."""
    outcomes = kill_at_instants(capsys, cli_forker, tmp_path, STOPPED, resume_train, train_numbers, kill_instants)
    print(
        f"{len(outcomes)} instants: {sum('resumed' in o for o in outcomes.values())} resumed, "
        f"{sum('started again' in o for o in outcomes.values())} started again"
    )


# -- 7. empty step directories -------------------------------------------------------------------------------


def test_an_empty_newer_step_directory_is_passed_over(trained, tmp_path, capsys):
    directory = copy_of(trained, tmp_path)
    (directory / "checkpoints" / "99").mkdir()
    assert checkpoint.restore(directory).epoch == 2
    code, out, err = run_cli(capsys, "train", "--resume", directory, "--epochs", 3, "--quiet")
    assert code == 0 and "from epoch 2" in out, err
    assert checkpoint.restore(directory).epoch == 3
    assert orbax_io.complete_steps(directory / "checkpoints") == [1, 2, 3]


def test_a_half_made_newer_step_is_set_aside_not_lost_and_said_nowhere(trained, tmp_path):
    """Found while a run was read during training: a numbered epoch directory without Orbax's completion mark
    (left by a kill, or being deleted) made Orbax log a WARNING line beside mlpjax's output, and blocked every
    resume that reached that epoch ('Checkpoint for step 3 already exists')."""
    directory = copy_of(trained, tmp_path)
    part = directory / "checkpoints" / "3" / "state" / "part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"half an epoch")
    proc = cli_process("evaluate", directory)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "accuracy" in out and err == "", err
    proc = cli_process("train", "--resume", directory, "--epochs", 3, "--quiet")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "from epoch 2" in out and "WARNING" not in err, err
    assert orbax_io.complete_steps(directory / "checkpoints")[-1] == 3
    assert (directory / "checkpoints" / "3.incomplete" / "state" / "part").read_bytes() == b"half an epoch"


# -- 8. relative data folders --------------------------------------------------------------------------------


def test_a_relative_data_dir_is_saved_absolute(idx_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(idx_folder.parent)
    code, _, err = run_cli(
        capsys,
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        idx_folder.name,
        "--epochs",
        1,
        "--hidden",
        8,
        "--quiet",
        "--output",
        tmp_path / "run",
    )
    assert code == 0, err
    assert checkpoint.restore(tmp_path / "run").config.data_dir == str(idx_folder)
    monkeypatch.chdir("/")
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run")
    assert code == 0 and "accuracy" in out, err


def test_non_finite_weights_with_a_matching_checksum_are_refused(digits, tmp_path, capsys):
    import jax
    from conftest import state_for

    config = small_config(epochs=1)
    state = state_for(config, digits)
    state = state.replace(params=jax.tree_util.tree_map(lambda a: a * np.nan, state.params))
    writer = checkpoint.Writer(tmp_path / "run", config, keep=1, save_best=False)
    writer.save(1, state, {"loss": [1.0], "accuracy": [0.5], "val_loss": [1.0], "val_accuracy": [0.5]})
    writer.close()
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "run")
    one_line_error(code, err, "NaN or infinite")


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--hidden", 1_000_000_000], "--hidden 1000000000"),
        (["--batch-size", 1_000_000_000], "--batch-size 1000000000"),
        (["--hidden", 2**63], "--hidden sizes must be below 2**63"),
    ],
)
def test_bench_refuses_what_cannot_fit_before_allocating(capsys, flags, needle):
    start = time.monotonic()
    code, _, err = run_cli(capsys, "bench", "--quick", "--against", "", "--no-sweep", "--no-memory", *flags)
    one_line_error(code, err, needle)
    assert time.monotonic() - start < 60


def test_a_lock_file_planted_as_a_link_is_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_NAME).symlink_to(victim)
    with pytest.raises(FieldError, match="cannot be written"):
        RunLock(tmp_path / "run")
    assert victim.read_text() == "precious"


def test_the_checkpoint_and_metrics_record_the_same_capped_batch_with_a_validation_split(tmp_path, capsys):
    # 4 points, half held out: a batch of 100 trains as the 2 rows left, in the record and in the checkpoint alike
    code, _, _ = run_cli(
        capsys,
        "train",
        "--dataset",
        "quadrants",
        "--epochs",
        "2",
        "--hidden",
        "4",
        "--quiet",
        "--validation-split",
        "0.5",
        "--batch-size",
        "100",
        "--output",
        tmp_path / "run",
    )
    assert code == 0
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["config"]["batch_size"] == 2
    assert checkpoint.restore(tmp_path / "run").config.batch_size == 2
