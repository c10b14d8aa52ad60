"""A folder of images, one subfolder per class, as ``--dataset DIR``: read as grey levels of one size, split,
trained on, resumed and evaluated (refused once an image changed); every bad folder refused in one line, exit 2."""

import json
import os
import struct
import zlib

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from mlpjax import data, memory
from mlpjax.data import images
from mlpjax.errors import FieldError, UserInputError

CLASSES = ("bar", "column", "diagonal")


def shape_image(c: int, rng, side: int = 12) -> np.ndarray:
    """A dim noisy square with one bright line: a row (class 0), a column (1) or the diagonal (2)."""
    a = rng.integers(0, 60, (side, side)).astype(np.uint8)
    k = int(rng.integers(2, side - 2))
    if c == 0:
        a[k, :] = 255
    elif c == 1:
        a[:, k] = 255
    else:
        np.fill_diagonal(a, 255)
    return a


def image_folder(root, per_class: int = 10, side: int = 12, seed: int = 0):
    """``root/bar``, ``root/column``, ``root/diagonal`` of ``per_class`` images: PNG and BMP, grey and RGB."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = Image.fromarray(shape_image(c, rng, side))
            image = image.convert("RGB") if i % 3 == 1 else image
            image.save(root / name / f"{i:03d}.{'png' if i % 2 else 'bmp'}")
    return root


def test_a_folder_is_read_as_grey_levels_of_its_classes(tmp_path):
    root = image_folder(tmp_path / "shapes")
    (root / ".DS_Store").write_bytes(b"not an image")  # hidden: passed over
    (root / "bar" / ".thumbs").mkdir()
    ds = data.load_dataset(root)
    assert ds.class_names == CLASSES and ds.num_classes == 3 and ds.image_shape == (12, 12)
    assert ds.pixel_levels == 255 and ds.encoded_train.dtype == np.uint8
    assert (len(ds.y_train), len(ds.y_test)) == (24, 6) and np.bincount(ds.y_test).tolist() == [2, 2, 2]
    assert ds.digest is not None and ds.digest.files == 30
    # every test image is one of the files, as its grey levels (RGB ones through PIL's L: the same greys here)
    rng = np.random.default_rng(0)
    originals = {shape_image(c, rng).tobytes() for c in range(3) for _ in range(10)}
    assert all(row.tobytes() in originals for row in ds.encoded_test)
    np.testing.assert_array_equal(data.load_dataset(root).encoded_test, ds.encoded_test)  # a fixed split


def test_images_are_resized_to_the_first_ones_size_or_image_size(tmp_path):
    root = image_folder(tmp_path / "shapes", per_class=4)
    big = Image.fromarray(np.full((24, 36), 255, np.uint8))
    big.save(root / "column" / "999.png")  # another size: resized to the first image's 12x12
    ds = data.load_dataset(root, test_split=0.25)
    assert ds.image_shape == (12, 12)
    white = np.flatnonzero((ds.y_train == 1) & (ds.encoded_train.min(1) == 255))
    assert len(white) + int(((ds.y_test == 1) & (ds.encoded_test.min(1) == 255)).sum()) == 1
    small = data.load_dataset(root, image_size="6x8", test_split=0.25)
    assert small.image_shape == (6, 8) and small.input_dim == 48
    assert data.load_dataset(root, image_size=5, test_split=0.25).image_shape == (5, 5)


def test_train_evaluate_predict_and_resume_a_folder_from_the_command_line(tmp_path, capsys, monkeypatch):
    root = image_folder(tmp_path / "shapes")
    monkeypatch.chdir(tmp_path)
    train = ["train", "--dataset", "shapes", "--hidden", "16", "--output", "run", "--quiet"]
    code, out, err = run_cli(capsys, *train, "--epochs", "2", "--image-size", "8")
    assert code == 0, err
    assert f"{root}: 24 train, 6 test, 64 features, 3 classes; 2 epochs" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"]["class_names"] == list(CLASSES) and metrics["dataset"]["digest"]["files"] == 30
    assert metrics["config"]["dataset"] == str(root) and metrics["config"]["image_size"] == [8, 8]
    monkeypatch.chdir(tmp_path.parent)  # the run recorded the folder's absolute path and the image size
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--json")
    assert code == 0 and json.loads(out)["class_names"] == list(CLASSES), err
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", "--index", "2", "--out", tmp_path / "p.png")
    assert code == 0 and f"{root} test sample 2: predicted" in out, err
    resume = ["train", "--resume", tmp_path / "run", "--epochs", "3", "--quiet"]
    code, out, err = run_cli(capsys, *resume, "--image-size", "6")
    assert code == 2 and "--image-size 6 6 contradicts the checkpoint (image_size (8, 8))" in err, err
    code, out, err = run_cli(capsys, *resume, "--image-size", "8x8")  # as recorded
    assert code == 0 and "test accuracy" in out, err

    Image.fromarray(np.zeros((12, 12), np.uint8)).save(root / "bar" / "000.bmp")  # one image edited
    for argv in (["train", "--resume", tmp_path / "run", "--epochs", "4", "--quiet"], ["evaluate", tmp_path / "run"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert f"{root}: changed since the model in {tmp_path / 'run'} was trained on it (then 30 files, " in err
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]["loss"]) == 3  # untouched


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def remove(path):
    for p in sorted(path.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()


BAD = {
    "empty_class": (lambda r: remove(r / "column"), "{root}/column: class folder 'column' holds no image"),
    "not_an_image_name": (
        lambda r: (r / "bar" / "notes.txt").write_text("x"),
        "{root}/bar/notes.txt: not an image file (by its name); a class folder holds image files (and folders",
    ),
    "not_an_image": (
        lambda r: (r / "bar" / "zz.png").write_bytes(b"not a png"),
        "{root}/bar/zz.png: not an image file; expected one of PNG",
    ),
    "bomb": (
        lambda r: (r / "bar" / "zz.png").write_bytes(png_header(12_000, 9_000)),
        "{root}/bar/zz.png: the image is 12000x9000 pixels, more than the 100 megapixels read",
    ),
    "file_beside": (
        lambda r: (r / "README.txt").write_text("x"),
        "{root}/README.txt: a file beside the class folders; an image folder holds one subfolder of images per class",
    ),
    "link_to_folder": (
        lambda r: (r / "bar" / "loop").symlink_to(r / "bar", target_is_directory=True),
        "{root}/bar/loop: a link to a folder inside class folder 'bar'; links to folders are not followed there",
    ),
    "not_an_image_name_deeper": (
        lambda r: (r / "bar" / "more").mkdir() or (r / "bar" / "more" / "notes.txt").write_text("x"),
        "{root}/bar/more/notes.txt: not an image file (by its name)",
    ),
    "one_class": (
        lambda r: [remove(r / c) or (r / c).rmdir() for c in CLASSES[1:]],
        "{root}: holds one class folder ('bar'); an image folder holds one subfolder of images per class, at least two",
    ),
    "lonely": (
        lambda r: [(r / "column" / f"{i:03d}.{'png' if i % 2 else 'bmp'}").unlink() for i in range(1, 10)],
        "{root}: class 'column' has 1 row; splitting off a stratified 20% test set needs at least 2 rows",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_folder_is_one_line_naming_the_file_and_exit_2(tmp_path, capsys, case):
    root = image_folder(tmp_path / "shapes")
    make, expected = BAD[case]
    make(root)
    code, out, err = run_cli(capsys, "train", "--dataset", root, "--epochs", "1", "--output", tmp_path / "run")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert expected.format(root=root) in err, err
    assert not (tmp_path / "run").exists()  # nothing written
    with pytest.raises(UserInputError, match=str(root)):
        data.load_dataset(root)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, ": does not exist"),
        (lambda p: p.mkdir(), ": holds no class folder; an image folder holds one subfolder of images per class"),
        (lambda p: p.write_text("a,b\n"), ": is a file, expected a folder"),
    ],
)
def test_a_missing_or_empty_folder_is_one_line(tmp_path, capsys, make, expected):
    path = tmp_path / "imgs"
    make(path)
    code, _, err = run_cli(capsys, "train", "--dataset", f"{path}/", "--epochs", "1", "--quiet")
    assert code == 2 and err.count("\n") == 1 and f"error: {path}" in err and expected in err, err


def test_a_folder_of_too_many_files_is_refused_after_listing_the_limit(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "shapes")
    listed = []
    scandir = images.os.scandir

    def counting(path):
        listed.append(path)
        return scandir(path)

    monkeypatch.setattr(images, "MAX_ENTRIES", 15)
    monkeypatch.setattr(images.os, "scandir", counting)
    with pytest.raises(UserInputError, match=rf"^{root}: more than 15 entries \(class folders and their files\)"):
        data.load_dataset(root)
    assert len(listed) == 3  # the root, bar, column: stopped inside column, diagonal never listed


def test_folders_inside_a_class_folder_are_walked_as_keras_walks_them(tmp_path):
    """Images in folders at any depth under a class folder belong to that class (Keras'
    image_dataset_from_directory does the same); empty inner folders add nothing; the order is by path."""
    os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 on JAX: no TensorFlow needed
    pytest.importorskip("keras")
    from keras.src.utils import dataset_utils, image_dataset_utils  # image_dataset_from_directory's own indexing

    root = image_folder(tmp_path / "shapes", per_class=6)
    for c in ("bar", "column"):
        deep = root / c / "more" / "deeper"
        deep.mkdir(parents=True)
        for f in sorted((root / c).glob("00[0-2].*")):
            f.rename(deep / f.name)
    (root / "diagonal" / "empty").mkdir()
    classes, found = images.list_images(str(root))
    assert classes == CLASSES and len(found) == 18
    assert found[:6] == sorted(found[:6]) and ("bar/more/deeper/000.bmp", 0) in found
    ds = data.load_dataset(root, test_split=1 / 3)
    assert np.bincount(ds.y_train).tolist() == [4, 4, 4]
    # (image_dataset_from_directory itself returns a tf.data set, which needs TensorFlow)
    paths, labels, names = dataset_utils.index_directory(
        str(root), "inferred", formats=image_dataset_utils.ALLOWLIST_FORMATS, shuffle=False
    )
    assert tuple(names) == classes
    listed = sorted(zip(paths, labels.tolist(), strict=True))
    assert listed == sorted((str(root / f), c) for f, c in found)  # the same files, each in its class


def test_a_folder_larger_than_memory_is_refused_before_its_images_are_decoded(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "shapes")
    decoded = []
    read_grey = images.read_grey
    monkeypatch.setattr(images, "read_grey", lambda p: decoded.append(p) or read_grey(p))
    monkeypatch.setattr(memory, "available_memory", lambda: 12 * 12 * 40)  # one image, not the 30 as levels twice
    with pytest.raises(UserInputError, match=rf"^{root}: 30 images of 12x12 pixels as 8-bit levels needs 8.4 KiB"):
        data.load_dataset(root)
    assert len(decoded) == 1  # the first, for its size


@pytest.mark.parametrize(
    ("value", "expected"),
    [(28, (28, 28)), ("28", (28, 28)), ("20x30", (20, 30)), ([4, 5], (4, 5)), ((7,), (7, 7)), (None, None)],
)
def test_image_size_forms(value, expected):
    assert images.check_image_size(value) == expected


@pytest.mark.parametrize("value", [0, "0x4", "4x", "big", 5000, (1, 2, 3), 2.5, True])
def test_a_bad_image_size_is_a_field_error(value):
    with pytest.raises(FieldError, match=r"image_size must be a side N or HxW") as e:
        images.check_image_size(value)
    assert e.value.field == "image_size"


def test_predict_reads_an_image_as_the_folders_images_were_read(tmp_path, capsys):
    """A folder's model takes an image file as its training images were read (grey, resized; not MNIST's
    inversion, cropping and centring): the probabilities equal those of the image's own row of the dataset."""
    import mlpjax

    root = image_folder(tmp_path / "shapes")
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", root, "--image-size", "6x8", "--hidden", "16", "--epochs", "2",
                           "--output", run, "--quiet")  # fmt: skip
    assert code == 0, err
    files = [root / "bar" / "001.png", root / "diagonal" / "004.bmp", root / "column" / "007.png"]
    code, out, err = run_cli(capsys, "predict", run, "--image", *files, "--json")
    assert code == 0, err
    got = np.array([[r["probabilities"][c] for c in CLASSES] for r in json.loads(out)["predictions"]], np.float32)
    ds = data.load_dataset(root, image_size="6x8")
    rows = np.concatenate([ds.encoded_train, ds.encoded_test])
    picked = []
    for f in files:  # the dataset's row of this very file (the same greys, resized the same way)
        want = images.levels(np.asarray(Image.open(f).convert("L"), np.float32) / 255, (6, 8))
        picked.append(rows[np.flatnonzero((rows == want).all(1))[0]])
    expected = mlpjax.load_model(run).predict_proba(data.features(np.stack(picked), 255))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    code, out, err = run_cli(capsys, "predict", run, "--image", files[0], "--out", tmp_path / "seen.png")
    assert code == 0 and (tmp_path / "seen.png").is_file(), err  # the 6x8 image as the model sees it
