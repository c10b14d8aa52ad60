"""A full disk (a real, small tmpfs) during a sweep or a run: one line and exit status 2, no temporary files left
behind, and the folder resumes, once there is room again, to the same results as an uninterrupted one.

The tmpfs is mounted as root and unmounted afterwards; the tests are skipped where mounting is not permitted.
Sizes (digits, hidden 128, 3 epochs): a vmapped group of 2 models takes about 260 KiB an epoch, one model's
run about 150 KiB an epoch plus 70 KiB of logs (history.csv, TensorBoard, learning_curves.png), so a disk of
``SMALL_DISK`` holds the first epoch and not the second.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from mlpjax.runs import orbax_io

SMALL_DISK, LARGE_DISK = "360k", "64m"
SWEEP = ("--dataset", "digits", "--epochs", "3", "--batch-size", "64", "--hidden", "128", "--seed", "0,1",
         "--quiet")
TRAIN = ("--dataset", "digits", "--epochs", "3", "--batch-size", "64", "--hidden", "128", "--seed", "0",
         "--quiet")


def mount_tmpfs(where: Path, size: str) -> None:
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip() or 'mount failed'}): needs root "
                    "and a kernel that permits it")


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


def leftovers(folder: Path) -> list[Path]:
    """What a failed write may leave: Orbax's ``*.orbax-checkpoint-tmp*`` folders, ``*.tmp`` files and the
    temporary files of atomic writers (every name with ``tmp`` in it)."""
    return [p for p in folder.rglob("*") if "tmp" in p.name]


def results(folder: Path) -> list[dict]:
    """Each model's config, history and final figures from a sweep's results.json."""
    runs = json.loads((folder / "results.json").read_text())["runs"]
    return [{k: r[k] for k in ("config", "history", "test_loss", "test_accuracy", "diverged")} for r in runs]


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_full_disk_during_a_sweep_is_one_line_and_the_sweep_resumes(small_disk, tmp_path, capsys, strategy):
    disk, grow = small_disk
    out = disk / "sweep"
    code, _, err = run_cli(capsys, "sweep", *SWEEP, "--strategy", strategy, "--output", out)
    # vmap: a group's save fails; sequential: a model's save or one of its logs, whichever the disk stops
    assert_one_line(code, err, "space left on", *(["cannot save epoch", "earlier epochs are intact"]
                                                  if strategy == "vmap" else []))
    assert not leftovers(out), leftovers(out)
    roots = [out / "groups" / "0"] if strategy == "vmap" else [out / "runs" / i / "checkpoints" for i in "01"]
    assert any(orbax_io.complete_steps(root) for root in roots)  # the disk held an epoch ...
    assert not (out / "results.json").exists()  # ... and not the whole sweep

    grow()
    code, _, err = run_cli(capsys, "sweep", "--resume", out, "--quiet")
    assert code == 0, err
    assert not leftovers(out), leftovers(out)
    whole = tmp_path / "whole"  # the same sweep, uninterrupted, on the ordinary disk
    assert run_cli(capsys, "sweep", *SWEEP, "--strategy", strategy, "--output", whole)[0] == 0
    assert results(out) == results(whole)


def test_a_full_disk_during_training_is_one_line_and_the_run_resumes(small_disk, tmp_path, capsys):
    disk, grow = small_disk
    out = disk / "run"
    code, _, err = run_cli(capsys, "train", *TRAIN, "--output", out)
    assert_one_line(code, err, "space left on")
    assert not leftovers(out), leftovers(out)
    assert orbax_io.complete_steps(out / "checkpoints")[-1:] in ([1], [2])

    grow()
    code, _, err = run_cli(capsys, "train", "--resume", out, "--quiet")
    assert code == 0, err
    assert not leftovers(out), leftovers(out)
    whole = tmp_path / "whole"
    assert run_cli(capsys, "train", *TRAIN, "--output", whole)[0] == 0
    history = [json.loads((d / "metrics.json").read_text())["history"] for d in (out, whole)]
    assert history[0] == history[1]


def test_a_sweep_onto_a_read_only_disk_is_one_line_naming_the_flag(small_disk, capsys):
    disk, _ = small_disk
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, capture_output=True)
    code, _, err = run_cli(capsys, "sweep", *SWEEP, "--output", disk / "sweep")
    assert_one_line(code, err, f"--output {disk / 'sweep'}", "read-only file system")
