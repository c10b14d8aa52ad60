"""The rows an epoch or an evaluation reads, placed once on the devices: :class:`Rows`."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mlpjax import data
from mlpjax.training.mesh import MeshLayout


def batch_indices(
    n: int, batch_size: int, order: jax.Array | None = None, *, multiple: int = 1
) -> tuple[jax.Array, jax.Array]:
    """``(steps, width)`` example indices covering ``n`` examples in ``order`` and their weights (0 pads).

    ``steps`` is ``ceil(n / batch_size)``: the last partial batch is kept, padded with weight-0 copies of
    example 0, as are the extra columns when ``width`` is ``batch_size`` rounded up to a ``multiple`` (the
    device count), so the batches hold the same examples whatever ``multiple``.
    """
    steps = math.ceil(n / batch_size)
    order = jnp.arange(n) if order is None else order
    padded = jnp.concatenate([order, jnp.zeros(steps * batch_size - n, order.dtype)]).reshape(steps, batch_size)
    weight = (jnp.arange(steps * batch_size) < n).astype(jnp.float32).reshape(steps, batch_size)
    extra = -batch_size % multiple
    if extra:
        padded = jnp.concatenate([padded, jnp.zeros((steps, extra), padded.dtype)], axis=1)
        weight = jnp.concatenate([weight, jnp.zeros((steps, extra), weight.dtype)], axis=1)
    return padded, weight


@struct.dataclass
class Rows:
    """Examples on the devices: features ``x`` ``(R, D)`` and int32 labels ``y`` ``(R,)``, of which the first
    ``count`` are examples (more rows are padding, never drawn).

    ``x`` holds the encoded features of :class:`mlpjax.data.Dataset`: with ``pixel_levels``, uint8 levels
    that :meth:`batch` looks up in the float32 table of level values (a quarter of the memory, the same bits
    as training on floats); else float32. ``layout`` None: one device; else the arrays are placed on its
    mesh and batches are sharded over its ``data`` axis. A pytree: ``x``, ``y`` are leaves (their shardings
    travel with them), the rest is static, so ``jax.jit`` needs no shardings of its own.
    """

    x: jax.Array
    y: jax.Array
    count: int = struct.field(pytree_node=False)
    pixel_levels: int | None = struct.field(pytree_node=False, default=None)
    layout: MeshLayout | None = struct.field(pytree_node=False, default=None)

    @classmethod
    def place(cls, x, y, *, pixel_levels: int | None = None, layout: MeshLayout | None = None) -> Rows:
        """Put ``x`` ``(N, D)`` and ``y`` ``(N,)`` on the devices. With ``pixel_levels``, ``x`` is uint8 levels or
        floats that are multiples of ``1 / pixel_levels`` (checked exact), kept as uint8 levels."""
        if pixel_levels is not None:
            x = data.to_levels(np.asarray(x), pixel_levels)
        put = jax.device_put if layout is None else layout.put_rows  # jnp.asarray would compile a program
        return cls(put(x), put(np.asarray(y)), len(y), pixel_levels, layout)

    @classmethod
    def from_dataset(cls, dataset: data.Dataset, split: str, layout: MeshLayout | None = None) -> Rows:
        """The ``"train"`` or ``"test"`` split of ``dataset``, placed as :meth:`place` does."""
        encoded, labels = {
            "train": (dataset.encoded_train, dataset.y_train),
            "test": (dataset.encoded_test, dataset.y_test),
        }[split]
        return cls.place(encoded, labels, pixel_levels=dataset.pixel_levels, layout=layout)

    @property
    def multiple(self) -> int:
        """Batches are padded to a multiple of this: the devices along ``data``."""
        return 1 if self.layout is None else self.layout.size

    def batches(self, batch_size: int, order: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """:func:`batch_indices` of these rows: ``(steps, width)`` indices and weights."""
        return batch_indices(self.count, batch_size, order, multiple=self.multiple)

    def batch(self, indices: jax.Array, weights: jax.Array) -> dict[str, jax.Array]:
        """The batch of rows ``indices`` ``(W,)``: float32 ``image`` ``(W, D)``, ``label`` ``(W,)`` and ``weight``;
        sharded over the mesh's ``data`` axis with a layout. Inside ``jit``."""
        if self.layout is None:
            batch = {"image": self.x[indices], "label": self.y[indices], "weight": weights}
        else:
            batch = self.layout.batch(self.x, self.y, indices, weights)
        if self.pixel_levels is not None:
            batch["image"] = jnp.asarray(data.level_values(self.pixel_levels))[batch["image"]]
        return batch
