"""Experiments that measure the tutorial's claims, one module per question.

Each module ``mlpjax.experiments.NAME`` (every module here but ``common``) is an experiment: it has a
``QUESTION`` (one line), an ``ORDER`` (its place in the tutorial; ``all`` runs them in that order) and
``run(out_dir, *, quick, source, seed, log) -> common.Report`` (``source``: a :class:`common.DataChoice`, the
data to train on); one that trains with the seeds ``seed, seed + 1, ...`` says how many in ``SEEDS`` (checked
before it starts), and one that trains on data of its own only says ``OWN_DATA = True``. Adding a module adds
the experiment: it trains through :func:`mlpjax.training.train.fit`, draws its figures into ``out_dir`` and
returns its numbers and tables. :func:`run_experiment` then writes ``out_dir/results.json`` (everything,
machine-readable) and ``out_dir/results.md`` (the tables and figures).
The logic lives in the package so that it works from an installed wheel; ``experiments/run.py NAME`` in the
repository and ``mlpjax experiment NAME`` only call :func:`run_experiment`.

``quick=True`` is the smoke-test budget: a few hundred MNIST images if a data folder is given, else
scikit-learn's 8x8 digits (offline), and 1-2 epochs. ``source.dataset`` trains on any other data instead (the
user's file or folder, a tfds set, a table by name), whole. Every run is reproducible from ``seed``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import os
import pkgutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpjax.errors import FieldError, check_name

if TYPE_CHECKING:
    from mlpjax.experiments import common

DEFAULT_OUT = "results"
_NOT_EXPERIMENTS = ("common",)


def _constants(path: Path) -> dict[str, Any]:
    """The module-level ``NAME = literal`` assignments of the source file ``path``, read without importing it."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


@functools.lru_cache(maxsize=1)
def discover() -> dict[str, str]:
    """Every experiment of this package, ``name -> QUESTION``, in ``ORDER`` (read once from the sources:
    nothing is imported, so listing them is fast)."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_EXPERIMENTS or info.ispkg:
            continue
        constants = _constants(Path(__path__[0]) / f"{info.name}.py")
        found.append((constants.get("ORDER", 1000), info.name, constants.get("QUESTION", "")))
    return {name: question for _, name, question in sorted(found)}


def check_seed(names: Iterable[str], seed: int) -> int:
    """``seed`` checked for every experiment of ``names`` (before any starts): each trains with it and the
    ``SEEDS - 1`` seeds after it (its module's ``SEEDS``; 1 where it has none)."""
    from mlpjax.core.config import check_seed as check

    return check(seed, max(getattr(importlib.import_module(f"{__name__}.{name}"), "SEEDS", 1) for name in names))


def own_data(name: str) -> bool:
    """Whether experiment ``name`` trains on data of its own only (its module's ``OWN_DATA``; read unimported)."""
    return bool(_constants(Path(__path__[0]) / f"{name}.py").get("OWN_DATA", False))


def check_source(name: str, source: common.DataChoice) -> None:
    """Refuse a dataset for experiment ``name`` where it trains on data of its own only."""
    if source.dataset is not None and own_data(name):
        raise FieldError(
            "dataset",
            f"the {name} experiment trains on its own data only; {{field}} {source.dataset} applies to the others "
            f"({', '.join(n for n in discover() if not own_data(n))})",
        )


def check_results_folder(folder: Path, overwrite: bool) -> None:
    """Refuse ``folder`` where it holds anything and ``overwrite`` is not given: results are never replaced
    without a word."""
    from mlpjax import files

    held = files.first_names(folder, 1)  # None: new (a file in the way is make_folder's one line)
    if held and not overwrite:
        raise FieldError(
            "overwrite",
            f"{folder}: holds earlier results ({held[0]}, ...); nothing is replaced "
            "unless you ask: give {field}, or another output folder",
        )


def run_experiment(
    name: str,
    out_dir: str | os.PathLike = DEFAULT_OUT,
    *,
    quick: bool = False,
    source: common.DataChoice | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run experiment ``name`` into ``out_dir/name/`` on ``source`` (default: MNIST); returns the record written to
    ``results.json``. A folder ``out_dir/name`` that holds anything (an earlier run's results) is refused unless
    ``overwrite``; a dataset for an experiment of ``OWN_DATA`` is refused."""
    check_name("experiment", name, discover())
    from mlpjax import files
    from mlpjax.experiments import common

    source = source or common.DataChoice()
    module = importlib.import_module(f"{__name__}.{name}")
    check_seed([name], seed)
    check_source(name, source)
    check_results_folder(Path(out_dir) / name, overwrite)
    folder = files.make_folder(Path(out_dir) / name)  # a UserInputError where out_dir is a file, ...
    log = log or (lambda _: None)
    log(f"== {name}{' (quick)' if quick else ''}: {module.QUESTION}")
    start = time.perf_counter()
    report = module.run(folder, quick=quick, source=source, seed=seed, log=log)
    seconds = time.perf_counter() - start
    record = common.write_report(
        folder, name=name, question=module.QUESTION, report=report, quick=quick, seed=seed, seconds=seconds
    )
    log(f"wrote {folder / 'results.json'}, {folder / 'results.md'} and {len(report.figures)} figures ({seconds:.1f} s)")
    return record
