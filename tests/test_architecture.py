"""The house rules that keep mlpjax easy to change, checked on the source: the library speaks Python (no raise
outside the command line names a ``--flag``), and no function takes more than 7 parameters (plot helpers aside)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlpjax"
COMMAND_LINE = {"cli.py"}
MAX_PARAMETERS = 7
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*(?![\w])")  # --epochs, not XLA's --xla_force_...


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def strings(node: ast.AST) -> list[str]:
    """Every string constant inside ``node`` (f-strings' literal parts included)."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def flags_in_raises(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            found += [f"{path.name}:{node.lineno}: {m}" for s in strings(node.exc) for m in FLAG.findall(s)]
    return found


def parameter_counts(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + [p.arg for p in (a.vararg, a.kwarg) if p]
            out.append((f"{path.name}:{node.lineno} {node.name}", len([n for n in names if n not in ("self", "cls")])))
    return out


def test_no_raise_outside_the_command_line_names_a_flag():
    found = [hit for path in modules() if path.name not in COMMAND_LINE for hit in flags_in_raises(path)]
    assert found == []


def test_the_checker_finds_a_flag_in_a_raise(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(n):\n    raise ValueError(f"--epochs must be at least 1, got {n}")\n')
    assert flags_in_raises(bad) == ["bad.py:2: --epochs"]


@pytest.mark.parametrize("path", [p for p in modules() if p.name != "plots.py"], ids=lambda p: p.name)
def test_no_function_takes_more_than_7_parameters(path):
    assert [(name, n) for name, n in parameter_counts(path) if n > MAX_PARAMETERS] == []
