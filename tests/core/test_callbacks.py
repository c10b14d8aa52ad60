"""Early stopping and the plateau as pure rules (Keras 3's), and the learning-rate schedules."""

import math

import jax
import numpy as np
import optax
import pytest
from conftest import small_config, state_for, toy_dataset

from mlpjax.core import callbacks, optimizers, schedules
from mlpjax.errors import FieldError


def _run(update, state, losses):
    states = []
    for epoch, loss in enumerate(losses, start=1):
        state = update(state, epoch, loss)
        states.append(state)
    return states


def test_early_stopping_stops_after_patience_epochs_without_a_strictly_lower_val_loss():
    states = _run(callbacks.early_stopping_update, callbacks.EarlyStopping(2), [1.0, 0.8, 0.8, 0.9, 0.7])
    assert [s.wait for s in states[:3]] == [0, 0, 1]  # equal is no improvement (min_delta 0)
    assert states[3].stopped and states[3].stopped_epoch == 4 and states[3].best_epoch == 2
    assert states[4] == states[3]  # a stopped state stays stopped


def test_early_stopping_never_stops_after_the_first_epoch_as_keras():
    (state,) = _run(callbacks.early_stopping_update, callbacks.EarlyStopping(0), [math.nan])
    assert not state.stopped


def test_plateau_reduces_after_patience_epochs_within_min_delta_and_counts_again():
    states = _run(callbacks.plateau_update, callbacks.Plateau(0.1, 2), [1.0, 0.99995, 0.9999, 0.5, 0.6, 0.6, 0.6])
    assert [s.scale for s in states] == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])
    assert states[-1].reductions == (3, 6)


def test_replay_rebuilds_the_state_from_a_history():
    losses = [1.0, 0.9, 0.95, 0.97]
    assert (
        callbacks.replay(callbacks.early_stopping_update, callbacks.EarlyStopping(5), losses)
        == _run(callbacks.early_stopping_update, callbacks.EarlyStopping(5), losses)[-1]
    )


@pytest.mark.parametrize(
    "name,first,last",
    [
        ("constant", 1.0, 1.0),
        ("cosine", 1.0, 0.0),
        ("exponential", 1.0, schedules.EXPONENTIAL_END),
        ("warmup-cosine", 0.0, 0.0),
    ],
)
def test_schedules_decay_over_the_planned_epochs(name, first, last):
    config = small_config(lr=1.0, lr_schedule=name, epochs=4)
    lrs = [schedules.learning_rate(config, 10, s) for s in range(41)]
    assert lrs[0] == pytest.approx(first, abs=1e-6) and lrs[40] == pytest.approx(last, abs=1e-6)
    assert max(lrs) == pytest.approx(1.0, abs=0.02)


def test_the_default_optimizer_is_the_plain_one_bit_for_bit():
    config = small_config()
    assert type(schedules.make_optimizer(config, 7).init) is type(optimizers.get_optimizer("adam", None).init)
    state = state_for(config, toy_dataset())
    grads = jax.tree_util.tree_map(lambda p: np.full_like(p, 0.3), state.params)
    a, _ = schedules.make_optimizer(config, 7).update(grads, state.opt_state, state.params)
    b, _ = optimizers.get_optimizer("adam").update(grads, state.opt_state, state.params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_the_plateau_scale_lives_in_the_optimizer_state_and_scales_the_updates():
    config = small_config(reduce_lr_on_plateau=True, optimizer="sgd", lr=0.5)
    state = state_for(config, toy_dataset())
    assert schedules.plateau_scale(state.opt_state) == 1.0
    opt_state = schedules.with_plateau_scale(state.opt_state, 0.1)
    assert jax.tree_util.tree_structure(opt_state) == jax.tree_util.tree_structure(state.opt_state)
    grads = jax.tree_util.tree_map(lambda p: np.ones_like(p), state.params)
    updates, _ = state.tx.update(grads, opt_state, state.params)
    np.testing.assert_allclose(optax.tree_utils.tree_max(updates), -0.05, rtol=1e-6)


def test_bad_settings_name_their_field():
    for changes, field in [
        ({"validation_split": 1.0}, "validation_split"),
        ({"early_stopping": -1}, "early_stopping"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"plateau_factor": 1.5}, "plateau_factor"),
        ({"plateau_patience": -2}, "plateau_patience"),
        ({"metrics": ["auc"]}, "metrics"),
        ({"reduce_lr_on_plateau": "yes"}, "reduce_lr_on_plateau"),
    ]:
        with pytest.raises(FieldError) as e:
            small_config(**changes)
        assert e.value.field == field and "--" not in str(e.value)


def test_old_flat_configs_load_with_the_new_fields_defaulted_and_round_trip():
    old = {
        k: v
        for k, v in small_config().to_dict().items()
        if k
        in (
            "dataset",
            "data_dir",
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "loss",
            "seed",
            "hidden",
            "activation",
            "dropout",
        )
    }
    config = type(small_config()).from_dict(old)
    assert config.validation_split == 0.0 and config.early_stopping is None and config.metrics == ("accuracy",)
    assert config.validation == "test" and small_config(validation_split=0.1).validation == "split"
    new = small_config(metrics=["f1", "mse", "f1"], early_stopping=3)
    assert new.metrics == ("f1_score", "mse") and type(new).from_dict(new.to_dict()) == new
