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
from mlpjax.errors import FieldError


@pytest.fixture
def no_data_dir(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)


@pytest.fixture
def loopback(monkeypatch):
    """A loopback port as the download host: ``loopback(True)`` one that accepts, ``loopback(False)`` one that
    refuses (as an unreachable network does, whatever network this machine has)."""
    import socket

    from mlpjax.data import datasets

    sockets = []

    def host(listening: bool):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        if listening:
            s.listen()
        sockets.append(s)
        monkeypatch.setattr(datasets, "DOWNLOAD_HOSTS", {n: s.getsockname() for n in ("mnist", "fashion_mnist")})

    yield host
    for s in sockets:
        s.close()


def test_train_without_a_data_dir_goes_through_tfds(no_data_dir, loopback, capsys):
    loopback(True)  # the mock stands in for a download, which needs the network
    with tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE):
        assert cli.main(["train", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mnist: 64 train, 64 test, 784 features, 10 classes" in out  # the mock's 64 examples, not a real download
    assert "test accuracy" in out


def test_what_tfds_needs_to_prepare_mnist_imports():
    """The download's first steps (the builder's code path and checksums) import ``importlib_resources``."""
    urls = tfds.builder_cls("mnist").url_infos
    assert {url.rsplit("/", 1)[-1] for url in urls} == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }


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


def test_a_module_tfds_needs_but_lacks_is_named_with_the_install_line(no_data_dir, loopback, monkeypatch, capsys):
    loopback(True)

    def data_source(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'importlib_resources'", name="importlib_resources")

    monkeypatch.setattr(tfds, "data_source", data_source)
    assert cli.main(["train", "--epochs", "1", "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert "missing module importlib_resources" in err
    for advice in ("pip install 'mlpjax[tfds]'", "--data-dir DIR", "$MLPJAX_DATA_DIR"):
        assert advice in err


@pytest.mark.parametrize("argv", [["train"], ["draw", "--train-quick"]])
def test_without_network_or_files_one_line_before_any_download(no_data_dir, loopback, monkeypatch, capsys, argv):
    """Not prepared in tfds' folder and the download host unreachable: refused at once, naming the offline choices
    (before, tfds retried for 3.5 minutes); tfds' download is never called."""
    loopback(False)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: False)
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: pytest.fail("tfds asked to download"))
    assert cli.main([*argv, "--epochs", "1", "--quiet"] if argv == ["train"] else argv) == 2
    err = _one_line_error(capsys)
    assert "'mnist' is not on disk and cannot be downloaded" in err and "127.0.0.1 did not answer" in err
    for advice in ("--data-dir DIR", "$MLPJAX_DATA_DIR", "--dataset digits"):
        assert advice in err


def test_a_prepared_dataset_needs_no_network(no_data_dir, loopback, monkeypatch, capsys):
    loopback(False)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    with tfds.testing.mock_data(num_examples=32, policy=tfds.testing.MockPolicy.USE_CODE):
        assert cli.main(["train", "--epochs", "1", "--quiet"]) == 0


def test_an_mnist_folder_is_not_fashion_mnist(mnist_path, monkeypatch, capsys):
    """The IDX names are the same for both: the training labels tell them apart (KNOWN_TRAIN_LABELS)."""
    monkeypatch.setenv(data.DATA_DIR_ENV, str(mnist_path))
    with pytest.raises(FieldError) as e:
        data.load_dataset("fashion_mnist")
    assert e.value.field == "dataset" and "holds the files of 'mnist', not of 'fashion_mnist'" in str(e.value)
    assert cli.main(["train", "--dataset", "fashion_mnist", "--epochs", "1", "--quiet"]) == 2
    assert "--dataset mnist" in _one_line_error(capsys)
