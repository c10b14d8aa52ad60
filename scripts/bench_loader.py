#!/usr/bin/env python
"""Load time and peak memory of CSV readers on a generated numeric table (docs/data.md, "The CSV loader").

A benchmark, not a test. It writes a CSV file (a header row, ``--cols`` float columns ``f0, f1, ...`` and an
integer ``label`` column of 10 classes; ``--rows`` rows, 1,000,000 by default) into a temporary folder, then reads
it with each reader in a FRESH process (``python bench_loader.py --child READER FILE``), the readers interleaved
round by round so that a slow moment of a shared machine falls on all of them. Each reader ends with the features
as one float32 ``(rows, cols)`` array (the labels beside them):

- ``numpy.loadtxt``: every column as float32;
- ``pandas.read_csv`` (its C engine, and ``engine="pyarrow"``), every column float32, then ``to_numpy``;
- ``pyarrow.csv.read_csv`` with float32 column types, copied column by column into the array;
- ``mlpjax csv module``: mlpjax's exact reader, Python's csv module row by row (``load_table(fast=False)``);
- ``mlpjax``: mlpjax's table loader as ``--dataset FILE.csv`` reads it (``load_table``: pyarrow's reader where
  installed), which also checks every value and splits off the test rows (a second copy of the features).

A reader whose library is not installed is skipped, and said so. Per reader: the wall seconds of the read alone
(imports excluded) and its peak memory: the process's peak resident set (VmHWM, reset after the imports by
writing 5 to /proc/self/clear_refs; where that is refused, ru_maxrss) less its resident set after the imports
("added"), and the absolute peak ("peak RSS"). Medians over the rounds, the min-max range beside them.

    python scripts/bench_loader.py --rows 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

READERS = (
    "numpy.loadtxt",
    "pandas.read_csv",
    "pandas.read_csv pyarrow",
    "pyarrow.csv.read_csv",
    "mlpjax csv module",
    "mlpjax",
)
NEEDS = {"pandas.read_csv": "pandas", "pandas.read_csv pyarrow": "pandas", "pyarrow.csv.read_csv": "pyarrow"}


def write_csv(path: Path, rows: int, cols: int, seed: int = 0, chunk: int = 100_000) -> None:
    """``rows`` rows of ``cols`` normal floats written with 6 decimals and a label 0-9, a chunk at a time."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write(",".join([*(f"f{j}" for j in range(cols)), "label"]) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.standard_normal((n, cols))
            table = np.column_stack([x, rng.integers(0, 10, n)])
            np.savetxt(f, table, fmt=["%.6f"] * cols + ["%d"], delimiter=",")


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def child(reader: str, path: str) -> dict:
    """Read ``path`` with ``reader`` in this (fresh) process; its seconds, the features' shape and memory (each
    reader's ``read`` returns the shape of the float32 features it made, once they were made)."""
    cols = len(Path(path).open().readline().split(",")) - 1
    if reader == "numpy.loadtxt":

        def read():
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
            return table[:, :cols].shape
    elif reader.startswith("pandas"):
        import pandas as pd

        engine = "pyarrow" if reader.endswith("pyarrow") else "c"

        def read():
            frame = pd.read_csv(path, dtype=np.float32, engine=engine)
            frame.iloc[:, cols].to_numpy()  # the labels
            return frame.iloc[:, :cols].to_numpy(np.float32).shape
    elif reader == "pyarrow.csv.read_csv":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        def read():
            names = [f"f{j}" for j in range(cols)]
            types = {name: pa.float32() for name in names}
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
            x = np.empty((table.num_rows, cols), np.float32)
            for j in range(cols):
                x[:, j] = table.column(j).to_numpy()
            table.column(cols).to_numpy()  # the labels
            return x.shape
    else:
        from mlpjax.data import tables

        fast = reader == "mlpjax"
        if fast and installed("pyarrow.csv.read_csv"):
            import pyarrow.compute
            import pyarrow.csv  # noqa: F401

        def read():
            loaded = tables.load_table(path, fast=fast)
            (x_train, _), (x_test, _) = loaded.train, loaded.test
            return len(x_train) + len(x_test), x_train.shape[1]

    rss = _status("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the peak resident set, reset to the present one
        reset = True
    except OSError:
        reset = False
    start = time.perf_counter()
    shape = read()
    seconds = time.perf_counter() - start
    peak = _status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "added": peak - rss, "peak": peak, "after_imports": rss, "shape": list(shape)}


def installed(reader: str) -> bool:
    module = NEEDS.get(reader)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def measure(reader: str, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", reader, str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cols", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--readers", default=",".join(READERS), help="comma-separated, of: " + ", ".join(READERS))
    p.add_argument("--json", action="store_true", help="also print every measurement as JSON")
    p.add_argument("--child", nargs=2, metavar=("READER", "FILE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    readers = [r for r in args.readers.split(",") if r]
    for reader in readers:
        if reader not in READERS:
            raise SystemExit(f"unknown reader {reader!r}; known: {', '.join(READERS)}")
    skipped = [r for r in readers if not installed(r)]
    for reader in skipped:
        print(f"skipped {reader}: {NEEDS[reader]} is not installed", file=sys.stderr)
    readers = [r for r in readers if r not in skipped]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        start = time.perf_counter()
        write_csv(path, args.rows, args.cols)
        print(
            f"wrote {args.rows:,} x {args.cols} + label ({path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
        results: dict[str, list[dict]] = {r: [] for r in readers}
        for round_ in range(args.rounds):
            for reader in readers:
                results[reader].append(measure(reader, path))
                print(f"round {round_ + 1} {reader}: {results[reader][-1]}", file=sys.stderr)
    array = args.rows * args.cols * 4
    versions = {}
    for module in ("numpy", "pandas", "pyarrow"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    print(
        f"{args.rows:,} x {args.cols} float columns + an integer label; float32 features {mib(array)} MiB; "
        f"{args.rounds} rounds, medians (min-max); {os.cpu_count()} CPUs, {platform.python_version()}, "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    print()
    print("| reader | seconds | added peak memory, MiB | × the float32 array | peak RSS, MiB |")
    print("| --- | --- | --- | --- | --- |")
    for reader in readers:
        runs = [r for r in results[reader] if "error" not in r]
        if not runs:
            print(f"| {reader} | failed: {results[reader][0]['error']} | | | |")
            continue
        secs = [r["seconds"] for r in runs]
        added = [r["added"] for r in runs]
        peaks = [r["peak"] for r in runs]
        print(
            f"| {reader} | {statistics.median(secs):.2f} ({min(secs):.2f}-{max(secs):.2f}) "
            f"| {mib(statistics.median(added))} ({mib(min(added))}-{mib(max(added))}) "
            f"| {statistics.median(added) / array:.2f} | {mib(statistics.median(peaks))} |"
        )
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
