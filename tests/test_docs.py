"""The Python examples of README.md and docs/*.md run as written.

Each ```python block runs in a fresh interpreter (JAX on the CPU with 8 host devices, so the mesh examples run
too) in a temporary folder, offline: every dataset an example loads is scikit-learn's digits (``"mnist"`` is
redirected to it), and ``runs/mnist`` is a one-epoch digits run made first. A block that opens a Tk window only
has its imports checked (tests/draw/test_window.py drives the window itself).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NEEDS_WINDOW = re.compile(r"\bDrawWindow\(")

# Run before each block: "mnist" loads digits, so the examples run offline in seconds. The stand-in bears a name
# of its own: fit refuses the data of one registered dataset under a config naming another.
PRELUDE = """
import dataclasses, mlpjax.data, mlpjax.data.datasets
_load = mlpjax.data.datasets.load_dataset
def _digits(name, data_dir=None, **options):
    if name != "mnist":
        return _load(name, data_dir, **options)
    return dataclasses.replace(_load("digits", **options), name="digits standing in for mnist")
mlpjax.data.load_dataset = mlpjax.data.datasets.load_dataset = _digits
"""


def blocks() -> list[tuple[str, str]]:
    """``(page:line, code)`` of every ```python block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            found.append((f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1)))
    return found


def imports_only(code: str) -> str:
    """The import statements of ``code``."""
    return "\n".join(
        ast.unparse(node) for node in ast.parse(code).body if isinstance(node, ast.Import | ast.ImportFrom)
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding ``runs/mnist``: one epoch of digits saved by ``mlpjax train``."""
    folder = tmp_path_factory.mktemp("docs")
    done = run_python(
        "from mlpjax.cli import main\nraise SystemExit(main(['train', '--dataset', 'digits', "
        "'--epochs', '1', '--output', 'runs/mnist', '--quiet']))",
        folder,
    )
    assert done.returncode == 0, done.stderr
    return folder


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip(),
        "MPLBACKEND": "Agg",
    }
    env.pop("MLPJAX_DATA_DIR", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_pages_have_python_examples():
    where = [w for w, _ in blocks()]
    assert any(w.startswith("README.md") for w in where) and len(where) >= 5, where


@pytest.mark.slow
@pytest.mark.parametrize("where,code", blocks(), ids=[w for w, _ in blocks()])
def test_python_example_runs(where, code, workdir):
    if NEEDS_WINDOW.search(code):
        code = imports_only(code)  # the window itself needs a display
    done = run_python(PRELUDE + code, workdir)
    assert done.returncode == 0, f"{where}: the example fails:\n{done.stderr[-3000:]}"


@pytest.mark.slow
def test_the_quoted_resume_error_is_what_the_command_prints(workdir):
    """docs/checkpoints.md quotes the refusal of a changed architecture on --resume word for word."""
    text = (ROOT / "docs" / "checkpoints.md").read_text(encoding="utf-8")
    m = re.search(r"^\$ (mlpjax train --resume runs/mnist --hidden 256)\n(mlpjax train: error: .*)$", text, re.M)
    assert m, "docs/checkpoints.md no longer shows the resume error"
    done = run_python(f"from mlpjax.cli import main\nraise SystemExit(main({m.group(1).split()[1:]!r}))", workdir)
    quoted = m.group(2).replace("runs/mnist/checkpoints/4", "runs/mnist/checkpoints/1")  # the docs' run has 4
    assert (done.returncode, done.stderr.strip()) == (2, quoted)
