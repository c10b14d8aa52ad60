"""Data parallelism with ``jax.sharding``: a ``data`` mesh axis, on one process or several (``jax.distributed``),
and optionally a ``model`` axis that shards the hidden layers' weights (tensor parallel).

Layout (see :class:`DataParallel`):

- params, optimizer state, step and PRNG key: replicated on every device of the mesh (``P()``); with a ``model``
  axis of size ``M > 1``, each layer's weights split over it, Megatron-style (:func:`param_spec`): every hidden
  layer's kernel ``(in, h)`` by columns ``P(None, 'model')`` and its bias ``P('model')``, the output kernel
  ``(h, C)`` by rows ``P('model', None)``, the output bias replicated; the optimizer state's param-shaped leaves
  (Adam's ``mu``, ``nu``) like their param. One hidden layer (the tutorial's) needs one all-reduce of the logits
  over ``model`` a step; each further hidden layer an all-gather of its input activations (XLA inserts both);
- each global batch of ``B`` examples: padded with weight-0 rows to a multiple of the device count ``N`` and
  sharded over ``data`` (``P('data')``): device ``k`` holds rows ``k*B/N ... (k+1)*B/N - 1`` of every batch;
- the training and test arrays: on one process, replicated on every device, and each device gathers its own
  rows of each batch (no communication); on several processes, their rows are sharded over ``data`` (each
  process holds one contiguous block, :meth:`DataParallel.process_rows`) and each device's rows of a batch are
  gathered with one reduce-scatter (every device contributes the examples it holds, zeros elsewhere).

The shuffle is global: the permutation of epoch ``e`` is computed inside the jitted epoch from the replicated
PRNG key, identical on every device and process, so the global batch ``s`` holds the same examples whatever the
device count. The gradient of the weighted-mean loss is then the same sum, only split into per-device partial
sums (XLA inserts the all-reduce): results equal one device's up to float reassociation.

Dropout masks are drawn for the whole global batch from one key inside the jitted step. Under ``jit`` random
values never depend on sharding; with ``jax_threefry_partitionable`` (the default since JAX 0.5) each device
computes only its own rows of the masks, and the bits of row ``r`` depend on ``r`` and the row width alone, so
padding a batch with extra rows leaves the masks of the real rows unchanged. Without that flag a padded batch
(``B`` not divisible by ``N``) draws different masks than an unpadded one: :func:`check_padding` warns. The masks
of a layer whose units are split over ``model`` are likewise the unsharded masks, each device drawing its block.

The ``model`` axis lies within each process (:func:`make_mesh`), so each process holds every shard of the
weights and :meth:`DataParallel.local` assembles its full copy without communication.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mlpjax.errors import UserInputError

DATA = "data"
MODEL = "model"
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"  # jax.distributed.initialize reads it when no address is given


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Join a multi-process run through ``jax.distributed.initialize``; call before any other JAX work.

    ``coordinator`` is ``HOST:PORT`` of process 0 (``"auto"`` or None: from ``$JAX_COORDINATOR_ADDRESS`` or
    the cluster's environment, e.g. Slurm or Open MPI). On CPU the processes exchange data with gloo
    (``jax_cpu_collectives_implementation``).
    """
    if coordinator == "auto":
        coordinator = None
    if coordinator is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserInputError(f"--coordinator {coordinator!r}: expected HOST:PORT, e.g. 10.0.0.1:1234 "
                                 "(the address of process 0 and a free port)")
    if num_processes is not None and num_processes < 1:
        raise UserInputError(f"--num-processes must be at least 1, got {num_processes}")
    if process_id is not None and (process_id < 0 or num_processes is not None and process_id >= num_processes):
        raise UserInputError(f"--process-id {process_id}: expected 0 to "
                             f"{'P-1' if num_processes is None else num_processes - 1} (one per process)")
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (ValueError, TypeError, RuntimeError) as e:
        raise UserInputError(f"jax.distributed.initialize failed ({str(e).splitlines()[0][:300]}); give "
                             "--coordinator HOST:PORT --num-processes P --process-id I, or run under "
                             "Slurm/Open MPI") from None


def wants_initialize(coordinator: str | None) -> bool:
    """Whether a run is multi-process: a coordinator was given, or ``$JAX_COORDINATOR_ADDRESS`` is set."""
    return coordinator is not None or bool(os.environ.get(COORDINATOR_ENV))


def make_mesh(devices: int | None = None, model_parallel: int = 1) -> Mesh:
    """A mesh over the first ``devices`` local devices of every process (default: all).

    ``model_parallel`` 1: 1-D, axis ``data``. ``M > 1``: 2-D, axes ``(data, model)`` of shape
    ``(devices * processes / M, M)``, each row of ``M`` devices within one process (``M`` must divide ``devices``).
    Devices are ordered process by process, so each process's devices hold one contiguous block of rows.
    """
    local = jax.local_device_count()
    count = local if devices is None else int(devices)
    if not 1 <= count <= local:
        raise UserInputError(f"--devices {count}: this process has {local} {jax.default_backend()} device(s); "
                             f"give 1 to {local} (on CPU, more with "
                             "XLA_FLAGS=--xla_force_host_platform_device_count=N)")
    if model_parallel < 1 or count % model_parallel:
        divisors = ", ".join(str(m) for m in range(1, count + 1) if count % m == 0)
        raise UserInputError(f"--model-parallel {model_parallel}: the model axis must divide --devices {count} "
                             f"(the devices of each process): give one of {divisors}")
    chosen = np.array([d for p in range(jax.process_count())
                       for d in sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)[:count]])
    if model_parallel == 1:
        return Mesh(chosen, (DATA,), axis_types=(AxisType.Auto,))
    return Mesh(chosen.reshape(-1, model_parallel), (DATA, MODEL), axis_types=(AxisType.Auto,) * 2)


def describe(mesh: Mesh) -> str:
    """How a run uses ``mesh``, for the command's first line."""
    model = dict(mesh.shape).get(MODEL, 1)
    if model == 1:
        return f"data-parallel over {mesh.size} devices"
    return f"{mesh.size} devices: data-parallel over {mesh.size // model} x tensor-parallel over {model}"


def setup(devices: int | None = None, coordinator: str | None = None, num_processes: int | None = None,
          process_id: int | None = None, model_parallel: int = 1) -> Mesh | None:
    """What ``mlpjax train --devices N --model-parallel M --coordinator HOST:PORT --num-processes P
    --process-id I`` asks for.

    Joins the multi-process run when a coordinator is given (or ``$JAX_COORDINATOR_ADDRESS`` is set), then
    returns the mesh over ``devices`` local devices of every process (default: all; see :func:`make_mesh`), or
    None for one device in one process (the plain single-device path).
    """
    if wants_initialize(coordinator):
        initialize(coordinator, num_processes, process_id)
    elif num_processes is not None or process_id is not None:
        raise UserInputError("--num-processes and --process-id need --coordinator HOST:PORT (the address of "
                             f"process 0) or ${COORDINATOR_ENV}")
    mesh = make_mesh(devices, model_parallel)
    return None if mesh.size == 1 else mesh


def is_primary() -> bool:
    """Whether this process writes the run's output (process 0; the only one without jax.distributed)."""
    return jax.process_index() == 0


def _key_name(key) -> str:
    """The name of one entry of a pytree key path (a dict key, an attribute, an index)."""
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def param_spec(path: tuple, ndim: int) -> P:
    """The ``model``-axis split of the leaf at key ``path`` with ``ndim`` dimensions, from its last two keys.

    ``hidden_i/kernel`` ``(in, h)``: ``P(None, 'model')``; ``hidden_i/bias`` ``(h,)``: ``P('model')``;
    ``output/kernel`` ``(h, C)``: ``P('model', None)``; anything else (the output bias, step, PRNG key, Adam's
    ``count``): ``P()``. The same rule serves the params and the optimizer state (``.../mu/hidden_0/kernel``).
    """
    layer, name = ([""] * 2 + [_key_name(k) for k in path])[-2:]
    if layer.startswith("hidden_"):
        spec = {"kernel": P(None, MODEL), "bias": P(MODEL)}.get(name, P())
    else:
        spec = P(MODEL, None) if (layer, name) == ("output", "kernel") else P()
    return spec if len(spec) == ndim else P()


def split_width(spec: P, shape: tuple[int, ...]) -> int | None:
    """The size of the dimension that ``spec`` splits over ``model`` (a hidden width), or None."""
    return next((n for n, axis in zip(shape, spec) if axis == MODEL), None)


def check_widths(mesh: Mesh | None, hidden) -> None:
    """Every hidden width must divide by the size of ``mesh``'s ``model`` axis (if any): a clear error if not."""
    model_size = 1 if mesh is None else int(dict(mesh.shape).get(MODEL, 1))
    for width in hidden:
        if width % model_size:
            raise UserInputError(f"--hidden {width}: with --model-parallel {model_size} every hidden width must "
                                 f"divide by {model_size}")


def check_padding(batch_size: int, size: int) -> None:
    """Warn when padding a batch of ``batch_size`` for ``size`` devices would change the dropout masks."""
    if batch_size % size and not jax.config.jax_threefry_partitionable:
        warnings.warn(f"batch size {batch_size} is padded to a multiple of {size} devices and "
                      "jax_threefry_partitionable is off: the dropout masks differ from a one-device run's",
                      stacklevel=3)


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """How a run uses ``mesh``: params replicated (or split over ``model``, :meth:`shardings`), batches sharded over
    ``data`` (replicated over ``model``), dataset rows placed. ``mesh``: from :func:`make_mesh`, axes ``(data,)``
    or ``(data, model)``.

    ``shard_rows``: the dataset's rows are sharded over ``data`` (each process holds its block; each batch is
    gathered with a reduce-scatter) rather than replicated on every device. Default: sharded exactly when the
    mesh spans several processes, where no process holds the whole dataset on its devices.
    """

    mesh: Mesh
    shard_rows: bool | None = None

    def __post_init__(self):
        if self.mesh.axis_names not in ((DATA,), (DATA, MODEL)):
            raise ValueError(f"expected a mesh with axes ({DATA!r},) or ({DATA!r}, {MODEL!r}), "
                             f"got {self.mesh.axis_names}")
        if any(len({d.process_index for d in row}) > 1 for row in self.mesh.devices.reshape(self.size, -1)):
            raise ValueError(f"each row of the {MODEL!r} axis must lie within one process (see make_mesh)")
        if self.shard_rows is None:
            object.__setattr__(self, "shard_rows", self.process_count > 1)

    @property
    def size(self) -> int:
        """Devices along ``data``: every global batch is padded to a multiple of it."""
        return int(self.mesh.shape[DATA])

    @property
    def model_size(self) -> int:
        """Devices along ``model`` (1 without that axis): each hidden layer's weights are split ``model_size`` ways."""
        return int(dict(self.mesh.shape).get(MODEL, 1))

    @property
    def process_count(self) -> int:
        return len({d.process_index for d in self.mesh.devices.flat})

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    @property
    def batch_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(DATA))

    @property
    def rows_sharding(self) -> NamedSharding:
        """Where the dataset's rows live: sharded over ``data`` or replicated."""
        return self.batch_sharding if self.shard_rows else self.replicated

    def padded_rows(self, n: int) -> int:
        """Rows of the placed array for ``n`` examples: ``n`` rounded up to a multiple of the device count
        when rows are sharded (the extra rows are zeros and never drawn), else ``n``."""
        return -(-n // self.size) * self.size if self.shard_rows else n

    def _block(self, n: int) -> tuple[int, int]:
        """Rows ``[lo, hi)`` of the padded ``(padded_rows(n), ...)`` array on this process's devices."""
        rows = self.padded_rows(n)
        if not self.shard_rows:
            return 0, rows
        index = [i[0] for i in self.rows_sharding.addressable_devices_indices_map((rows,)).values()]
        return min(i.start or 0 for i in index), max(rows if i.stop is None else i.stop for i in index)

    def process_rows(self, n: int) -> slice:
        """The example indices (of ``n``) whose rows this process holds: a contiguous block when rows are
        sharded, all of them otherwise; a loader need only read these."""
        lo, hi = self._block(n)
        return slice(min(lo, n), min(hi, n))

    def put_rows(self, a: np.ndarray) -> jax.Array:
        """Place dataset rows ``a`` ``(n, ...)`` as a global ``(padded_rows(n), ...)`` array with
        :attr:`rows_sharding`; only ``a[process_rows(n)]`` is read and transferred from this process."""
        a = np.asarray(a)
        n = len(a)
        if not self.shard_rows:
            return self._put(self.replicated, a, a.shape)
        lo, hi = self._block(n)
        block = self.process_rows(n)
        local = np.zeros((hi - lo,) + a.shape[1:], a.dtype)
        local[: block.stop - block.start] = a[block]
        return self._put(self.rows_sharding, local, (self.padded_rows(n),) + a.shape[1:])

    def shardings(self, tree: Any) -> Any:
        """``tree`` (a state, params, a scalar) with a ``NamedSharding`` for each leaf: :func:`param_spec` of its key
        path when :attr:`model_size` > 1, else replicated. A split hidden width must divide by the model size."""
        def sharding(path, leaf):
            spec = param_spec(path, len(np.shape(leaf))) if self.model_size > 1 else P()
            check_widths(self.mesh, [w for w in [split_width(spec, np.shape(leaf))] if w is not None])
            return NamedSharding(self.mesh, spec)

        return jax.tree_util.tree_map_with_path(sharding, tree)

    def put_state(self, tree: Any) -> Any:
        """Copy every array leaf of ``tree`` (the same value on every process: a state, params, a scalar) to the
        mesh, laid out by :meth:`shardings`."""
        return jax.tree_util.tree_map(lambda a, s: self._put(s, np.asarray(a), np.shape(a)), tree,
                                      self.shardings(tree))

    def _put(self, sharding: NamedSharding, local: np.ndarray, global_shape: tuple[int, ...]) -> jax.Array:
        if self.process_count == 1:
            return jax.device_put(local, sharding)
        return jax.make_array_from_process_local_data(sharding, local, global_shape)

    def local(self, tree: Any) -> Any:
        """This process's full copy of every leaf of ``tree`` placed on the mesh (replicated, or split over
        ``model``): single-device arrays, as a one-device run has them (readable with ``float``/``np.asarray``
        on any process, savable, usable with other arrays)."""
        return jax.tree_util.tree_map(lambda a: local_copy(a) if isinstance(a, jax.Array) else a, tree)

    def batch(self, x: jax.Array, y: jax.Array, idx: jax.Array, weight: jax.Array) -> dict[str, jax.Array]:
        """The global batch ``x[idx]``, ``y[idx]``, ``weight`` for ``idx`` ``(W,)`` (``W`` a multiple of the
        device count), sharded over ``data``. Inside ``jit`` only."""
        spec = P(DATA)
        if self.shard_rows:
            def gather(xs, ys, i):  # xs: this device's rows; i: every index of the batch
                j = i - jax.lax.axis_index(DATA) * xs.shape[0]
                mine = (j >= 0) & (j < xs.shape[0])
                j = jnp.where(mine, j, 0)
                xb = jnp.where(mine[:, None], xs[j], jnp.zeros((), xs.dtype))
                yb = jnp.where(mine, ys[j], jnp.zeros((), ys.dtype))
                # Exactly one device holds each example: summing its row with zeros is exact.
                return tuple(jax.lax.psum_scatter(b, DATA, scatter_dimension=0, tiled=True) for b in (xb, yb))

            in_specs = (spec, spec, P())
        else:
            def gather(xs, ys, i):  # xs: every row; i: this device's slice of the batch
                return xs[i], ys[i]

            in_specs = (P(), P(), spec)
        image, label = jax.shard_map(gather, mesh=self.mesh, in_specs=in_specs, out_specs=(spec, spec))(x, y, idx)
        return {"image": image, "label": label,
                "weight": jax.lax.with_sharding_constraint(weight, self.batch_sharding)}


def local_copy(a: jax.Array) -> jax.Array:
    """The whole of ``a`` on its first device of this process: that device's buffer when ``a`` is replicated, else
    assembled on the host from this process's shards of ``a``, which must cover it (a ``model`` axis within the
    process, :func:`make_mesh`). No communication between processes."""
    if a.is_fully_replicated:
        return a.addressable_data(0)
    whole = np.empty(a.shape, a.dtype)
    for shard in a.addressable_shards:
        whole[shard.index] = np.asarray(shard.data)
    return jax.device_put(whole, a.addressable_shards[0].device)
