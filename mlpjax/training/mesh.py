"""Where arrays live on a device mesh: the ``data`` axis (batches split, rows placed) and an optional ``model``
axis (each hidden layer's weights split, Megatron-style). The layout and its reasons: ``docs/distributed.md``.

Place arrays once with :meth:`MeshLayout.put_state` / :meth:`MeshLayout.put_rows`; jitted functions then take
their shardings from the arrays, and pin their outputs with :meth:`MeshLayout.constrain`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mlpjax.errors import FieldError

DATA = "data"
MODEL = "model"


def make_mesh(devices: int | None = None, model_parallel: int = 1) -> Mesh:
    """A mesh over the first ``devices`` local devices of every process (default: all).

    ``model_parallel`` 1: 1-D, axis ``data``. ``M > 1``: 2-D, axes ``(data, model)`` of shape
    ``(devices * processes / M, M)``, each row of ``M`` devices within one process (``M`` must divide ``devices``).
    Devices are ordered process by process, so each process's devices hold one contiguous block of rows.
    """
    local = jax.local_device_count()
    count = local if devices is None else int(devices)
    if not 1 <= count <= local:
        raise FieldError(
            "devices",
            f"{{field}} {count}: this process has {local} {jax.default_backend()} "
            f"device(s); give 1 to {local} (on CPU, more with "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N)",
        )
    if model_parallel < 1 or count % model_parallel:
        divisors = ", ".join(str(m) for m in range(1, count + 1) if count % m == 0)
        raise DevicesError(model_parallel, count, divisors)
    chosen = np.array(
        [
            d
            for p in range(jax.process_count())
            for d in sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)[:count]
        ]
    )
    if model_parallel == 1:
        return Mesh(chosen, (DATA,), axis_types=(AxisType.Auto,))
    return Mesh(chosen.reshape(-1, model_parallel), (DATA, MODEL), axis_types=(AxisType.Auto,) * 2)


class DevicesError(FieldError):
    """A model axis that does not divide the devices of each process."""

    def __init__(self, model_parallel: int, devices: int, divisors: str):
        self.devices = devices
        super().__init__(
            "model_parallel",
            f"{{field}} {model_parallel}: the model axis must divide the "
            f"{devices} devices of each process: give one of {divisors}",
        )

    def for_cli(self, flag) -> str:
        return (
            super()
            .for_cli(flag)
            .replace(
                f"the {self.devices} devices of each process",
                f"{flag('devices')} {self.devices} (the devices of each process)",
            )
        )


def describe(mesh: Mesh) -> str:
    """How a run uses ``mesh``, for the command's first line."""
    model = dict(mesh.shape).get(MODEL, 1)
    if model == 1:
        return f"data-parallel over {mesh.size} devices"
    return f"{mesh.size} devices: data-parallel over {mesh.size // model} x tensor-parallel over {model}"


def _key_name(key) -> str:
    """The name of one entry of a pytree key path (a dict key, an attribute, an index)."""
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


Splits = Mapping[str, Mapping[str, tuple[bool, ...]]]  # layer -> param -> per axis, split over ``model``?


def param_spec(path: tuple, ndim: int, splits: Splits) -> P:
    """The ``model``-axis split of the leaf at key ``path`` with ``ndim`` dimensions.

    Its last two keys name a layer and a param (``.../hidden_0/kernel``, also inside the optimizer state:
    ``.../mu/hidden_0/kernel``); ``splits`` (:meth:`mlpjax.core.model.ModelConfig.tensor_splits`) says which of
    that param's axes split over ``model``. Anything else (step, PRNG key, Adam's ``count``) is replicated, ``P()``.
    """
    layer, name = ([""] * 2 + [_key_name(k) for k in path])[-2:]
    split = splits.get(layer, {}).get(name, ())
    return P(*(MODEL if s else None for s in split)) if len(split) == ndim and any(split) else P()


def split_width(spec: P, shape: tuple[int, ...]) -> int | None:
    """The size of the dimension that ``spec`` splits over ``model`` (a hidden width), or None."""
    return next((n for n, axis in zip(shape, spec, strict=False) if axis == MODEL), None)  # P() may be shorter


def check_widths(mesh: Mesh | None, widths) -> None:
    """Every split width (:meth:`mlpjax.core.model.ModelConfig.split_widths`: the hidden widths) must divide by
    the size of ``mesh``'s ``model`` axis (if any): a clear error if not."""
    model_size = 1 if mesh is None else int(dict(mesh.shape).get(MODEL, 1))
    for width in widths:
        if width % model_size:
            raise FieldError(
                "hidden",
                f"{{field}} {width}: with {{model_parallel}} {model_size} every hidden width "
                f"must divide by {model_size}",
                also=("model_parallel",),
            )


def check_padding(batch_size: int, size: int) -> None:
    """Warn when padding a batch of ``batch_size`` for ``size`` devices would change the dropout masks."""
    if batch_size % size and not jax.config.jax_threefry_partitionable:  # type: ignore[attr-defined]  # jax.config's flags are attributes made at run time
        warnings.warn(
            f"batch size {batch_size} is padded to a multiple of {size} devices and "
            "jax_threefry_partitionable is off: the dropout masks differ from a one-device run's",
            stacklevel=3,
        )


@dataclasses.dataclass(frozen=True)
class MeshLayout:
    """How a run lays arrays out on ``mesh`` (from :func:`make_mesh`, axes ``(data,)`` or ``(data, model)``):
    params replicated, or split over ``model`` by kind of layer (:meth:`shardings`); batches sharded over
    ``data``; dataset rows placed (:meth:`put_rows`).

    ``splits``: which axes of each layer's params split over ``model``
    (:meth:`mlpjax.core.model.ModelConfig.tensor_splits`); a mapping is kept as sorted pairs, so the layout is
    hashable (a static part of :class:`mlpjax.training.rows.Rows`). ``shard_rows``: the dataset's rows are sharded
    over ``data`` (each process holds its block; each batch is gathered with a reduce-scatter) rather than replicated
    on every device. Default: sharded exactly when the mesh spans several processes, where no process holds the whole
    dataset on its devices.
    """

    mesh: Mesh
    splits: tuple | Splits = ()
    shard_rows: bool | None = None

    def __post_init__(self):
        object.__setattr__(
            self,
            "splits",
            tuple(sorted((layer, tuple(sorted(dict(params).items()))) for layer, params in dict(self.splits).items())),
        )
        if self.mesh.axis_names not in ((DATA,), (DATA, MODEL)):
            raise ValueError(
                f"expected a mesh with axes ({DATA!r},) or ({DATA!r}, {MODEL!r}), got {self.mesh.axis_names}"
            )
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
        index = [i[0] for i in self.rows_sharding.addressable_devices_indices_map((rows,)).values()]  # type: ignore[index]  # rows are split: no None
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
        # __post_init__ keeps splits as sorted (layer, pairs) pairs, never the Mapping it accepts
        splits = {layer: dict(params) for layer, params in self.splits}  # type: ignore[str-unpack, arg-type]

        def sharding(path, leaf):
            spec = param_spec(path, len(np.shape(leaf)), splits) if self.model_size > 1 else P()
            check_widths(self.mesh, [w for w in [split_width(spec, np.shape(leaf))] if w is not None])
            return NamedSharding(self.mesh, spec)

        return jax.tree_util.tree_map_with_path(sharding, tree)

    def put_state(self, tree: Any) -> Any:
        """Copy every array leaf of ``tree`` (the same value on every process: a state, params, a scalar) to the
        mesh, laid out by :meth:`shardings`."""
        return jax.tree_util.tree_map(lambda a, s: self._put(s, np.asarray(a), np.shape(a)), tree, self.shardings(tree))

    def constrain(self, tree: Any) -> Any:
        """Inside ``jit``: pin ``tree``'s layout to :meth:`shardings`, so a jitted function returns its state
        laid out as it came in."""
        return jax.lax.with_sharding_constraint(tree, self.shardings(tree))

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
        return {"image": image, "label": label, "weight": jax.lax.with_sharding_constraint(weight, self.batch_sharding)}


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
