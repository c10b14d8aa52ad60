"""Speed: ``mlpjax bench`` (:mod:`.benchmark`) and the same model hand-written in JAX, PyTorch and Keras
(:mod:`.baselines`). The names below are the wing's public API."""

from mlpjax.bench.benchmark import BenchConfig, format_report, run

__all__ = ["BenchConfig", "format_report", "run"]
