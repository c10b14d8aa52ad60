"""The same model trained by PyTorch (eager) and Keras 3 (TensorFlow backend), for the benchmark.

Both build the tutorial's network — Dense(512, relu) -> Dropout(0.2) -> Dense(10, softmax) with Glorot-uniform
kernels and zero biases — train it with Adam (lr 1e-3, eps 1e-7) on categorical cross-entropy with shuffled
batches of 128 (the last partial batch kept), and hand back two callables: ``epoch()`` trains one epoch and
``accuracy()`` returns the test accuracy. Neither framework is a dependency of mlpjax: install the ``bench`` extra.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

Runner = tuple[Callable[[], None], Callable[[], float]]


def available() -> dict[str, bool]:
    """Which baseline frameworks can be imported."""
    import importlib.util

    return {"torch": importlib.util.find_spec("torch") is not None,
            "keras": importlib.util.find_spec("keras") is not None
            and importlib.util.find_spec("tensorflow") is not None}


def torch_runner(x_train, y_train, x_test, y_test, *, hidden: tuple[int, ...] = (512,), dropout: float = 0.2,
                 batch_size: int = 128, seed: int = 0, threads: int | None = None) -> Runner:
    """PyTorch eager training on CPU tensors; ``threads`` defaults to the machine's cores."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.manual_seed(seed)
    layers, width = [], x_train.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        width = h
    layers.append(torch.nn.Linear(width, int(y_train.max()) + 1))
    net = torch.nn.Sequential(*layers)
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    x, y = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train.astype(np.int64))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_test)), torch.from_numpy(y_test.astype(np.int64))

    def epoch():
        net.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            optimizer.step()

    def accuracy() -> float:
        net.eval()
        with torch.no_grad():
            return float((net(xt).argmax(-1) == yt).float().mean())

    return epoch, accuracy


def keras_runner(x_train, y_train, x_test, y_test, *, hidden: tuple[int, ...] = (512,), dropout: float = 0.2,
                 batch_size: int = 128, seed: int = 0, threads: int | None = None) -> Runner:
    """Keras 3 on TensorFlow, ``model.fit(epochs=1)`` per epoch, as the tutorial writes it."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process
            pass
    keras.utils.set_random_seed(seed)
    num_classes = int(y_train.max()) + 1
    net = keras.Sequential([keras.Input((x_train.shape[1],))]
                           + [layer for h in hidden for layer in (keras.layers.Dense(h, activation="relu"),
                                                                  keras.layers.Dropout(dropout))]
                           + [keras.layers.Dense(num_classes, activation="softmax")])
    net.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    y_onehot = keras.utils.to_categorical(y_train, num_classes)

    def epoch():
        net.fit(x_train, y_onehot, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)

    def accuracy() -> float:
        return float((net.predict(x_test, batch_size=1000, verbose=0).argmax(-1) == y_test).mean())

    return epoch, accuracy


RUNNERS = {"torch": torch_runner, "keras": keras_runner}
