"""mlpjax: the classic MNIST multilayer perceptron as pure JAX/Flax/Optax functions.

The names below are imported on first use (PEP 562), so that ``import mlpjax.cli`` is quick and a Ctrl-C at
start-up reaches the command line's handler instead of interrupting an import.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "mlpjax.checkpoint", "TrainConfig": "mlpjax.config", "Classifier": "mlpjax.model",
    "ModelConfig": "mlpjax.model", "apply": "mlpjax.model", "init": "mlpjax.model", "one_hot": "mlpjax.model",
    "predict_proba": "mlpjax.model", "Rows": "mlpjax.rows", "evaluate": "mlpjax.runner",
    "TrainState": "mlpjax.state", "create_train_state": "mlpjax.state", "train_epoch": "mlpjax.steps",
    "train_step": "mlpjax.steps", "fit": "mlpjax.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlpjax' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_EXPORTS})
