import gzip

import numpy as np
import pytest

from conftest import write_idx
from mlpjax import data
from mlpjax.errors import UserInputError


def test_read_idx_gzipped_and_raw(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "a.gz", array)), array)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "a", array, compress=False)), array)


def test_idx_folder_loads_flattened_and_scaled(idx_folder):
    ds = data.load_dataset("mnist", idx_folder)
    assert ds.x_train.shape == (50, 784) and ds.x_test.shape == (20, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.max() > 0.9
    raw = data.read_idx(idx_folder / "train-images-idx3-ubyte.gz")
    np.testing.assert_allclose(ds.x_train[3], raw[3].reshape(-1) / 255.0, rtol=1e-6)
    assert ds.image_shape == (28, 28)


def test_data_dir_may_be_the_parent_of_a_mnist_folder(idx_folder, tmp_path_factory):
    parent = tmp_path_factory.mktemp("parent")
    (parent / "mnist").symlink_to(idx_folder)
    assert data.load_dataset("mnist", parent).x_train.shape == (50, 784)


def test_environment_variable_gives_the_folder(idx_folder, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(idx_folder))
    assert data.load_dataset("mnist").x_test.shape == (20, 784)


def test_bad_magic_number(idx_folder):
    path = idx_folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(100)))
    with pytest.raises(UserInputError, match=r"train-labels-idx1-ubyte.gz: not an IDX file \(bad magic number 12345678"):
        data.load_dataset("mnist", idx_folder)


def test_short_read_and_wrong_count(idx_folder):
    path = idx_folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-7]))
    with pytest.raises(UserInputError, match="t10k-images-idx3-ubyte.gz: header declares shape .20, 28, 28."):
        data.load_dataset("mnist", idx_folder)


def test_truncated_gzip(idx_folder):
    path = idx_folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UserInputError, match="train-images-idx3-ubyte.gz: cannot read"):
        data.load_dataset("mnist", idx_folder)


def test_image_and_label_counts_must_agree(idx_folder):
    write_idx(idx_folder / "train-labels-idx1-ubyte.gz", np.zeros(49))
    with pytest.raises(UserInputError, match="50 train images but 49 labels"):
        data.load_dataset("mnist", idx_folder)


def test_missing_file_and_missing_folder(idx_folder, tmp_path_factory):
    (idx_folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserInputError, match="missing t10k-labels-idx1-ubyte.gz"):
        data.load_dataset("mnist", idx_folder)
    with pytest.raises(UserInputError, match="does not exist"):
        data.load_dataset("mnist", idx_folder / "nowhere")


def test_labels_out_of_range(idx_folder):
    write_idx(idx_folder / "train-labels-idx1-ubyte.gz", np.full(50, 12))
    with pytest.raises(UserInputError, match=r"train label 12 at index 0 is out of range \[0, 10\)"):
        data.load_dataset("mnist", idx_folder)


def test_nan_inputs_are_refused():
    x = np.zeros((3, 2), np.float32)
    x[1, 1] = np.nan
    with pytest.raises(UserInputError, match="train example 1 contains NaN"):
        data.make_dataset("toy", x, [0, 1, 0], x[:1] * 0, [1], num_classes=2)


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(UserInputError, match="unknown dataset 'cifar10'; valid: mnist, fashion_mnist, digits"):
        data.load_dataset("cifar10")


def test_digits_split_is_fixed_stratified_and_offline(digits):
    assert digits.x_train.shape == (1347, 64) and digits.x_test.shape == (450, 64)
    assert digits.x_train.max() == 1.0 and digits.x_train.min() == 0.0
    totals = np.bincount(np.concatenate([digits.y_train, digits.y_test]), minlength=10)
    assert np.abs(np.bincount(digits.y_test, minlength=10) - 0.25 * totals).max() <= 1  # stratified
    np.testing.assert_array_equal(data.load_dataset("digits").y_test, digits.y_test)


def test_quadrants_are_the_tutorials_points():
    ds = data.load_dataset("quadrants")
    np.testing.assert_array_equal(ds.x_train, [[1, 1], [-1, 1], [-1, -1], [1, -1]])
    np.testing.assert_array_equal(ds.y_train, [0, 1, 2, 3])
    assert ds.class_names == ("I", "II", "III", "IV")


def test_without_a_folder_or_tfds_it_says_how_to_provide_mnist(monkeypatch):
    import builtins

    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    real_import = builtins.__import__

    def no_tfds(name, *args, **kwargs):
        if name.startswith("tensorflow_datasets"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tfds)
    with pytest.raises(UserInputError, match=r"give data_dir DIR.*\$MLPJAX_DATA_DIR.*mlpjax\[tfds\]"):
        data.load_dataset("fashion_mnist")


def test_tfds_path_with_mock_data(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets", reason="the tfds extra is not installed")
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load_dataset("fashion_mnist")
    assert ds.x_train.shape == (12, 784) and ds.x_test.shape == (12, 784)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.class_names[0] == "T-shirt/top" and ds.image_shape == (28, 28)
