"""The one epoch loop (mlpjax.training.loop): which epochs it saves, however the training ends."""

from __future__ import annotations

import functools
import math

import pytest
from conftest import small_config

from mlpjax.training import loop


class Scripted:
    """A :class:`~mlpjax.training.loop.Program` of ``K`` models whose figures are given: model ``k``'s training
    loss of epoch ``e`` is ``losses[k][e - 1]`` (NaN: it diverges) and its val_loss the same number."""

    def __init__(self, losses: list[list[float]]):
        self.losses, self.epoch = losses, 0

    def train(self, epoch, active):
        self.epoch = epoch
        return [{"loss": ls[epoch - 1], "accuracy": 0.5} for ls in self.losses]

    def evaluate(self):
        return [{"loss": ls[self.epoch - 1], "accuracy": 0.5} for ls in self.losses]

    def evaluate_test(self):
        return self.evaluate(), 0.0

    def params(self, k):
        return {"epoch": self.epoch}

    def set_scales(self, scales):
        pass

    def set_params(self, k, params):
        pass


def saved_epochs(losses, save_every, epochs=7, **config) -> tuple[list[int], list[loop.Member]]:
    """The epochs the loop saves, in order, training ``losses`` (one list per model) for ``epochs``."""
    program = Scripted(losses)
    members = [
        loop.Member.start(small_config(epochs=epochs, **config), 1, 10, None, functools.partial(program.params, k))
        for k in range(len(losses))
    ]
    saved: list[tuple[int, list[int]]] = []  # (epoch, each model's epochs done when the save was taken)

    def save(epoch):
        done = [m.done for m in members]  # what the save takes is taken when the epoch ends
        return lambda: saved.append((epoch, done))

    loop.run_epochs(program, members, epochs, save=save, save_every=save_every)
    for epoch, done in saved:  # each save is of the epoch it names, taken then, whenever written
        assert max(done) == epoch
    return [epoch for epoch, _ in saved], members


FALLING = [1.0 - e / 10 for e in range(7)]


@pytest.mark.parametrize(
    "save_every, expected",
    [(1, [1, 2, 3, 4, 5, 6, 7]), (3, [1, 3, 6, 7]), (2, [1, 2, 4, 6, 7]), (7, [1, 7]), (100, [1, 7])],
)
def test_the_first_every_nth_and_the_last_epoch_are_saved(save_every, expected):
    assert saved_epochs([FALLING], save_every)[0] == expected


def test_the_epoch_before_a_divergence_is_saved_and_the_diverged_one_is_not():
    losses = [*FALLING[:4], math.nan, *FALLING[5:]]  # epoch 5 diverges
    epochs, (member,) = saved_epochs([losses], 3)
    assert member.diverged == 5 and member.done == 4
    assert epochs == [1, 3, 4]  # 4 is not a multiple of 3: held, and written when epoch 5 diverged
    # a divergence right after a saved epoch saves nothing twice
    assert saved_epochs([[*FALLING[:3], math.nan, *FALLING[4:]]], 3)[0] == [1, 3]


def test_the_epoch_early_stopping_stops_after_is_saved():
    rising = [0.5, 0.4, 0.45, 0.46, 0.47, 0.48, 0.49]  # best at 2, patience 2: stops after epoch 4
    epochs, (member,) = saved_epochs([rising], 3, early_stopping=2)
    assert member.calls.stopped and member.done == 4
    assert epochs == [1, 3, 4]


def test_a_group_saves_while_any_model_trains_and_when_the_last_one_stops_or_diverges():
    diverging = [*FALLING[:4], math.nan, *FALLING[5:]]
    # one model diverges at epoch 5, the other trains on: the group's epochs are saved as usual
    assert saved_epochs([diverging, FALLING], 3)[0] == [1, 3, 6, 7]
    # both diverge at epoch 5: epoch 4, the last recorded, is saved
    assert saved_epochs([diverging, diverging], 3)[0] == [1, 3, 4]
    # one diverges at 5, the other stops early after 5: epoch 5 is the group's last
    rising = [0.5, 0.4, 0.45, 0.46, 0.47, 0.48, 0.49]
    program_epochs, members = saved_epochs([diverging, rising], 3, early_stopping=3)
    assert members[1].calls.stopped and members[1].done == 5 and program_epochs == [1, 3, 5]
