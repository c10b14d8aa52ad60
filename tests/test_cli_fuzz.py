"""Random values for every flag that takes one: each command ends with exit status 0 or 2 and, on 2, one line that
names the flag or the value, never a traceback, in a child process whose address space is limited to 3 GiB
(``conftest.cli_worker``): what a flag asks for beyond that must be refused before it is allocated. (The
multi-process flags are left out: a random coordinator address would be a network connection.)"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st


# A fast run to put each random value into: the tutorial's four points, one epoch.
BASE = ["train", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--quiet"]
TRAIN_FLAGS = ["--dataset", "--data-dir", "--epochs", "--batch-size", "--hidden", "--activation", "--dropout",
               "--optimizer", "--lr", "--loss", "--seed", "--validation-split", "--early-stopping", "--lr-schedule",
               "--plateau-factor", "--plateau-patience", "--metrics", "--output", "--keep", "--resume", "--devices",
               "--model-parallel"]
SAVED_FLAGS = {"evaluate": ["--dataset", "--data-dir", "--confusion"],
               "predict": ["--dataset", "--data-dir", "--index", "--image", "--out"]}
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def values() -> st.SearchStrategy[str]:
    """Random flag values: numbers of every size and sign, numbers' spellings, names, paths, nonsense."""
    return st.one_of(
        st.integers(-10**30, 10**30).map(str),
        st.integers(-3, 600).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["nan", "inf", "-0", "1e400", "0x10", "", " ", "1,2", "relu", "mnist", "adam", "..", "/",
                         "/dev/zero", "/proc/self/mem", "a[1]", "💥", "--quiet"]),
        st.text(max_size=12),
    )


def run_in_worker(worker, folder, *argv) -> tuple[int, str]:
    reply = worker.ask("cli", folder, argv=[str(a) for a in argv])
    assert reply["outcome"] == "ok", reply.get("traceback")
    return reply["code"], reply["err"]


def assert_one_clean_line(code, err: str, flag: str, value: str) -> None:
    assert code in (0, 2), (flag, value, code, err[-2000:])
    assert "Traceback" not in err, (flag, value, err[-2000:])
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert lines and lines[-1].startswith(("mlpjax ", "usage:")), (flag, value, err)


def too_long(flag: str, value: str) -> bool:
    """A valid value that asks for real work: many epochs (a legitimate run, not a defect)."""
    try:
        number = float(value)
    except ValueError:
        return False
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
    return directory


@pytest.mark.slow
@FUZZ
@given(command=st.sampled_from(sorted(SAVED_FLAGS)), data=st.data(), value=values())
def test_evaluate_and_predict_with_a_random_value_for_any_flag(command, data, value, saved_run, cli_worker, tmp_path):
    flag = data.draw(st.sampled_from(SAVED_FLAGS[command]))
    extra = ["--index", "0"] if command == "predict" and flag not in ("--index", "--image") else []
    code, err = run_in_worker(cli_worker, tmp_path, command, saved_run, *extra, flag, value)
    assert_one_clean_line(code, err, flag, value)


SWEEP = ["sweep", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--quiet"]
SWEEP_FLAGS = ["--seed", "--lr", "--dropout", "--hidden", "--activation", "--optimizer", "--loss", "--batch-size",
               "--epochs", "--strategy", "--output", "--resume", "--devices"]
OTHER = {"summary": (["summary"], ["--dataset", "--hidden", "--activation", "--dropout"]),
         "basics": (["basics"], ["--data-dir"])}


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
def test_summary_and_basics_with_a_random_value_for_any_flag(command, data, value, cli_worker, tmp_path):
    argv, flags = OTHER[command]
    flag = data.draw(st.sampled_from(flags))
    code, err = run_in_worker(cli_worker, tmp_path, *argv, flag, value)
    assert_one_clean_line(code, err, flag, value)
