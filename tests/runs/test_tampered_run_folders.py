"""A run folder whose files were replaced by something else: every command that reads a run ends in a result
or in one line and exit status 2, never a traceback or a hang, and nothing saved is lost (the epoch checkpoints
stay as they were). The same for a sweep's plan changed at random. The commands run in ``conftest.cli_worker``
(a child process with a bounded address space and two minutes a command)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlpjax import cli

RUN = ["--dataset", "quadrants", "--hidden", "4", "--quiet"]
SIDE_FILES = (
    "metrics.json",
    "history.csv",
    "tensorboard",
    "learning_curves.png",
    "best",
    ".mlpjax-lock",
    "checkpoints/1/meta/metadata",
    "checkpoints/1/_CHECKPOINT_METADATA",
)
READERS = {
    "resume": ["train", "--resume", "{dir}", "--epochs", "2", "--quiet"],
    "evaluate": ["evaluate", "{dir}"],
    "predict": ["predict", "{dir}", "--index", "0"],
    "summary": ["summary", "{dir}"],
}


def _folder(path: Path) -> None:
    path.mkdir()
    (path / "inside").write_text("x")


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # no writer: a read would wait forever


TAMPERINGS = {
    "a folder": _folder,
    "random bytes": lambda p: p.write_bytes(bytes(range(256)) * 3),
    "an empty file": lambda p: p.write_bytes(b""),
    "JSON of another shape": lambda p: p.write_text(json.dumps([{"epochs": -1}, None, "x" * 100])),
    "a dangling link": lambda p: p.symlink_to(p.parent / "nowhere"),
    "a link to /dev/zero": lambda p: p.symlink_to("/dev/zero"),
    "a named pipe": _fifo,
}
FUZZ = settings(
    max_examples=int(os.environ.get("MLPJAX_FUZZ_EXAMPLES", 0)) or 40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A one-epoch run of the four quadrant points with every side file: best/, TensorBoard, PNG, CSV."""
    directory = tmp_path_factory.mktemp("tampered") / "run"
    assert cli.main(["train", *RUN, "--epochs", "1", "--save-best", "--output", str(directory)]) == 0
    return directory


def replace(path: Path, tampering: str) -> None:
    """Put ``tampering`` where ``path`` was (whatever it was: file, folder or link)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    TAMPERINGS[tampering](path)


def epoch_files(directory: Path) -> list[bytes]:
    """The bytes of every regular file of the run's checkpoints (an unreadable epoch may be set aside under
    another name, so only the contents count)."""
    return sorted(p.read_bytes() for p in (directory / "checkpoints").rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.slow
@FUZZ
@given(
    side=st.sampled_from(SIDE_FILES),
    tampering=st.sampled_from(sorted(TAMPERINGS)),
    reader=st.sampled_from(list(READERS)),
)
def test_a_run_with_a_replaced_file_is_read_to_a_result_or_one_line(
    saved, side, tampering, reader, cli_worker, tmp_path
):
    directory = tmp_path / f"run-{os.urandom(4).hex()}"
    shutil.copytree(saved, directory, symlinks=True)
    replace(directory / side, tampering)
    kept = epoch_files(directory)
    argv = [a.replace("{dir}", str(directory)) for a in READERS[reader]]
    reply = cli_worker.ask("cli", tmp_path, argv=argv, stop_at=[], env={})
    assert reply["outcome"] == "ok", (side, tampering, reader, reply.get("traceback"))  # no hang, no crash
    code, err = reply["code"], reply["err"]
    assert code in (0, 2), (side, tampering, reader, code, err[-2000:])
    assert "Traceback" not in err, (side, tampering, reader, err[-2000:])
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("mlpjax "), (side, tampering, reader, err)
    after = epoch_files(directory)
    assert all(data in after for data in kept), (side, tampering, reader)  # a resume may add epoch 2, not lose 1


# -- a sweep's plan (sweep.json) tampered with: `sweep --resume` ends in a result or one line, exit 2 ------------
SWEEP = ["sweep", "--dataset", "quadrants", "--hidden", "4", "--epochs", "1", "--seed", "0,1", "--quiet"]
JUNK = [  # what a tampered plan may hold in place of any value
    None,
    True,
    -1,
    0,
    2**31,
    2**63,
    -(2**63) - 1,
    10**400,
    0.5,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "x",
    "vmap",
    "/dev/zero",
    "\x00",
    [],
    [[[[[[[[[[1]]]]]]]]]],
    {},
    {"format": "mlpjax-sweep"},
    ["relu", 4],
]
PLAN_FILES = {  # whole files in the plan's place
    **TAMPERINGS,
    "deep nesting": lambda p: p.write_text(
        '{"format": "mlpjax-sweep", "configs": ' + "[" * 200_000 + "]" * 200_000 + "}"
    ),
    "a sparse file past the bound": lambda p: os.truncate(_touch(p), 256 * 2**20 + 1),
    "not UTF-8": lambda p: p.write_bytes(b'{"format": "\xff\xfe"}'),
}


def _touch(path: Path) -> Path:
    path.touch()
    return path


@pytest.fixture(scope="module")
def saved_sweeps(tmp_path_factory) -> dict[str, Path]:
    """A finished one-epoch sweep of two models of the four quadrant points for each strategy."""
    folders = {}
    for strategy in ("vmap", "sequential"):
        folders[strategy] = tmp_path_factory.mktemp("tampered-sweep") / strategy
        assert cli.main([*SWEEP, "--strategy", strategy, "--output", str(folders[strategy])]) == 0
    return folders


def tampered(plan, data) -> object:
    """``plan`` (JSON) with one value somewhere in it replaced by junk, or one key or item removed."""
    if not isinstance(plan, (dict, list)) or not plan or data.draw(st.integers(0, 3)) == 0:
        return data.draw(st.sampled_from(JUNK))
    keys = sorted(plan) if isinstance(plan, dict) else list(range(len(plan)))
    key = data.draw(st.sampled_from(keys))
    changed = dict(plan) if isinstance(plan, dict) else list(plan)
    if data.draw(st.integers(0, 5)) == 0:
        del changed[key]
    else:
        changed[key] = tampered(plan[key], data)
    return changed


def epoch_files_under(folder: Path) -> list[bytes]:
    """The bytes of every regular file of a sweep's checkpoints (its groups' and its models' epochs)."""
    paths = [*(folder / "groups").rglob("*"), *(folder / "runs").glob("*/checkpoints/**/*")]
    return sorted(p.read_bytes() for p in paths if p.is_file() and not p.is_symlink())


def resume_tampered_sweep(folder: Path, worker, tmp_path: Path, what) -> str:
    """``sweep --resume folder`` in ``worker``: a result or one line (exit 2), no traceback, no hang, no crash, the
    checkpoints kept. Returns how it ended, in a few words."""
    kept = epoch_files_under(folder)
    empty = tmp_path / "no-data"
    empty.mkdir(exist_ok=True)
    argv = ["sweep", "--resume", str(folder), "--quiet"]
    reply = worker.ask("cli", tmp_path, argv=argv, stop_at=[], env={"MLPJAX_DATA_DIR": str(empty)})
    assert reply["outcome"] == "ok", (what, reply.get("traceback"))
    code, err = reply["code"], reply["err"]
    assert code in (0, 2) and "Traceback" not in err, (what, code, err[-2000:])
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("mlpjax sweep: error: "), (what, err)
    after = epoch_files_under(folder)
    assert all(data in after for data in kept), what
    return f"exit 2: {err.split(': ')[-1][:40]}" if code else "resumed"


@pytest.mark.parametrize("tampering", sorted(PLAN_FILES))
def test_a_sweep_whose_plan_was_replaced_is_one_line(saved_sweeps, tampering, cli_worker, tmp_path):
    """The plan replaced by a folder, random bytes, an empty file, other JSON, a dangling link, a link to
    /dev/zero, a FIFO (read, it would hang), 200,000 levels of nesting, a sparse file past the 256 MiB bound, bytes
    that are no UTF-8: one line naming the plan, exit 2."""
    folder = tmp_path / "sweep"
    shutil.copytree(saved_sweeps["vmap"], folder, symlinks=True)
    plan = folder / "sweep.json"
    plan.unlink()
    PLAN_FILES[tampering](plan)
    resume_tampered_sweep(folder, cli_worker, tmp_path, tampering)


@pytest.mark.slow
@FUZZ
@given(strategy=st.sampled_from(["vmap", "sequential"]), data=st.data())
def test_a_sweep_whose_plan_was_changed_at_random_resumes_or_is_one_line(
    saved_sweeps, strategy, data, cli_worker, tmp_path
):
    """One value anywhere in the plan (a strategy, a config's field, a list's item, the whole plan) replaced by
    junk of another type, a huge or non-finite number or deep nesting, or a key removed: ``sweep --resume``
    resumes (the change is one a sweep may have) or refuses in one line, keeping every checkpoint."""
    folder = tmp_path / f"sweep-{os.urandom(4).hex()}"
    shutil.copytree(saved_sweeps[strategy], folder, symlinks=True)
    plan = json.loads((folder / "sweep.json").read_text())
    (folder / "sweep.json").write_text(json.dumps(tampered(plan, data)))
    what = (folder / "sweep.json").read_text()[:3000]
    event(resume_tampered_sweep(folder, cli_worker, tmp_path, what))  # --hypothesis-show-statistics
