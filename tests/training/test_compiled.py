"""Compiled epochs and evaluations on placed rows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small_config, state_for, toy_dataset

from mlpjax.core import model
from mlpjax.errors import UserInputError
from mlpjax.training import compiled, train
from mlpjax.training.rows import Rows


def test_a_prepared_epoch_compiles_once_and_trains(digits, monkeypatch):
    monkeypatch.setattr(compiled, "_COMPILED", {})  # what earlier tests of this process compiled is forgotten
    state = state_for(small_config(), digits)
    epoch_runner, state = compiled.prepare_epoch(state, Rows.from_dataset(digits, "train"), batch_size=32)
    assert epoch_runner.compile_seconds > 0 and epoch_runner.steps == 43 and epoch_runner.devices == 1
    again, _ = compiled.prepare_epoch(state, Rows.from_dataset(digits, "train"), batch_size=32)
    assert again.compile_seconds == 0.0  # the same program for the same shapes: compiled once
    state, metrics = epoch_runner(state, 0)
    assert int(state.step) == 43 and np.isfinite(float(metrics["loss"]))


def test_evaluate_agrees_with_a_direct_computation(digits):
    result = train.fit(small_config(epochs=3), digits)
    probs = np.asarray(
        jax.nn.softmax(
            jnp.asarray(model.apply(result.state.params, digits.x_test, model_config=result.state.model_config))
        )
    )
    scores = compiled.evaluate(
        result.state.params, Rows.from_dataset(digits, "test"), model_config=result.state.model_config
    )
    assert scores["accuracy"] == pytest.approx((probs.argmax(-1) == digits.y_test).mean())
    nll = -np.log(probs[np.arange(len(probs)), digits.y_test]).mean()
    assert scores["loss"] == pytest.approx(nll, rel=1e-4)
    assert set(scores) == {
        "loss",
        "accuracy",
        "precision",
        "recall",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "mse",
        "mae",
        *(f"f1_score_{c}" for c in range(10)),
    }
    assert (
        compiled.evaluate_arrays(
            result.state.params, digits.x_test, digits.y_test, model_config=result.state.model_config
        )
        == scores
    )


def test_no_rows_is_one_clear_error():
    ds = toy_dataset()
    state = state_for(small_config(), ds)
    with pytest.raises(UserInputError, match="0 rows"):
        compiled.evaluate(state.params, Rows.place(ds.x_test[:0], ds.y_test[:0]), model_config=state.model_config)


def test_models_that_differ_only_in_seed_share_one_compiled_epoch(digits):
    first = train.fit(small_config(seed=11, hidden=(24,)), digits)
    second = train.fit(small_config(seed=12, hidden=(24,)), digits)
    assert second.compile_seconds == 0.0 and second.history != first.history
    other = train.fit(small_config(seed=12, hidden=(24,), dropout=0.1), digits)  # another program: compiled
    assert other.compile_seconds > 0
