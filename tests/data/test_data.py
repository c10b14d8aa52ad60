"""Datasets and the IDX reader: loading, and every bad file refused in one line before it can use much memory
(dedicated tests for the defects of issue 13, then hypothesis fuzzing in a memory-limited worker)."""

import errno
import gzip
import hashlib
import math
import os
import re
import struct

import numpy as np
import pytest
from conftest import assert_clean_exit, run_limited, write_idx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlpjax import data, memory
from mlpjax.data import idx
from mlpjax.errors import FieldError, UserInputError

LABELS, IMAGES = "train-labels-idx1-ubyte", "train-images-idx3-ubyte"


def idx_bytes(code: int, shape, body: bytes | None = None) -> bytes:
    """An IDX file's bytes: magic ``00 00 code ndim``, the dimensions, then ``body`` (zeros by default)."""
    if body is None:
        body = bytes(math.prod(shape) * np.dtype(idx._IDX_DTYPES[code]).itemsize)
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body


def replace_idx(folder, stem: str, payload: bytes, compress: bool = True):
    """Put ``payload`` in ``folder`` as ``stem.gz`` (gzipped) or ``stem`` (raw), removing the other one."""
    for name in (f"{stem}.gz", stem):
        if os.path.lexists(folder / name):
            os.unlink(folder / name)
    path = folder / (f"{stem}.gz" if compress else stem)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


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
    with pytest.raises(
        UserInputError, match=r"train-labels-idx1-ubyte.gz: not an IDX file \(bad magic number 12345678"
    ):
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
    with pytest.raises(UserInputError, match="train-images-idx3-ubyte.gz: truncated: the gzip data ends"):
        data.load_dataset("mnist", idx_folder)


def test_image_and_label_counts_must_agree(idx_folder):
    write_idx(idx_folder / "train-labels-idx1-ubyte.gz", np.zeros(49))
    with pytest.raises(UserInputError, match="50 train images but 49 labels"):
        data.load_dataset("mnist", idx_folder)


def test_missing_file_and_missing_folder(idx_folder, tmp_path_factory):
    (idx_folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserInputError, match="missing t10k-labels-idx1-ubyte.gz"):
        data.load_dataset("mnist", idx_folder)
    with pytest.raises(UserInputError, match="nowhere: does not exist"):
        data.load_dataset("mnist", idx_folder / "nowhere")


def test_labels_out_of_range(idx_folder):
    write_idx(idx_folder / "train-labels-idx1-ubyte.gz", np.full(50, 12))
    with pytest.raises(UserInputError, match=r"train label 12 at index 0 is out of range \[0, 10\)"):
        data.load_dataset("mnist", idx_folder)


def test_nan_inputs_are_refused():
    x = np.zeros((3, 2), np.float32)
    x[1, 1] = np.nan
    with pytest.raises(UserInputError, match="train example 1 contains NaN"):
        data.make_dataset("toy", (x, [0, 1, 0]), (x[:1] * 0, [1]), num_classes=2)


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
    import socket

    from mlpjax.data import datasets

    with socket.socket() as host:  # the mock stands in for a download, which asks the host first: a local one answers
        host.bind(("127.0.0.1", 0))
        host.listen()
        monkeypatch.setattr(
            datasets, "DOWNLOAD_HOSTS", {"mnist": host.getsockname(), "fashion_mnist": host.getsockname()}
        )
        with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
            ds = data.load_dataset("fashion_mnist")
    assert ds.x_train.shape == (12, 784) and ds.x_test.shape == (12, 784)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.class_names[0] == "T-shirt/top" and ds.image_shape == (28, 28)


# --- issue 13, defect 3: nothing unbounded, nothing read that is not a regular file -----------------------------


@pytest.fixture(scope="module")
def zeros_bomb(tmp_path_factory):
    """A 3 MB gzip of 3 GiB of zeros (48 gzip members of 64 MiB each) and the first member it starts with."""
    member = gzip.compress(bytes(64 << 20))

    def write(path, head: bytes = b""):
        with open(path, "wb") as f:
            f.write(gzip.compress(head))
            f.writelines([member] * 48)
        return path

    return write


def test_gzip_bomb_is_refused_after_the_header(zeros_bomb, input_worker, tmp_path):
    """3 GiB of zeros: the zero magic is refused after 4 bytes; a true header declaring 60000 images is read for
    its 47 MB and then refused for the data after them; both within the worker's 1 GiB of address space."""
    reply = input_worker.ask("read_idx", zeros_bomb(tmp_path / "zeros.gz"))
    assert reply["outcome"] == "user" and "bad magic number 00000000" in reply["message"], reply
    header = idx_bytes(8, (60000, 28, 28), b"")
    reply = input_worker.ask("read_idx", zeros_bomb(tmp_path / "images.gz", header))
    assert reply["outcome"] == "user", reply
    assert "header declares shape (60000, 28, 28) (47040016 bytes) but more data follows" in reply["message"]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.symlink_to("/dev/zero"), "is a character device, expected a regular file"),
        (lambda p: os.mkfifo(p), "is a named pipe (FIFO), expected a regular file"),
        (lambda p: p.mkdir(), "is a directory, expected a regular file"),
    ],
    ids=["dev-zero-link", "fifo", "directory"],
)
def test_devices_fifos_and_directories_are_refused_unread(idx_folder, input_worker, make, words):
    (idx_folder / f"{IMAGES}.gz").unlink()
    make(idx_folder / IMAGES)
    reply = input_worker.ask("load_idx_folder", idx_folder)  # a hang or an endless read fails the worker
    assert reply == {"outcome": "user", "message": f"{idx_folder / IMAGES}: {words}"}


def test_declared_size_is_checked_before_allocating(tmp_path, monkeypatch):
    huge = (60000, 65536, 65536)  # 2.6e14 bytes
    with pytest.raises(UserInputError, match=r"\(257698037760016 bytes\), more than a gzip file of \d+ bytes can"):
        data.read_idx(replace_idx(tmp_path, "a", idx_bytes(8, huge, b"")))
    with pytest.raises(UserInputError, match=r"\(257698037760016 bytes\) but the file has 16 bytes"):
        data.read_idx(replace_idx(tmp_path, "a", idx_bytes(8, huge, b""), compress=False))
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(UserInputError, match=r"a\.gz: shape \(2000,\) needs 2.0 KiB, more than the 1000 B of memory"):
        data.read_idx(replace_idx(tmp_path, "a", idx_bytes(8, (2000,))))


def test_trailing_data_is_refused_raw_and_gzipped(tmp_path):
    for compress in (True, False):
        path = replace_idx(tmp_path, "a", idx_bytes(8, (3, 2)) + b"\x00", compress)
        with pytest.raises(
            UserInputError, match="declares shape .3, 2. .18 bytes. (but more data follows|but the file has 19 bytes)"
        ):
            data.read_idx(path)


def test_gzip_or_raw_is_told_by_the_content_not_the_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / "raw.gz").write_bytes(idx_bytes(8, (3, 4), array.tobytes()))
    (tmp_path / "gzipped").write_bytes(gzip.compress(idx_bytes(8, (3, 4), array.tobytes())))
    for name in ("raw.gz", "gzipped"):
        np.testing.assert_array_equal(data.read_idx(tmp_path / name), array)


def test_wider_types_are_read_big_endian(tmp_path):
    values = np.array([[1.5, -2.0], [np.inf, 3.25]])
    path = replace_idx(tmp_path, "f", idx_bytes(0x0E, (2, 2), values.astype(">f8").tobytes()))
    out = data.read_idx(path)
    assert out.dtype == np.float64 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


# --- issue 13, defect 12: a traceback where one line was due -----------------------------------------------------


def test_dimensions_that_overflow_and_too_many_dimensions(tmp_path):
    path = replace_idx(tmp_path, "a", bytes([0, 0, 8, 4]) + b"\xff" * 16)
    with pytest.raises(
        UserInputError,
        match=r"shape \(4294967295, 4294967295, 4294967295, 4294967295\), whose "
        "size overflows 64 bits",
    ):
        data.read_idx(path)
    path = replace_idx(tmp_path, "a", bytes([0, 0, 8, 255]) + b"\x00\x00\x00\x01" * 255)
    with pytest.raises(UserInputError, match="declares 255 dimensions; expected 1 to 4"):
        data.read_idx(path)
    with pytest.raises(UserInputError, match=r"truncated IDX header \(10 of 16 bytes\)"):
        data.read_idx(replace_idx(tmp_path, "a", bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0])))


@pytest.mark.parametrize(
    "shape, words", [((0, 28, 28), "holds no images"), ((5, 0, 28), r"images of 0x28 pixels; expected at least 1x1")]
)
def test_zero_images_or_empty_images(idx_folder, shape, words):
    path = replace_idx(idx_folder, IMAGES, idx_bytes(8, shape))
    with pytest.raises(UserInputError, match=f"{path}: {words}"):
        data.load_dataset("mnist", idx_folder)


def test_test_images_must_match_the_train_size(idx_folder):
    write_idx(idx_folder / "t10k-images-idx3-ubyte.gz", np.zeros((20, 14, 56)))
    with pytest.raises(
        UserInputError, match="images of 14x56 pixels; expected at least 1x1 and the train images' 28x28"
    ):
        data.load_dataset("mnist", idx_folder)


def test_corrupt_deflate_block_is_one_line(idx_folder):
    header = gzip.compress(b"")[:10]  # a valid gzip header; then a deflate block of the reserved type 3
    (idx_folder / f"{IMAGES}.gz").write_bytes(header + b"\xff" * 32)
    with pytest.raises(UserInputError, match=r"train-images-idx3-ubyte.gz: corrupt gzip data \(.*invalid block type"):
        data.load_dataset("mnist", idx_folder)
    good = gzip.compress(idx_bytes(8, (50, 28, 28)))
    (idx_folder / f"{IMAGES}.gz").write_bytes(good[:-8] + bytes(4) + good[-4:])  # wrong CRC
    with pytest.raises(UserInputError, match="corrupt gzip data .CRC check failed"):
        data.load_dataset("mnist", idx_folder)


# --- issue 13, defect 13: the right words -----------------------------------------------------------------------


def test_data_dir_naming_a_file_says_so(idx_folder):
    with pytest.raises(
        UserInputError,
        match=r"data folder .*train-images-idx3-ubyte.gz: is a file, expected a "
        "folder",
    ):
        data.load_dataset("mnist", idx_folder / f"{IMAGES}.gz")


def test_symlink_loop_and_broken_link_are_not_called_missing(idx_folder):
    (idx_folder / f"{IMAGES}.gz").unlink()
    (idx_folder / f"{IMAGES}.gz").symlink_to(f"{IMAGES}.gz")
    with pytest.raises(UserInputError, match=f"{IMAGES}.gz: symbolic link loop$"):
        data.load_dataset("mnist", idx_folder)
    (idx_folder / f"{IMAGES}.gz").unlink()
    (idx_folder / f"{IMAGES}.gz").symlink_to("gone.gz")
    with pytest.raises(UserInputError, match=rf"{IMAGES}.gz: broken symbolic link \(to gone.gz, which does not"):
        data.load_dataset("mnist", idx_folder)
    (idx_folder / "loop").symlink_to("loop")
    with pytest.raises(UserInputError, match="data folder .*loop: symbolic link loop"):
        data.load_dataset("mnist", idx_folder / "loop")


def test_permission_denied_is_not_called_truncated(idx_folder, monkeypatch):
    path = idx_folder / f"{IMAGES}.gz"
    if os.geteuid() == 0:  # root reads any file: make open fail as it would for a user
        real_open = os.open

        def deny(p, *args, **kwargs):
            if os.fspath(p) == os.fspath(path):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(p))
            return real_open(p, *args, **kwargs)

        monkeypatch.setattr(os, "open", deny)
    else:
        path.chmod(0)
    with pytest.raises(UserInputError, match=f"{IMAGES}.gz: permission denied$"):
        data.load_dataset("mnist", idx_folder)


# --- issue 13, defect 11: labels that are no class numbers ------------------------------------------------------


@pytest.mark.parametrize(
    "code, values, words",
    [
        (0x0D, [0, 1, 2, np.nan], "label nan at index 3 is not a whole number in"),
        (0x0E, [0, 2.5, 1, 1], "label 2.5 at index 1 is not a whole number in"),
        (0x0E, [0, 1, -1.0, 1], "label -1 at index 2 is out of range"),
        (0x0D, [0, 1, np.inf, 1], "label inf at index 2 is not a whole number in"),
        (0x09, [0, 1, 2, -3], "label -3 at index 3 is out of range"),
        (0x0C, [0, 2**31 - 1, 2, 3], "label 2147483647 at index 1 is out of range"),
    ],
)
def test_labels_that_are_no_class_numbers_are_refused(idx_folder, code, values, words):
    dtype = np.dtype(idx._IDX_DTYPES[code])
    labels = np.zeros(50, dtype)
    labels[:4] = values
    replace_idx(idx_folder, LABELS, idx_bytes(code, (50,), labels.tobytes()))
    with pytest.raises(UserInputError, match=rf"train {words} \[0, 10\)$"):
        data.load_dataset("mnist", idx_folder)


def test_whole_float_labels_are_accepted(idx_folder):
    labels = np.arange(50) % 10
    replace_idx(idx_folder, LABELS, idx_bytes(0x0D, (50,), labels.astype(">f4").tobytes()))
    ds = data.load_dataset("mnist", idx_folder)
    assert ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.y_train, labels)


# --- fuzzing: random IDX files end in an array or one UserInputError, within 1 GiB ------------------------------

PACKINGS = ("raw", "gzip", "gzip-cut", "gzip-flipped")


def reference_idx(payload: bytes) -> np.ndarray | None:
    """The array an IDX file's bytes hold, parsed independently of mlpjax (None: not a well-formed IDX file
    of 1 to 4 dimensions whose size is exactly what its header declares)."""
    if len(payload) < 4 or payload[:2] != b"\x00\x00" or payload[2] not in idx._IDX_DTYPES or not 1 <= payload[3] <= 4:
        return None
    ndim, dtype = payload[3], np.dtype(idx._IDX_DTYPES[payload[2]])
    if len(payload) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", payload[4 : 4 + 4 * ndim])
    if math.prod(max(d, 1) for d in dims) * dtype.itemsize >= 2**63:  # no array can have that shape
        return None
    if len(payload) != 4 + 4 * ndim + math.prod(dims) * dtype.itemsize:
        return None
    return np.frombuffer(payload[4 + 4 * ndim :], dtype).reshape(dims)


@st.composite
def idx_files(draw):
    """(file bytes, packing, expected array or None where the file is bad)."""
    code = draw(st.sampled_from(sorted(idx._IDX_DTYPES) * 8 + [0, 1, 0x0A, 0x0F, 0xFF]))
    prefix = draw(st.sampled_from([b"\x00\x00"] * 20 + [b"\x00\x01", b"\x1f\x8b", b""]))
    ndim = draw(st.sampled_from([1, 1, 2, 3, 3, 3, 4, 0, 5, 255]))
    small = st.integers(1, 5) | st.integers(0, 5)
    dims = draw(
        st.lists(
            small | small | small | st.sampled_from([2**16, 2**31, 2**32 - 1]),
            min_size=min(ndim, 6),
            max_size=min(ndim, 6),
        )
    )
    itemsize = np.dtype(idx._IDX_DTYPES[code]).itemsize if code in idx._IDX_DTYPES else 1
    declared = math.prod(dims) * itemsize
    size = (
        max(0, declared + draw(st.sampled_from([0] * 4 + [-3, -1, 1, 2])))
        if declared <= 2048
        else draw(st.integers(0, 64))
    )
    body = draw(st.binary(min_size=size, max_size=size))
    head = prefix + bytes([code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    cut_header = draw(st.sampled_from([len(head)] * 8 + [0, 3, 4, len(head) - 1]))
    packing = draw(st.sampled_from(PACKINGS[:2] * 2 + PACKINGS[2:]))
    payload = head[:cut_header] + body
    expected = reference_idx(payload) if packing in ("raw", "gzip") else None
    return payload, packing, expected


def packed(payload: bytes, packing: str, position: int) -> bytes:
    if packing == "raw":
        return payload
    zipped = gzip.compress(payload)
    if packing == "gzip-cut":
        return zipped[: position % len(zipped)]
    if packing == "gzip-flipped":
        i = 10 + position % (len(zipped) - 10)  # past the header's flags, time and OS bytes
        return zipped[:i] + bytes([zipped[i] ^ 0x5A]) + zipped[i + 1 :]
    return zipped


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(file=idx_files(), position=st.integers(0, 2**16))
def test_fuzz_idx_files_are_read_or_refused_in_one_line(file, position, input_worker, tmp_path_factory):
    payload, packing, expected = file
    path = tmp_path_factory.getbasetemp() / "fuzz.idx"
    path.write_bytes(packed(payload, packing, position))
    reply = input_worker.ask("read_idx", path)
    assert reply["outcome"] in ("ok", "user"), reply.get("traceback")
    event(f"{reply['outcome']}: {reply.get('message', '').split(': ', 1)[-1][:30]}")
    if reply["outcome"] == "user":
        assert reply["message"].startswith(f"{path}: ") and "\n" not in reply["message"]
        assert expected is None, reply["message"]
    elif expected is not None:
        native = expected.astype(expected.dtype.newbyteorder("="))
        assert reply["shape"] == list(native.shape) and reply["dtype"] == str(native.dtype)
        assert reply["sha256"] == hashlib.sha256(native.tobytes()).hexdigest()
    else:
        assert packing == "gzip-flipped", reply  # a flipped bit the gzip CRC cannot see (e.g. in a name field)


LABEL_VALUES = st.integers(-2, 12) | st.sampled_from([np.nan, np.inf, -np.inf, 0.5, 9.999, 2**40, -0.0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=st.sampled_from(sorted(idx._IDX_DTYPES)), labels=st.lists(LABEL_VALUES, min_size=0, max_size=8))
def test_fuzz_label_files_are_class_numbers_or_refused(code, labels, input_worker, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "fuzz-labels"
    if not folder.exists():
        folder.mkdir()
        for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
            write_idx(folder / f"{stem}.gz", np.full((8, 4, 4), 7))
        write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(8))
    dtype = np.dtype(idx._IDX_DTYPES[code])
    with np.errstate(invalid="ignore", over="ignore"):
        values = np.array(labels, np.float64).astype(dtype)
    replace_idx(folder, LABELS, idx_bytes(code, (len(values),), values.tobytes()))
    reply = input_worker.ask("load_idx_folder", folder)
    assert reply["outcome"] in ("ok", "user"), reply.get("traceback")
    good = len(values) == 8 and all(np.isfinite(v) and v == int(v) and 0 <= v < 10 for v in values.astype(float))
    assert (reply["outcome"] == "ok") == good, reply
    if good:
        assert reply["y_train"]["sha256"] == hashlib.sha256(values.astype(np.int32).tobytes()).hexdigest()


DEFECTS = {
    "none": lambda folder: None,
    "zero-images": lambda folder: replace_idx(folder, IMAGES, idx_bytes(8, (0, 28, 28))),
    "nan-labels": lambda folder: replace_idx(
        folder, LABELS, idx_bytes(0x0D, (50,), np.full(50, np.nan, ">f4").tobytes())
    ),
    "overflow": lambda folder: replace_idx(folder, IMAGES, bytes([0, 0, 8, 3]) + b"\xff" * 12),
    "fifo": lambda folder: (os.unlink(folder / f"{IMAGES}.gz"), os.mkfifo(folder / IMAGES)),  # type: ignore[func-returns-value]
    "dev-zero": lambda folder: (os.unlink(folder / f"{IMAGES}.gz"), os.symlink("/dev/zero", folder / IMAGES)),  # type: ignore[func-returns-value]
    "truncated": lambda folder: (folder / f"{IMAGES}.gz").write_bytes((folder / f"{IMAGES}.gz").read_bytes()[:99]),
}


def cli_data_folder(idx_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-data")
    for path in idx_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_train_data_dir_with_a_bad_file_exits_2_within_the_memory_limit(defect, idx_folder, tmp_path_factory):
    folder = cli_data_folder(idx_folder, tmp_path_factory)
    DEFECTS[defect](folder)
    proc = run_limited("train", "--data-dir", str(folder), "--epochs", "1", "--hidden", "8", "--quiet")
    assert_clean_exit(proc)
    assert (proc.returncode == 0) == (defect == "none"), proc.stderr


@pytest.mark.slow
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(file=idx_files(), position=st.integers(0, 2**16))
def test_fuzz_train_data_dir_exits_0_or_2(file, position, idx_folder, tmp_path_factory):
    folder = cli_data_folder(idx_folder, tmp_path_factory)
    (folder / f"{LABELS}.gz").write_bytes(packed(file[0], file[1], position))
    proc = run_limited("train", "--data-dir", str(folder), "--epochs", "1", "--hidden", "8", "--quiet")
    assert_clean_exit(proc)


@pytest.mark.parametrize("name", ["digits", "quadrants"])
def test_the_registry_knows_each_datasets_shape_without_loading_it(name):
    ds = data.load_dataset(name)
    assert data.DATASETS[name].shape == (ds.input_dim, ds.num_classes)


@pytest.mark.mnist
def test_the_registry_knows_mnists_shape(mnist):
    assert data.DATASETS["mnist"].shape == data.DATASETS["fashion_mnist"].shape == (mnist.input_dim, mnist.num_classes)


# issue 26, item 11: a Dataset is checked however it is built, make_dataset refuses what is not numbers


def _toy_parts():
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(6, 2)
    return x, np.array([0, 1, 0, 1, 0, 1], np.int32)


@pytest.mark.parametrize(
    "change, field, message",
    [
        (lambda x, y: (x, y[:4]), "y_train", "4 labels for 6 examples"),
        (lambda x, y: (x, np.full(6, 99, np.int32)), "y_train", r"label 99 at index 0 is out of range \[0, 2\)"),
        (lambda x, y: (x, np.full(6, -1, np.int32)), "y_train", r"label -1 at index 0 is out of range \[0, 2\)"),
        (lambda x, y: (x, y.astype(np.float32)), "y_train", "must be integers"),
        (lambda x, y: (x[:, 0], y), "encoded_train", r"must be 2-D \(N, D\)"),
        (lambda x, y: (list(x), y), "encoded_train", "must be a numpy array"),
        (lambda x, y: (np.where(x > 0.5, np.inf, x), y), "encoded_train", "example 3 contains NaN or infinite"),
    ],
)
def test_a_dataset_built_directly_is_checked(change, field, message):
    x, y = change(*_toy_parts())
    with pytest.raises(FieldError, match=message) as exc:
        data.Dataset("toy", x, y, *_toy_parts(), num_classes=2)
    assert exc.value.field == field and "'toy'" in str(exc.value)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": "2"}, "num_classes"),
        ({"num_classes": 2, "image_shape": (3, 3)}, "image_shape"),
    ],
)
def test_a_dataset_checks_its_class_count_and_image_shape(kwargs, field):
    with pytest.raises(FieldError) as exc:
        data.Dataset("toy", *_toy_parts(), *_toy_parts(), **kwargs)
    assert exc.value.field == field
    data.Dataset("toy", *_toy_parts(), *_toy_parts(), num_classes=2, image_shape=(1, 2))  # the right ones pass


def test_a_dataset_checks_the_test_split_against_the_train_split():
    x, y = _toy_parts()
    with pytest.raises(FieldError, match="3 features; encoded_train has 2") as exc:
        data.Dataset("toy", x, y, np.zeros((6, 3), np.float32), y, num_classes=2)
    assert exc.value.field == "encoded_test"


@pytest.mark.parametrize(
    "x, what",
    [
        (np.zeros((3, 2), complex), "complex128"),
        (np.array([["1", "2"]] * 3), "<U1"),
        (np.array([[1.0, None]] * 3, dtype=object), "object"),
    ],
)
def test_make_dataset_refuses_features_that_are_not_real_numbers(x, what):
    with pytest.raises(UserInputError, match=f"toy: train features are {what}; expected real numbers"):
        data.make_dataset("toy", (x, [0, 1, 0]), (np.zeros((1, 2)), [1]), num_classes=2)


@pytest.mark.parametrize("name", [None, 3, "", b"toy"])
def test_a_dataset_name_must_be_a_non_empty_string(name):
    """Issue 26, item 11: any name was kept (None, a number), and it labels every run and file."""
    x, y = _toy_parts()
    for build in (
        lambda: data.Dataset(name, x, y, x, y, num_classes=2),
        lambda: data.make_dataset(name, (x, y), (x, y), num_classes=2),
    ):
        message = f"name must be a non-empty string (the dataset's name), got {name!r}"
        with pytest.raises(FieldError, match=f"^{re.escape(message)}$") as exc:
            build()
        assert exc.value.field == "name"


@pytest.mark.parametrize(
    "split, parts, got",
    [
        ("train", None, "NoneType"),
        ("train", (np.zeros((3, 2)), [0, 1, 0], [0, 1, 0]), "3 items"),
        ("test", np.zeros((1, 2)), "ndarray"),
    ],
)
def test_make_dataset_refuses_a_split_that_is_not_a_pair(split, parts, got):
    """Issue 26, item 11: anything but a (features, labels) pair was a TypeError or ValueError from unpacking."""
    pair = (np.zeros((3, 2)), [0, 1, 0])
    splits = {"train": pair, "test": pair, split: parts}
    with pytest.raises(FieldError, match=f"^toy: {split} must be a pair \\(features, labels\\), got {got}$") as exc:
        data.make_dataset("toy", splits["train"], splits["test"], num_classes=2)
    assert exc.value.field == split


def test_make_dataset_refuses_labels_that_are_not_class_numbers():
    x = np.zeros((3, 2), np.float32)
    for labels in (np.array(["0", "1", "0"]), np.array([0j, 1j, 0j])):
        with pytest.raises(UserInputError, match="toy: train labels are"):
            data.make_dataset("toy", (x, labels), (x[:1], [1]), num_classes=2)
    with pytest.raises(FieldError, match="num_classes must be an integer"):
        data.make_dataset("toy", (x, [0, 1, 0]), (x[:1], [1]), num_classes="2")
