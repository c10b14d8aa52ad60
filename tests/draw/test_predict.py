"""Predicting from image files: every mode read as grey, every bad or oversized file refused in one line naming
it (dedicated tests for the defects of issue 13, then hypothesis fuzzing in a memory-limited worker), and
``predict --out`` never replacing a file."""

from __future__ import annotations

import errno
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from mlpjax import cli, files, memory
from mlpjax.draw import predict
from mlpjax.errors import UserInputError


def digit_array(height: int = 40, width: int = 30) -> np.ndarray:
    """A black bar (a "1") on white, uint8 ``(height, width)``."""
    a = np.full((height, width), 255, np.uint8)
    a[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = 0
    return a


def in_mode(mode: str, a: np.ndarray) -> Image.Image:
    """The grey levels ``a`` (uint8) as a PIL image of ``mode``; 16-bit, integer and float modes scaled up."""
    if mode.startswith("I;16"):
        return (
            Image.fromarray(a.astype(np.uint16) * 257).convert(mode)
            if mode != "I;16"
            else Image.fromarray(a.astype(np.uint16) * 257)
        )
    if mode == "I":
        return Image.fromarray(a.astype(np.int32) * 1000 - 7)
    if mode == "F":
        return Image.fromarray(a.astype(np.float32) / 255 * 3.5 - 1)
    return Image.fromarray(a).convert("RGB" if mode == "LAB" else "L").convert(mode)


def png_bytes(width: int, height: int, idat: bytes = b"") -> bytes:
    """A greyscale PNG declaring ``width`` x ``height`` pixels whose data is ``idat`` (compressed here)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(idat))
        + chunk(b"IEND", b"")
    )


def noise_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- issue 13, defect 12: image modes and sizes that gave a traceback ------------------------------------------

MODES = [
    ("1", "png"),
    ("L", "png"),
    ("P", "png"),
    ("RGB", "png"),
    ("RGBA", "png"),
    ("LA", "png"),
    ("I;16", "png"),
    ("CMYK", "tiff"),
    ("YCbCr", "tiff"),
    ("LAB", "tiff"),
    ("I", "tiff"),
    ("F", "tiff"),
    ("PA", "tiff"),
    ("I;16B", "tiff"),
    ("RGBA", "tiff"),
]


@pytest.mark.parametrize("mode, fmt", MODES, ids=[f"{m}-{f}" for m, f in MODES])
def test_every_mode_reads_as_the_same_grey_digit(tmp_path, mode, fmt):
    reference = tmp_path / "reference.png"
    Image.fromarray(digit_array()).save(reference)
    path = tmp_path / f"digit.{fmt}"
    in_mode(mode, digit_array()).save(path)
    with Image.open(path) as image:
        assert image.mode == mode
    np.testing.assert_allclose(predict.load_image(path, 784), predict.load_image(reference, 784), atol=0.02)


def test_a_mode_without_grey_conversion_names_the_file(tmp_path, monkeypatch):
    from mlpjax.data import images

    with pytest.raises(UserInputError, match="an image of mode La, which has no conversion to grey; save it as"):
        images.grey(Image.new("La", (4, 4)))


def test_nan_in_a_float_image_is_refused(tmp_path):
    a = np.zeros((8, 8), np.float32)
    a[2, 3] = np.nan
    Image.fromarray(a).save(tmp_path / "nan.tiff")
    with pytest.raises(UserInputError, match=r"nan.tiff: the image contains NaN or infinite values$"):
        predict.load_image(tmp_path / "nan.tiff", 784)


def test_a_float_image_of_huge_finite_values_is_read_without_warnings(tmp_path):
    """Issue 26, item 10: finite values near float32's limits (a span of 6.8e38) overflowed in the stretch: six
    numpy warnings, then a false "contains NaN or infinite values"."""
    import warnings

    big = float(np.finfo(np.float32).max)
    a = np.full((28, 28), -big, np.float32)
    a[6:22, 12:16] = big  # a bright bar on the darkest background
    Image.fromarray(a).save(tmp_path / "huge.tiff")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = predict.load_image(tmp_path / "huge.tiff", 784)
    Image.fromarray((a > 0).astype(np.float32)).save(tmp_path / "unit.tiff")  # the same digit, from 0 to 1
    assert x.dtype == np.float32 and np.array_equal(x, predict.load_image(tmp_path / "unit.tiff", 784))


def test_decompression_bomb_and_oversized_images_are_refused_undecoded(tmp_path, input_worker):
    (tmp_path / "bomb.png").write_bytes(png_bytes(50_000, 50_000))  # 2.5 gigapixels: PIL's own limit
    reply = input_worker.ask("load_image", tmp_path / "bomb.png")
    assert reply["outcome"] == "user" and "bomb.png: too large an image (" in reply["message"], reply
    (tmp_path / "wide.png").write_bytes(png_bytes(12_000, 10_000))  # 120 megapixels: within PIL's, not ours
    reply = input_worker.ask("load_image", tmp_path / "wide.png")
    assert reply == {
        "outcome": "user",
        "message": f"{tmp_path / 'wide.png'}: the image is 12000x10000 pixels, "
        "more than the 100 megapixels read; scale it down",
    }


def test_an_image_larger_than_the_memory_available_is_refused(tmp_path, monkeypatch):
    Image.fromarray(digit_array()).save(tmp_path / "digit.png")
    monkeypatch.setattr(memory, "available_memory", lambda: 10_000)
    with pytest.raises(
        UserInputError,
        match=r"digit.png: an image of 30x40 pixels needs 46.9 KiB, more than the "
        r"9.8 KiB of memory available",
    ):
        predict.load_image(tmp_path / "digit.png", 784)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.write_text("not an image"), "not an image file; expected one of PNG, JPEG"),
        (lambda p: p.write_bytes(b""), "not an image file"),
        (lambda p: p.write_bytes(noise_png()[:300]), "not a readable image (OSError: image file is truncated"),
        (lambda p: p.write_bytes(png_bytes(30, 40, bytes(41))), "not a readable image ("),  # too little pixel data
        (lambda p: Image.fromarray(digit_array()).save(p, format="PNG"), None),  # the control: it reads
        (lambda p: p.symlink_to(p), "symbolic link loop"),
        (lambda p: p.symlink_to("/dev/zero"), "is a character device, expected a regular file"),
        (lambda p: os.mkfifo(p), "is a named pipe (FIFO), expected a regular file"),
        (lambda p: p.mkdir(), "is a directory, expected a regular file"),
        (lambda p: None, "does not exist"),
    ],
    ids=["text", "empty", "truncated", "short-data", "good", "loop", "dev-zero", "fifo", "directory", "missing"],
)
def test_bad_image_files_are_one_line_naming_the_file(tmp_path, input_worker, make, words):
    path = tmp_path / "digit.png"
    make(path)
    reply = input_worker.ask("load_image", path)
    if words is None:
        assert reply["outcome"] == "ok", reply
    else:
        assert reply["outcome"] == "user", reply
        assert reply["message"].startswith(f"{path}: {words}") and "\n" not in reply["message"], reply


def test_a_blank_image_says_it_holds_no_digit(tmp_path):
    Image.new("L", (20, 20), 255).save(tmp_path / "blank.png")
    with pytest.raises(UserInputError, match=r"blank.png: the canvas is empty"):
        predict.load_image(tmp_path / "blank.png", 784)


# --- issue 13, defect 10: predict --out never overwrites ---------------------------------------------------------


def test_save_png_writes_a_new_file_and_never_replaces_one(tmp_path):
    out = predict.save_png(np.eye(8), "predicted 1", tmp_path / "new" / "p.png")
    assert out == tmp_path / "new" / "p.png" and out.read_bytes().startswith(b"\x89PNG")
    assert out.stat().st_mode & 0o777 == files.new_file_mode()
    (tmp_path / "taken.png").write_text("mine")
    with pytest.raises(UserInputError, match=r"taken.png: already exists; give another file name"):
        predict.save_png(np.eye(8), "predicted 1", tmp_path / "taken.png")
    assert (tmp_path / "taken.png").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "taken.png"]  # no temporary file left


@pytest.mark.parametrize("hard_links", [True, False])
def test_save_png_refuses_a_file_that_appears_while_it_draws(tmp_path, monkeypatch, hard_links):
    monkeypatch.setattr(files, "check_new_file", Path)  # as if the file appeared after the check
    if not hard_links:

        def no_link(*args):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
        predict.save_png(np.eye(8), "x", tmp_path / "copied.png")
        assert (tmp_path / "copied.png").read_bytes().startswith(b"\x89PNG")
    (tmp_path / "taken.png").write_text("mine")
    with pytest.raises(UserInputError, match="taken.png: already exists"):
        predict.save_png(np.eye(8), "x", tmp_path / "taken.png")
    assert (tmp_path / "taken.png").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_png_under_a_file_says_the_parent_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserInputError, match=rf"afile/x.png: {tmp_path / 'afile'} is a file, not a folder$"):
        predict.save_png(np.eye(8), "x", tmp_path / "afile" / "x.png")


def test_predict_out_refuses_existing_files_default_name_included(digits_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("predict_3.png").write_text("mine")
    Path("mine.png").write_text("mine")
    Path("afile").write_text("x")
    for argv, words in (
        (["--index", "3"], "--out predict_3.png: already exists; give another file name"),
        (["--index", "3", "--out", "mine.png"], "--out mine.png: already exists"),
        (["--index", "3", "--out", "afile/x.png"], "--out afile/x.png: afile is a file, not a folder"),
        (["--image", "afile"], "--image afile: not an image file"),
    ):
        capsys.readouterr()
        assert cli.main(["predict", str(digits_run), *argv]) == 2
        err = capsys.readouterr().err
        assert err == f"mlpjax predict: error: {words}" + err.split(words, 1)[1] and err.count("\n") == 1, err
    assert Path("predict_3.png").read_text() == Path("mine.png").read_text() == "mine"
    assert cli.main(["predict", str(digits_run), "--index", "4"]) == 0 and Path("predict_4.png").stat().st_size


# --- fuzzing: random image files end in an input or one UserInputError, within 1 GiB -----------------------------

FUZZ_MODES = {
    "png": ["1", "L", "P", "RGB", "RGBA", "LA", "I;16"],
    "tiff": ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "LAB", "I", "F", "PA", "I;16", "I;16B"],
}


@st.composite
def image_files(draw):
    """(file bytes, whether the file is intact): a random image of a random mode, size and format, or a PNG
    header of any size; then maybe cut short or with a byte changed."""
    if draw(st.integers(0, 9)) == 0:
        size = st.integers(1, 2**31 - 1) | st.integers(1, 64)
        return png_bytes(draw(size), draw(size), draw(st.binary(max_size=64))), False
    fmt = draw(st.sampled_from(sorted(FUZZ_MODES)))
    mode = draw(st.sampled_from(FUZZ_MODES[fmt]))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    levels = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    in_mode(mode, levels).save(buffer, format=fmt.upper())
    payload = buffer.getvalue()
    damage = draw(st.sampled_from(["none"] * 3 + ["cut", "flip"]))
    position = draw(st.integers(0, len(payload) - 1))
    if damage == "cut":
        payload = payload[:position]
    elif damage == "flip":
        payload = payload[:position] + bytes([payload[position] ^ draw(st.integers(1, 255))]) + payload[position + 1 :]
    return payload, damage == "none"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=image_files())
def test_fuzz_image_files_are_read_or_refused_in_one_line(file, input_worker, tmp_path_factory):
    payload, intact = file
    path = tmp_path_factory.getbasetemp() / "fuzz-image"
    path.write_bytes(payload)
    reply = input_worker.ask("load_image", path)
    assert reply["outcome"] in ("ok", "user"), reply.get("traceback")
    event(f"{reply['outcome']}: {reply.get('message', '').split(': ', 1)[-1][:30]}")
    if reply["outcome"] == "user":
        assert reply["message"].startswith(f"{path}: ") and "\n" not in reply["message"], reply
        assert not intact or "the canvas is empty" in reply["message"], reply


def test_predict_image_out_draws_the_input_the_model_saw(digits_run, tmp_path, capsys):
    """Issue 26, item 9: ``--image X --out F`` wrote nothing; it draws the preprocessed input, never replacing."""
    image = tmp_path / "digit.png"
    Image.fromarray(digit_array()).save(image)
    out = tmp_path / "seen.png"
    assert cli.main(["predict", str(digits_run), "--image", str(image), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{image}: predicted ") and printed[1] == f"wrote {out}"
    with Image.open(out) as drawn:
        assert drawn.format == "PNG"
    first = out.read_bytes()
    assert cli.main(["predict", str(digits_run), "--image", str(image), "--out", str(out)]) == 2
    assert f"--out {out}: already exists" in capsys.readouterr().err and out.read_bytes() == first


def test_the_png_shows_the_image_pixel_for_pixel_under_its_title():
    """predict's PNG (Pillow, no matplotlib): each pixel a block of the image's grey level, white on black, below
    the title's lines."""
    image = np.eye(8) * np.linspace(0.25, 1.0, 8)
    drawn = np.asarray(predict.picture(image, "predicted 1\ntrue 1", scale=10).convert("L"), np.int32)
    dark = drawn < 250  # the image is one 80 x 80 block of non-white pixels; text has no such long runs
    runs = np.array([np.convolve(row, np.ones(80), "valid").max() for row in dark])
    top = int(np.flatnonzero(runs == 80)[0])
    left = int(np.flatnonzero(np.convolve(dark[top], np.ones(80), "valid") == 80)[0])
    block = drawn[top : top + 80, left : left + 80].reshape(8, 10, 8, 10)
    assert (block == block[:, :1, :, :1]).all()  # each pixel one flat 10 x 10 block
    np.testing.assert_allclose(block[:, 0, :, 0], np.round(image * 255), atol=1)
    assert (drawn[:top] < 128).any() and (drawn[:top, :4] == 255).all()  # the title: black text on white
