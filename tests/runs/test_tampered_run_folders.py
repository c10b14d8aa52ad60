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
from hypothesis import HealthCheck, given, settings
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
