"""The draw page in a browser (mlpjax.draw.web): the server's refusals over plain HTTP, the CLI's start and Ctrl-C,
and, marked ``browser``, the page itself in headless Chromium driven through Selenium with real pointer events."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_png, mnist_dir

from mlpjax.core import model
from mlpjax.draw import insight, recognize, web
from mlpjax.draw.recognize import CANVAS_SIZE, DEMO_STROKES


def random_classifier(input_dim: int = 784, hidden: tuple[int, ...] = (32,)) -> model.Classifier:
    import jax

    config = model.ModelConfig(input_dim=input_dim, hidden=hidden)
    return model.Classifier(model.init(jax.random.PRNGKey(0), config), config)


def drawn(digit: int) -> np.ndarray:
    """DEMO_STROKES[digit] drawn with PIL on a white 280x280 canvas: ``(280, 280)`` uint8 grey levels."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (CANVAS_SIZE, CANVAS_SIZE), 255)
    pen = ImageDraw.Draw(image)
    for stroke in DEMO_STROKES[digit]:
        pen.line(stroke, fill=0, width=web.BRUSH, joint="curve")
    return np.asarray(image)


class Serving:
    """A DrawServer on a free port in a thread, with every log line kept."""

    def __init__(self, classifier, **kwargs) -> None:
        self.lines: list[str] = []
        self.server = web.make_server(classifier, port=0, log=self.lines.append, **kwargs)
        self.url = self.server.url
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def request(
    url: str, data: bytes | None = None, method: str | None = None, headers: dict | None = None
) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def raw(port: int, head: bytes) -> bytes:
    """Send ``head`` (a request without its body) on a fresh connection; the status line that comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        return s.recv(4096).split(b"\r\n", 1)[0]


@pytest.fixture(scope="module")
def serving():
    s = Serving(random_classifier())
    yield s
    s.close()


# ---- the server over plain HTTP ---------------------------------------------------------------------------------
def test_the_page_and_its_files_are_served_from_the_package_with_a_strict_policy(serving):
    status, body, headers = request(serving.url)
    assert status == 200 and b'<canvas id="canvas" width="280" height="280"' in body
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for path in ("draw.js", "draw.css"):
        assert request(serving.url + path)[1] == (REPO / "mlpjax/draw/static" / path).read_bytes()
    info = json.loads(request(serving.url + "api/info")[1])
    assert info["drawable"] and info["classes"] == [str(c) for c in range(10)] and info["hidden"] == 32
    # nothing in the page points outside the server: no scheme, no protocol-relative URL
    for name in ("index.html", "draw.js", "draw.css"):
        text = (REPO / "mlpjax/draw/static" / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


def test_a_prediction_is_the_libraries_for_the_same_canvas(serving):
    canvas = drawn(3)
    status, body, _ = request(serving.url + "api/predict", canvas.tobytes(), "POST")
    answer = json.loads(body)
    expected = insight.inspect(serving.server.model.classifier, canvas)
    r = expected.recognition
    assert status == 200 and answer["class"] == r.digit and answer["probabilities"] == r.probabilities.tolist()
    np.testing.assert_allclose(answer["input"], r.image, atol=1e-4)
    np.testing.assert_allclose(answer["saliency"], expected.saliency, atol=1e-6)
    assert answer["units"] == expected.top_units.tolist() and len(answer["weights"]) == insight.TOP_UNITS
    blank = np.full((CANVAS_SIZE, CANVAS_SIZE), 255, np.uint8)
    assert json.loads(request(serving.url + "api/predict", blank.tobytes(), "POST")[1])["empty"] is True


def test_the_page_names_the_classes_of_the_run():
    from mlpjax import data

    s = Serving(random_classifier(), class_names=data.FASHION_CLASSES, about="runs/fashion: fashion_mnist")
    try:
        info = json.loads(request(s.url + "api/info")[1])
        assert info["classes"] == list(data.FASHION_CLASSES) and info["about"] == "runs/fashion: fashion_mnist"
        answer = json.loads(request(s.url + "api/predict", drawn(1).tobytes(), "POST")[1])
        assert answer["name"] == data.FASHION_CLASSES[answer["class"]]
        assert answer["text"] == f"{answer['name']} ({answer['probability']:.1%})"
    finally:
        s.close()


def test_the_saliency_is_the_gradient_of_the_predicted_logit():

    classifier = random_classifier()
    seen = insight.inspect(classifier, drawn(7))
    x = seen.recognition.image.reshape(-1)

    def logit(v):
        return model.apply(classifier.params, v[None], model_config=classifier.model_config)[0, seen.recognition.digit]

    eps = 1e-2
    for pixel in np.argsort(-np.abs(seen.saliency.reshape(-1)))[:3]:  # finite differences where it matters most
        step = np.zeros_like(x)
        step[pixel] = eps
        numeric = (float(logit(x + step)) - float(logit(x - step))) / (2 * eps)
        assert numeric == pytest.approx(float(seen.saliency.reshape(-1)[pixel]), rel=1e-2, abs=1e-4)
    hidden = np.maximum(
        0, x @ np.asarray(classifier.params["hidden_0"]["kernel"]) + np.asarray(classifier.params["hidden_0"]["bias"])
    )
    np.testing.assert_allclose(seen.activations, hidden, rtol=1e-5, atol=1e-5)
    assert seen.activations[seen.top_units[0]] == seen.activations.max()
    np.testing.assert_array_equal(
        seen.top_weights[1].reshape(-1), np.asarray(classifier.params["hidden_0"]["kernel"])[:, seen.top_units[1]]
    )


@pytest.mark.parametrize(
    "method, path, body, headers, status",
    [
        ("GET", "/nope", None, {}, 404),
        ("GET", "/../pyproject.toml", None, {}, 404),
        ("GET", "/static/draw.js", None, {}, 404),
        ("GET", "/", None, {"Host": "attacker.example:80"}, 403),
        ("POST", "/api/predict", b"x" * 10, {}, 400),
        ("POST", "/api/predict", b"\xff" * web.BODY_SIZE, {"Origin": "http://attacker.example"}, 403),
        ("POST", "/api/other", b"\xff" * web.BODY_SIZE, {}, 404),
        ("PUT", "/", b"", {}, 405),
        ("DELETE", "/", None, {}, 405),
    ],
)
def test_bad_requests_get_a_4xx_and_one_log_line(serving, method, path, body, headers, status):
    before = len(serving.lines)
    assert request(serving.url.rstrip("/") + path, body, method, headers)[0] == status
    assert len(serving.lines) == before + 1 and f"{status} " in serving.lines[-1], serving.lines[before:]


def test_oversized_and_unmeasured_bodies_are_refused_unread(serving):
    port = serving.server.port
    before = len(serving.lines)
    assert (
        raw(port, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n")
        == b"HTTP/1.1 413 Request Entity Too Large"
    )
    assert raw(port, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == b"HTTP/1.1 411 Length Required"
    assert (
        raw(port, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n")
        == b"HTTP/1.1 400 Bad Request"
    )
    assert raw(port, b"GARBAGE\r\n\r\n") == b"HTTP/1.1 400 Bad Request"
    assert raw(port, b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n") == b"HTTP/1.1 400 Bad Request"
    assert raw(port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414")
    assert len(serving.lines) == before + 6, serving.lines[before:]


def test_several_clients_at_once_and_a_rate_limit():
    s = Serving(random_classifier())
    try:
        canvases = {d: drawn(d) for d in (1, 4, 7)}
        answers = {}

        def client(d):
            answers[d] = json.loads(request(s.url + "api/predict", canvases[d].tobytes(), "POST")[1])["class"]

        threads = [threading.Thread(target=client, args=(d,)) for d in canvases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        classifier = s.server.model.classifier
        assert answers == {d: recognize.recognise_image(classifier, c).digit for d, c in canvases.items()}
        # the same token bucket with a refill too slow to matter, so that the test does not depend on the speed
        s.server.buckets = type(s.server.buckets)(rate=1e-9, burst=5)
        statuses = [request(s.url + "api/info")[0] for _ in range(8)]
        assert statuses == [200] * 5 + [429] * 3
        assert any(" 429 " in line for line in s.lines)
    finally:
        s.close()


def test_a_model_that_does_not_take_28x28_images_gets_a_page_that_says_so():
    s = Serving(random_classifier(input_dim=64))
    try:
        info = json.loads(request(s.url + "api/info")[1])
        assert not info["drawable"] and "drawing needs a 28x28 image model" in info["reason"]
        status, body, _ = request(s.url + "api/predict", b"\xff" * web.BODY_SIZE, "POST")
        assert status == 409 and b"28x28" in body
        assert any("drawing needs a 28x28" in line for line in web.greeting(s.server))
    finally:
        s.close()


def test_the_library_names_its_fields():
    from mlpjax.errors import FieldError

    with pytest.raises(FieldError, match="port must be a port number"):
        web.make_server(random_classifier(), port=70000)
    with pytest.raises(FieldError, match="class_names must name each"):
        web.make_server(random_classifier(), port=0, class_names=["a", "b"])
    s = Serving(random_classifier())
    try:
        with pytest.raises(FieldError, match="in use already") as e:
            web.make_server(random_classifier(), port=s.server.port)
        assert e.value.for_cli(lambda f: "--" + f).startswith(f"--port {s.server.port}: in use")
    finally:
        s.close()
    lines = web.greeting(s.server)
    assert lines[0] == f"serving the draw page at {s.url} (Ctrl-C to stop)" and "ssh -L" in lines[1]


def test_only_loopback_is_quiet():
    assert all(web.is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(web.is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "example.org", ""))
    server = web.make_server(random_classifier(), "0.0.0.0", 0, log=lambda line: None)
    try:
        assert not server.loopback and server.url == f"http://127.0.0.1:{server.port}/"
        assert web.greeting(server)[1].startswith("warning: listening on 0.0.0.0, not loopback: anyone who can reach")
    finally:
        server.server_close()


# ---- the command line --------------------------------------------------------------------------------------------
def test_host_and_port_need_web(capsys):
    from conftest import run_cli

    code, _, err = run_cli(capsys, "draw", "somewhere", "--port", "0")
    assert code == 2 and err.strip() == "mlpjax draw: error: --port is for the page in a browser: add --web"


def test_the_command_refuses_a_model_that_cannot_draw(capsys, tmp_path):
    from conftest import run_cli

    run = tmp_path / "digits"
    assert (
        run_cli(capsys, "train", "--dataset", "digits", "--epochs", "1", "--hidden", "8", "--output", run, "--quiet")[0]
        == 0
    )
    code, out, err = run_cli(capsys, "draw", run, "--web", "--port", "0")
    assert (
        code == 2
        and out == ""
        and err.startswith("mlpjax draw: error: the model takes 64 inputs")
        and err.count("\n") == 1
    )


@pytest.mark.slow
def test_the_command_serves_a_run_and_stops_at_once_on_ctrl_c(tmp_path, idx_folder):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlpjax.cli",
            "train",
            "--data-dir",
            str(idx_folder),
            "--epochs",
            "1",
            "--hidden",
            "16",
            "--output",
            str(run),
            "--quiet",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpjax.cli", "draw", str(run), "--web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("serving the draw page at http://127.0.0.1:"), first + proc.stderr.read()
        url = first.split(" at ", 1)[1].split()[0]
        assert proc.stdout.readline().startswith("from another machine: ssh -L ")
        info = json.loads(request(url + "api/info")[1])
        assert info["drawable"] and str(run) in info["about"] and "epoch 1" in info["about"]
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        print(f"exited {time.monotonic() - start:.2f} s after Ctrl-C")
        assert code == 130 and proc.stderr.read() == "interrupted\n"
    finally:
        proc.kill()
        proc.wait()


# ---- the page in a real browser -----------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
BROWSER_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1180,800",
    "--hide-scrollbars",
)


def _browser_missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not CHROMIUM or not CHROMEDRIVER:
        return "Chromium or chromedriver is absent (Debian: apt-get install chromium chromium-driver)"
    return ""


def quick_classifier() -> tuple[model.Classifier, str]:
    """A small MLP for 28x28 images in seconds: 1 epoch on an MNIST slice where MNIST is here, else on
    scikit-learn's digits enlarged to 28x28 MNIST-style (preprocess.canvas_to_mnist)."""
    from mlpjax import data
    from mlpjax.core.config import TrainConfig
    from mlpjax.draw import preprocess
    from mlpjax.training import train

    folder = mnist_dir()
    if folder is not None:
        dataset, epochs, what = data.load_dataset("mnist", folder).head(20000, 2000), 1, "1 epoch of 20000 MNIST digits"
    else:
        small = data.load_dataset("digits")

        def up(x):
            return np.stack([preprocess.canvas_to_mnist(i.reshape(8, 8)) for i in x]).reshape(len(x), -1)

        dataset = data.make_dataset(
            "digits28",
            (up(small.x_train), small.y_train),
            (up(small.x_test), small.y_test),
            num_classes=10,
            image_shape=(28, 28),
        )
        epochs, what = 4, "4 epochs of scikit-learn's digits at 28x28"
    config = TrainConfig.from_dict({"dataset": "mnist", "epochs": epochs, "hidden": [128], "seed": 0})
    result = train.fit(config, dataset)
    return model.Classifier(result.state.params, result.state.model_config), what


@pytest.fixture(scope="module")
def page_server():
    if _browser_missing():
        pytest.skip(_browser_missing())
    classifier, what = quick_classifier()
    s = Serving(classifier, about=f"a quick model for the test: {what}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if _browser_missing():
        pytest.skip(_browser_missing())
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in BROWSER_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))  # no Selenium Manager
    yield driver
    driver.quit()


def draw_strokes(driver, strokes, kind: str = "mouse") -> None:
    """Each stroke as one press, moves through its points and a release, in canvas pixels, by ``kind`` pointer."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "canvas")
    kinds = {"mouse": interaction.POINTER_MOUSE, "pen": interaction.POINTER_PEN, "touch": interaction.POINTER_TOUCH}
    actions = ActionBuilder(driver, mouse=PointerInput(kinds[kind], kind), duration=5)
    half = CANVAS_SIZE // 2
    for stroke in strokes:
        (x0, y0), rest = stroke[0], stroke[1:]
        actions.pointer_action.move_to(canvas, int(x0) - half, int(y0) - half).pointer_down()
        for x, y in rest:
            actions.pointer_action.move_to(canvas, int(x) - half, int(y) - half)
        actions.pointer_action.pointer_up()
    actions.perform()


def wait_idle(driver, timeout: float = 30.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.01).until(
        lambda d: d.execute_script("return document.body.dataset.state") in ("idle", "refused")
    )


def page_canvas(driver, element: str = "canvas") -> np.ndarray:
    """The red channel of a canvas on the page (the grey levels the page sends), ``(H, W)`` uint8."""
    size, values = driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "const out = new Array(c.width * c.height); for (let i = 0; i < out.length; i++) out[i] = d[4 * i];"
        "return [[c.height, c.width], out];",
        element,
    )
    return np.asarray(values, np.uint8).reshape(size)


def shown(driver) -> dict:
    return driver.execute_script(
        "return {result: document.getElementById('result').textContent,"
        " pcts: [...document.querySelectorAll('#bars .pct')].map(e => e.textContent),"
        " best: [...document.querySelectorAll('#bars .bar')].findIndex(e => e.classList.contains('best')),"
        " units: document.querySelectorAll('#units figure').length,"
        " latency: document.body.dataset.latencyMs}"
    )


def assert_page_equals_library(driver, classifier, names) -> recognize.Recognition:
    """What the page shows is what the library predicts for the canvas the page holds."""
    r = recognize.recognise_image(classifier, page_canvas(driver))
    seen = shown(driver)
    assert seen["result"] == f"{names[r.digit]} ({r.confidence:.1%})"
    assert seen["best"] == r.digit
    assert seen["pcts"] == [f"{100 * float(p):.1f}%" for p in r.probabilities]
    given = page_canvas(driver, "input").astype(int)  # the 28x28 image the page shows as the model's input
    assert np.abs(given - np.round(r.image * 255)).max() <= 1
    return r


@pytest.mark.browser
def test_the_page_in_chromium_predicts_what_the_library_does(page_server, browser, tmp_path):
    driver, classifier = browser, page_server.server.model.classifier
    names = page_server.server.model.class_names
    driver.get(page_server.url)
    wait_idle(driver)
    assert shown(driver)["result"] == "draw a digit first"

    digit = 3
    for stroke in DEMO_STROKES[digit][:-1]:  # all strokes but the last, whose pen-up is timed
        draw_strokes(driver, [stroke])
    start = time.perf_counter()
    draw_strokes(driver, DEMO_STROKES[digit][-1:])
    drawn_at = time.perf_counter()
    wait_idle(driver)
    waited = time.perf_counter() - drawn_at
    r = assert_page_equals_library(driver, classifier, names)
    page_ms = float(shown(driver)["latency"])
    line = driver.execute_script("return document.getElementById('latency').textContent")
    assert line.startswith("stroke to prediction: ") and " ms (the server's part: " in line and page_ms > 0
    asked = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/predict')).length"
    )
    assert asked > len(DEMO_STROKES[digit])  # predictions while drawing, not only when the pen lifts
    print(
        f"\ndrew a {digit}: the page shows {shown(driver)['result']}, the library {r.text}; {asked} predictions "
        f"while drawing it; {line} measured in the page"
        f" ({1000 * waited:.0f} ms more seen from the test after the "
        f"{1000 * (drawn_at - start):.0f} ms WebDriver took to send the stroke)"
    )
    assert shown(driver)["units"] == insight.TOP_UNITS
    shot = Path(os.environ.get("MLPJAX_WEB_SCREENSHOT") or tmp_path / "draw_web.png")
    driver.save_screenshot(str(shot))
    assert_png(shot, (800, 500))

    # a pen stroke, then Undo takes it back and Clear empties the page; each time the page is the library's
    draw_strokes(driver, [[(60, 250), (220, 250)]], kind="pen")
    wait_idle(driver)
    assert page_canvas(driver)[250, 140] < 128
    assert_page_equals_library(driver, classifier, names)
    driver.find_element("id", "undo").click()
    wait_idle(driver)
    assert page_canvas(driver)[250, 140] == 255
    assert assert_page_equals_library(driver, classifier, names).text == r.text
    driver.find_element("id", "clear").click()
    wait_idle(driver)
    assert shown(driver)["result"] == "draw a digit first" and page_canvas(driver).min() == 255

    # a touch in a second tab while the first stays open
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(page_server.url)
    wait_idle(driver)
    draw_strokes(driver, DEMO_STROKES[7], kind="touch")
    wait_idle(driver)
    assert_page_equals_library(driver, classifier, names)
    driver.close()
    driver.switch_to.window(first)

    # every request the page made went to the server (Chrome's network log and the page's Resource Timing); the
    # browser's own new-tab page (chrome://) is no request of the page's
    urls = [
        m["params"]["request"]["url"]
        for m in (json.loads(e["message"])["message"] for e in driver.get_log("performance"))
        if m["method"] == "Network.requestWillBeSent" and not m["params"].get("documentURL", "").startswith("chrome")
    ]
    urls += driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(u.endswith("/api/predict") for u in urls)
    outside = [u for u in urls if not (u.startswith(page_server.url) or u.startswith("data:"))]
    assert not outside, outside
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


@pytest.mark.browser
def test_the_page_says_when_the_model_cannot_draw(browser):
    if _browser_missing():
        pytest.skip(_browser_missing())
    s = Serving(random_classifier(input_dim=64))
    try:
        browser.get(s.url)
        wait_idle(browser)
        text = browser.execute_script("return document.getElementById('refusal').textContent")
        assert text.startswith("drawing needs a 28x28 image model: this model takes 64 inputs")
        assert browser.execute_script("return document.getElementById('page').hidden") is True
    finally:
        s.close()
