import json

import pytest

from mlpjax import cli, memory
from mlpjax.bench import benchmark as bench
from mlpjax.errors import UserInputError


def test_step_flops_of_the_tutorials_model():
    # forward 2*128*(784*512 + 512*10), weight gradients the same, hidden-activation gradient 2*128*512*10
    expected = 2 * 128 * (2 * (784 * 512 + 512 * 10) + 512 * 10)
    assert bench.step_flops(128, (784, 512, 10)) == expected
    assert expected / 1e9 == pytest.approx(0.209, abs=0.001)
    assert bench.step_flops(128, (784, 512, 10)) * 469 / 1e9 == pytest.approx(98, abs=0.5)


def test_matmul_gflops_is_positive_and_finite():
    assert 0 < bench.matmul_gflops(64, 64, 64, repeats=5) < 1e6


@pytest.mark.slow
def test_quick_bench_reports_every_figure_and_compiles_once(capsys):
    assert cli.main(["bench", "--quick", "--json", "--against", "", "--no-sweep", "--no-memory", "--rounds", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("device", "ceiling_gflops", "mlpjax", "baselines", "ratios", "predict"):
        assert key in report
    m = report["mlpjax"]
    for key in (
        "epoch_seconds",
        "examples_per_second",
        "gflops",
        "fraction_of_ceiling",
        "compile_seconds",
        "test_accuracy",
    ):
        assert m[key] > 0
    assert m["compiles_during_epochs"] == 0
    # the FLOPs counted from the shapes agree with XLA's own cost analysis within 10 %
    assert m["xla_step_gflop"] == pytest.approx(m["step_gflop"], rel=0.1)
    assert m["examples_per_second"] == pytest.approx(report["train_examples"] / m["epoch_seconds"])
    assert report["predict"]["latency_ms_p50"] <= report["predict"]["latency_ms_p99"]
    assert report["device_scaling"][0]["devices"] == 1 and report["device_scaling"][0]["epoch_seconds"] > 0
    text = bench.format_report(report)
    assert "mlpjax" in text and "GFLOP/s" in text


def test_peak_memory_is_measured_in_a_fresh_process():
    from mlpjax.bench import benchmark

    peak = benchmark.peak_memory_mib("mlpjax", None, quick=True)  # random data of MNIST's shape, one epoch
    assert peak is not None and 100 < peak < 4096  # MiB; the real figure is benchmarked, not tested


def _tiny_problem():
    """300 points of 20 features, labelled by whether the first exceeds one half (a linear rule)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((300, 20), np.float32)
    return x, (x[:, 0] > 0.5).astype(np.int32)


def _train_tiny(name: str, epochs: int = 20):
    """Build baseline ``name`` on the tiny problem (batches of 32: the last one partial) and train ``epochs``
    epochs; returns the ``(epoch, accuracy)`` pair, trained."""
    from mlpjax.bench import baselines

    x, y = _tiny_problem()
    epoch, accuracy = baselines.RUNNERS[name].build(x, y, x, y, baselines.Spec(hidden=(16,), batch_size=32))
    for _ in range(epochs):
        epoch()
    return epoch, accuracy


def test_baselines_run_when_installed():
    pytest.importorskip("torch", reason="the bench extra (torch) is not installed")
    _, accuracy = _train_tiny("torch")
    assert accuracy() > 0.8


def test_flax_nnx_learns_and_compiles_nothing_after_its_first_epoch():
    with bench.CompileCounter() as first:
        epoch, accuracy = _train_tiny("flax_nnx", epochs=1)
    assert first.count >= 2  # the step at the full batch and at the partial last one
    with bench.CompileCounter() as later:
        for _ in range(19):
            epoch()
    assert later.count == 0  # the bench's one untimed epoch is enough to leave compiling out of its timing
    assert accuracy() > 0.8


@pytest.mark.slow  # Inductor compiles C++: tens of seconds
@pytest.mark.parametrize("name", ["torch_compile", "torch_compile_ro"])
def test_torch_compile_learns_and_compiles_nothing_after_its_first_epoch(name):
    pytest.importorskip("torch", reason="the bench extra (torch) is not installed")
    from torch._dynamo.utils import counters

    from mlpjax.bench import baselines

    if name in baselines.unavailable():
        pytest.skip(baselines.unavailable()[name])
    epoch, accuracy = _train_tiny(name, epochs=1)
    compiled = counters["stats"]["unique_graphs"]
    assert compiled > 0  # the model went through torch.compile
    for _ in range(19):
        epoch()
    assert counters["stats"]["unique_graphs"] == compiled
    assert accuracy() > 0.8


def test_baselines_missing_a_package_or_a_compiler_are_skipped_with_the_reason(monkeypatch):
    import importlib.util

    from mlpjax.bench import baselines

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else find_spec(name, *a))
    missing = baselines.unavailable()
    for name in ("torch", "torch_compile", "torch_compile_ro"):
        assert missing[name] == "not installed (pip install -e '.[bench]')"
    assert "jax" not in missing and "flax_nnx" not in missing  # JAX and Flax are dependencies
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(baselines.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    missing = baselines.unavailable()
    assert set(missing) == {"torch_compile", "torch_compile_ro"}
    assert missing["torch_compile"].startswith("torch.compile needs a C++ compiler")


def test_every_baseline_is_accepted_listed_in_the_help_and_run_by_default(capsys, monkeypatch):
    from mlpjax.bench import baselines

    monkeypatch.setenv("COLUMNS", "1000")  # argparse's width: no line wrapped inside a description

    names = list(baselines.RUNNERS)
    assert {"jax", "flax_nnx", "torch", "torch_compile", "torch_compile_ro", "keras", "keras_jax"} <= set(names)
    assert bench.BenchConfig(against=tuple(names)).against == bench.BenchConfig().against == tuple(names)
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, baseline in baselines.RUNNERS.items():
        assert f"{name} ({' '.join(baseline.about.split())})" in text


def test_unknown_baseline_is_refused():
    with pytest.raises(
        UserInputError,
        match="^against 'jax2': valid baselines are jax, flax_nnx, torch, torch_compile, torch_compile_ro, keras, "
        "keras_jax$",
    ):
        bench.BenchConfig(against=("jax2",))


def test_a_width_whose_models_table_cannot_fit_is_refused_before_anything_runs(monkeypatch, digits):
    from mlpjax.errors import FieldError
    from mlpjax.training import budget

    config = bench.BenchConfig(quick=True, hidden=(64,))
    tconfig = config.train_config()
    parts = budget.training_bytes(tconfig, tconfig.model_config(digits.input_dim, digits.num_classes), digits)
    k = max(bench.QUICK_MODEL_COUNTS)
    monkeypatch.setattr(memory, "free_memory", lambda: budget.group_bytes(parts, k) - 1)
    with pytest.raises(FieldError) as e:
        bench.check_bench_memory(config, digits)
    assert e.value.field == "hidden" and f"trains up to {k} such models together" in str(e.value)
    bench.check_bench_memory(bench.BenchConfig(quick=True, hidden=(64,), models=False), digits)  # no table: it fits


def test_bench_trains_on_a_file_given_by_dataset(capsys, tmp_path):
    from conftest import blobs, run_cli, write_table

    path = write_table(tmp_path / "t.csv", *blobs())
    argv = ["bench", "--quick", "--json", "--against", "", "--no-sweep", "--no-memory", "--no-models", "--rounds", "1"]
    assert cli.main([*argv, "--dataset", str(path), "--hidden", "8", "--batch-size", "16"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"] == str(path) and report["train_examples"] == 48
    assert report["mlpjax"]["step_gflop"] == pytest.approx(bench.step_flops(16, (4, 8, 3)) / 1e9)
    assert 0 <= report["mlpjax"]["test_accuracy"] <= 1
    code, out, err = run_cli(capsys, *argv, "--dataset", path, "--data-dir", tmp_path)  # before anything is timed
    assert code == 2 and out == "" and err.count("\n") == 1 and "--data-dir" in err and "is not read" in err, err


def test_bench_peak_memory_of_a_file_is_measured_in_a_fresh_process(tmp_path):
    from conftest import blobs, write_table

    path = write_table(tmp_path / "t.csv", *blobs())
    assert 0 < bench.peak_memory_mib("mlpjax", None, True, str(path)) < 8192


def test_startup_times_fresh_processes_with_the_cache_off_cold_and_warm(capsys, monkeypatch):
    from mlpjax.bench import startup

    monkeypatch.setattr(
        startup, "COMMANDS", {k: startup.COMMANDS[k] for k in ("predict DIR --index 9", "evaluate DIR", "--version")}
    )
    assert cli.main(["bench", "--startup", "--rounds", "1", "--json"]) == 0
    times = json.loads(capsys.readouterr().out)
    for name in ("predict DIR --index 9", "evaluate DIR"):
        assert {k: set(v[name]) for k, v in times.items()} == {k: {"off", "cold", "warm"} for k in times}
    assert all(len(s) == 1 and s[0] > 0 for kind in times.values() for by in kind.values() for s in by.values())
    assert set(times["cpu"]["--version"]) == set(times["cpu"][startup.FLOOR]) == {"warm"}
    table = startup.format_tables(times)
    assert "| `mlpjax evaluate DIR` |" in table and table.count("| `mlpjax --version` |") == 2
    assert table.count(f"| {startup.FLOOR} (`python -c 'import jax") == 2


@pytest.mark.parametrize(
    "flag", [["--quick"], ["--against", "jax"], ["--data-dir", "x"], ["--dataset", "t.csv"], ["--no-sweep"]]
)
def test_startup_refuses_the_training_benchs_flags(capsys, flag):
    assert cli.main(["bench", "--startup", *flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag[0]}: does nothing with --startup" in err, err
