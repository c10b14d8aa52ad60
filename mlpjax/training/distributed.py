"""Several processes (``jax.distributed``): joining a multi-process run and choosing the mesh a run uses.

The mesh and the layout of arrays on it are in :mod:`mlpjax.training.mesh`; how it all fits: ``docs/distributed.md``.
"""

from __future__ import annotations

import dataclasses
import os

import jax
from jax.sharding import Mesh

from mlpjax.errors import FieldError, UserInputError
from mlpjax.training.mesh import make_mesh

COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"  # jax.distributed.initialize reads it when no address is given


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The processes of a run: ``coordinator`` is ``HOST:PORT`` of process 0 (``"auto"`` or None: from
    ``$JAX_COORDINATOR_ADDRESS`` or the cluster's environment, e.g. Slurm or Open MPI), ``num_processes`` of
    them, this one ``process_id``. All None: one process."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    def __post_init__(self):
        if self.coordinator not in (None, "auto"):
            host, _, port = self.coordinator.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise FieldError(
                    "coordinator",
                    f"{{field}} {self.coordinator!r}: expected HOST:PORT, e.g. "
                    "10.0.0.1:1234 (the address of process 0 and a free port)",
                )
        if self.num_processes is not None and self.num_processes < 1:
            raise FieldError("num_processes", f"must be at least 1, got {self.num_processes}")
        n = self.num_processes
        if self.process_id is not None and (self.process_id < 0 or n is not None and self.process_id >= n):
            raise FieldError(
                "process_id",
                f"{{field}} {self.process_id}: expected 0 to {'P-1' if n is None else n - 1} (one per process)",
            )

    @property
    def wanted(self) -> bool:
        """Whether the run is multi-process: a coordinator was given, or ``$JAX_COORDINATOR_ADDRESS`` is set."""
        return self.coordinator is not None or bool(os.environ.get(COORDINATOR_ENV))


def initialize(cluster: Cluster) -> None:
    """Join the multi-process run ``cluster`` through ``jax.distributed.initialize``; call before any other JAX
    work. On CPU the processes exchange data with gloo (``jax_cpu_collectives_implementation``)."""
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):  # type: ignore[attr-defined]  # jax.config's flags are attributes made at run time
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    coordinator = None if cluster.coordinator == "auto" else cluster.coordinator
    try:
        jax.distributed.initialize(coordinator, cluster.num_processes, cluster.process_id)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ClusterError(str(e).splitlines()[0][:300]) from None


class ClusterError(UserInputError):
    """``jax.distributed.initialize`` failed."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(
            f"jax.distributed.initialize failed ({why}); give a Cluster(coordinator, num_processes, "
            "process_id), or run under Slurm/Open MPI"
        )

    def for_cli(self, flag) -> str:
        return (
            f"jax.distributed.initialize failed ({self.why}); give --coordinator HOST:PORT --num-processes P "
            "--process-id I, or run under Slurm/Open MPI"
        )


def setup(devices: int | None = None, cluster: Cluster = Cluster(), model_parallel: int = 1) -> Mesh | None:
    """Join ``cluster`` when it is multi-process, then return the mesh over ``devices`` local devices of every
    process (default: all) with a model axis of ``model_parallel`` (see :func:`mlpjax.training.mesh.make_mesh`), or None
    for one device in one process (the plain single-device path)."""
    if cluster.wanted:
        initialize(cluster)
    elif cluster.num_processes is not None or cluster.process_id is not None:
        raise FieldError(
            "coordinator",
            f"several processes need {{field}} HOST:PORT (the address of process 0) or ${COORDINATOR_ENV}",
        )
    mesh = make_mesh(devices, model_parallel)
    return None if mesh.size == 1 else mesh


def is_primary() -> bool:
    """Whether this process writes the run's output (process 0; the only one without jax.distributed)."""
    return jax.process_index() == 0
