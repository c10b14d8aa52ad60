"""Shared fixtures: small datasets, synthetic IDX files, and the real MNIST folder (skipped where absent)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path | None:
    """``$MLPJAX_DATA_DIR`` or ``../shared/data/mnist`` beside the checkout, if it holds MNIST."""
    for candidate in (os.environ.get("MLPJAX_DATA_DIR"), REPO.parent / "shared" / "data" / "mnist"):
        if candidate:
            for folder in (Path(candidate), Path(candidate) / "mnist"):
                if (folder / "train-images-idx3-ubyte.gz").exists() or (folder / "train-images-idx3-ubyte").exists():
                    return folder
    return None


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    folder = mnist_dir()
    if folder is None:
        pytest.skip("real MNIST not found: set MLPJAX_DATA_DIR to a folder with the four IDX files "
                    "(CI uses ../shared/data/mnist)")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_path):
    from mlpjax import data

    return data.load_dataset("mnist", mnist_path)


@pytest.fixture(scope="session")
def digits():
    from mlpjax import data

    return data.load_dataset("digits")


def small_config(**kwargs):
    """A small TrainConfig on digits (2 epochs, batch 32, hidden 32); ``kwargs`` flat, model fields included."""
    from mlpjax.config import TrainConfig

    defaults = dict(dataset="digits", epochs=2, batch_size=32, hidden=(32,), seed=0)
    return TrainConfig.from_dict({**defaults, **kwargs})


def toy_dataset(n_train=70, n_test=30, seed=0):
    """70 + 30 random 6-feature float examples, 2 classes (is feature 0 above feature 1)."""
    from mlpjax import data

    rng = np.random.default_rng(seed)
    x = rng.random((n_train + n_test, 6), np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int32)
    return data.make_dataset("toy", x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes=2)


def state_for(config, dataset):
    """The state ``fit`` would start ``config`` from on ``dataset``."""
    import jax

    from mlpjax.state import create_train_state

    return create_train_state(jax.random.PRNGKey(config.seed), config,
                              config.model_config(dataset.input_dim, dataset.num_classes))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``mlpjax ARGV`` in this process: exit status (argparse's SystemExit included), stdout, stderr."""
    from mlpjax import cli

    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_size: tuple[int, int] = (200, 150)) -> None:
    """``path`` is a PNG of at least ``min_size`` pixels that is not blank."""
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as im:
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1], (path, im.size)
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5, f"{path} is blank"


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``compress``."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.fixture
def idx_folder(tmp_path) -> Path:
    """A small MNIST-format folder: 50 train and 20 test random 28x28 images, labels 0-9."""
    rng = np.random.default_rng(0)
    for stem, n in (("train", 50), ("t10k", 20)):
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return tmp_path


def pytest_configure(config):
    """Share XLA compilations between tests (many fits compile the same epoch): a persistent cache on disk."""
    import jax

    cache = os.environ.get("MLPJAX_TEST_JAX_CACHE", str(REPO / ".pytest_cache" / "jax"))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
