"""Packaging: one version, what ``mlpjax --version`` reports, and extras that say what they install.

The built wheel itself is tested by ``.ci/run`` (installed alone into a fresh venv and run from outside the
checkout); these are the quick checks that fit in pytest.
"""

from __future__ import annotations

import importlib.metadata
import tomllib

import pytest
from conftest import REPO

import mlpjax
from mlpjax import cli, versions


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_version_has_one_source():
    project = pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mlpjax.__version__"}
    assert importlib.metadata.version("mlpjax") == mlpjax.__version__


def test_version_flag_prints_what_a_bug_report_needs(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code in (0, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"mlpjax {mlpjax.__version__}"
    names = [line.split()[0] for line in lines]
    assert names == [
        "mlpjax",
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "orbax-checkpoint",
        "numpy",
        "python",
        "platform",
        "devices",
    ]
    for line in lines[1:7]:
        name, version = line.split()
        assert version == importlib.metadata.version(name)
    assert lines[-1].startswith(f"devices {__import__('jax').default_backend()}: ")


def test_library_versions_are_the_installed_ones():
    found = versions.library_versions()
    assert set(found) == {"mlpjax", *versions.LIBRARIES, "python"}
    import flax
    import jax
    import numpy
    import optax

    assert (found["jax"], found["flax"], found["optax"], found["numpy"]) == (
        jax.__version__,
        flax.__version__,
        optax.__version__,
        numpy.__version__,
    )


def test_a_backend_that_fails_to_start_is_reported_not_raised(monkeypatch):
    import jax

    def broken():
        raise RuntimeError("Unable to initialize backend 'cuda':\n no GPU")

    monkeypatch.setattr(jax, "devices", broken)
    assert versions.devices() == "unavailable (RuntimeError: Unable to initialize backend 'cuda': no GPU)"


def test_extras():
    extras = pyproject()["project"]["optional-dependencies"]
    assert extras["cuda"] == extras["cuda12"]  # the alias, as jax's own `cuda`
    assert [r.split(">=")[0] for r in extras["cuda12"] + extras["cuda13"]] == ["jax[cuda12]", "jax[cuda13]"]
    jax_floor = next(r for r in pyproject()["project"]["dependencies"] if r.startswith("jax>="))
    assert {r.split(">=")[1] for r in extras["cuda12"] + extras["cuda13"]} == {jax_floor.split(">=")[1]}
    for extra in ("tfds", "dev"):  # tfds 4.9 imports importlib_resources but declares it only for Python < 3.9
        assert any(r.startswith("importlib_resources") for r in extras[extra]), extra
    assert not any(r.startswith("tensorflow") and not r.startswith("tensorflow-datasets") for r in extras["dev"])
    # TensorBoard itself is an extra of its own (docs/sweep.md), kept out of what CI installs
    assert [r.split(">=")[0] for r in extras["tensorboard"]] == ["tensorboard"]
    assert not any(r.startswith("tensorboard>") or r == "tensorboard" for r in extras["dev"])
