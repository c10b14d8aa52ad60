"""Keras' ``model.summary()`` for an MLP: one row per layer, its output shape and its parameter count.

The layers are :meth:`mlpjax.core.model.ModelConfig.layers`, as the equivalent Keras ``Sequential`` model lists
them, named after their Keras class: for the tutorial's ``Dense(h, activation)`` and, with a dropout rate,
``Dropout(rate)`` per hidden layer, then ``Dense(num_classes, softmax)``: ``dense``, ``dropout``, ``dense_1``,
``dropout_1``, ... Parameter counts are the layer's (``inputs * outputs + outputs`` per Dense layer: 407,050 for
784 -> 512 -> 10; Dropout has none). Nothing is allocated: the table follows from the config."""

from __future__ import annotations

import collections
import dataclasses
import re

from mlpjax.core.model import ModelConfig

BYTES_PER_PARAM = 4  # float32


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str  # as Keras names it: dense, dropout, dense_1, ...
    kind: str  # the Keras class: Dense, Dropout, ...
    units: int  # the output width
    params: int


def layers(model_config: ModelConfig) -> list[Layer]:
    """The layers of ``model_config``'s MLP, in order, as Keras' Sequential model would list them: named after
    their Keras class (``Dense`` -> ``dense``, ``dense_1``, ...), counted per class."""
    out: list[Layer] = []
    seen: collections.Counter[str] = collections.Counter()
    for layer in model_config.layers():
        base = re.sub(r"(?<!^)(?=[A-Z])", "_", layer.keras).lower()
        out.append(
            Layer(base if seen[base] == 0 else f"{base}_{seen[base]}", layer.keras, layer.units, layer.param_count)
        )
        seen[base] += 1
    return out


def total_params(model_config: ModelConfig) -> int:
    """Trainable parameters of ``model_config`` (equals :func:`mlpjax.core.model.param_count` of its params)."""
    return model_config.param_count()


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return ""


def summary(model_config: ModelConfig, name: str = "sequential") -> str:
    """The table Keras' ``model.summary()`` prints for this model (plain ASCII rules), with the totals."""
    rows = [
        (f"{layer.name} ({layer.kind})", f"(None, {layer.units})", f"{layer.params:,}")
        for layer in layers(model_config)
    ]
    head = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(r[i]) for r in [head, *rows]) + 4 for i in range(3)]
    widths[0] = max(widths[0], 33)
    widths[1] = max(widths[1], 24)
    widths[2] = max(widths[2], 15)

    def line(cells) -> str:
        return cells[0].ljust(widths[0]) + cells[1].ljust(widths[1]) + cells[2].rjust(widths[2])

    rule = "-" * sum(widths)
    total = total_params(model_config)
    body = [f'Model: "{name}"', rule, line(head), "=" * sum(widths)]
    for i, row in enumerate(rows):
        body += [line(row), "" if i == len(rows) - 1 else rule]
    size = _size(total * BYTES_PER_PARAM)
    body[-1] = "=" * sum(widths)
    body += [
        f" Total params: {total:,} ({size})",
        f" Trainable params: {total:,} ({size})",
        " Non-trainable params: 0 (0.00 B)",
    ]
    return "\n".join(body)


def model_config_for(config) -> ModelConfig:
    """The architecture of a :class:`~mlpjax.core.config.TrainConfig` on its dataset (without loading it where the
    registry knows its shape)."""
    from mlpjax import data

    shape = data.get_spec(config.dataset).shape
    if shape is not None:
        return config.model_config(*shape)
    ds = config.load_dataset()
    return config.model_config(ds.input_dim, ds.num_classes)
