"""Run a small vmapped sweep with its model axis over every (forced CPU) device; print the histories as JSON.

Run by tests/sweep/test_sweep.py with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``: argv is the number of
devices of the model mesh and the seeds, comma-separated.
"""

from __future__ import annotations

import json
import sys

import jax

from mlpjax import data, sweep
from mlpjax.sweep import stack


def main(devices: int, seeds: list[int]) -> None:
    assert len(jax.devices()) >= devices, jax.devices()
    configs = sweep.grid(
        dict(dataset="digits", epochs=2, batch_size=32, hidden=(32,)), {"seed": seeds, "dropout": [0.0, 0.3]}
    )
    result = sweep.run_sweep(configs, data.load_dataset("digits"), strategy="vmap", mesh=stack.model_mesh(devices))
    print(
        json.dumps(
            {
                "devices": result.groups[0].devices,
                "histories": [r.history for r in result.runs],
                "test_loss": [r.test_metrics["loss"] for r in result.runs],
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")])
