"""mlpjax's persistent compilation cache (mlpjax.cache): where it lives, how it is turned off, its bound, and that
a cached program computes what a fresh one computes (fresh processes, histories compared bit for bit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import child_env

from mlpjax import cache


def test_cache_dir_follows_the_environment(tmp_path):
    home = str(tmp_path / "home")
    assert cache.cache_dir({"HOME": home}) == Path(home) / ".cache" / "mlpjax"
    assert cache.cache_dir({"HOME": home, "XDG_CACHE_HOME": "/xdg"}) == Path("/xdg/mlpjax")
    assert cache.cache_dir({"HOME": home, "XDG_CACHE_HOME": "relative"}) == Path(home) / ".cache" / "mlpjax"
    assert cache.cache_dir({"HOME": home, "XDG_CACHE_HOME": "/xdg", cache.ENV: "/mine"}) == Path("/mine")
    assert cache.cache_dir({"HOME": home, cache.ENV: ""}) is None


def test_settings_cache_every_program_and_leave_jax_own_variables_alone():
    on = cache.settings(environ={cache.ENV: "/c"})
    assert on["jax_compilation_cache_dir"] == "/c" and on["jax_enable_compilation_cache"] is True
    assert on["jax_persistent_cache_min_compile_time_secs"] == 0
    assert on["jax_persistent_cache_min_entry_size_bytes"] == -1
    assert on["jax_compilation_cache_max_size"] == cache.MAX_BYTES  # filelock is a dependency
    mine = cache.settings(environ={cache.ENV: "/c", "JAX_COMPILATION_CACHE_MAX_SIZE": "1000"})
    assert "jax_compilation_cache_max_size" not in mine
    assert cache.settings(enabled=False, environ={cache.ENV: "/c"}) == {"jax_enable_compilation_cache": False}
    assert cache.settings(environ={cache.ENV: ""}) == {"jax_enable_compilation_cache": False}


def _mlpjax(env: dict, *argv) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "mlpjax.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr[-3000:]
    return proc


def _env(**extra) -> dict:
    env = {k: v for k, v in child_env().items() if not k.startswith("JAX_") or k == "JAX_PLATFORMS"}
    return {**env, **extra}


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*-cache")} if folder.exists() else set()


@pytest.mark.slow
def test_cached_and_uncached_training_give_the_same_history_bit_for_bit(tmp_path):
    """Three fresh processes train the same small digits model: without the cache, with it cold (it fills the
    folder) and with it warm (every program is found there: no entry is added); metrics.json's histories, read
    back as the exact floats written, are equal."""
    folder = tmp_path / "cache"
    argv = ("train", "--dataset", "digits", "--epochs", "2", "--hidden", "32", "--batch-size", "32", "--quiet")
    histories = []
    for name, env in (
        ("off", _env(MLPJAX_CACHE_DIR="")),
        ("cold", _env(MLPJAX_CACHE_DIR=str(folder))),
        ("warm", _env(MLPJAX_CACHE_DIR=str(folder))),
    ):
        if name == "warm":
            filled = _entries(folder)
            assert filled, "the cold run cached nothing"
        _mlpjax(env, *argv, "--output", tmp_path / name)
        histories.append(json.loads((tmp_path / name / "metrics.json").read_text())["history"])
    assert _entries(folder) == filled
    assert histories[0] == histories[1] == histories[2]
    assert len(histories[0]["loss"]) == 2


@pytest.mark.parametrize("how", ["flag after", "flag before", "empty variable"])
def test_the_cache_can_be_turned_off(tmp_path, how):
    folder = tmp_path / "cache"
    argv = {
        "flag after": ["backprop", "--no-cache"],
        "flag before": ["--no-cache", "backprop"],
        "empty variable": ["backprop"],
    }[how]
    env = _env(MLPJAX_CACHE_DIR="" if how == "empty variable" else str(folder))
    assert "jax.grad" in _mlpjax(env, *argv).stdout
    assert not folder.exists()
    if how == "flag after":  # and on, the same command fills the folder
        _mlpjax(env, "backprop")
        assert _entries(folder)


def test_a_cache_folder_that_cannot_be_made_leaves_the_cache_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = _mlpjax(_env(MLPJAX_CACHE_DIR=str(blocker / "cache")), "backprop")
    assert "jax.grad" in proc.stdout and proc.stderr == ""


BOUNDED = """
import json, os, sys
from pathlib import Path
from mlpjax import cache
folder = cache.configure()
import jax, jax.numpy as jnp
def program(x):
    return jnp.tanh(x) * 3 + 1
def programs():
    return {p.name for p in folder.glob('jit_program-*-cache')}
order = []
for n in range(1, 9):  # eight programs (different shapes), compiled one after another
    before = programs()
    jax.jit(program)(jnp.ones(n)).block_until_ready()
    order.append(sorted(programs() - before))
sizes = {p.name: p.stat().st_size for p in folder.glob('*-cache')}
print(json.dumps({"order": order, "sizes": sizes}))
"""


def test_the_cache_is_bounded_and_evicts_the_least_recently_used_first(tmp_path):
    """JAX's own bound (jax_compilation_cache_max_size, set by mlpjax.cache): with room for about three of eight
    programs, the folder never exceeds the bound and keeps the newest, having evicted the oldest."""
    folder = tmp_path / "cache"
    probe = subprocess.run(
        [sys.executable, "-c", BOUNDED],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(MLPJAX_CACHE_DIR=str(folder)),
        check=True,
    )
    entry = max(json.loads(probe.stdout.splitlines()[-1])["sizes"].values())
    bound = 3 * entry + entry // 2
    small = tmp_path / "small"
    proc = subprocess.run(
        [sys.executable, "-c", BOUNDED],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(MLPJAX_CACHE_DIR=str(small), JAX_COMPILATION_CACHE_MAX_SIZE=str(bound)),
        check=True,
    )
    found = json.loads(proc.stdout.splitlines()[-1])
    assert all(len(names) == 1 for names in found["order"])  # each program was written
    order = [names[0] for names in found["order"]]
    assert sum(found["sizes"].values()) <= bound
    kept = [name for name in order if name in found["sizes"]]
    assert kept == order[len(order) - len(kept) :]  # the newest, the oldest evicted first
    assert 1 <= len(kept) < 8


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["train", "--help"]])
def test_version_and_help_compile_nothing(tmp_path, argv):
    """With JAX's own variables set (argparse exits before mlpjax configures anything), every compiled program
    is written to the cache: an empty folder afterwards means that nothing was compiled."""
    folder = tmp_path / "cache"
    proc = _mlpjax(
        _env(
            JAX_COMPILATION_CACHE_DIR=str(folder),
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
        ),
        *argv,
    )
    assert proc.stdout
    assert _entries(folder) == set()


TOP_LEVEL = """
import sys
from mlpjax import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as e:
    print("exit", e.code)
print(sorted({m.split(".")[0] for m in sys.modules} & {"jax", "flax", "optax", "numpy"}))
"""


@pytest.mark.parametrize(
    ("argv", "status", "imported"),
    [(["--help"], 0, "[]"), (["tran"], 2, "[]"), (["train", "--help"], 0, "['flax', 'jax', 'numpy', 'optax']")],
)
def test_only_the_chosen_command_builds_its_flags(argv, status, imported):
    """``mlpjax --help`` (and a misspelt command's one-line error) builds no command's flags, whose choices come
    from the registries, and so imports neither JAX nor NumPy; ``mlpjax train --help`` builds train's."""
    proc = subprocess.run(
        [sys.executable, "-c", TOP_LEVEL, *argv], capture_output=True, text=True, env=_env(), timeout=300, check=False
    )
    assert proc.stdout.splitlines()[-2:] == [f"exit {status}", imported], proc.stdout[-800:] + proc.stderr[-800:]
    if argv == ["--help"]:
        assert "predict a test sample" in proc.stdout
    if argv == ["train", "--help"]:
        assert "--optimizer" in proc.stdout


IMPORTED = """
import sys
from mlpjax import cli
code = cli.main(sys.argv[1:])
heavy = {"matplotlib", "sklearn", "scipy", "tensorflow_datasets", "keras", "onnx"}
print(sorted({m.split(".")[0] for m in sys.modules} & heavy))
sys.exit(code)
"""


def test_evaluate_and_predict_import_no_drawing_library(tmp_path):
    """Start-up is most of a warm ``evaluate`` (docs/speed.md): evaluate, predict (its PNG is Pillow's) and
    summary import no matplotlib, and of a digits run no scikit-learn or scipy (the digits are read from
    scikit-learn's file, split by mlpjax.data.stratified), nor tensorflow-datasets, Keras or ONNX."""
    from mlpjax import cli

    run = tmp_path / "run"
    assert (
        cli.main(["train", "--dataset", "digits", "--epochs", "1", "--hidden", "4", "--quiet", "--output", str(run)])
        == 0
    )
    png = tmp_path / "p.png"
    for argv in (["evaluate", run], ["predict", run, "--index", "0", "--out", png], ["summary", run]):
        proc = subprocess.run(
            [sys.executable, "-c", IMPORTED, *map(str, argv)],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.splitlines()[-1] == "[]", (argv, proc.stdout[-500:])
    assert png.read_bytes().startswith(b"\x89PNG")
