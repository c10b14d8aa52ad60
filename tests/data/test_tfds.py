"""MNIST through tensorflow-datasets, the path of ``mlpjax train`` without ``--data-dir`` or ``$MLPJAX_DATA_DIR``.

Offline: tfds's own ``tfds.testing.mock_data`` stands in for the download (as Flax's examples test theirs).
tensorflow-datasets is in the dev extra, so these tests do not skip where it is missing: that is how the path
broke silently before (tfds 4.9 imports ``importlib_resources`` on Python >= 3.9 without declaring it).
"""

from __future__ import annotations

import sys

import pytest
import tensorflow_datasets as tfds  # not skipped where missing (see above): pip install -e ".[dev]"

from mlpjax import cli, data


@pytest.fixture
def no_data_dir(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)


def test_train_without_a_data_dir_goes_through_tfds(no_data_dir, capsys):
    with tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE):
        assert cli.main(["train", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mnist: 64 train, 64 test, 784 features, 10 classes" in out  # the mock's 64 examples, not a real download
    assert "test accuracy" in out


def test_what_tfds_needs_to_prepare_mnist_imports():
    """The download's first steps (the builder's code path and checksums) import ``importlib_resources``."""
    urls = tfds.builder_cls("mnist").url_infos
    assert {url.rsplit("/", 1)[-1] for url in urls} == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_without_tfds_the_error_says_what_to_pass_or_install(no_data_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import tensorflow_datasets -> ImportError
    assert cli.main(["train", "--epochs", "1", "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("mlpjax train: error: dataset 'mnist' not found")
    for advice in ("--data-dir DIR", "$MLPJAX_DATA_DIR", "pip install 'mlpjax[tfds]'"):
        assert advice in err


def test_a_module_tfds_needs_but_lacks_is_named_with_the_install_line(no_data_dir, monkeypatch, capsys):
    def data_source(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'importlib_resources'", name="importlib_resources")

    monkeypatch.setattr(tfds, "data_source", data_source)
    assert cli.main(["train", "--epochs", "1", "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert "missing module importlib_resources" in err
    for advice in ("pip install 'mlpjax[tfds]'", "--data-dir DIR", "$MLPJAX_DATA_DIR"):
        assert advice in err
