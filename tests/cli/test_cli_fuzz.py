"""Random values for every flag that takes one: each command ends with exit status 0 or 2 and, on 2, one line that
names the flag or the value, never a traceback, in a child process whose address space is limited to 3 GiB
(``conftest.cli_worker``): what a flag asks for beyond that must be refused before it is allocated. (The
multi-process flags are left out: a random coordinator address would be a network connection.)

``bench`` and ``experiment`` stop where their real work begins (``stop_at``: the first measurement, the first
training): what is fuzzed is that every value is checked before it. ``draw`` runs without a display: a valid
value ends in the one line that says so, and no window is ever opened. Paths that would be written outside the
test's folder are moved into it (:func:`confined`): the tests may run as root."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

# A fast run to put each random value into: the tutorial's four points, one epoch.
BASE = ["train", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--quiet"]
TRAIN_FLAGS = [
    "--dataset",
    "--data-dir",
    "--epochs",
    "--batch-size",
    "--hidden",
    "--activation",
    "--dropout",
    "--optimizer",
    "--lr",
    "--loss",
    "--seed",
    "--validation-split",
    "--early-stopping",
    "--lr-schedule",
    "--plateau-factor",
    "--plateau-patience",
    "--metrics",
    "--output",
    "--keep",
    "--save-every",
    "--resume",
    "--devices",
    "--model-parallel",
]
SAVED_FLAGS = {
    "evaluate": ["--dataset", "--data-dir", "--confusion"],
    "predict": ["--dataset", "--data-dir", "--index", "--image", "--csv", "--top", "--out"],
}
SEARCH = int(os.environ.get("MLPJAX_FUZZ_EXAMPLES", 0))  # e.g. 500 to search harder than the defaults below
FUZZ = settings(
    max_examples=SEARCH or 60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def values() -> st.SearchStrategy[str]:
    """Random flag values: numbers of every size and sign, numbers' spellings, names, paths, nonsense."""
    return st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        st.integers(-3, 600).map(str),
        st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64]).map(str),  # type boundaries
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(
            [
                "nan",
                "inf",
                "-0",
                "1e400",
                "0x10",
                "",
                " ",
                "1,2",
                "relu",
                "mnist",
                "adam",
                "..",
                "/",
                "/dev/zero",
                "/proc/self/mem",
                "a[1]",
                "💥",
                "--quiet",
            ]
        ),
        st.text(max_size=12),
    )


def run_in_worker(worker, folder, *argv, stop_at=(), env=None) -> tuple[int, str]:
    """``mlpjax ARGV`` in ``worker``, run in ``folder``: exit status and stderr (see ``input_worker.cli``)."""
    args = [str(a) for a in argv]
    args = [confined(v, folder) if i and args[i - 1] in WRITES else v for i, v in enumerate(args)]
    reply = worker.ask("cli", folder, argv=args, stop_at=list(stop_at), env=env or {})
    assert reply["outcome"] == "ok", reply.get("traceback")
    event("its work started" if reply["started"] else f"exit status {reply['code']}")  # --hypothesis-show-statistics
    return reply["code"], reply["err"]


WRITES = {"--output", "--resume", "--out", "--confusion"}  # flags naming a path that may be written


def confined(value: str, folder: Path) -> str:
    """``value`` of a flag that writes (:data:`WRITES`), kept inside ``folder``: a path outside it becomes one
    inside (``/x`` -> ``folder/outside/x``), unless it names a file that is no folder (``/dev/zero``: refused,
    never written)."""
    target = os.path.normpath(os.path.join(folder, value))
    if (
        target == str(folder)
        or target.startswith(str(folder) + os.sep)
        or os.path.lexists(target)
        and not os.path.isdir(target)
    ):
        return value
    return str(Path(folder) / "outside" / value.lstrip("/").replace("..", "up"))


def assert_one_clean_line(code, err: str, flag: str, value: str) -> None:
    assert code in (0, 2), (flag, value, code, err[-2000:])
    assert "Traceback" not in err, (flag, value, err[-2000:])
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert lines and lines[-1].startswith(("mlpjax ", "usage:")), (flag, value, err)


def too_long(flag: str, value: str) -> bool:
    """A valid value that asks for real work: many epochs or updates (a legitimate run, not a defect). Beyond
    10**9 updates, backprop's errors no longer fit the worker's memory: refused at once, so fuzzed."""
    try:
        number = float(value)
    except ValueError:
        return False
    if flag == "--iterations":
        return 2000 < number < 1e9
    return flag in ("--epochs", "--plateau-patience", "--early-stopping") and math.isfinite(number) and number > 50


@pytest.mark.slow
@FUZZ
@given(flag=st.sampled_from(TRAIN_FLAGS), value=values())
def test_train_with_a_random_value_for_any_flag(flag, value, cli_worker, tmp_path):
    assume(not too_long(flag, value))
    code, err = run_in_worker(cli_worker, tmp_path, *BASE, flag, value)  # --output lands in tmp_path
    assert_one_clean_line(code, err, flag, value)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A tiny saved run of the tutorial's four points."""
    from mlpjax import cli

    directory = tmp_path_factory.mktemp("fuzz") / "run"
    assert cli.main([*BASE, "--output", str(directory)]) == 0
    (directory.parent / "points.csv").write_text("x,y\n1,1\n-1,1\n")  # rows for predict --csv
    return directory


@pytest.mark.slow
@FUZZ
@given(command=st.sampled_from(sorted(SAVED_FLAGS)), data=st.data(), value=values())
def test_evaluate_and_predict_with_a_random_value_for_any_flag(command, data, value, saved_run, cli_worker, tmp_path):
    flag = data.draw(st.sampled_from(SAVED_FLAGS[command]))
    extra = []
    if command == "predict" and flag not in ("--index", "--image", "--csv"):  # a valid input beside the flag
        extra = data.draw(st.sampled_from([["--index", "0"], ["--csv", saved_run.parent / "points.csv"]]))
    code, err = run_in_worker(cli_worker, tmp_path, command, saved_run, *extra, flag, value)
    assert_one_clean_line(code, err, flag, value)


SWEEP = ["sweep", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--quiet"]
SWEEP_FLAGS = [
    "--dataset",
    "--data-dir",
    "--seed",
    "--lr",
    "--dropout",
    "--hidden",
    "--activation",
    "--optimizer",
    "--loss",
    "--batch-size",
    "--epochs",
    "--validation-split",
    "--early-stopping",
    "--lr-schedule",
    "--reduce-lr-on-plateau",
    "--plateau-factor",
    "--plateau-patience",
    "--metrics",
    "--strategy",
    "--output",
    "--save-every",
    "--resume",
    "--devices",
]  # every training flag of train, and the sweep's own
OTHER = {
    "summary": (["summary"], ["--dataset", "--hidden", "--activation", "--dropout"]),
    "basics": (["basics"], ["--data-dir"]),
    "backprop": (["backprop"], ["--iterations"]),
}


def listed_values() -> st.SearchStrategy[str]:
    """Comma-separated lists of random values, as the sweep's flags take them."""
    return st.lists(values(), min_size=1, max_size=3).map(",".join)


@pytest.mark.slow
@FUZZ
@given(flag=st.sampled_from(SWEEP_FLAGS), value=st.one_of(values(), listed_values()))
def test_sweep_with_a_random_value_for_any_flag(flag, value, cli_worker, tmp_path):
    assume(not any(too_long(flag, v) for v in value.split(",")))
    assume(not (flag == "--seed" and len(value.split(",")) > 2))  # a few models at most
    code, err = run_in_worker(cli_worker, tmp_path, *SWEEP, flag, value)
    assert_one_clean_line(code, err, flag, value)


@FUZZ
@given(command=st.sampled_from(sorted(OTHER)), data=st.data(), value=values())
def test_summary_basics_and_backprop_with_a_random_value_for_any_flag(command, data, value, cli_worker, tmp_path):
    argv, flags = OTHER[command]
    flag = data.draw(st.sampled_from(flags))
    assume(not too_long(flag, value))
    code, err = run_in_worker(cli_worker, tmp_path, *argv, flag, value)
    assert_one_clean_line(code, err, flag, value)


BENCH = ["bench", "--quick", "--no-memory", "--no-sweep", "--no-models"]
BENCH_FLAGS = ["--against", "--batch-size", "--hidden", "--data-dir", "--rounds"]
BENCH_WORK = ["mlpjax.bench.benchmark.matmul_ceiling"]  # its first measurement
EXPERIMENT_WORK = ["mlpjax.training.train.fit", "mlpjax.sweep.train.run_sweep"]  # an experiment's first training
MORE = settings(FUZZ, max_examples=SEARCH or 100)  # commands that stop early: more examples, as fast


@pytest.fixture(scope="module")
def mnist_shaped(tmp_path_factory) -> dict[str, str]:
    """Valid values to mix with the random ones: an MNIST-format folder (50 + 20 random 28x28 images) and a run
    trained on it (784 inputs, as the draw window needs)."""
    import numpy as np
    from conftest import write_idx

    from mlpjax import cli

    folder, rng = tmp_path_factory.mktemp("mnist-shaped"), np.random.default_rng(0)
    for stem, n in (("train", 50), ("t10k", 20)):
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    run = folder / "run"
    assert (
        cli.main(
            [
                "train",
                "--dataset",
                "mnist",
                "--data-dir",
                str(folder),
                "--epochs",
                "1",
                "--hidden",
                "4",
                "--quiet",
                "--output",
                str(run),
            ]
        )
        == 0
    )
    return {"data": str(folder), "run": str(run)}


def some_valid(mnist_shaped: dict[str, str]) -> st.SearchStrategy[str]:
    """Random values, and now and then a valid folder or run."""
    return st.one_of(values(), st.sampled_from(sorted(mnist_shaped.values())))


@pytest.mark.slow
@MORE
@given(flag=st.sampled_from(BENCH_FLAGS), data=st.data())
def test_bench_checks_a_random_value_for_any_flag_before_it_measures(flag, data, mnist_shaped, cli_worker, tmp_path):
    value = data.draw(some_valid(mnist_shaped))
    code, err = run_in_worker(cli_worker, tmp_path, *BENCH, flag, value, stop_at=BENCH_WORK)
    assert_one_clean_line(code, err, flag, value)


@pytest.mark.slow
@MORE
@given(
    flag=st.sampled_from(["NAME", "--out", "--data-dir", "--seed"]),
    name=st.sampled_from(["all", "samples", "quadrants", "epochs", "validation", "activations"]),
    data=st.data(),
)
def test_experiment_checks_a_random_value_for_any_flag_before_it_trains(
    flag, name, data, mnist_shaped, cli_worker, tmp_path
):
    value = data.draw(some_valid(mnist_shaped))
    argv = ["experiment", value, "--quick"] if flag == "NAME" else ["experiment", name, "--quick", flag, value]
    code, err = run_in_worker(cli_worker, tmp_path, *argv, stop_at=EXPERIMENT_WORK)
    assert_one_clean_line(code, err, flag, value)


NO_DISPLAY = {"DISPLAY": None, "WAYLAND_DISPLAY": None}
# never reached without a display
WINDOW = ["mlpjax.draw.window.DrawWindow", "mlpjax.draw.window._open_root", "mlpjax.training.train.fit"]


@MORE
@given(flag=st.sampled_from(["DIR", "DIR --best", "--data-dir"]), data=st.data())
def test_draw_checks_a_random_value_for_any_flag_and_opens_no_window(flag, data, mnist_shaped, cli_worker, tmp_path):
    value = data.draw(some_valid(mnist_shaped))
    argv = {
        "DIR": ["draw", value],
        "DIR --best": ["draw", value, "--best"],
        "--data-dir": ["draw", "--train-quick", "--data-dir", value],
    }[flag]
    reply = cli_worker.ask("cli", tmp_path, argv=argv, stop_at=WINDOW, env=NO_DISPLAY)
    assert reply["outcome"] == "ok" and reply["started"] is None, reply
    assert reply["code"] == 2, reply  # a valid value too: there is no display, and that is said in one line
    assert_one_clean_line(reply["code"], reply["err"], flag, value)
    if (flag, value) in (("DIR", mnist_shaped["run"]), ("--data-dir", mnist_shaped["data"])):  # valid
        assert "no display" in reply["err"], reply["err"]
