"""Shared fixtures: small datasets, synthetic IDX files, the real MNIST folder (skipped where absent), and
processes under a memory limit for the fuzz tests."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path | None:
    """``$MLPJAX_DATA_DIR`` or ``../shared/data/mnist`` beside the checkout, if it holds MNIST."""
    for candidate in (os.environ.get("MLPJAX_DATA_DIR"), REPO.parent / "shared" / "data" / "mnist"):
        if candidate:
            for folder in (Path(candidate), Path(candidate) / "mnist"):
                if (folder / "train-images-idx3-ubyte.gz").exists() or (folder / "train-images-idx3-ubyte").exists():
                    return folder
    return None


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    folder = mnist_dir()
    if folder is None:
        pytest.skip(
            "real MNIST not found: set MLPJAX_DATA_DIR to a folder with the four IDX files "
            "(CI uses ../shared/data/mnist)"
        )
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_path):
    from mlpjax import data

    return data.load_dataset("mnist", mnist_path)


@pytest.fixture(scope="session")
def digits():
    from mlpjax import data

    return data.load_dataset("digits")


def small_config(**kwargs):
    """A small TrainConfig on digits (2 epochs, batch 32, hidden 32); ``kwargs`` flat, model fields included."""
    from mlpjax.core.config import TrainConfig

    defaults = dict(dataset="digits", epochs=2, batch_size=32, hidden=(32,), seed=0)
    return TrainConfig.from_dict({**defaults, **kwargs})


def toy_dataset(n_train=70, n_test=30, seed=0):
    """70 + 30 random 6-feature float examples, 2 classes (is feature 0 above feature 1)."""
    from mlpjax import data

    rng = np.random.default_rng(seed)
    x = rng.random((n_train + n_test, 6), np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int32)
    return data.make_dataset("toy", (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), num_classes=2)


def blobs(n_per_class=20, classes=3, features=4, seed=0):
    """Separable clusters: ``(x (N, features) float, y (N,) 0 .. classes-1)``."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.normal(size=(len(y), features)) * 0.3 + y[:, None]
    return x, y


def write_table(path, x, labels, header=None, delimiter=","):
    """A CSV (or with ``delimiter``, TSV) file of features ``x`` and ``labels``; ``header`` by default f0, f1, ...,
    label."""
    import csv

    header = header or [f"f{j}" for j in range(x.shape[1])] + ["label"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        for row, label in zip(x, labels, strict=True):
            w.writerow([*(f"{v:.6g}" for v in row), label])
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A run directory of one epoch of digits (8x8 images, hidden 16), made by ``mlpjax train``."""
    from mlpjax import cli

    directory = tmp_path_factory.mktemp("digits-run") / "run"
    argv = ["train", "--dataset", "digits", "--epochs", "1", "--hidden", "16", "--quiet", "--output", str(directory)]
    assert cli.main(argv) == 0
    return directory


def state_for(config, dataset):
    """The state ``fit`` would start ``config`` from on ``dataset``."""
    import jax

    from mlpjax.core.state import create_train_state

    return create_train_state(
        jax.random.PRNGKey(config.seed), config, config.model_config(dataset.input_dim, dataset.num_classes)
    )


def run_cli(capsys, *argv) -> tuple[int | str | None, str, str]:
    """``mlpjax ARGV`` in this process: exit status (argparse's SystemExit included), stdout, stderr."""
    from mlpjax import cli

    try:
        code: int | str | None = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def registries(tmp_path):
    """:mod:`mlpjax.plugins`, with every part a test registers and every plugin it loads (the modules under
    ``tmp_path`` included) forgotten after it, so that the other tests see mlpjax's own parts alone."""
    from mlpjax import plugins

    saved = {kind: dict(k.registry) for kind, k in plugins.KINDS.items()}
    given, loaded, modules = dict(plugins._GIVEN), dict(plugins._LOADED), set(sys.modules)
    yield plugins
    for kind, k in plugins.KINDS.items():
        k.registry.clear()
        k.registry.update(saved[kind])
    for cache, before in ((plugins._GIVEN, given), (plugins._LOADED, loaded)):
        cache.clear()
        cache.update(before)
    for name in set(sys.modules) - modules:
        where = getattr(sys.modules[name], "__file__", None) or ""
        if name.startswith("mlpjax_plugin_") or where.startswith(str(tmp_path)):
            del sys.modules[name]
    plugins.clear_caches()


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_size: tuple[int, int] = (200, 150)) -> None:
    """``path`` is a PNG of at least ``min_size`` pixels that is not blank."""
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as im:
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1], (path, im.size)
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5, f"{path} is blank"


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``compress``."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.fixture
def idx_folder(tmp_path) -> Path:
    """A small MNIST-format folder: 50 train and 20 test random 28x28 images, labels 0-9."""
    rng = np.random.default_rng(0)
    for stem, n in (("train", 50), ("t10k", 20)):
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return tmp_path


WORKER_LIMIT = 1 << 30  # address space of the input worker: mlpjax imported (JAX never started) plus ~500 MiB
CLI_LIMIT = 3 << 30  # address space of an ``mlpjax`` command that may train (JAX's CPU backend started)


TIMEOUT = 240  # seconds a child process with several CPU devices may take (tests/workers)


def worker_env(devices: int) -> dict[str, str]:
    """The environment of a child process with ``devices`` CPU devices (tests/workers/*), this checkout's mlpjax
    and the test suite's compilation cache."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(REPO / "tests"), env.get("PYTHONPATH")]))
    # Share compilations with the rest of the suite (see pytest_configure).
    env.setdefault(
        "JAX_COMPILATION_CACHE_DIR", os.environ.get("MLPJAX_TEST_JAX_CACHE", str(REPO / ".pytest_cache" / "jax"))
    )
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def last_json(stdout: str) -> dict:
    """The JSON object a worker prints as its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def limited_python(limit: int, *argv: str) -> list[str]:
    """The command line of ``python -m MODULE ARGS...`` or ``python SCRIPT ARGS...`` (``argv``) that first caps
    its own address space (``RLIMIT_AS``) at ``limit`` bytes: set in the child itself, as a ``preexec_fn`` is
    unsafe in a test process that runs JAX's threads."""
    launch = "\n".join(
        [
            "import resource, runpy, sys",
            "resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]),) * 2)",
            "if sys.argv[2] == '-m':",
            "    sys.argv = sys.argv[3:]",
            "    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)",
            "else:",
            "    sys.argv = sys.argv[2:]",
            "    runpy.run_path(sys.argv[0], run_name='__main__')",
        ]
    )
    return [sys.executable, "-c", launch, str(limit), *argv]


def child_env() -> dict[str, str]:
    """The environment of a test's child process: this checkout importable, JAX on the CPU."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "JAX_PLATFORMS": "cpu",
    }


def run_limited(*argv: str, limit: int = CLI_LIMIT, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m mlpjax.cli *argv`` under an address-space limit of ``limit`` bytes; output captured."""
    return subprocess.run(
        limited_python(limit, "-m", "mlpjax.cli", *argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        check=False,
    )


def assert_clean_exit(proc: subprocess.CompletedProcess) -> None:
    """Success (0), or bad input told in one ``mlpjax ...: error: ...`` line (2): never a traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 2), (proc.returncode, proc.stderr[-3000:])
    if proc.returncode == 2:
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("mlpjax ") and ": error: " in last, proc.stderr


class ChildProcess:
    """Owns one child process, :attr:`proc` (None until it is started); :meth:`close` ends it."""

    proc: subprocess.Popen | None = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class LimitedWorker(ChildProcess):
    """``tests/workers/input_worker.py`` in a child process with an address-space limit: :meth:`ask` sends it one
    request and returns its reply (``outcome`` "ok", "user" or "crash"). A worker that dies or does not answer
    within ``timeout`` seconds fails the asking test, and a fresh one serves the next request. With ``headroom``
    (bytes), a worker whose address space has grown to within ``headroom`` of its limit (JAX keeps what it
    compiled) is replaced before the next request: each request has at least that much to allocate."""

    def __init__(
        self,
        limit: int = WORKER_LIMIT,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        headroom: int | None = None,
    ):
        self.limit, self.timeout, self.env, self.headroom = limit, timeout, env, headroom
        self.proc: subprocess.Popen | None = None
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the worker's stderr for the life of the worker

    def _grown(self) -> bool:
        """Whether the live worker has less than ``headroom`` of address space left (False without /proc)."""
        if self.headroom is None or self.proc is None:
            return False
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return False
        size = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmSize:")), 0)
        return size > self.limit - self.headroom

    def _start(self) -> subprocess.Popen:
        if self._grown():
            self.close()
        if self.proc is None or self.proc.poll() is not None:
            self.stderr.seek(0)
            self.stderr.truncate()
            worker = str(REPO / "tests" / "workers" / "input_worker.py")
            self.proc = subprocess.Popen(
                limited_python(self.limit, worker),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env={**child_env(), **(self.env or {})},
            )
        return self.proc

    def ask(self, call: str, path, **args) -> dict:
        """The reply to ``call(path, **args)``; "crash" replies are returned for the caller to report."""
        proc = self._start()
        assert proc.stdin is not None  # Popen(stdin=PIPE)
        proc.stdin.write((json.dumps({"call": call, "path": str(path), **args}) + "\n").encode())
        proc.stdin.flush()
        line = self._read_line(proc)
        return json.loads(line[len("REPLY ") :])

    def _read_line(self, proc: subprocess.Popen) -> str:
        buffer, deadline = b"", time.monotonic() + self.timeout
        assert proc.stdout is not None  # Popen(stdout=PIPE)
        while not any(line.startswith(b"REPLY ") for line in buffer.split(b"\n")[:-1]):
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.close()
                self.stderr.seek(0)
                raise AssertionError(
                    f"input worker {'timed out' if not ready else 'died'}: "
                    f"{self.stderr.read().decode(errors='replace')[-3000:]}"
                )
            buffer += chunk
        return next(line for line in buffer.decode().splitlines() if line.startswith("REPLY "))


@pytest.fixture(scope="session")
def cli_worker(tmp_path_factory):
    """One :class:`LimitedWorker` that runs ``mlpjax`` commands in its own process with :data:`CLI_LIMIT` bytes of
    address space (JAX started), at least 1 GiB of it free for each command, for the flag fuzz tests; two minutes
    a command. MNIST comes from the real folder, else from an empty one (never a download)."""
    folder = mnist_dir() or tmp_path_factory.mktemp("no-mnist")
    worker = LimitedWorker(limit=CLI_LIMIT, timeout=120, env={"MLPJAX_DATA_DIR": str(folder)}, headroom=1 << 30)
    yield worker
    worker.close()


@pytest.fixture(scope="session")
def input_worker():
    """One :class:`LimitedWorker` (1 GiB of address space) for the session's fuzz tests."""
    worker = LimitedWorker()
    yield worker
    worker.close()


def pytest_configure(config):
    """Share XLA compilations between tests (many fits compile the same epoch): mlpjax's persistent cache, in
    $MLPJAX_TEST_JAX_CACHE (CI: a fresh folder) or .pytest_cache/jax, never the user's own cache; set through
    $MLPJAX_CACHE_DIR, so that the commands tests run, in this process or a child, use the same folder."""
    from mlpjax import cache

    os.environ[cache.ENV] = os.environ.get("MLPJAX_TEST_JAX_CACHE", str(REPO / ".pytest_cache" / "jax"))
    cache.configure()


def tensorboard_events(folder: Path) -> list:
    """Every event (tensorboardX's ``Event`` protobuf) in the event files directly under ``folder``, in file
    order, read by their TFRecord framing (8-byte length, 4-byte CRC, the event, 4-byte CRC): no TensorBoard."""
    from tensorboardX.proto import event_pb2

    found = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            found.append(event_pb2.Event.FromString(data[at + 12 : at + 12 + length]))
            at += 12 + length + 4
        assert at == len(data), f"{path}: a truncated record"
    return found


# -- kills at every instant: a command killed after the k-th path it creates, then resumed or started again ---


def wait_for(predicate, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``predicate()`` holds (AssertionError after ``timeout`` s, or once ``proc`` has ended)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended with {proc.returncode}: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def sigint_blocked(pid: int) -> bool:
    """Whether process ``pid`` has blocked SIGINT (mlpjax.cli.interrupt's watcher is in place): from /proc. A child
    between its fork and its exec blocks every signal (subprocess does): SIGTERM blocked too is not the watcher."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
    return bool(mask & (1 << (signal.SIGINT - 1))) and not mask & (1 << (signal.SIGTERM - 1))


def tree_paths(root: Path) -> list[str]:
    """Every path under ``root`` (folders and files), relative and sorted, as :func:`os.walk` sees it now (a
    folder that vanishes while it is walked is passed over)."""
    found = []
    for folder, dirs, names in os.walk(root):
        rel = os.path.relpath(folder, root)
        found += [os.path.normpath(os.path.join(rel, n)) for n in dirs + names]
    return sorted(found)


class PathWatcher:
    """Watches folder ``root`` on a thread, polling it every 2 ms or so: :attr:`seen` is every path that
    appeared under it (temporary ones included, and ``root`` itself as ``"."``), in the order they were first
    seen (those of one poll sorted). ``then()`` is called on the watching thread as soon as ``after`` paths have
    been seen (an int) or one that ``after`` (a regular expression) matches has."""

    def __init__(self, root: Path, after: int | str | None = None, then=None):
        import threading

        self.root, self.after, self.then = root, after, then
        self.seen: list[str] = []
        self.fired = False
        self._known: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="path-watcher", daemon=True)

    def _poll(self) -> None:
        new = [p for p in (["."] if os.path.isdir(self.root) else []) + tree_paths(self.root) if p not in self._known]
        self._known.update(new)
        self.seen += new
        if self.after is None or self.fired:
            return
        if len(self.seen) >= self.after if isinstance(self.after, int) else any(re.search(self.after, p) for p in new):
            self.fired = True
            self.then()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._poll()
            time.sleep(0.002)

    def __enter__(self) -> PathWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # what the end left


class CliForker(ChildProcess):
    """``tests/workers/cli_forker.py`` in a child process: :meth:`run` starts an ``mlpjax`` command as a forked
    child of it, which runs as ``python -m mlpjax.cli ARGV`` would but without its seconds of imports."""

    def _reply(self, word: str, timeout: float) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith(f"{word} "):
            self.close()
            raise AssertionError(f"cli_forker: {'no reply' if not ready else repr(line)} instead of {word}")
        return int(line.split()[1])

    def run(self, argv, stderr: Path, started, timeout: float = 300) -> int:
        """Run ``mlpjax ARGV`` (its stderr into the file ``stderr``): ``started(pid)`` is called before the
        command begins; returns its exit status (``-signal`` when killed). One that has not ended within
        ``timeout`` seconds is killed."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(REPO / "tests" / "workers" / "cli_forker.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"argv": [str(a) for a in argv], "stderr": str(stderr)}) + "\n")
        self.proc.stdin.flush()
        pid = self._reply("PID", 120)
        try:
            started(pid)
        finally:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        try:
            return self._reply("EXIT", timeout)
        except AssertionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise


@pytest.fixture(scope="session")
def cli_forker():
    """One :class:`CliForker` for the session's kill tests."""
    forker = CliForker()
    yield forker
    forker.close()


def kill_after(forker: CliForker, argv, root: Path, after: int | str, sig: int = signal.SIGKILL):
    """``mlpjax ARGV`` (started by ``forker``) with ``root`` watched (:class:`PathWatcher`) from before it
    starts; ``sig`` is sent to it as soon as ``after`` paths, or one matching ``after``, have appeared under
    ``root``. Returns its exit status (``-sig`` when killed), its stderr, whether the signal was sent, and the
    paths seen."""
    with tempfile.TemporaryDirectory() as folder:
        stderr, watcher = Path(folder) / "stderr", None

        def started(pid: int) -> None:
            nonlocal watcher
            watcher = PathWatcher(root, after, lambda: os.kill(pid, sig)).__enter__()

        try:
            code = forker.run(argv, stderr, started)
        finally:
            if watcher is not None:
                watcher.__exit__()
        assert watcher is not None
        return code, stderr.read_text(errors="replace") if stderr.exists() else "", watcher.fired, watcher.seen


def kill_instants(n: int) -> list[int]:
    """The instants the slow kill tests stop a command at, of the ``n`` paths it creates: ``$MLPJAX_KILL_INSTANTS``
    of them spread over the run (default 12; ``all``: after every path)."""
    count = os.environ.get("MLPJAX_KILL_INSTANTS", "12")
    return spread(n, None if count == "all" else int(count))


def spread(n: int, count: int | None) -> list[int]:
    """``count`` instants evenly spread over ``1..n``, the first and last included (None, or ``count >= n``: all
    of them)."""
    if count is None or count >= n:
        return list(range(1, n + 1))
    return sorted({round(1 + i * (n - 1) / (count - 1)) for i in range(count)})


def same_numbers(got, want) -> str | None:
    """None where ``got`` and ``want`` (JSON values) are equal value by value (NaN equal to NaN), else the first
    place where they differ."""
    if isinstance(want, dict) and isinstance(got, dict):
        if sorted(got) != sorted(want):
            return f"keys {sorted(got)} != {sorted(want)}"
        return next((f"[{k!r}]{d}" for k in want if (d := same_numbers(got[k], want[k])) is not None), None)
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return f": {len(got)} values, expected {len(want)}: {got} != {want}"
        return next(
            (
                f"[{i}]{d}"
                for i, (g, w) in enumerate(zip(got, want, strict=True))
                if (d := same_numbers(g, w)) is not None
            ),
            None,
        )
    same = got == want or (isinstance(got, float) and isinstance(want, float) and got != got and want != want)
    return None if same else f": {got!r} != {want!r}"


def leftovers(folder: Path) -> list[str]:
    """What an interrupted or failed write may leave under ``folder`` (relative paths): Orbax's
    ``*.orbax-checkpoint-tmp*`` folders, ``files.write_atomic``'s ``.NAME.XXXXXXXX.tmp`` files, a sweep's
    ``.tensorboard.*.tmp/`` (every name with ``tmp`` in it) and a run's write probe ``.mlpjax-probe-*``."""
    return sorted(
        str(p.relative_to(folder))
        for p in Path(folder).rglob("*")
        if "tmp" in p.name or p.name.startswith(".mlpjax-probe-")
    )


STARTS_AGAIN = re.compile(r"can be started again")  # a refused --resume of a folder that is no run


def resumes_or_starts_again(capsys, argv, directory: Path, resume_argv, numbers, want) -> str:
    """What an interrupted ``mlpjax ARGV`` into ``directory`` must allow: ``mlpjax RESUME_ARGV`` ends as the
    uninterrupted command did, with ``numbers(directory)`` equal to ``want`` value by value ("resumed"), or it
    refuses in one line saying that the folder can be started again, and then ``mlpjax ARGV`` itself does
    ("started again"). Anything else (both refused, a traceback, other numbers) raises an AssertionError that
    shows what ``directory`` held."""
    import traceback

    listing = "\n  ".join(tree_paths(directory)) if directory.is_dir() else "(no folder)"

    def attempt(what, command):
        try:
            code, _, err = run_cli(capsys, *command)
        except Exception:
            raise AssertionError(f"{what} raised:\n{traceback.format_exc()}\nthe folder held:\n  {listing}") from None
        if code == 0:
            differs = same_numbers(numbers(directory), want)
            assert differs is None, f"{what} gave other numbers: {differs}\nthe folder held:\n  {listing}"
            left = leftovers(directory)
            assert not left, f"{what} left what the kill left: {left}\nthe folder held:\n  {listing}"
        return code, err

    code, err = attempt("--resume", resume_argv)
    if code == 0:
        return "resumed"
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and STARTS_AGAIN.search(lines[0]), (
        f"--resume refused, not as a folder that can be started again: status {code}, {err}\n"
        f"the folder held:\n  {listing}"
    )
    code, err = attempt("the same command again", argv)
    assert code == 0, f"--resume refused ({lines[0]}) and the same command too: {err}\nthe folder held:\n  {listing}"
    return "started again"


def kill_at_instants(
    capsys, forker: CliForker, tmp_path: Path, argv, resume_argv, numbers, instants, sig=signal.SIGKILL
):
    """Run ``mlpjax ARGV --output DIR`` once whole (in this process) to learn the paths it creates and its
    numbers (``numbers(DIR)``); then, for each of ``instants`` (a list, or a function of the number of paths
    that returns one: an int k, right after the k-th path; a regular expression, right after the first path it
    matches; "last", after the last path), run it again (forked by ``forker``), send it ``sig`` at that instant, and
    require :func:`resumes_or_starts_again` of the folder it leaves (``resume_argv(DIR)``). SIGINT must end the
    command with the one line ``interrupted`` and status 130. Returns how each instant ended, ``{k: outcome}``;
    fails after the last instant, showing the first failures, if any failed."""
    import shutil

    reference = tmp_path / "whole"
    with PathWatcher(reference) as watcher:
        code, _, err = run_cli(capsys, *argv, "--output", reference)
    assert code == 0, err
    want, paths = numbers(reference), watcher.seen
    failures: list[str] = []
    outcomes: dict[int | str, str] = {}
    for n, k in enumerate(instants(len(paths)) if callable(instants) else instants):
        k = len(paths) if k == "last" else k
        directory = tmp_path / f"killed-{n}"
        code, err, sent, seen = kill_after(forker, [*argv, "--output", directory], directory, k, sig)
        where = f"{'killed' if sig == signal.SIGKILL else 'interrupted'} "
        if isinstance(k, int):
            where += f"after path {k} of {len(paths)} ({paths[k - 1]} when run whole; "
            where += f"{seen[k - 1] if len(seen) >= k else 'never'} this time)"
        else:
            assert any(re.search(k, p) for p in paths), f"no path matches {k!r} in a whole run: {paths}"
            where += f"after {next((p for p in seen if re.search(k, p)), 'no path')} (the first that matches {k!r})"
        try:
            if not sent:
                assert code == 0, f"it failed before: {err}"
            elif sig == signal.SIGINT:  # the CLI ends at once: one line, 130 (unless it was ending anyway)
                assert code in (0, 130) and "Traceback" not in err, f"status {code}: {err}"
                assert code == 0 or err.strip().splitlines()[-1] == "interrupted", err
            else:
                assert code in (0, -sig), f"status {code}: {err}"
            outcomes[k] = resumes_or_starts_again(
                capsys, [*argv, "--output", directory], directory, resume_argv(directory), numbers, want
            )
            outcomes[k] += " (it had ended)" if not sent or code == 0 else ""
        except AssertionError as e:
            failures.append(f"{where}: {e}")
        shutil.rmtree(directory, ignore_errors=True)
    assert not failures, f"{len(failures)} of {len(outcomes) + len(failures)} instants failed:\n" + "\n\n".join(
        failures[:3]
    )
    return outcomes


def mount_small_tmpfs(disk: Path, size: str) -> None:
    """Mount a tmpfs of ``size`` (``"2m"``) at the folder ``disk``; skip the test where that cannot be done (it
    needs root)."""
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True
        ).returncode
    ):
        pytest.skip("needs root to mount a small tmpfs")


def unmount(disk: Path) -> None:
    if subprocess.run(["umount", str(disk)], capture_output=True).returncode:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill_disk(disk: Path) -> None:
    """Take every free block of the tmpfs ``disk`` (its file ``filler``): writes there fail with ENOSPC."""
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KiB tmpfs at ``tmp_path/full`` with every block taken (:func:`fill_disk`); unmounted afterwards."""
    disk = tmp_path / "full"
    disk.mkdir()
    mount_small_tmpfs(disk, "256k")
    try:
        fill_disk(disk)
        yield disk
    finally:
        unmount(disk)
