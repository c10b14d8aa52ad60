"""Subprocess side of tests/training/test_tensor_parallel.py: runs with 8 CPU devices (``XLA_FLAGS`` set by the
test before JAX starts) and prints one JSON object as its last line of stdout.

    python tests/workers/tensor_parallel_worker.py CONFIG_JSON  # fits on 1 device and on (data, model) meshes,
                                                                # masks, CLI

(One subprocess doing every check: JAX's start-up and compilations dominate its time.)
"""

from __future__ import annotations

import json
import sys

import numpy as np
from distributed_worker import draw_masks, run_cli, summary

MESHES = ((8, 1), (4, 2), (2, 4), (1, 8))  # (data, model)
PLACED = ((4, 2), (2, 4))  # meshes whose placed state is inspected after an epoch


def mesh_name(shape) -> str:
    return "x".join(map(str, shape))


def fits(cfg, ds) -> dict:
    """``cfg`` on one device and on every mesh of :data:`MESHES`."""
    from mlpjax.training import mesh, train

    runs = {"1": summary(train.fit(cfg, ds))}
    for data, model in MESHES:
        runs[mesh_name((data, model))] = summary(train.fit(cfg, ds, mesh=mesh.make_mesh(8, model)))
    return runs


def placed(cfg, ds, model: int) -> dict:
    """One epoch from :func:`~mlpjax.training.compiled.prepare_epoch` on ``make_mesh(8, model)`` (fit's compiled
    epoch, from the cache): the shard shapes of every state leaf (by key path) while placed, and the shapes and
    devices of :meth:`~mlpjax.training.compiled.EpochRunner.local`'s copy."""
    import jax

    from mlpjax.core.state import create_train_state
    from mlpjax.training import compiled, mesh
    from mlpjax.training.rows import Rows

    model_config = cfg.model_config(ds.input_dim, ds.num_classes)
    state = create_train_state(jax.random.PRNGKey(cfg.seed), cfg, model_config)
    layout = compiled.layout_for(mesh.make_mesh(8, model), model_config)
    epochs, state = compiled.prepare_epoch(state, Rows.from_dataset(ds, "train", layout), batch_size=cfg.batch_size)
    state, metrics = epochs(state, 0)
    local = epochs.local(state)
    leaves = jax.tree_util.tree_leaves_with_path
    return {
        "mesh": dict(epochs.layout.mesh.shape),  # type: ignore[union-attr]  # laid out on a mesh
        "loss": float(epochs.local(metrics)["loss"]),
        "shards": {
            jax.tree_util.keystr(p): sorted({s.data.shape for s in a.addressable_shards}) for p, a in leaves(state)
        },
        "local": {jax.tree_util.keystr(p): [list(a.shape), len(a.devices())] for p, a in leaves(local)},
    }


def masks() -> dict:
    """Dropout masks of a global batch drawn inside jit: unsharded vs sharded over both axes ``(data, model)``."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from mlpjax.training import mesh

    _, plain = draw_masks(104)
    out = {
        "partitionable": bool(jax.config.jax_threefry_partitionable),  # type: ignore[attr-defined]
        "keep_fraction": float(np.mean(plain[0])),
    }
    for data, m in PLACED:
        sharding = NamedSharding(mesh.make_mesh(8, m), P(mesh.DATA, mesh.MODEL))
        _, sharded = draw_masks(104, sharding)
        out[f"equal_{mesh_name((data, m))}"] = all(np.array_equal(a, b) for a, b in zip(plain, sharded, strict=True))
    return out


def cli(*argv: str) -> dict:
    """``mlpjax train ARGV`` in this process (:func:`distributed_worker.run_cli`)."""
    return run_cli(["train", *argv])


def main(argv: list[str]) -> None:
    from mlpjax import data
    from mlpjax.core.config import TrainConfig
    from mlpjax.training import mesh, train

    spec = json.loads(argv[0])
    ds, cfg = data.load_dataset(spec["dataset"]), TrainConfig.from_dict(spec)
    two_layers = cfg.replace(hidden=[32, 16], epochs=2)
    # the config's flags, so that the command line reuses the compilations of fit on the 4x2 mesh
    flags = [
        "--hidden",
        *map(str, cfg.model.hidden),
        "--batch-size",
        str(cfg.batch_size),
        "--lr",
        str(cfg.lr),
        "--quiet",
    ]
    out = {
        "runs": fits(cfg, ds),
        "two_layers": {
            "1": summary(train.fit(two_layers, ds)),
            "2x4": summary(train.fit(two_layers, ds, mesh=mesh.make_mesh(8, 4))),
        },
        "placed": {mesh_name(shape): placed(cfg, ds, shape[1]) for shape in PLACED},
        "masks": masks(),
        "cli": cli("--dataset", "digits", "--devices", "8", "--model-parallel", "2", "--epochs", "1", *flags),
        "cli_hidden": cli(
            "--dataset", "digits", "--devices", "8", "--model-parallel", "4", "--hidden", "30", "--quiet"
        ),
        "cli_devices": cli("--dataset", "digits", "--devices", "8", "--model-parallel", "3", "--quiet"),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
