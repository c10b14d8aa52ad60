#!/usr/bin/env python
"""Cold and warm wall time of mlpjax commands with the persistent compilation cache (docs/speed.md).

Each measurement is a fresh process (``python -m mlpjax.cli ...``) timed from start to exit. Per round and per
command: ``off`` (``--no-cache``), ``cold`` (an empty cache folder, which it fills) and ``warm`` (the same folder
again; ``--version`` and ``--help``, which compile nothing, once), the commands interleaved round by round so
that a slow moment of a shared machine falls on all of them.
A benchmark, not a test: it prints Markdown tables of wall and CPU seconds (median, min-max; CPU time is the
steadier figure on a shared machine) and, with --json, the raw times.

    python scripts/bench_cache.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], env: dict) -> tuple[float, float]:
    """``mlpjax ARGV`` in a fresh process: its wall seconds and CPU seconds (user + system, its children too)."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "mlpjax.cli", *argv], env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"mlpjax {' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlpjax-cache-bench-"))
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    env = {
        k: v
        for k, v in env.items()
        if not k.startswith("JAX_COMPILATION_CACHE")
        and not k.startswith("JAX_PERSISTENT_CACHE")
        and k != "JAX_ENABLE_COMPILATION_CACHE"
    }
    model = work / "model"
    run(["train", "--dataset", "digits", "--epochs", "2", "--output", str(model), "--quiet", "--no-cache"], env)
    commands = {
        "train --dataset digits": ["train", "--dataset", "digits", "--quiet"],
        "evaluate DIR": ["evaluate", str(model)],
        "predict DIR --index 9": ["predict", str(model), "--index", "9", "--out", "{out}"],
        "backprop": ["backprop"],
        "--version": ["--version"],
        "--help": ["--help"],
    }
    # --version and --help compile nothing: timed once a round, with the cache as by default
    modes = {name: ("off", "cold", "warm") if name[0] != "-" else ("warm",) for name in commands}
    times: dict[str, dict[str, list[float]]] = {name: {m: [] for m in modes[name]} for name in commands}
    cpu: dict[str, dict[str, list[float]]] = {name: {m: [] for m in modes[name]} for name in commands}
    count = 0
    for r in range(args.rounds):
        for name, argv in commands.items():
            folder = work / f"cache-{r}-{len(times[name]['warm'])}-{abs(hash(name))}"
            for mode in modes[name]:
                count += 1
                filled = [a.replace("{out}", str(work / f"p{count}.png")) for a in argv]
                mode_env = {**env, "MLPJAX_CACHE_DIR": "" if mode == "off" else str(folder)}
                wall, used = run(filled, mode_env)
                times[name][mode].append(wall)
                cpu[name][mode].append(used)
            print(
                f"round {r + 1}: {name}: "
                + ", ".join(f"{m} {times[name][m][-1]:.2f} s ({cpu[name][m][-1]:.2f} s CPU)" for m in times[name]),
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps({"wall": times, "cpu": cpu}, indent=2))
        return
    for title, table in (("wall seconds", times), ("CPU seconds (user + system)", cpu)):
        print(f"| command, {title} | no cache | cold cache | warm cache | warm / cold |")
        print("|---|---|---|---|---|")
        for name, by_mode in table.items():
            cells = [
                f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else ""
                for v in (by_mode.get(m, []) for m in ("off", "cold", "warm"))
            ]
            ratio = (
                f"{statistics.median(by_mode['warm']) / statistics.median(by_mode['cold']):.2f}"
                if "cold" in by_mode
                else ""
            )
            print(f"| `mlpjax {name}` | " + " | ".join(cells) + f" | {ratio} |")
        print()


if __name__ == "__main__":
    main()
