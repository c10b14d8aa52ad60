"""canvas_to_mnist and naive_resize: centring, aspect ratio, polarity, empty canvases, tiny and huge inputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mlpjax.draw import preprocess
from mlpjax.draw.preprocess import EmptyCanvasError, canvas_to_mnist, naive_resize
from mlpjax.errors import UserInputError


def canvas(size=(280, 280), background=255) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", size, background)
    return image, ImageDraw.Draw(image)


def draw_seven(size=280, offset=(0, 0), scale=1.0, width=20) -> Image.Image:
    """A black-on-white "7" on a ``size`` canvas, its geometry scaled and shifted."""
    image, pen = canvas((size, size))
    pts = [(offset[0] + scale * x, offset[1] + scale * y) for x, y in ((40, 30), (140, 30), (70, 190))]
    pen.line(pts, fill=0, width=max(1, round(width * scale)), joint="curve")
    return image


def ink_box(image: np.ndarray, threshold: float = 0.1) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the pixels above threshold."""
    rows, cols = np.flatnonzero((image > threshold).any(1)), np.flatnonzero((image > threshold).any(0))
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_output_is_mnist_like():
    out = canvas_to_mnist(draw_seven())
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0)
    assert out[0].max() == 0 and out[:, 0].max() == 0  # white digit on a black field, not touching the border
    top, left, h, w = ink_box(out)
    assert max(h, w) == 20  # size-normalised into the 20x20 box


@pytest.mark.parametrize("where", [(0, 0), (200, 10), (10, 200), (190, 190), (100, 100)])
def test_centre_of_mass_is_centred_wherever_the_digit_is(where):
    image, pen = canvas()
    x, y = where
    pen.ellipse([x, y, x + 70, y + 80], fill=0)  # a blob in any corner
    pen.rectangle([x, y + 60, x + 20, y + 85], fill=0)  # made asymmetric, so box centre != centre of mass
    out = canvas_to_mnist(image)
    cy, cx = preprocess.centre_of_mass(out)
    assert abs(cy - 14.0) <= 0.5 and abs(cx - 14.0) <= 0.5  # whole-pixel shifts: within half a pixel


def test_position_on_the_canvas_does_not_matter():
    a = canvas_to_mnist(draw_seven(offset=(0, 0)))
    b = canvas_to_mnist(draw_seven(offset=(60, 80)))
    np.testing.assert_array_equal(a, b)


def test_naive_resize_keeps_position_and_squashes():
    corner = draw_seven(scale=0.4)  # a small 7 in the top-left corner
    naive = naive_resize(corner)
    assert naive.shape == (28, 28) and naive.dtype == np.float32
    top, left, h, w = ink_box(naive)
    assert top < 5 and left < 5 and max(h, w) < 12  # not moved, not enlarged
    top, left, h, w = ink_box(canvas_to_mnist(corner))
    assert max(h, w) == 20 and 2 <= top and 2 <= left


@pytest.mark.parametrize("shape, expected", [((200, 40), (20, 4)), ((40, 200), (4, 20)), ((120, 120), (20, 20))])
def test_aspect_ratio_is_kept(shape, expected):
    image, pen = canvas()
    h, w = shape
    pen.rectangle([40, 30, 40 + w - 1, 30 + h - 1], fill=0)
    top, left, out_h, out_w = ink_box(canvas_to_mnist(image), threshold=0.5)
    assert (out_h, out_w) == expected


def test_thin_line_keeps_at_least_one_pixel():
    image, pen = canvas()
    pen.line([(140, 10), (140, 270)], fill=0, width=2)  # 260 x 2: the short side would round to 0
    out = canvas_to_mnist(image)
    top, left, h, w = ink_box(out)
    assert h == 20 and 1 <= w <= 2


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: im,  # PIL "L", black on white
        lambda im: Image.eval(im, lambda v: 255 - v),  # PIL, already inverted (white on black, like MNIST)
        lambda im: im.convert("RGB"),
        lambda im: np.asarray(im),  # uint8 array
        lambda im: np.asarray(im, np.float32) / 255,  # float array in [0, 1]
        lambda im: 1.0 - np.asarray(im, np.float32) / 255,  # inverted float array
        lambda im: np.asarray(im) < 128,  # bool mask: True is ink, on False background
        lambda im: np.stack([np.asarray(im)] * 3, -1),  # (H, W, 3) array
    ],
)
def test_polarity_and_input_types_are_detected(convert):
    reference = canvas_to_mnist(draw_seven())
    out = canvas_to_mnist(convert(draw_seven()))
    np.testing.assert_allclose(out, reference, atol=2e-2)


def test_transparent_background_counts_as_white():
    rgba = Image.new("RGBA", (280, 280), (0, 0, 0, 0))  # transparent black: white once composited
    ImageDraw.Draw(rgba).line([(40, 30), (140, 30), (70, 190)], fill=(0, 0, 0, 255), width=20, joint="curve")
    np.testing.assert_allclose(canvas_to_mnist(rgba), canvas_to_mnist(draw_seven()), atol=2e-2)


def test_grey_paper_reads_as_background():
    image, pen = canvas(background=200)  # a greyish scan with dark-grey ink
    pen.line([(40, 30), (140, 30), (70, 190)], fill=40, width=20, joint="curve")
    np.testing.assert_allclose(canvas_to_mnist(image), canvas_to_mnist(draw_seven()), atol=2e-2)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (280, 280), 255),  # the blank white canvas
        np.zeros((280, 280), np.uint8),  # all black: background, whatever the polarity
        np.full((50, 70), 0.5, np.float32),  # uniform grey
        np.full((280, 280, 3), 255, np.uint8),
    ],
    ids=["white", "black", "grey", "rgb-white"],
)
def test_empty_canvas_is_a_clear_error(image):
    with pytest.raises(EmptyCanvasError, match="draw a digit first"):
        canvas_to_mnist(image)


def test_empty_canvas_error_is_a_user_input_error():
    assert issubclass(EmptyCanvasError, UserInputError)
    with pytest.raises(UserInputError, match="empty"):
        canvas_to_mnist(np.zeros((0, 0)))


def test_faint_noise_is_not_ink():
    rng = np.random.default_rng(0)
    noise = 255 - rng.integers(0, 20, (280, 280))  # paper grain below the ink threshold
    with pytest.raises(EmptyCanvasError):
        canvas_to_mnist(noise.astype(np.uint8))


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4, 5)), np.zeros(10), np.array([[0.0, np.nan], [1.0, 0.0]])])
def test_malformed_arrays_are_rejected(bad):
    with pytest.raises(UserInputError):
        canvas_to_mnist(bad)


def test_tiny_inputs_are_enlarged_to_the_box():
    dot = np.zeros((3, 3), np.float32)
    dot[1, 1] = 1.0  # one white pixel on black
    top, left, h, w = ink_box(canvas_to_mnist(dot), threshold=0.5)
    assert (h, w) == (20, 20)
    bar = np.full((6, 5), 255, np.uint8)
    bar[1:5, 2] = 0  # a 4x1 black stroke on white
    out = canvas_to_mnist(bar)
    top, left, h, w = ink_box(out, threshold=0.5)
    assert h == 20 and w <= 6
    assert abs(preprocess.centre_of_mass(out)[1] - 14) <= 0.5


def test_huge_inputs_match_small_ones():
    small = canvas_to_mnist(draw_seven(size=280))
    start = time.perf_counter()
    huge = canvas_to_mnist(draw_seven(size=4000, scale=4000 / 280))
    assert time.perf_counter() - start < 5.0
    assert np.abs(huge - small).mean() < 0.02
    assert np.abs(huge - small).max() < 0.35  # same digit, up to anti-aliasing of the edges


def test_non_square_canvas():
    image, pen = canvas((600, 150))  # wide: squashing distorts it, canvas_to_mnist must not
    pen.rectangle([280, 20, 319, 129], fill=0)  # 110 tall, 40 wide
    top, left, h, w = ink_box(canvas_to_mnist(image), threshold=0.5)
    assert h == 20 and w == 7
    top, left, h, w = ink_box(naive_resize(image), threshold=0.5)
    assert w < h / 4 * 2  # the naive squash makes the bar narrower relative to its height than it was


@pytest.mark.mnist
def test_mnist_digits_are_nearly_fixed_points(mnist):
    digits = mnist.x_test[:300].reshape(-1, 28, 28)
    out = np.stack([canvas_to_mnist(d) for d in digits])
    assert np.abs(out - digits).mean() < 0.01
    assert np.mean(np.abs(out - digits).max((1, 2)) < 0.3) > 0.97
