"""The draw window: command-line errors without a window, the window driven from Python, and the real
``mlpjax draw DIR`` command driven with xdotool mouse drags, all under a private Xvfb display.

Window tests (``@pytest.mark.window``) skip with the reason when tkinter, Xvfb or xdotool is missing
(``.ci/run`` installs Debian's xvfb and xdotool). The screenshot of the real window goes to
``artifacts/draw_window_test.png``.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import REPO, mnist_dir

from mlpjax import cli
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import create_train_state
from mlpjax.draw import preprocess, recognize
from mlpjax.draw import window as tk_window
from mlpjax.errors import UserInputError
from mlpjax.runs import run
from mlpjax.training.result import HISTORY_KEYS

ARTIFACTS = REPO / "artifacts"


# ---- without a display ---------------------------------------------------------------------------------------


def test_draw_without_a_model_says_how_to_get_one(capsys):
    assert cli.main(["draw"]) == 2
    err = capsys.readouterr().err
    assert "mlpjax train --output DIR" in err and "--train-quick" in err


def test_draw_with_model_and_train_quick_is_refused(capsys):
    assert cli.main(["draw", "somewhere", "--train-quick"]) == 2
    assert "not both" in capsys.readouterr().err


def test_draw_without_display_exits_2_with_a_clear_message(model_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-m", "mlpjax.cli", "draw", str(model_dir[0])],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("mlpjax draw: error: no display") and "xvfb-run" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def quadrants_dir(tmp_path_factory):
    """A saved model of the tutorial's four points: 2 inputs, which the window cannot feed."""
    directory = tmp_path_factory.mktemp("quadrants") / "run"
    run.start(directory, TrainConfig(dataset="quadrants", epochs=1, model=model.ModelConfig(hidden=(4,)))).fit()
    return directory


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["draw", "{quadrants}"], "takes 2 inputs"),
        (["draw", "{missing}"], "{missing}"),
        (["draw", "{quadrants}", "--data-dir", "x"], "--data-dir is for --train-quick"),
        (["draw", "--train-quick", "--best"], "--best"),
        (["draw", "--train-quick", "--data-dir", "{missing}"], "does not exist"),
    ],
    ids=["model-of-2-inputs", "missing-dir", "data-dir-with-dir", "best-with-train-quick", "missing-data-dir"],
)
def test_draw_checks_its_flags_before_it_looks_for_a_display(
    argv, needle, quadrants_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    names = {"quadrants": quadrants_dir, "missing": tmp_path / "missing"}
    assert cli.main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err
    assert needle.format(**names) in err and "no display" not in err and len(err.strip().splitlines()) == 1, err


def test_the_window_needs_a_28x28_model():
    config = model.ModelConfig(input_dim=64)
    with pytest.raises(UserInputError, match="784"):
        recognize.check_model(model.Classifier(model.init(jax.random.PRNGKey(0), config), config))


# ---- a private X display -------------------------------------------------------------------------------------


def _need_tk():
    if tk_window.tk is None:
        pytest.skip("tkinter is not available in this Python (its _tkinter needs Tk 8.6: Debian libtk8.6)")


@pytest.fixture(scope="module")
def display():
    """Start Xvfb on a free display number (``-displayfd``) and point $DISPLAY at it for this module."""
    _need_tk()
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (Debian: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 20
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        if select.select([read_fd], [], [], 0.5)[0]:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
    os.close(read_fd)
    if not number.strip():
        proc.kill()
        pytest.fail("Xvfb did not report a display number within 20 s")
    name = f":{number.decode().strip()}"
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = name
    yield name
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved model: 1 epoch of MNIST where MNIST is present, else a freshly initialised (untrained) one.

    Returns ``(DIR, trained)``.
    """
    from mlpjax.runs import checkpoint

    directory = tmp_path_factory.mktemp("draw_model")
    folder = mnist_dir()
    if folder is not None:
        config = TrainConfig(dataset="mnist", data_dir=str(folder), epochs=1, seed=0)
        run.start(directory, config, keep=1).fit()
        return directory, True
    config = TrainConfig(dataset="mnist", epochs=1, seed=0)
    state = create_train_state(jax.random.PRNGKey(0), config, config.model_config(784, 10))
    history = {k: [0.0] for k in HISTORY_KEYS}
    writer = checkpoint.Writer(directory, config, keep=1, save_best=False)
    writer.save(1, state, history)
    writer.close()
    return directory, False


@pytest.fixture
def window(display, model_dir):
    from mlpjax.runs import checkpoint

    w = tk_window.DrawWindow(checkpoint.load_model(model_dir[0]), live_ms=50)
    yield w
    w.close()


def draw_digit(w: tk_window.DrawWindow, digit: int) -> None:
    for stroke in recognize.DEMO_STROKES[digit]:
        w.draw_stroke(stroke)


def pump(w: tk_window.DrawWindow, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        w.root.update()
        time.sleep(0.01)


# ---- the window from Python ----------------------------------------------------------------------------------


@pytest.mark.window
def test_empty_canvas_asks_for_a_digit(window):
    assert window.recognise() is None
    assert window.result_text == tk_window.EMPTY_TEXT == "draw a digit first"


@pytest.mark.window
def test_draw_and_recognise(window, model_dir):
    draw_digit(window, 1)
    result = window.recognise()
    assert result is not None and 0 <= result.digit <= 9
    assert window.result_text == result.text and window.result_text.startswith(str(result.digit))
    assert window.root.title() == f"mlpjax draw: {result.text}"
    assert result.probabilities.shape == (10,) and result.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    # the model saw the MNIST-style image of what was drawn, and the canvas image holds the strokes
    np.testing.assert_array_equal(result.image, preprocess.canvas_to_mnist(window.image))
    assert np.asarray(window.image).min() == 0 and window.image.size == (280, 280)
    if model_dir[1]:
        assert result.digit == 1 and result.confidence > 0.5


@pytest.mark.window
@pytest.mark.mnist
def test_trained_model_reads_all_ten_drawn_digits(window, model_dir):
    if not model_dir[1]:
        pytest.skip("needs the model trained on real MNIST")
    read = []
    for digit in range(10):
        window.clear()
        draw_digit(window, digit)
        read.append(window.recognise().digit)
    assert sum(r == d for d, r in enumerate(read)) >= 8, read


@pytest.mark.window
def test_live_prediction_while_drawing_and_clear(window):
    calls = []
    window.on_recognise = calls.append
    window.draw_stroke([(140, 40), (140, 140)])  # no Recognise pressed
    assert window.recognition is None
    pump(window, 0.3)  # the throttled live update fires
    assert window.recognition is not None and window.result_text == window.recognition.text
    assert calls == []  # live updates do not announce
    window.recognise_button.invoke()
    assert len(calls) == 1 and calls[0].digit == window.recognition.digit
    window.clear()
    assert window.recognition is None and window.result_text == tk_window.EMPTY_TEXT
    assert np.asarray(window.image).min() == 255


@pytest.mark.window
def test_live_updates_are_throttled(window, monkeypatch):
    count = []
    real = recognize.recognise_image
    monkeypatch.setattr(tk_window, "recognise_image", lambda *a: count.append(1) or real(*a))
    start = time.monotonic()
    window._pen_down(140, 40)  # a slow mouse drag: 50 moves 10 ms apart, events processed in between
    for y in range(44, 244, 4):
        window._pen_move(140, y)
        window.root.update()
        time.sleep(0.01)
    window._pen_up()
    elapsed = time.monotonic() - start
    pump(window, 0.2)
    assert 2 <= len(count) <= elapsed / (window.live_ms / 1000) + 2  # live while drawing, but not per move
    assert len(count) < 25


# ---- the real command, driven by xdotool ---------------------------------------------------------------------


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True, timeout=30).stdout.strip()


def read_line_with(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """Read the process's stdout until a line containing ``text`` (fail on timeout or exit)."""
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None, "start it with stdout=PIPE"
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if text in line:
                return line.strip()
        elif proc.poll() is not None:
            break
    pytest.fail(
        f"no line with {text!r} from mlpjax draw within {timeout} s; stdout: {''.join(seen)!r}; "
        f"exit status {proc.poll()}"
    )


@pytest.mark.window
@pytest.mark.slow
def test_mlpjax_draw_with_xdotool(display, model_dir):
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool not installed (Debian: apt-get install xdotool)")
    from mlpjax.runs import checkpoint

    directory, trained = model_dir
    with tk_window.DrawWindow(checkpoint.load_model(directory), live_ms=None) as probe:
        layout = probe.layout()  # where the canvas and the buttons sit inside the window
    script = Path(sys.executable).with_name("mlpjax")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlpjax.cli"]
    proc = subprocess.Popen(
        [*command, "draw", str(directory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        read_line_with(proc, "window open", timeout=120)
        wid = xdotool("search", "--sync", "--onlyvisible", "--name", "^mlpjax draw").split()[0]
        cx, cy, _, _ = layout["canvas"]
        for stroke in recognize.DEMO_STROKES[7]:  # a "7" with the mouse: press, drag through the points, release
            (x0, y0), rest = stroke[0], stroke[1:]
            drag = []
            for x, y in rest:
                drag += ["mousemove", "--window", wid, str(cx + x), str(cy + y), "sleep", "0.05"]
            xdotool(
                "mousemove",
                "--window",
                wid,
                str(cx + x0),
                str(cy + y0),
                "mousedown",
                "1",
                "sleep",
                "0.05",
                *drag,
                "mouseup",
                "1",
            )
        bx, by, bw, bh = layout["recognise"]
        xdotool("mousemove", "--window", wid, str(bx + bw // 2), str(by + bh // 2), "click", "1")
        line = read_line_with(proc, "recognised", timeout=30)
        digit = line.split()[1]
        assert digit in "0123456789" and len(digit) == 1, line
        deadline = time.monotonic() + 5
        while not xdotool("getwindowname", wid).startswith(f"mlpjax draw: {digit} ("):
            assert time.monotonic() < deadline, xdotool("getwindowname", wid)
            time.sleep(0.1)
        if trained:
            assert digit == "7", line

        from PIL import ImageGrab

        geometry = dict(kv.split("=") for kv in xdotool("getwindowgeometry", "--shell", wid).split())
        x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        shot = ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display)
        ARTIFACTS.mkdir(exist_ok=True)
        shot.save(ARTIFACTS / "draw_window_test.png")
        ink = np.asarray(shot.convert("L").crop((cx, cy, cx + 280, cy + 280)))
        assert (ink < 64).mean() > 0.03  # the mouse strokes are on the canvas
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.window
def test_ctrl_c_ends_mlpjax_draw_at_once_with_one_line(display, model_dir):
    """SIGINT with nothing happening in the window (before: it waited until the mouse moved over it)."""
    import signal

    script = Path(sys.executable).with_name("mlpjax")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlpjax.cli"]
    proc = subprocess.Popen(
        [*command, "draw", str(model_dir[0])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        read_line_with(proc, "window open", timeout=120)
        time.sleep(0.5)  # well inside the main loop
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=10)  # the window idle: only the loop's own tick can deliver it
        except subprocess.TimeoutExpired:
            pytest.fail("mlpjax draw did not end within 10 s of Ctrl-C")
        took = time.monotonic() - sent
        assert (code, proc.stderr.read(), proc.stdout.read()) == (130, "interrupted\n", "")
        assert took < 2.0, f"mlpjax draw took {took:.1f} s to end after Ctrl-C"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.window
def test_keyboard_interrupt_in_a_callback_ends_run(window):
    """Ctrl-C while a Tk callback runs (tkinter would print it and go on): run() ends with the KeyboardInterrupt."""

    def interrupted() -> None:
        raise KeyboardInterrupt

    report = window.root.report_callback_exception
    window.root.after(50, interrupted)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        window.run()
    assert time.monotonic() - start < 5
    assert window.root.report_callback_exception == report  # tkinter's own reporting is back after run()
