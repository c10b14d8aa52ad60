"""TrainConfig: defaults from the dataset registry, one validation, errors that name the field."""

import re

import pytest
from conftest import run_cli, small_config

from mlpjax import data
from mlpjax.core.config import TrainConfig
from mlpjax.core.model import ModelConfig
from mlpjax.errors import FieldError, UserInputError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"batch_size": -1}, "batch_size must be at least 1"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\), got 1.5"),
        ({"optimizer": "adamw"}, "valid: sgd"),
        ({"loss": "xent"}, "valid: categorical_crossentropy"),
        ({"activation": "gelu"}, "valid: relu"),
        ({"lr": 0.0}, "lr must be a positive number, got 0.0"),
        ({"batch_size": 1.5}, "batch_size must be an integer, got 1.5"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"seed": 2**63}, "seed must be below 2\\*\\*63"),
        ({"epochs": 2.5}, "epochs must be an integer"),
    ],
)
def test_bad_train_configs_name_the_field_not_a_flag(kwargs, message):
    with pytest.raises(UserInputError, match=message) as exc:
        small_config(**kwargs)
    assert "--" not in str(exc.value)


def test_config_round_trips_through_a_flat_dict():
    config = small_config(hidden=(16, 8), lr=0.5)
    assert config.model == ModelConfig(hidden=(16, 8))
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert set(config.to_dict()) == {
        "dataset",
        "data_dir",
        "label_column",
        "test_split",
        "image_size",
        "normalize",
        "nan",
        "epochs",
        "batch_size",
        "hidden",
        "activation",
        "dropout",
        "optimizer",
        "lr",
        "loss",
        "seed",
        "validation_split",
        "early_stopping",
        "lr_schedule",
        "reduce_lr_on_plateau",
        "plateau_factor",
        "plateau_patience",
        "metrics",
    }
    assert set(TrainConfig.flat_fields()) == set(config.to_dict())  # the CLI's flags follow the fields
    assert config.replace(hidden=(4,), epochs=5) == small_config(hidden=(4,), lr=0.5, epochs=5)


def test_default_epochs_come_from_the_dataset_registry():
    for name, spec in data.DATASETS.items():
        assert TrainConfig(dataset=name).epochs == spec.default_epochs
    assert TrainConfig().epochs == 2  # the tutorial's


def test_the_command_line_names_the_flag(capsys):
    error = FieldError("batch_size", "must be at least 1, got 0")
    assert str(error) == "batch_size must be at least 1, got 0"
    assert error.for_cli(lambda f: "--" + f.replace("_", "-")) == "--batch-size must be at least 1, got 0"
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--batch-size", "0")
    assert code == 2 and "--batch-size must be at least 1, got 0" in err and "Traceback" not in err


def test_every_flat_field_is_described_with_train_configs_default():
    from mlpjax.core import config

    described = config.describe()
    assert set(described) == set(TrainConfig.flat_fields())
    default = TrainConfig()
    for name, about in described.items():
        want = (
            getattr(default.model, name)
            if name in config.MODEL_FIELDS
            else next(f.default for f in __import__("dataclasses").fields(TrainConfig) if f.name == name)
        )
        assert about.default == want, name
        assert about.text and about.kind in ("int", "float", "name", "names", "widths", "path", "text", "switch"), name
        if about.kind == "name":
            assert about.default in about.choices(), name  # the default is one of the registry's names
    assert described["reduce_lr_on_plateau"].render() == described["reduce_lr_on_plateau"].text.format(
        plateau_factor="plateau_factor", plateau_patience="plateau_patience"
    )  # Python names fields, no flags
    assert "--plateau-factor" in described["reduce_lr_on_plateau"].render(lambda n: "--" + n.replace("_", "-"))


# issue 26, item 11: every field of the wrong type is the project's error naming it


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("metrics", None, "metrics must be a metric name or a sequence of them, got None"),
        ("metrics", 5, "metrics must be a metric name or a sequence of them, got 5"),
        ("metrics", ("accuracy", None), "metrics: unknown metric None"),
        ("lr_schedule", ["cosine"], r"lr_schedule \['cosine'\] is unknown; valid: constant"),
        ("data_dir", 5, "data_dir must be a folder path .str or os.PathLike., got 5"),
        ("data_dir", ["a"], "data_dir must be a folder path"),
        ("normalize", None, "normalize None is unknown; valid: none, minmax, standard"),
        ("normalize", "Standard", "normalize 'Standard' is unknown; valid: none, minmax, standard"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_field_error(field, value, message):
    with pytest.raises(FieldError, match=message) as exc:
        TrainConfig(dataset="digits", **{field: value})
    assert exc.value.field == field


def test_data_dir_takes_str_pathlike_and_bytes_as_os_functions_do(tmp_path):
    import os

    assert TrainConfig(dataset="digits", data_dir=tmp_path).data_dir == str(tmp_path)
    assert TrainConfig(dataset="digits", data_dir=b"x").data_dir == "x"
    assert TrainConfig(dataset="digits", data_dir=os.fsencode(tmp_path)).data_dir == str(tmp_path)
    undecodable = b"caf\xe9"  # not UTF-8: decoded as the file system does (surrogateescape), the same folder
    assert os.fsencode(TrainConfig(dataset="digits", data_dir=undecodable).data_dir) == undecodable


# issue 26, item 10: a learning rate float32 cannot hold is refused, not overflowed


@pytest.mark.parametrize("lr", [1e308, 3.5e38, 1e-50])
def test_a_learning_rate_float32_cannot_hold_is_refused(lr):
    pattern = "lr must be a positive number that float32 holds .*got " + re.escape(repr(lr)) + "$"
    with pytest.raises(FieldError, match=pattern) as exc:
        small_config(lr=lr)
    assert exc.value.field == "lr"
    assert small_config(lr=3.4e38).lr == 3.4e38 and small_config(lr=1e-44).lr == 1e-44  # float32 holds these
