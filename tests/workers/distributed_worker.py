"""Subprocess side of tests/training/test_distributed.py: runs with several CPU devices (``XLA_FLAGS`` set by the test
before JAX starts) and prints one JSON object as its last line of stdout.

    python tests/workers/distributed_worker.py devices SPECS_JSON [masks]  # each run on 1, 2 and 8 devices; the masks
    python tests/workers/distributed_worker.py process SPEC_JSON PORT ID NUM  # one of NUM processes
    python tests/workers/distributed_worker.py cli ARGV_JSON PORT ID NUM  # mlpjax ARGV as one of NUM processes

(Few subprocesses, each doing several checks: JAX's start-up and compilations dominate their time.)
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np


def dataset(spec):
    from mlpjax import data

    ds = data.load_dataset(spec["dataset"], spec.get("data_dir"))
    n_train, n_test = spec.get("n_train"), spec.get("n_test")
    if n_train or n_test:
        ds = ds.head(n_train, n_test)
    return ds


def config(spec):
    from mlpjax.core.config import TrainConfig

    return TrainConfig.from_dict(spec["config"])


MASK_CONFIG: dict[str, Any] = {"input_dim": 4, "hidden": (24, 8), "dropout": 0.5}
MASK_SEED = 7


def draw_masks(batch: int, sharding=None) -> tuple:
    """The dropout masks of :data:`MASK_CONFIG` for a global ``batch`` drawn inside jit from
    ``PRNGKey(MASK_SEED)``, with every mask placed
    by ``sharding`` (None: unsharded): ``(jitted function, [numpy masks])``."""
    import jax

    from mlpjax.core import model

    cfg = model.ModelConfig(**MASK_CONFIG)
    fn = jax.jit(
        lambda k: model.dropout_masks(k, cfg, batch),
        out_shardings=None if sharding is None else [sharding] * len(cfg.hidden),
    )
    return fn, [np.asarray(m) for m in fn(jax.random.PRNGKey(MASK_SEED))]


def masks() -> dict:
    """Dropout masks of a global batch drawn inside jit: unsharded vs sharded over 2 and 8 devices."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from mlpjax.training import mesh as mesh_lib

    _, plain = draw_masks(104)
    _, unpadded = draw_masks(100)
    out: dict[str, Any] = {
        "partitionable": bool(jax.config.jax_threefry_partitionable),  # type: ignore[attr-defined]  # jax.config's flags are attributes made at run time
        "devices": jax.device_count(),
    }
    for n in (2, 8):
        mesh = mesh_lib.make_mesh(n)
        fn, sharded = draw_masks(104, NamedSharding(mesh, P(mesh_lib.DATA)))
        hlo = fn.lower(jax.random.PRNGKey(MASK_SEED)).compile().as_text()
        out[f"equal_{n}"] = all(np.array_equal(a, b) for a, b in zip(plain, sharded, strict=True))
        out[f"collectives_{n}"] = [
            op for op in ("all-gather", "all-reduce", "all-to-all", "collective-permute") if op in hlo
        ]
    out["padded_prefix_equal"] = all(np.array_equal(a[:100], b) for a, b in zip(plain, unpadded, strict=True))
    out["keep_fraction"] = float(np.mean(plain[0]))
    with jax.threefry_partitionable(False):  # the older generator: other bits, still sharding-invariant
        _, old = draw_masks(104)
        _, old_sharded = draw_masks(104, NamedSharding(mesh_lib.make_mesh(8), P(mesh_lib.DATA)))
    out["unpartitionable_equal_8"] = all(np.array_equal(a, b) for a, b in zip(old, old_sharded, strict=True))
    out["unpartitionable_differs"] = not all(np.array_equal(a, b) for a, b in zip(old, plain, strict=True))
    return out


def summary(result) -> dict:
    """What the tests compare of a fit: the history, the device and process counts, the step, and on how many
    devices each leaf of the returned state lives (1: this process's single-device copy)."""
    import jax

    return {
        "history": result.history,
        "devices": result.devices,
        "processes": result.processes,
        "step": int(result.state.step),
        "state_devices": sorted({len(a.devices()) for a in jax.tree_util.tree_leaves(result.state)}),
    }


def devices(spec) -> dict:
    """fit on one device (no mesh), then on meshes of 2 and 8 (``extra``: also the epochs with the rows
    sharded over 8 devices, as on several processes)."""
    import jax

    from mlpjax.core.state import create_train_state
    from mlpjax.training import compiled, mesh, train
    from mlpjax.training.rows import Rows

    ds, cfg = dataset(spec), config(spec)
    runs = {"1": train.fit(cfg, ds)}
    for n in (2, 8):
        runs[str(n)] = train.fit(cfg, ds, mesh=mesh.make_mesh(n))
    out = {k: summary(r) for k, r in runs.items()}
    if not spec.get("extra"):
        return out
    # The multi-process layout (rows sharded, each batch gathered by reduce-scatter), here on one process.
    model_config = cfg.model_config(ds.input_dim, ds.num_classes)
    state = create_train_state(jax.random.PRNGKey(cfg.seed), cfg, model_config)
    layout = compiled.layout_for(mesh.make_mesh(8), model_config, shard_rows=True)
    epochs, state = compiled.prepare_epoch(state, Rows.from_dataset(ds, "train", layout), batch_size=cfg.batch_size)
    losses = []
    for epoch in range(cfg.epochs):
        state, metrics = epochs(state, epoch)
        losses.append(float(epochs.local(metrics)["loss"]))
    x = epochs.rows.x
    out["8_rows"] = {
        "loss": losses,
        "x_rows": int(x.shape[0]),
        "steps": epochs.steps,
        "x_shard_rows": sorted({s.data.shape[0] for s in x.addressable_shards}),
    }
    out["cli"] = cli_checkpoints(cfg)
    return out


def cli_checkpoints(cfg) -> dict:
    """``mlpjax train --devices 2 --output DIR`` for one epoch, then ``--resume DIR --devices 8`` for one more."""
    import tempfile
    from pathlib import Path

    from mlpjax import cli

    flags = [
        "--dataset",
        cfg.dataset,
        "--batch-size",
        str(cfg.batch_size),
        "--hidden",
        *map(str, cfg.model.hidden),
        "--lr",
        str(cfg.lr),
        "--seed",
        str(cfg.seed),
        "--quiet",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        run = str(Path(tmp) / "run")
        codes = [
            cli.main(["train", *flags, "--epochs", "1", "--devices", "2", "--output", run]),
            cli.main(["train", "--resume", run, "--epochs", "2", "--devices", "8", "--quiet"]),
        ]
        record = json.loads((Path(run) / "metrics.json").read_text())
    return {"codes": codes, "history": record["history"], "devices": record["devices"]}


def process(spec, port: str, process_id: int, num: int) -> dict:
    """One of ``num`` processes of a fit over loopback, set up as ``mlpjax train --coordinator`` does;
    only process 0 passes a ``log``. With ``spec["output"]``: a checkpointed run into that directory."""
    import jax

    from mlpjax.runs import run
    from mlpjax.training import distributed, train
    from mlpjax.training import mesh as mesh_lib

    cluster = distributed.Cluster(f"127.0.0.1:{port}", num, process_id)
    mesh = distributed.setup(None, cluster)  # before any other JAX work
    ds, cfg = dataset(spec), config(spec)
    lines: list[str] = []
    log = lines.append if distributed.is_primary() else None
    if spec.get("output"):
        result = run.start(spec["output"], cfg, save_best=True).fit(ds, mesh=mesh, log=log)
    else:
        result = train.fit(cfg, ds, mesh=mesh, log=log)
    assert mesh is not None  # setup gives every process the mesh
    layout = mesh_lib.MeshLayout(mesh)
    rows = layout.process_rows(len(ds.y_train))
    return {
        "history": result.history,
        "devices": result.devices,
        "processes": result.processes,
        "process_count": jax.process_count(),
        "shard_rows": layout.shard_rows,
        "rows": [rows.start, rows.stop],
        "lines": lines,
    }


def run_cli(argv: list[str]) -> dict:
    """``mlpjax ARGV`` in this process: its exit status, stdout and stderr."""
    import contextlib
    import io

    from mlpjax import cli as mlpjax_cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = mlpjax_cli.main(argv)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def cli(argv: list[str], port: str, process_id: int, num: int) -> dict:
    """``mlpjax ARGV --coordinator 127.0.0.1:PORT --num-processes NUM --process-id ID``, by :func:`run_cli`."""
    return run_cli(
        [*argv, "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(num), "--process-id", str(process_id)]
    )


def main(argv: list[str]) -> None:
    what = argv[0]
    if what == "devices":  # devices SPECS_JSON [masks]
        out = {name: devices(spec) for name, spec in json.loads(argv[1]).items()}
        if argv[2:3] == ["masks"]:
            out["masks"] = masks()
    else:  # process or cli
        run = process if what == "process" else cli
        out = run(json.loads(argv[1]), argv[2], int(argv[3]), int(argv[4]))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
