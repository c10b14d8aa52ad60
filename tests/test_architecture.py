"""The house rules that keep mlpjax easy to change, checked on the source: the wings import one way only
(docs/architecture.md's layers), the library speaks Python (no raise outside the command line names a ``--flag``),
and no function takes more than 7 parameters (plot helpers aside)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlpjax"
COMMAND_LINE = "cli"  # the one wing that speaks flags
# The wings from the bottom up: a module may import its own wing and the wings of the layers below it, never above.
LAYERS = (
    ("errors",),
    ("memory", "files", "versions", "cache"),
    ("plots",),  # writes its figures through files (atomically)
    ("data",),
    ("core",),
    ("training",),
    ("plugins",),
    ("runs",),
    ("sweep", "draw", "teaching"),
    ("bench", "experiments"),
    ("cli",),
)
LAYER = {wing: i for i, wings in enumerate(LAYERS) for wing in wings}
MAX_PARAMETERS = 7
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*(?![\w])")  # --epochs, not XLA's --xla_force_...


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def wing(path: Path) -> str:
    """The wing of a module: its subpackage, or the leaf module's own name (``mlpjax`` for the package root)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "mlpjax" if parts == ("__init__",) else parts[0]


def imported_wings(path: Path) -> list[tuple[int, str]]:
    """``(line, wing)`` of every mlpjax import in ``path``, lazy ones inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "mlpjax":
            if node.module == "mlpjax":
                found += [(node.lineno, a.name) for a in node.names if a.name != "__version__"]
            else:
                found.append((node.lineno, (node.module or "").split(".")[1]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("mlpjax.")]
    return found


def upward_imports(path: Path) -> list[str]:
    here = wing(path)
    if here == "mlpjax":  # the public API (lazy): it may name anything
        return []
    return [
        f"{path.relative_to(PACKAGE)}:{line}: {here} imports {there}"
        for line, there in imported_wings(path)
        if there != here and LAYER.get(there, len(LAYERS)) >= LAYER[here]
    ]


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


def test_every_module_belongs_to_a_wing_of_the_layers():
    assert sorted({wing(p) for p in modules()} - {"mlpjax"} - set(LAYER)) == []


def test_the_wings_import_downwards_only():
    assert [hit for path in modules() for hit in upward_imports(path)] == []


def test_the_import_checker_finds_an_upward_import(tmp_path, monkeypatch):
    (tmp_path / "core").mkdir()
    bad = tmp_path / "core" / "bad.py"
    bad.write_text("def f():\n    from mlpjax.runs import checkpoint\n    from mlpjax import data\n")
    monkeypatch.setitem(globals(), "PACKAGE", tmp_path)
    assert upward_imports(bad) == ["core/bad.py:2: core imports runs"]


def test_no_raise_outside_the_command_line_names_a_flag():
    found = [hit for path in modules() if wing(path) != COMMAND_LINE for hit in flags_in_raises(path)]
    assert found == []


def test_the_checker_finds_a_flag_in_a_raise(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(n):\n    raise ValueError(f"--epochs must be at least 1, got {n}")\n')
    assert flags_in_raises(bad) == ["bad.py:2: --epochs"]


@pytest.mark.parametrize(
    "path", [p for p in modules() if p.name != "plots.py"], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_function_takes_more_than_7_parameters(path):
    assert [(name, n) for name, n in parameter_counts(path) if n > MAX_PARAMETERS] == []


TESTS = Path(__file__).resolve().parent
HELPERS = "workers"  # scripts the tests run in child processes


def test_the_tests_mirror_the_package():
    """Each folder of tests/ is a wing of the package (its tests), and each test module at the top of tests/ is
    about a leaf module or the house as a whole."""
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))} - {HELPERS}
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders <= subpackages, f"test folders that are no wing of mlpjax: {sorted(folders - subpackages)}"
    leaves = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    top = {p.stem.removeprefix("test_") for p in TESTS.glob("test_*.py")}
    assert top <= leaves | {"architecture", "api", "packaging", "docs", "notebook"}, sorted(top - leaves)
