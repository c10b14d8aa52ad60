"""The drawing window in a browser: a local web server for a trained MLP, with what the network sees.

The page (``mlpjax/draw/static/``: plain HTML, CSS and JavaScript, nothing from the internet) has a 280x280
canvas (mouse, touch and pen through Pointer Events; Clear, Undo), the prediction updated live while drawing,
the class probabilities as bars, the 28x28 image the model is given, and from :mod:`mlpjax.draw.insight` the
first hidden layer's activations as a heat map, the saliency map and the input weights of the most active hidden
units. Recognition is :func:`mlpjax.draw.recognize.recognise_image`'s, the one the Tk window uses.

The server is the standard library's :class:`http.server.ThreadingHTTPServer`, safe by default:

- it binds ``127.0.0.1`` unless told otherwise, and then answers only requests addressed to a loopback name
  (``Host``), so that a web site cannot reach it through DNS rebinding; ``Origin``, when sent, must be its own;
- it serves a fixed set of files read once from the package (:data:`STATIC`), never a file a request names;
- ``POST /api/predict`` takes exactly ``280 * 280`` bytes (the canvas's grey levels, row by row, 255 white);
  bodies above :data:`MAX_BODY` bytes, a missing or bad ``Content-Length``, another size, unknown paths and
  methods get a 4xx and one line in the log; each client gets at most :data:`RATE` requests per second (bursts
  of :data:`BURST`), at most :data:`MAX_CONNECTIONS` connections are served at once, and an idle connection is
  closed after :data:`TIMEOUT` seconds;
- every thread is a daemon: Ctrl-C (a KeyboardInterrupt in the thread running :func:`serve`) ends it at once.

Usable from Python: :func:`make_server` returns the server (``server.url``; run ``server.serve_forever()`` in a
thread, ``server.shutdown()``), :func:`serve` runs one until Ctrl-C. No randomness.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

import numpy as np

from mlpjax.core.model import Classifier
from mlpjax.draw import insight, preprocess
from mlpjax.draw.recognize import CANVAS_SIZE
from mlpjax.errors import FieldError, UserInputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_BODY = 1 << 20  # bytes; larger request bodies are refused unread
BODY_SIZE = CANVAS_SIZE * CANVAS_SIZE  # the one body /api/predict takes: the canvas's grey levels
RATE = 60.0  # requests per second per client (token bucket) ...
BURST = 120  # ... with bursts of this many
MAX_CONNECTIONS = 64  # connections served at once; more are closed at once
TIMEOUT = 10.0  # seconds a connection may stay idle or take to send a request
LIVE_MS = 50  # the page asks again at most this often while drawing (and waits for each answer)
BRUSH = 20  # brush diameter on the canvas, pixels (as the Tk window's)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")

# path -> (file in mlpjax/draw/static, Content-Type): the only files ever served
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/draw.css": ("draw.css", "text/css; charset=utf-8"),
    "/draw.js": ("draw.js", "text/javascript; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class Model:
    """What the page shows about the model: ``classifier``, its ``class_names`` (one per class) and ``about``
    (one line: the dataset, the architecture, the epoch). ``drawable`` is False, with ``reason``, for a model
    whose inputs are not 28x28 images."""

    classifier: Classifier
    class_names: tuple[str, ...]
    about: str

    @property
    def reason(self) -> str:
        side = preprocess.MNIST_SIZE
        n = self.classifier.model_config.input_dim
        if n == side * side:
            return ""
        return (
            f"drawing needs a {side}x{side} image model: this model takes {n} inputs, not the "
            f"{side}x{side} = {side * side} pixels of a drawing; train one on mnist or fashion_mnist"
        )

    @property
    def drawable(self) -> bool:
        return not self.reason


def describe(classifier: Classifier, class_names: Sequence[str] = (), about: str = "") -> Model:
    """:class:`Model` for ``classifier``; ``class_names`` default to the class numbers, else must be one per class."""
    n = classifier.model_config.num_classes
    names = tuple(str(c) for c in class_names) or tuple(str(c) for c in range(n))
    if len(names) != n:
        raise FieldError("class_names", f"must name each of the model's {n} classes, got {len(names)} names")
    config = classifier.model_config
    layers = " -> ".join(str(w) for w in config.widths())
    return Model(classifier, names, about or f"MLP {layers} ({config.activation})")


class _Buckets:
    """A token bucket per client address: :data:`RATE` tokens a second, at most :data:`BURST`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 4096:  # forget idle clients rather than grow without bound
                self._tokens.clear()
            tokens, last = self._tokens.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._tokens[client] = (tokens - 1.0 if allowed else tokens, now)
            return allowed


def _static_files() -> dict[str, bytes]:
    folder = resources.files("mlpjax.draw") / "static"
    return {name: (folder / name).read_bytes() for name in {file for file, _ in STATIC.values()}}


def _rounded(a: np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(a, np.float64), digits).tolist()


def predict_json(model: Model, canvas: np.ndarray, top: int = insight.TOP_UNITS) -> dict:
    """The page's answer for a canvas ``(280, 280)`` uint8 grey levels: the prediction, every probability, the
    28x28 input, the saliency map, the activations and the top units' weights (all as JSON numbers)."""
    try:
        seen = insight.inspect(model.classifier, canvas, top)
    except preprocess.EmptyCanvasError:
        return {"empty": True, "text": "draw a digit first"}
    r = seen.recognition
    return {
        "empty": False,
        "class": r.digit,
        "name": model.class_names[r.digit],
        "probability": float(r.confidence),
        "probabilities": [float(p) for p in r.probabilities],
        "text": f"{model.class_names[r.digit]} ({r.confidence:.1%})",
        "input": _rounded(r.image),
        "saliency": _rounded(seen.saliency, 6),
        "activations": _rounded(seen.activations),
        "units": seen.top_units.tolist(),
        "weights": _rounded(seen.top_weights),
    }


class DrawServer(ThreadingHTTPServer):
    """The page's server around one :class:`Model`; ``log(line)`` gets one line per refused request."""

    daemon_threads = True
    block_on_close = False  # closing never waits for a connection a browser keeps open

    def __init__(
        self,
        address: tuple[str, int],
        model: Model,
        *,
        log: Callable[[str], None] = print,
        rate: float = RATE,
        burst: int = BURST,
    ):
        self.model, self.log = model, log
        self.files = _static_files()
        self.buckets = _Buckets(rate, burst)
        self.model_lock = threading.Lock()  # one model call at a time: the CPU is shared, not oversubscribed
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.info = json.dumps(
            {
                "about": model.about,
                "classes": list(model.class_names),
                "drawable": model.drawable,
                "reason": model.reason,
                "canvas": CANVAS_SIZE,
                "side": preprocess.MNIST_SIZE,
                "brush": BRUSH,
                "live_ms": LIVE_MS,
                "hidden": (model.classifier.model_config.hidden or (0,))[0],
            }
        ).encode()
        super().__init__(address, Handler)
        self.loopback = is_loopback(address[0])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])  # an IP server's address: a str already
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.log(f"{client_address[0]}: refused a connection: {MAX_CONNECTIONS} are open already")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):  # a browser closing its tab is no news
            self.log(f"{client_address[0]}: error while answering: {type(error).__name__}: {error}")


class DrawServer6(DrawServer):
    """:class:`DrawServer` on an IPv6 address."""

    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    """One connection to :class:`DrawServer` (HTTP/1.1, kept alive up to :data:`TIMEOUT` seconds idle)."""

    server: DrawServer
    protocol_version = "HTTP/1.1"
    server_version = "mlpjax"
    sys_version = ""
    timeout = TIMEOUT

    # ---- logging: nothing for requests answered, one line for each refused --------------------------------
    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, format, *args):
        self.server.log(f"{self.client_address[0]}: " + (format % args).replace("\n", " "))

    def refuse(self, status: HTTPStatus, why: str, close: bool = False) -> None:
        """Answer ``status`` with ``why`` (plain text) and log one line."""
        self.server.log(
            f"{self.client_address[0]}: {self.command or '-'} {getattr(self, 'path', '')[:200]!r}: "
            f"{status.value} {status.phrase}: {why[:300]}"
        )
        body = (why + "\n").encode()
        if self.request_version == "HTTP/0.9":  # a request line too broken to say its version: answer in HTTP/1.0
            self.request_version = "HTTP/1.0"
        self.send_response_only(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a bad request line, headers too long): the same one line and plain text."""
        status = HTTPStatus(code)
        if status == HTTPStatus.NOT_IMPLEMENTED:  # a method no handler has
            status = HTTPStatus.METHOD_NOT_ALLOWED
        elif status >= 500:  # an HTTP version it does not speak: the client's mistake, a 4xx
            status = HTTPStatus.BAD_REQUEST
        self.refuse(status, message or status.description, close=True)

    def reply(self, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ---- checks every request passes ---------------------------------------------------------------------
    def admitted(self) -> bool:
        if not self.server.buckets.take(self.client_address[0]):
            self.refuse(HTTPStatus.TOO_MANY_REQUESTS, f"more than {RATE:g} requests a second")
            return False
        host = self.headers.get("Host", "")
        if self.server.loopback:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in LOOPBACK_NAMES:
                self.refuse(HTTPStatus.FORBIDDEN, f"Host {host[:100]!r} is not this machine's loopback")
                return False
        origin = self.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != host:
            self.refuse(HTTPStatus.FORBIDDEN, f"Origin {origin[:100]!r} is not this page's")
            return False
        return True

    def do_GET(self) -> None:
        if not self.admitted():
            return
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, content_type = STATIC[path]
            self.reply(self.server.files[name], content_type)
        elif path == "/api/info":
            self.reply(self.server.info, "application/json")
        else:
            self.refuse(HTTPStatus.NOT_FOUND, "no such page; the page is /")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self.refuse(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not chunked", close=True)
            return
        if length is None:
            self.refuse(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length", close=True)
            return
        if not length.isdigit():
            self.refuse(HTTPStatus.BAD_REQUEST, f"Content-Length {length[:40]!r} is not a byte count", close=True)
            return
        if int(length) > MAX_BODY:
            self.refuse(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"a body of {int(length)} bytes; at most {MAX_BODY} are read",
                close=True,
            )
            return
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            self.refuse(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {length} bytes", close=True)
            return
        if not self.admitted():
            return
        if self.path.split("?", 1)[0] != "/api/predict":
            self.refuse(HTTPStatus.NOT_FOUND, "the one POST is /api/predict")
            return
        model = self.server.model
        if not model.drawable:
            self.refuse(HTTPStatus.CONFLICT, model.reason)
            return
        if len(body) != BODY_SIZE:
            self.refuse(
                HTTPStatus.BAD_REQUEST,
                f"a body of {len(body)} bytes; /api/predict takes the canvas's "
                f"{CANVAS_SIZE}x{CANVAS_SIZE} = {BODY_SIZE} grey levels",
            )
            return
        canvas = np.frombuffer(body, np.uint8).reshape(CANVAS_SIZE, CANVAS_SIZE)
        start = time.perf_counter()
        with self.server.model_lock:
            answer = json.dumps(predict_json(model, canvas), separators=(",", ":")).encode()
        self.reply(
            answer, "application/json", {"Server-Timing": f"predict;dur={1000 * (time.perf_counter() - start):.1f}"}
        )

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # any other method: 405, not http.server's 501
            return lambda: self.refuse(HTTPStatus.METHOD_NOT_ALLOWED, "only GET, HEAD and POST", close=True)
        raise AttributeError(name)


def make_server(
    classifier: Classifier,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    class_names: Sequence[str] = (),
    about: str = "",
    log: Callable[[str], None] = print,
) -> DrawServer:
    """A :class:`DrawServer` for ``classifier`` bound to ``host``:``port`` (0: a free port), not yet serving.

    The model is compiled here (a blank input), not at the first stroke. A port in use or a host that cannot be
    bound raise a FieldError naming ``port`` or ``host``."""
    model = describe(classifier, class_names, about)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise FieldError("port", f"must be a port number from 0 (any free port) to 65535, got {port!r}")
    if model.drawable:
        insight.warm_up(classifier)
    server_class = DrawServer6 if ":" in host else DrawServer
    try:
        return server_class((host, port), model, log=log)
    except PermissionError:
        raise FieldError(
            "port",
            f"{port}: not allowed to listen on it (ports below 1024 need privileges); "
            "choose one from 1024 to 65535, or 0 for a free one",
        ) from None
    except OSError as e:
        if e.errno == 98:  # EADDRINUSE
            raise FieldError(
                "port", f"{port}: in use already (another server?); choose another, or 0 for a free one"
            ) from None
        if isinstance(e, socket.gaierror) or e.errno in (99, -2, -3, -9):  # not an address of this machine
            raise FieldError(
                "host",
                f"{host!r}: cannot listen there ({e.strerror or e}); give an address of this "
                "machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every network)",
            ) from None
        raise UserInputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def greeting(server: DrawServer) -> list[str]:
    """What to tell the person starting ``server``: the URL, and how to reach it from another machine."""
    lines = [f"serving the draw page at {server.url} (Ctrl-C to stop)"]
    if server.loopback:
        lines.append(
            f"from another machine: ssh -L {server.port}:localhost:{server.port} USER@THIS_HOST, "
            f"then open http://localhost:{server.port}/ there"
        )
    else:
        address = str(server.server_address[0])  # an IP server's address: a str already
        lines.append(
            f"warning: listening on {address}, not loopback: anyone who can reach this "
            "machine on that port can use the page; prefer the default 127.0.0.1 and ssh -L"
        )
    if not server.model.drawable:
        lines.append(f"note: {server.model.reason}")
    return lines


def serve(
    classifier: Classifier,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    class_names: Sequence[str] = (),
    about: str = "",
    log: Callable[[str], None] = print,
) -> None:
    """Serve the draw page for ``classifier`` until Ctrl-C (a KeyboardInterrupt, re-raised after closing)."""
    server = make_server(classifier, host, port, class_names=class_names, about=about, log=log)
    for line in greeting(server):
        log(line)
    try:
        server.serve_forever(poll_interval=0.25)
    finally:
        server.server_close()
