"""The tutorial notebook (notebooks/tutorial.py, jupytext percent format) runs top to bottom without a cell error."""

from __future__ import annotations

import time

import pytest
from conftest import REPO

NOTEBOOK = REPO / "notebooks" / "tutorial.py"


@pytest.mark.slow
def test_the_tutorial_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext", reason="jupytext is not installed (pip install -e '.[dev]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[dev]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[dev]')")
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this checkout's mlpjax
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = jupytext.read(NOTEBOOK)
    assert not any(cell.get("outputs") for cell in notebook.cells)  # outputs are never committed
    start = time.monotonic()
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # a cell error raises
    print(f"\nthe notebook ran in {time.monotonic() - start:.1f} s")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert "(2, 2) -> quadrant I" in text and "test accuracy" in text and "largest difference:" in text
    assert len(images) >= 6  # activations, regions, curves, confusion, errors, saliency
