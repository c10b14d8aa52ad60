"""``mlpjax bench``: how fast the tutorial's model trains here, against the machine's matmul ceiling and
against a minimal hand-written JAX loop, PyTorch and Keras, measured in one run.

FLOPs of one training step of a ``D -> H1 -> ... -> C`` MLP at batch ``B`` are counted from the shapes: the
forward pass (``2·B·Σ in·out``), the weight gradients of every layer (the same again) and the gradients with
respect to the hidden activations (``2·B·Σ in·out`` over all layers but the first; no gradient for the input).
For 784-512-10 at batch 128 that is 0.209 GFLOP, 98 GFLOP an epoch. Element-wise work is not counted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import data as data_lib
from mlpjax.bench import baselines
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import TrainState, create_train_state
from mlpjax.errors import FieldError, check_int
from mlpjax.training import compiled, result, steps
from mlpjax.training import mesh as mesh_lib
from mlpjax.training.rows import Rows


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What ``mlpjax bench`` measures; ``quick`` shrinks every budget for a smoke test."""

    quick: bool = False
    against: tuple[str, ...] = tuple(baselines.RUNNERS)  # every baseline, each where installed
    batch_size: int = 128
    hidden: tuple[int, ...] = (512,)
    data_dir: str | None = None
    dataset: str | None = None  # a dataset by name, or a file or folder (None: MNIST, else random data of its shape)
    rounds: int = 3  # timed epochs per framework (median), run interleaved
    sweep: bool = True
    memory: bool = True
    seed: int = 0
    models: bool = True  # models per second by K (mlpjax.sweep.train's strategies)

    def __post_init__(self):
        for name in self.against:
            if name not in baselines.RUNNERS:
                raise FieldError("against", f"{{field}} {name!r}: valid baselines are {', '.join(baselines.RUNNERS)}")
        check_int("rounds", self.rounds)
        check_int("batch_size", self.batch_size)
        if self.dataset is not None:
            data_lib.check_data_dir(self.dataset, self.data_dir)  # an unknown name or kind of file refused too

    def train_config(self, *, hidden: tuple[int, ...] | None = None, batch_size: int | None = None) -> TrainConfig:
        """The timed model as a one-epoch TrainConfig of the bench's dataset (``hidden``, ``batch_size``: the bench's
        unless given)."""
        return TrainConfig(
            dataset=self.dataset or "mnist",
            epochs=1,
            batch_size=batch_size or self.batch_size,
            model=model.ModelConfig(hidden=hidden or self.hidden),
            seed=self.seed,
        )


def step_flops(batch_size: int, dims: tuple[int, ...]) -> int:
    """FLOPs of one training step (see the module docstring); ``dims = (D, H1, ..., C)`` (``ModelConfig.widths()``)."""
    layers = list(zip(dims[:-1], dims[1:], strict=True))
    macs = sum(i * o for i, o in layers)
    return 2 * batch_size * (2 * macs + sum(i * o for i, o in layers[1:]))


def load_bench_data(data_dir: str | None, quick: bool, dataset: str | None = None) -> tuple[data_lib.Dataset, str]:
    """``dataset`` (a name, a file or a folder: :func:`mlpjax.data.load_dataset`, ``data_dir`` its IDX folder);
    else real MNIST when found (``data_dir`` or ``$MLPJAX_DATA_DIR``), else random data of MNIST's shape."""
    folder = data_dir or os.environ.get(data_lib.DATA_DIR_ENV)
    if dataset is not None:
        ds, source = data_lib.load_dataset(dataset, data_dir), dataset
    elif folder:
        ds, source = data_lib.load_dataset("mnist", folder), "mnist"
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (70000, 784)).astype(np.uint8)  # 8-bit levels, as MNIST's
        y = rng.integers(0, 10, 70000)
        ds, source = (
            data_lib.make_dataset(
                "random", (x[:60000], y[:60000]), (x[60000:], y[60000:]), num_classes=10, pixel_levels=255
            ),
            "random (MNIST not found: pass --data-dir)",
        )
    if quick:
        ds = ds.head(6000, 2000)
    return ds, source


def _time_calls(fn: Callable[[], Any], repeats: int) -> float:
    """Seconds per call of ``fn`` dispatched back to back (asynchronously), blocking once at the end."""
    jax.block_until_ready(fn())
    start = time.perf_counter()
    out = [fn() for _ in range(repeats)]
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats


def matmul_gflops(m: int, k: int, n: int, repeats: int = 50) -> float:
    """Achieved GFLOP/s of a float32 ``(m, k) @ (k, n)``, ``repeats`` of them inside one jitted ``lax.scan``
    (as in a training epoch: no dispatch per product). Each product depends on the last, so none is hoisted."""
    a = jax.random.normal(jax.random.PRNGKey(0), (m, k), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (k, n), jnp.float32)

    @jax.jit
    def products(a, b):
        def body(c, _):
            return jnp.dot(a + c * 0.0, b)[0, 0], None  # c * 0.0 keeps a data dependence between products

        return jax.lax.scan(body, jnp.zeros((), a.dtype), None, length=repeats)[0]

    return 2 * m * k * n / (_time_calls(lambda: products(a, b), 3) / repeats) / 1e9


def matmul_ceiling(batch_size: int, dims: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """GFLOP/s of the model's own matmuls (forward and weight-gradient shapes) and of a 2048² product.

    The ceiling is the best of them: on a shared machine any single measurement can come out low."""
    shapes = {}
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        shapes[f"forward_{i} {batch_size}x{fan_in}x{fan_out}"] = (batch_size, fan_in, fan_out)
        shapes[f"weight_grad_{i} {fan_in}x{batch_size}x{fan_out}"] = (fan_in, batch_size, fan_out)
    shapes["square 2048x2048x2048"] = (2048, 2048, 2048)
    repeats = 3 if quick else 20
    measured = {
        name: matmul_gflops(*s, repeats=repeats if s[0] == 2048 else 30 * repeats) for name, s in shapes.items()
    }
    return {"shapes": measured, "ceiling_gflops": max(measured.values())}


class CompileCounter:
    """Counts XLA backend compilations while active (a second compile of the epoch is a bug)."""

    def __init__(self):
        self.count = 0

    def _listener(self, event: str, duration: float, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listener)
        return self

    def __exit__(self, *exc):
        from jax._src import monitoring  # the public module has no unregister yet

        monitoring.unregister_event_duration_listener(self._listener)


def _xla_step_flops(state: TrainState, x: jax.Array, y: jax.Array, batch_size: int) -> float | None:
    """FLOPs of one ``train_step`` by XLA's own cost analysis, to cross-check :func:`step_flops`."""
    batch = {"image": x[:batch_size], "label": y[:batch_size], "weight": jnp.ones(batch_size)}
    cost = steps.train_step.lower(state, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


class _Trainer:
    """An epoch runner and the state it trains, one epoch after another."""

    def __init__(self, epoch_runner: compiled.EpochRunner, state: TrainState):
        self.runner, self.state, self.done = epoch_runner, state, 0

    def epoch(self) -> None:
        self.state, metrics = self.runner(self.state, self.done)
        self.done += 1
        jax.block_until_ready(metrics)


def mlpjax_runner(ds: data_lib.Dataset, config: BenchConfig, *, hidden=None, batch_size=None):
    """Compile mlpjax's scanned epoch; returns ``(epoch(), accuracy(), info)`` with compile seconds and FLOPs."""
    hidden = hidden or config.hidden
    batch_size = batch_size or config.batch_size
    tconfig = config.train_config(hidden=hidden, batch_size=batch_size)
    mconfig = tconfig.model_config(ds.input_dim, ds.num_classes)
    state = create_train_state(jax.random.PRNGKey(config.seed), tconfig, mconfig)
    x = jnp.asarray(data_lib.features(ds.encoded_train[:batch_size], ds.pixel_levels))
    y = jnp.asarray(ds.y_train[:batch_size])
    xla_flops = _xla_step_flops(state, x, y, batch_size)
    # the same placement and compiled epoch as train.fit (uint8 pixels where the dataset has levels)
    trainer = _Trainer(*compiled.prepare_epoch(state, Rows.from_dataset(ds, "train"), batch_size=batch_size))
    test_rows = Rows.from_dataset(ds, "test")

    def accuracy() -> float:
        return compiled.evaluate(trainer.state.params, test_rows, model_config=mconfig)["accuracy"]

    steps_per_epoch = -(-len(ds.y_train) // batch_size)
    flops = step_flops(batch_size, mconfig.widths())
    return (
        trainer.epoch,
        accuracy,
        {
            "compile_seconds": trainer.runner.compile_seconds,
            "steps": steps_per_epoch,
            "step_flops": flops,
            "xla_step_flops": xla_flops,
        },
    )


def _summary(times: list[float], n_examples: int, epoch_flops: float, ceiling: float, accuracy: float) -> dict:
    seconds = statistics.median(times)
    return {
        "epoch_seconds": seconds,
        "epoch_seconds_all": times,
        "examples_per_second": n_examples / seconds,
        "gflops": epoch_flops / seconds / 1e9,
        "fraction_of_ceiling": epoch_flops / seconds / 1e9 / ceiling,
        "test_accuracy": accuracy,
    }


def predict_latency(classifier: model.Classifier, x_test: np.ndarray, quick: bool) -> dict[str, float]:
    """Latency of one image (p50, p99, in ms, through ``Classifier.predict_proba``) and batch throughput."""
    one = x_test[:1]
    classifier.predict_proba(one)
    samples = []
    for i in range(100 if quick else 1000):
        start = time.perf_counter()
        classifier.predict_proba(x_test[i % len(x_test)][None])
        samples.append(time.perf_counter() - start)
    classifier.predict_proba(x_test)
    start = time.perf_counter()
    classifier.predict_proba(x_test)
    batch_seconds = time.perf_counter() - start
    return {
        "latency_ms_p50": 1e3 * float(np.percentile(samples, 50)),
        "latency_ms_p99": 1e3 * float(np.percentile(samples, 99)),
        "images_per_second": len(x_test) / batch_seconds,
        "images": len(x_test),
    }


# ru_maxrss survives fork+exec (a child of a big parent reports the parent's size): read VmHWM of the new
# address space where /proc has it.
_MEMORY_CHILD = """
import json, resource, sys
from mlpjax.bench.benchmark import load_bench_data
kind, data_dir, quick, dataset = sys.argv[1], sys.argv[2] or None, sys.argv[3] == "1", sys.argv[4] or None
ds, _ = load_bench_data(data_dir, quick, dataset)
if kind == "mlpjax":
    from mlpjax.core import config
    from mlpjax.training import train
    train.fit(config.TrainConfig(dataset=dataset or "mnist", epochs=1), ds)
else:
    from mlpjax.bench import baselines
    epoch, accuracy = baselines.RUNNERS[kind].build(ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    epoch(); accuracy()
try:
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except OSError:
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": hwm / 1024}))
"""


def peak_memory_mib(kind: str, data_dir: str | None, quick: bool, dataset: str | None = None) -> float | None:
    """Peak resident memory (MiB) of a fresh process that loads the data (:func:`load_bench_data`) and trains one
    epoch with ``kind``."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, kind, data_dir or "", "1" if quick else "0", dataset or ""],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:  # said, not hidden: the report shows "failed" and stderr the child's last line
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"peak memory of {kind}: the measuring process failed: {last}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]


def sweep(ds: data_lib.Dataset, config: BenchConfig, ceiling: float) -> list[dict[str, Any]]:
    """Throughput and efficiency over batch size (hidden fixed) and hidden width (batch fixed)."""
    if config.quick:
        points = [("batch_size", b) for b in (32, 512)] + [("hidden", h) for h in (128, 1024)]
    else:
        points = [("batch_size", b) for b in (32, 128, 512, 2048, 8192)] + [
            ("hidden", h) for h in (128, 512, 1024, 2048, 4096)
        ]
    rows = []
    for kind, value in points:
        batch = value if kind == "batch_size" else config.batch_size
        hidden = (value,) if kind == "hidden" else config.hidden
        epoch, _, info = mlpjax_runner(ds, config, hidden=hidden, batch_size=batch)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            epoch()
            times.append(time.perf_counter() - start)
        seconds = min(times)
        flops = info["step_flops"] * info["steps"]
        rows.append(
            {
                "batch_size": batch,
                "hidden": list(hidden),
                "epoch_seconds": seconds,
                "examples_per_second": len(ds.y_train) / seconds,
                "gflops": flops / seconds / 1e9,
                "fraction_of_ceiling": flops / seconds / 1e9 / ceiling,
            }
        )
    return rows


def device_scaling(ds: data_lib.Dataset, config: BenchConfig) -> list[dict[str, Any]]:
    """Epoch time over 1, 2, 4, ... local devices (data-parallel, same global batch); one row on one device.

    On CPU, more devices come from ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (they share the cores).
    """
    tconfig = config.train_config()
    mconfig = tconfig.model_config(ds.input_dim, ds.num_classes)
    rows = []
    for n in (c for c in (1, 2, 4, 8, 16, 32) if c <= jax.local_device_count()):
        state = create_train_state(jax.random.PRNGKey(config.seed), tconfig, mconfig)
        layout = compiled.layout_for(mesh_lib.make_mesh(n) if n > 1 else None, mconfig)
        epoch_runner, state = compiled.prepare_epoch(
            state, Rows.from_dataset(ds, "train", layout), batch_size=config.batch_size
        )
        times = []
        for epoch in range(2):
            start = time.perf_counter()
            state, metrics = epoch_runner(state, epoch)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - start)
        rows.append({"devices": n, "epoch_seconds": min(times), "examples_per_second": len(ds.y_train) / min(times)})
    return rows


MODEL_COUNTS, QUICK_MODEL_COUNTS = (1, 4, 16, 64), (1, 2, 4)
MODEL_STEPS, QUICK_MODEL_STEPS = 100, 10  # optimizer steps each model trains in one timed call


def _timed_best(call: Callable[[], Any], rounds: int) -> float:
    """The least seconds of ``rounds`` runs of ``call()`` after an untimed one (which compiles and warms up);
    ``call`` waits for the device."""
    call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def models_per_second(ds: data_lib.Dataset, config: BenchConfig) -> list[dict[str, Any]]:
    """Models trained per second when ``K`` models (:data:`MODEL_COUNTS`; quick: :data:`QUICK_MODEL_COUNTS`)
    each take :data:`MODEL_STEPS` steps (an epoch of that many batches), by strategy of :mod:`mlpjax.sweep.train`:

    ``vmap``: the K states stacked and trained as one vmapped epoch; ``sequential``: one compiled epoch called
    K times, one state after another. ``x_one_model``: models/s over that of one model trained alone
    (``sequential`` at K = 1). Seeds ``seed, seed + 1, ...``; compilation and a warm-up call not timed; the
    best of ``config.rounds`` timed calls (1 with ``quick``).
    """
    from mlpjax.sweep import stack

    steps = QUICK_MODEL_STEPS if config.quick else MODEL_STEPS
    part = ds.head(steps * config.batch_size)
    base = config.train_config()
    mconfig = base.model_config(ds.input_dim, ds.num_classes)
    rows = Rows.from_dataset(part, "train")
    template = create_train_state(jax.random.PRNGKey(config.seed), base, mconfig)
    one_runner, _ = compiled.prepare_epoch(template, rows, batch_size=config.batch_size)
    results: list[dict[str, Any]] = []
    for k in QUICK_MODEL_COUNTS if config.quick else MODEL_COUNTS:
        configs = [base.replace(seed=config.seed + i) for i in range(k)]
        epoch = jax.jit(functools.partial(stack.group_epoch, batch_size=config.batch_size), donate_argnums=0)
        group = [stack.group_state(configs, mconfig)]
        active = np.ones(k, bool)

        def vmapped(group=group, epoch=epoch, active=active):
            group[0], metrics = epoch(group[0], rows, np.int32(0), active)
            jax.block_until_ready(metrics)

        # the compiled epoch's static fields: its optimizer object (the same transformation for every seed)
        states = [create_train_state(jax.random.PRNGKey(c.seed), c, mconfig).replace(tx=template.tx) for c in configs]

        def one_by_one(states=states):
            for i, state in enumerate(states):
                states[i], metrics = one_runner(state, 0)
                jax.block_until_ready(metrics)

        for strategy, call in (("vmap", vmapped), ("sequential", one_by_one)):
            seconds = _timed_best(call, 1 if config.quick else config.rounds)
            results.append(
                {
                    "models": k,
                    "strategy": strategy,
                    "steps": steps,
                    "seconds": seconds,
                    "models_per_second": k / seconds,
                }
            )
    one = next(r["models_per_second"] for r in results if r["models"] == 1 and r["strategy"] == "sequential")
    for r in results:
        r["x_one_model"] = r["models_per_second"] / one
    return results


def check_bench_memory(config: BenchConfig, ds: data_lib.Dataset) -> None:
    """Refuse, before anything is allocated, a batch larger than the training set (a benchmark times real
    epochs) and a width or batch whose training cannot fit in memory (:mod:`mlpjax.training.budget`), alone or, for
    the models-per-second table, as the largest K models together."""
    from mlpjax import memory
    from mlpjax.training import budget

    if config.batch_size > len(ds.y_train):
        raise FieldError(
            "batch_size",
            f"{{field}} {config.batch_size}: the benchmark's training set has "
            f"{len(ds.y_train)} examples; give at most that",
        )
    tconfig = config.train_config()
    model_config = tconfig.model_config(ds.input_dim, ds.num_classes)
    budget.check_training(tconfig, model_config, ds)
    if not config.models:
        return
    k = max(QUICK_MODEL_COUNTS if config.quick else MODEL_COUNTS)
    need, free = budget.group_bytes(budget.training_bytes(tconfig, model_config, ds), k), memory.free_memory()
    if need > free:
        raise FieldError(
            "hidden",
            f"{{field}} {' '.join(map(str, config.hidden))}: the models-per-second table "
            f"trains up to {k} such models together, which would need about "
            f"{memory.format_bytes(need)} of memory but {memory.format_bytes(free)} is available; "
            "choose a smaller {field}",
        )


def run(config: BenchConfig, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Every measurement of ``mlpjax bench``, as one JSON-able dict."""
    ds, source = load_bench_data(config.data_dir, config.quick, config.dataset)
    check_bench_memory(config, ds)
    dims = config.train_config().model_config(ds.input_dim, ds.num_classes).widths()
    report: dict[str, Any] = {
        "device": f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind})",
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "data": source,
        "train_examples": len(ds.y_train),
        "batch_size": config.batch_size,
        "hidden": list(config.hidden),
        "versions": result.library_versions(),
    }
    log("matmul ceiling ...")
    report["matmul"] = matmul_ceiling(config.batch_size, dims, config.quick)
    ceiling = report["ceiling_gflops"] = report["matmul"]["ceiling_gflops"]

    log("compiling mlpjax's epoch ...")
    runners: dict[str, tuple] = {}
    epoch, accuracy, info = mlpjax_runner(ds, config)
    runners["mlpjax"] = (epoch, accuracy)
    unavailable = baselines.unavailable()
    skipped = {}
    for name in config.against:
        if name in unavailable:
            skipped[name] = unavailable[name]
            continue
        backend = baselines.RUNNERS[name].keras_backend
        taken = baselines.keras_backend_taken(backend) if backend else None
        if taken:
            skipped[name] = f"Keras runs on {taken} in this process (time it alone: --against {name})"
            continue
        log(f"building the {name} baseline ...")
        spec = baselines.Spec(hidden=config.hidden, batch_size=config.batch_size, seed=config.seed)
        runners[name] = baselines.RUNNERS[name].build(ds.x_train, ds.y_train, ds.x_test, ds.y_test, spec)
    for name, (epoch_fn, _) in runners.items():  # one untimed epoch each: compiling, warm caches, graph tracing
        log(f"warm-up epoch: {name}")
        epoch_fn()

    times: dict[str, list[float]] = {name: [] for name in runners}
    with CompileCounter() as compiles:
        for r in range(config.rounds):  # interleaved: A B C A B C ..., so each ratio is taken round by round
            for name, (epoch_fn, _) in runners.items():
                start = time.perf_counter()
                epoch_fn()
                times[name].append(time.perf_counter() - start)
                log(f"round {r + 1}: {name} {times[name][-1]:.3f} s")
    epoch_flops = info["step_flops"] * info["steps"]
    results = {
        name: _summary(times[name], len(ds.y_train), epoch_flops, ceiling, acc()) for name, (_, acc) in runners.items()
    }
    report["mlpjax"] = {
        **results.pop("mlpjax"),
        "compile_seconds": info["compile_seconds"],
        "compiles_during_epochs": compiles.count,
        "step_gflop": info["step_flops"] / 1e9,
        "xla_step_gflop": (info["xla_step_flops"] or 0) / 1e9,
        "epoch_gflop": epoch_flops / 1e9,
    }
    report["baselines"] = results
    report["baselines_skipped"] = skipped
    report["ratios"] = {
        f"{name}_over_mlpjax": statistics.median(b / a for a, b in zip(times["mlpjax"], times[name], strict=True))
        for name in results
    }

    log("prediction latency ...")
    report["predict"] = _predict_report(ds, config)
    if config.memory:
        log("peak memory (fresh processes) ...")
        report["peak_memory_mib"] = {
            kind: peak_memory_mib(kind, config.data_dir, config.quick, config.dataset) for kind in ["mlpjax", *results]
        }
    log("device counts ...")
    report["device_scaling"] = device_scaling(ds, config)
    if config.sweep:
        log("sweep ...")
        report["sweep"] = sweep(ds, config, ceiling)
    if config.models:
        log("models per second by K ...")
        report["models_per_second"] = models_per_second(ds, config)
    return report


def _predict_report(ds: data_lib.Dataset, config: BenchConfig) -> dict[str, float]:
    """Prediction timings of the benchmarked architecture (fresh params: the timing does not depend on them)."""
    mconfig = model.ModelConfig(input_dim=ds.input_dim, hidden=config.hidden, num_classes=ds.num_classes)
    classifier = model.Classifier(model.init(jax.random.PRNGKey(config.seed), mconfig), mconfig)
    return predict_latency(classifier, ds.x_test, config.quick)


def format_report(report: dict[str, Any]) -> str:
    """The human-readable tables of a :func:`run` report."""
    lines = [
        f"device: {report['device']}, {report['cpu_count']} CPU cores; data: {report['data']}, "
        f"{report['train_examples']} training examples, batch {report['batch_size']}, hidden {report['hidden']}",
        "",
        "matmul (jitted jnp.dot, float32):",
    ]
    lines += [f"  {name:<34} {g:8.1f} GFLOP/s" for name, g in report["matmul"]["shapes"].items()]
    m = report["mlpjax"]
    lines += [
        "",
        f"one step: {m['step_gflop']:.3f} GFLOP counted, {m['xla_step_gflop']:.3f} by XLA's cost analysis; "
        f"an epoch {m['epoch_gflop']:.1f} GFLOP",
    ]
    rows = {"mlpjax": m, **report["baselines"]}
    w = max(len(name) for name in ["framework", *rows, *report.get("baselines_skipped", {})])
    lines += [
        "",
        f"{'framework':<{w}} {'epoch s':>8} {'examples/s':>11} {'GFLOP/s':>8} {'of ceiling':>10} "
        f"{'test acc':>8} {'x mlpjax':>8}",
    ]
    for name, r in rows.items():
        ratio = report["ratios"].get(f"{name}_over_mlpjax", 1.0)
        lines.append(
            f"{name:<{w}} {r['epoch_seconds']:8.3f} {r['examples_per_second']:11.0f} {r['gflops']:8.1f} "
            f"{r['fraction_of_ceiling']:10.1%} {r['test_accuracy']:8.4f} {ratio:8.2f}"
        )
    for name, why in report.get("baselines_skipped", {}).items():
        lines.append(f"{name:<{w}} skipped: {why}")
    lines += [
        "",
        f"mlpjax compile {m['compile_seconds']:.2f} s; compiles during the timed epochs: {m['compiles_during_epochs']}",
    ]
    p = report["predict"]
    lines.append(
        f"predict: one image p50 {p['latency_ms_p50']:.3f} ms, p99 {p['latency_ms_p99']:.3f} ms; "
        f"{p['images']} images at {p['images_per_second']:.0f} images/s"
    )
    if report.get("peak_memory_mib"):
        lines.append(
            "peak memory, one epoch in a fresh process: "
            + ", ".join(f"{k} {v:.0f} MiB" if v else f"{k} failed" for k, v in report["peak_memory_mib"].items())
        )
    lines.append(
        "data-parallel: "
        + ", ".join(
            f"{r['devices']} device(s) {r['epoch_seconds']:.3f} s/epoch ({r['examples_per_second']:.0f} examples/s)"
            for r in report.get("device_scaling", [])
        )
    )
    if report.get("sweep"):
        lines += ["", f"{'batch':>6} {'hidden':>8} {'epoch s':>8} {'examples/s':>11} {'GFLOP/s':>8} {'of ceiling':>10}"]
        lines += [
            f"{r['batch_size']:>6} {str(r['hidden']):>8} {r['epoch_seconds']:8.3f} "
            f"{r['examples_per_second']:11.0f} {r['gflops']:8.1f} {r['fraction_of_ceiling']:10.1%}"
            for r in report["sweep"]
        ]
    if report.get("models_per_second"):
        rows = report["models_per_second"]
        lines += [
            "",
            f"models per second ({rows[0]['steps']} steps each; x one model: over one model alone):",
            f"{'K':>4} {'strategy':>10} {'seconds':>8} {'models/s':>9} {'x one model':>11}",
        ]
        lines += [
            f"{r['models']:>4} {r['strategy']:>10} {r['seconds']:8.3f} {r['models_per_second']:9.2f} "
            f"{r['x_one_model']:11.2f}"
            for r in rows
        ]
    return "\n".join(lines)
