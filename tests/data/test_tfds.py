"""MNIST through tensorflow-datasets, the path of ``mlpjax train`` without ``--data-dir`` or ``$MLPJAX_DATA_DIR``, and
any classification set of it as ``--dataset tfds:NAME[:CONFIG]``.

Offline: tfds's own ``tfds.testing.mock_data`` stands in for the download (as Flax's examples test theirs).
tensorflow-datasets is in the dev extra, so these tests do not skip where it is missing: that is how the path
broke silently before (tfds 4.9 imports ``importlib_resources`` on Python >= 3.9 without declaring it).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds  # not skipped where missing (see above): pip install -e ".[dev]"
from conftest import run_cli

from mlpjax import cli, data
from mlpjax.data import tfds_sets
from mlpjax.errors import FieldError, UserInputError


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
        monkeypatch.setattr(datasets, "_download_host", lambda tfds, name: s.getsockname())  # any tfds:NAME set

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


# --- tfds:NAME[:CONFIG] -----------------------------------------------------------------------------------------


def mock(num_examples: int = 40):
    return tfds.testing.mock_data(num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_CODE)


def test_a_tfds_set_by_name_trains_offline(loopback, capsys):
    loopback(True)  # the mock stands in for a download, which needs the network
    with mock():
        code, out, err = run_cli(capsys, "train", "--dataset", "tfds:kmnist", "--epochs", "1", "--hidden", "8")
        ds = data.load_dataset("tfds:kmnist")
    assert code == 0, err
    assert "tfds:kmnist: 40 train, 40 test, 784 features, 10 classes; 1 epochs" in out and "test accuracy" in out
    assert ds.image_shape == (28, 28) and ds.pixel_levels == 255 and ds.class_names[:3] == ("o", "ki", "su")
    assert ds.digest is None  # a set by name: tfds' version names its contents


def test_a_config_is_written_with_a_colon_or_a_slash(loopback):
    loopback(True)
    with mock():
        colon, slash = data.load_dataset("tfds:emnist:digits"), data.load_dataset("tfds:emnist/digits")
    np.testing.assert_array_equal(colon.encoded_train, slash.encoded_train)
    assert colon.num_classes == 10 and colon.class_names == ()  # named "0" .. "9": the class numbers


def test_colour_images_are_grey_and_resized_to_image_size(loopback):
    loopback(True)
    with mock(8):
        ds = data.load_dataset("tfds:cifar10", image_size="8x6")
        source = tfds.data_source("cifar10", split="train")
        rgb = np.asarray(source[0]["image"])
    assert ds.image_shape == (8, 6) and ds.input_dim == 48 and ds.encoded_train.dtype == np.uint8
    from PIL import Image

    grey = np.asarray(Image.fromarray(rgb).convert("L").resize((6, 8), Image.Resampling.BILINEAR))
    assert np.abs(ds.encoded_train[0].astype(int) - grey.reshape(-1)).max() <= 1  # PIL's L, then bilinear


def test_a_set_of_feature_vectors_without_a_test_split_is_split(loopback, monkeypatch):
    """Real iris has a train split only: its test rows are split off (the mock makes any split: told here)."""
    loopback(True)
    prepared = tfds_sets._prepared_info
    monkeypatch.setattr(
        tfds_sets,
        "_prepared_info",
        lambda tfds, full: types.SimpleNamespace(splits={"train": None}, features=prepared(tfds, full).features),
    )
    with mock(60):
        ds = data.load_dataset("tfds:iris", test_split=0.25)
    assert ds.input_dim == 4 and ds.pixel_levels is None and ds.x_train.dtype == np.float32
    assert (len(ds.y_train), len(ds.y_test)) == (45, 15) and ds.class_names[0] == "Iris-setosa"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tfds:nosuchset"], "tfds:nosuchset: tensorflow-datasets has no dataset 'nosuchset'"),
        (["tfds:emnist:nope"], "tfds:emnist:nope: tensorflow-datasets cannot build it (Failed to construct dataset"),
        (["tfds:Bad Name"], "tfds:Bad Name: expected tfds:NAME or tfds:NAME:CONFIG"),
        (["tfds:imdb_reviews"], "tfds:imdb_reviews: its input 'text' is Text of shape (); an image or a fixed-size"),
        (["tfds:iris", "--image-size", "8"], "--image-size: tfds:iris holds vectors of numbers, not images"),
        (["tfds:kmnist", "--test-split", "0.3"], "--test-split 0.3: tfds:kmnist has test rows of its own"),
    ],
)
def test_a_bad_tfds_set_is_one_line(loopback, capsys, argv, expected):
    loopback(True)
    with mock(8):
        code, out, err = run_cli(capsys, "train", "--dataset", *argv, "--epochs", "1", "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and expected in err, err


def test_a_tfds_set_offline_and_not_prepared_is_one_line(loopback, monkeypatch):
    loopback(False)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: False)
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: pytest.fail("tfds asked to download"))
    with pytest.raises(UserInputError, match=r"^tfds:kmnist: not prepared by tensorflow-datasets and cannot be "):
        data.load_dataset("tfds:kmnist")


def test_a_tfds_set_without_tfds_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(
        UserInputError, match=r"tfds:kmnist: .* needs tensorflow-datasets: pip install 'mlpjax\[tfds\]'"
    ):
        data.load_dataset("tfds:kmnist")
