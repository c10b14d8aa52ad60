"""The tutorial's drawing window (Tk): draw a digit with the mouse and let a trained MLP recognise it.

A 280x280 white canvas with a black 20 px brush, Clear and Recognise buttons and a result label, as in the
tutorial; plus the prediction updating live while drawing (at most every ``live_ms`` milliseconds), the ten class
probabilities as bars, and the 28x28 image the model actually sees (:func:`mlpjax.draw.preprocess.canvas_to_mnist`).

Every stroke is drawn twice: on the Tk canvas (what you see) and on a PIL image of the same size (what is
recognised), so recognition never depends on a screen grab. :class:`DrawWindow` is usable from Python::

    window = DrawWindow(classifier)
    window.draw_stroke([(140, 40), (140, 240)])
    window.recognise().digit, window.result_text   # 1, "1 (97%)"

Recognition itself (one preprocessing, one model call) is :mod:`mlpjax.draw.recognize`'s, shared with any other
front end. No randomness.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from mlpjax.core.model import Classifier
from mlpjax.draw import preprocess
from mlpjax.draw.recognize import CANVAS_SIZE, Recognition, check_model, recognise_image
from mlpjax.errors import UserInputError

try:
    import tkinter as tk
except ImportError:  # a Python built without Tk
    tk = None  # type: ignore[assignment]  # DrawWindow refuses to open without it

BRUSH = 20  # brush diameter, pixels
LIVE_MS = 150  # at most one live prediction per this many milliseconds while drawing
TICK_MS = 100  # the main loop wakes this often to let Python deliver Ctrl-C (DrawWindow.run)
PREVIEW_SCALE = 5  # the 28x28 model input is shown 140x140
PAD = 10  # padding around widgets, pixels
EMPTY_TEXT = "draw a digit first"
TITLE = "mlpjax draw"


class NoDisplayError(UserInputError):
    """No screen to open the window on (no $DISPLAY, or the X server refused)."""


def check_display(probe: bool = False) -> None:
    """Raise :class:`NoDisplayError` (or a UserInputError if Tk is missing) when no window can be opened.

    ``probe``: also connect to the display once (a Tk root created and destroyed), to fail before slow work.
    """
    if tk is None:
        raise UserInputError(
            "this Python has no tkinter (Tk), which the draw window needs; install Tk "
            "(Debian: apt-get install python3-tk, or libtk8.6 and tk-dev for a "
            "pyenv-built Python, then rebuild it)"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(
            "no display: $DISPLAY is not set, so the draw window cannot open; run it on a "
            "desktop, over ssh -X, or under a virtual display (xvfb-run mlpjax draw DIR)"
        )
    if probe:
        _open_root().destroy()


def _open_root(master=None):
    if master is not None:
        return tk.Toplevel(master)
    check_display()
    try:
        return tk.Tk(className="mlpjax")
    except tk.TclError as e:
        raise NoDisplayError(
            f"cannot open the draw window: {e} (is the X server at DISPLAY={os.environ.get('DISPLAY', '')!r} running?)"
        ) from None


def _photo(image: np.ndarray, scale: int, master) -> tk.PhotoImage:
    """A Tk PhotoImage of a float ``(H, W)`` image in [0, 1], enlarged ``scale`` times without smoothing."""
    pil = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return tk.PhotoImage(master=master, data=base64.b64encode(buf.getvalue()).decode("ascii"), format="png")


class DrawWindow:
    """The drawing window around a :class:`~mlpjax.core.model.Classifier` (784 inputs).

    ``on_recognise(recognition)`` is called when Recognise is pressed (not for live updates).
    Methods for scripts and tests: :meth:`draw_stroke`, :meth:`clear`, :meth:`recognise`, :attr:`result_text`,
    :attr:`image`, :meth:`layout`, :meth:`screenshot`, :meth:`close`; :meth:`run` enters the Tk main loop.
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        master=None,
        canvas_size: int = CANVAS_SIZE,
        brush: int = BRUSH,
        live_ms: int | None = LIVE_MS,
        on_recognise: Callable[[Recognition], None] | None = None,
    ):
        check_model(classifier)
        self.classifier = classifier
        self.canvas_size, self.brush, self.live_ms = canvas_size, brush, live_ms
        self.on_recognise = on_recognise
        self.recognition: Recognition | None = None
        self._last: tuple[float, float] | None = None
        self._live_job = None
        self._preview_photo: tk.PhotoImage | None = None
        self.image = Image.new("L", (canvas_size, canvas_size), 255)
        self._pen = ImageDraw.Draw(self.image)

        self.root = root = _open_root(master)
        root.title(TITLE)
        root.resizable(False, False)
        left, right = tk.Frame(root), tk.Frame(root)
        left.grid(row=0, column=0, padx=PAD, pady=PAD, sticky="n")
        right.grid(row=0, column=1, padx=(0, PAD), pady=PAD, sticky="n")

        self.canvas = tk.Canvas(
            left,
            width=canvas_size,
            height=canvas_size,
            bg="white",
            cursor="pencil",
            highlightthickness=0,
            borderwidth=0,
        )
        self.canvas.grid(row=0, column=0, columnspan=2)
        self.clear_button = tk.Button(left, text="Clear", command=self.clear, width=10)
        self.recognise_button = tk.Button(left, text="Recognise", command=self._recognise_pressed, width=10)
        self.clear_button.grid(row=1, column=0, pady=(PAD, 0))
        self.recognise_button.grid(row=1, column=1, pady=(PAD, 0))
        self.label = tk.Label(left, text=EMPTY_TEXT, font=("Helvetica", 20))
        self.label.grid(row=2, column=0, columnspan=2, pady=(PAD, 0))

        side = preprocess.MNIST_SIZE * PREVIEW_SCALE
        tk.Label(right, text="what the model sees (28x28)").grid(row=0, column=0, sticky="w")
        self.preview = tk.Label(right, width=side, height=side, bg="black", borderwidth=0)
        self.preview.grid(row=1, column=0, sticky="w")
        self._show_preview(np.zeros((preprocess.MNIST_SIZE, preprocess.MNIST_SIZE)))
        tk.Label(right, text="class probabilities").grid(row=2, column=0, sticky="w", pady=(PAD, 0))
        n = classifier.model_config.num_classes
        self._bar_h, self._bar_w = 18, 150
        self.bars = tk.Canvas(right, width=30 + self._bar_w + 45, height=n * self._bar_h, highlightthickness=0)
        self.bars.grid(row=3, column=0, sticky="w")
        self._bar_items = []
        for i in range(n):
            y = i * self._bar_h
            self.bars.create_text(12, y + self._bar_h / 2, text=str(i))
            self.bars.create_rectangle(25, y + 3, 25 + self._bar_w, y + self._bar_h - 3, outline="#bbb")
            bar = self.bars.create_rectangle(25, y + 3, 25, y + self._bar_h - 3, outline="", fill="#4a7ebb")
            value = self.bars.create_text(25 + self._bar_w + 5, y + self._bar_h / 2, text="", anchor="w")
            self._bar_items.append((bar, value))

        self.canvas.bind("<ButtonPress-1>", lambda e: self._pen_down(e.x, e.y))
        self.canvas.bind("<B1-Motion>", lambda e: self._pen_move(e.x, e.y))
        self.canvas.bind("<ButtonRelease-1>", lambda e: self._pen_up())
        root.bind("<Return>", lambda e: self._recognise_pressed())
        root.bind("<Escape>", lambda e: self.clear())
        classifier.predict_proba(np.zeros(classifier.model_config.input_dim, np.float32))  # compile now, not mid-stroke
        root.update_idletasks()

    # ---- drawing -------------------------------------------------------------------------------------------
    def _dot(self, x: float, y: float) -> None:
        r = self.brush / 2
        self.canvas.create_oval(x - r, y - r, x + r, y + r, fill="black", outline="black", tags="ink")
        self._pen.ellipse([x - r, y - r, x + r, y + r], fill=0)

    def _pen_down(self, x: float, y: float) -> None:
        self._last = (x, y)
        self._dot(x, y)
        self._schedule_live()

    def _pen_move(self, x: float, y: float) -> None:
        if self._last is None:
            self._pen_down(x, y)
            return
        (x0, y0), self._last = self._last, (x, y)
        self.canvas.create_line(
            x0, y0, x, y, width=self.brush, fill="black", capstyle="round", joinstyle="round", tags="ink"
        )
        self._pen.line([(x0, y0), (x, y)], fill=0, width=self.brush)
        self._dot(x, y)  # round joints and caps, as the Tk line has
        self._schedule_live()

    def _pen_up(self) -> None:
        self._last = None
        self._schedule_live()

    def draw_stroke(self, points: Iterable[Sequence[float]]) -> None:
        """Draw one pen stroke through ``points`` ``[(x, y), ...]`` in canvas pixels, as a mouse drag would."""
        points = [(float(x), float(y)) for x, y in points]
        if not points:
            return
        self._pen_down(*points[0])
        for x, y in points[1:]:
            self._pen_move(x, y)
        self._pen_up()

    def clear(self) -> None:
        """Wipe the canvas and the result."""
        self.canvas.delete("ink")
        self._pen.rectangle([0, 0, self.canvas_size, self.canvas_size], fill=255)
        self._last = None
        self._show(None, EMPTY_TEXT)

    # ---- recognition ---------------------------------------------------------------------------------------
    def _schedule_live(self) -> None:
        if self.live_ms is not None and self._live_job is None:
            self._live_job = self.root.after(self.live_ms, self._live_update)

    def _live_update(self) -> None:
        self._live_job = None
        try:
            self._show(recognise_image(self.classifier, self.image))
        except preprocess.EmptyCanvasError:
            self._show(None, EMPTY_TEXT)

    def recognise(self) -> Recognition | None:
        """Recognise the drawing now and show it; ``None`` (and "draw a digit first") if the canvas is empty."""
        try:
            recognition = recognise_image(self.classifier, self.image)
        except preprocess.EmptyCanvasError:
            self._show(None, EMPTY_TEXT)
            return None
        self._show(recognition)
        return recognition

    def _recognise_pressed(self) -> None:
        recognition = self.recognise()
        if recognition is not None and self.on_recognise is not None:
            self.on_recognise(recognition)

    def _show(self, recognition: Recognition | None, text: str = EMPTY_TEXT) -> None:
        self.recognition = recognition
        text = recognition.text if recognition is not None else text
        self.label.config(text=text)
        self.root.title(f"{TITLE}: {text}")
        probs = recognition.probabilities if recognition is not None else None
        best = recognition.digit if recognition is not None else -1
        for i, (bar, value) in enumerate(self._bar_items):
            p = float(probs[i]) if probs is not None else 0.0
            y = i * self._bar_h
            self.bars.coords(bar, 25, y + 3, 25 + p * self._bar_w, y + self._bar_h - 3)
            self.bars.itemconfigure(bar, fill="#d9534f" if i == best else "#4a7ebb")
            self.bars.itemconfigure(value, text=f"{p:.0%}" if probs is not None else "")
        self._show_preview(
            recognition.image if recognition is not None else np.zeros((preprocess.MNIST_SIZE, preprocess.MNIST_SIZE))
        )

    def _show_preview(self, image: np.ndarray) -> None:
        self._preview_photo = _photo(image, PREVIEW_SCALE, self.root)
        self.preview.config(image=self._preview_photo)

    @property
    def result_text(self) -> str:
        """The result label's text: e.g. ``"7 (98%)"``, or ``"draw a digit first"``."""
        return str(self.label.cget("text"))

    # ---- for scripts and tests -----------------------------------------------------------------------------
    def layout(self) -> dict[str, tuple[int, int, int, int]]:
        """``{name: (x, y, width, height)}`` of the canvas, buttons and label, relative to the window's top-left."""
        self.root.update_idletasks()
        x0, y0 = self.root.winfo_rootx(), self.root.winfo_rooty()
        return {
            name: (w.winfo_rootx() - x0, w.winfo_rooty() - y0, w.winfo_width(), w.winfo_height())
            for name, w in (
                ("canvas", self.canvas),
                ("clear", self.clear_button),
                ("recognise", self.recognise_button),
                ("label", self.label),
            )
        }

    def screenshot(self, path: str | os.PathLike | None = None) -> Image.Image:
        """Grab the window from the screen (X11 needs Pillow with xcb); also saved to ``path`` if given."""
        from PIL import ImageGrab

        self.root.update()
        x, y = self.root.winfo_rootx(), self.root.winfo_rooty()
        bbox = (x, y, x + self.root.winfo_width(), y + self.root.winfo_height())
        shot = ImageGrab.grab(bbox=bbox, xdisplay=os.environ.get("DISPLAY") or None)
        if path is not None:
            shot.save(path)
        return shot

    def run(self) -> None:
        """Enter the Tk main loop until the window is closed; Ctrl-C (SIGINT) raises KeyboardInterrupt within
        :data:`TICK_MS` milliseconds.

        Python runs its signal handlers only between Tk events, and an idle window has none: a timer that Tcl
        itself runs (no Python callback, where tkinter would report the KeyboardInterrupt and go on) wakes the
        loop every :data:`TICK_MS`; a KeyboardInterrupt inside a callback ends the loop as well."""
        interrupted: list[BaseException] = []
        tk_root = self.root.nametowidget(".")  # the Tk whose report_callback_exception tkinter calls (master or own)
        report = tk_root.report_callback_exception

        def report_or_stop(kind, value, traceback) -> None:
            if isinstance(value, KeyboardInterrupt):
                interrupted.append(value)
                self.root.quit()
            else:
                report(kind, value, traceback)

        tk_root.report_callback_exception = report_or_stop
        # one chain of ticks per interpreter, however often run() is entered
        self.root.tk.eval(
            f"proc mlpjax_tick {{}} {{ after {TICK_MS} mlpjax_tick }}; "
            "if {![info exists ::mlpjax_ticking]} { set ::mlpjax_ticking 1; mlpjax_tick }"
        )
        try:
            self.root.mainloop()
        finally:
            tk_root.report_callback_exception = report
        if interrupted:
            raise interrupted[0]

    def close(self) -> None:
        if self._live_job is not None:
            self.root.after_cancel(self._live_job)
            self._live_job = None
        self.root.destroy()

    def __enter__(self) -> DrawWindow:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
