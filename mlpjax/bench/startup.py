"""Start-up: cold and warm seconds of ``mlpjax`` commands with the persistent compilation cache (``mlpjax bench
--startup``; docs/speed.md).

Each measurement is a fresh process (``python -m mlpjax.cli ...``) timed from start to exit. Per round and
command: ``off`` (``--no-cache``), ``cold`` (an empty cache folder, which it fills) and ``warm`` (the same folder
again; ``--version`` and ``--help``, which compile nothing, once, warm), the commands interleaved round by round
so that a slow moment of a shared machine falls on all of them. Wall seconds, and CPU seconds (user + system of
the process and its children: the steadier figure on a shared machine). Writes only under a temporary folder,
removed afterwards; trains one digits model there first (offline, seed 0). :data:`FLOOR`, a process that imports
JAX and runs one operation, is timed beside them: no command that imports JAX starts faster.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlpjax.errors import UserInputError

MODES = ("off", "cold", "warm")
COMMANDS = {
    "train --dataset digits": ["train", "--dataset", "digits", "--quiet"],
    "evaluate DIR": ["evaluate", "{model}"],
    "predict DIR --index 9": ["predict", "{model}", "--index", "9", "--out", "{out}"],
    "backprop": ["backprop"],
    "--version": ["--version"],
    "--help": ["--help"],
}
FLOOR = "python: import jax, one op"  # timed once a round, as --version and --help are
FLOOR_CODE = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
ONCE = ("--version", "--help", FLOOR)  # what compiles nothing: timed warm only


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """``mlpjax ARGV`` (``python ARGV`` if it begins with ``-c``) in a fresh process: its wall and CPU seconds; a
    failure is a UserInputError with its end."""
    start, cpu = time.perf_counter(), _children_cpu()
    python = [sys.executable, *argv] if argv[:1] == ["-c"] else [sys.executable, "-m", "mlpjax.cli", *argv]
    proc = subprocess.run(python, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
        raise UserInputError(f"mlpjax {' '.join(argv)} failed with exit status {proc.returncode}: {last}")
    return seconds, cpu


def _environment() -> dict[str, str]:
    """This process's environment on the CPU, without JAX's own cache settings (mlpjax's are what is timed)."""
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    return {
        k: v
        for k, v in env.items()
        if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE")) and k != "JAX_ENABLE_COMPILATION_CACHE"
    }


def measure(rounds: int = 2, log: Callable[[str], None] = lambda s: None) -> dict[str, dict[str, dict[str, list]]]:
    """Times :data:`COMMANDS` ``rounds`` times each way: ``{"wall" | "cpu": {command: {mode: [seconds, ...]}}}``
    (modes :data:`MODES`; ``--version``, ``--help`` and :data:`FLOOR` warm only). Deterministic inputs; the
    seconds are not."""
    work = Path(tempfile.mkdtemp(prefix="mlpjax-startup-"))
    env = _environment()
    try:
        model = str(work / "model")
        _timed(["train", "--dataset", "digits", "--epochs", "2", "--output", model, "--quiet", "--no-cache"], env)
        commands = {**COMMANDS, FLOOR: ["-c", FLOOR_CODE]}
        modes = {name: ("warm",) if name in ONCE else MODES for name in commands}
        out: dict[str, dict[str, dict[str, list]]] = {
            kind: {name: {m: [] for m in modes[name]} for name in commands} for kind in ("wall", "cpu")
        }
        count = 0
        for r in range(rounds):
            for name, argv in commands.items():
                folder = work / f"cache-{r}-{len(out['wall'][name]['warm'])}-{list(commands).index(name)}"
                for mode in modes[name]:
                    count += 1
                    filled = [a.format(model=model, out=work / f"p{count}.png") for a in argv]
                    wall, cpu = _timed(filled, {**env, "MLPJAX_CACHE_DIR": "" if mode == "off" else str(folder)})
                    out["wall"][name][mode].append(wall)
                    out["cpu"][name][mode].append(cpu)
                log(
                    f"round {r + 1}: {_label(name)}: "
                    + ", ".join(f"{m} {out['wall'][name][m][-1]:.2f} s" for m in modes[name])
                )
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _label(name: str) -> str:
    return f"`mlpjax {name}`" if name != FLOOR else f"{FLOOR} (`python -c '{FLOOR_CODE}'`)"


def format_tables(times: dict[str, dict[str, dict[str, list]]]) -> str:
    """Markdown tables of :func:`measure`'s result: median (min-max) per command and mode, and warm / cold."""
    lines = []
    for kind, title in (("wall", "wall seconds"), ("cpu", "CPU seconds (user + system)")):
        lines += [f"| command, {title} | no cache | cold cache | warm cache | warm / cold |", "|---|---|---|---|---|"]
        for name, by_mode in times[kind].items():
            cells = [
                f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else ""
                for v in (by_mode.get(m, []) for m in MODES)
            ]
            ratio = (
                f"{statistics.median(by_mode['warm']) / statistics.median(by_mode['cold']):.2f}"
                if "cold" in by_mode
                else ""
            )
            lines.append(f"| {_label(name)} | " + " | ".join(cells) + f" | {ratio} |")
        lines.append("")
    return "\n".join(lines)
