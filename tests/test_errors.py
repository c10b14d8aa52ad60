"""Errors name fields in Python and flags on the command line; the checks refuse what they should."""

import math

import numpy as np
import pytest

from mlpjax.errors import FieldError, UserInputError, check_int, check_name, check_number


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def test_a_field_error_reads_as_python_and_as_a_flag():
    e = FieldError("batch_size", "must be at least 1, got 0")
    assert str(e) == "batch_size must be at least 1, got 0"
    assert e.for_cli(flag) == "--batch-size must be at least 1, got 0"
    placed = FieldError(
        "hidden",
        "{field} 30: with {model_parallel} 4 every width must divide by 4",
        where="run/x",
        also=("model_parallel",),
    )
    assert str(placed) == "run/x: hidden 30: with model_parallel 4 every width must divide by 4"
    assert placed.for_cli(flag) == "run/x: --hidden 30: with --model-parallel 4 every width must divide by 4"
    plain = UserInputError("file.gz: truncated")
    assert plain.for_cli(flag) == str(plain) == "file.gz: truncated"


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True, None, math.nan])
def test_check_int_refuses_what_is_not_a_whole_number_of_at_least_one(value):
    with pytest.raises(FieldError, match="^epochs must be"):
        check_int("epochs", value)


def test_check_int_takes_numpy_integers():
    assert check_int("epochs", np.int64(3)) == 3 and type(check_int("epochs", np.int64(3))) is int
    assert check_int("seed", -5, minimum=-10) == -5


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, math.nan, math.inf, "x", True])
def test_check_number_keeps_a_rate_in_its_interval(value):
    with pytest.raises(FieldError, match=r"^dropout must be in \[0, 1\)"):
        check_number("dropout", value, low=0.0, high=1.0)
    assert check_number("dropout", 0.0, low=0.0, high=1.0) == 0.0


def test_check_name_lists_the_valid_names():
    assert check_name("loss", "mse", ["mse", "hinge"]) == "mse"
    with pytest.raises(UserInputError, match="^unknown loss 'xent'; valid: mse, hinge$"):
        check_name("loss", "xent", ["mse", "hinge"])
