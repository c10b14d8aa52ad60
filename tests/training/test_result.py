"""What a run leaves behind: the metrics.json record."""

import json

import jax
from conftest import small_config, toy_dataset

from mlpjax.training import train
from mlpjax.training.result import HISTORY_KEYS


def test_the_record_is_json_with_every_key_and_earlier_epochs_first():
    result = train.fit(small_config(epochs=2), toy_dataset())
    record = json.loads(json.dumps(result.record(earlier_epoch_seconds=[9.0])))
    for key in (
        "test_loss",
        "test_accuracy",
        "test_metrics",
        "history",
        "epoch_seconds",
        "compile_seconds",
        "device",
        "devices",
        "processes",
        "config",
        "model",
        "dataset",
        "versions",
    ):
        assert key in record
    assert record["epoch_seconds"][0] == 9.0 and len(record["epoch_seconds"]) == 3
    assert record["device"] == jax.devices()[0].platform and record["config"] == small_config(epochs=2).to_dict()
    assert set(record["versions"]) >= {"python", "jax", "flax", "optax", "numpy"}
    assert set(record["history"]) == {*HISTORY_KEYS, "lr"}
