"""mlpjax: the classic MNIST multilayer perceptron as pure JAX/Flax/Optax functions.

The names below are imported on first use (PEP 562), so that ``import mlpjax.cli`` is quick and a Ctrl-C at
start-up reaches the command line's handler instead of interrupting an import.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "mlpjax.runs.checkpoint", "TrainConfig": "mlpjax.core.config", "Classifier": "mlpjax.core.model",
    "ModelConfig": "mlpjax.core.model", "apply": "mlpjax.core.model", "init": "mlpjax.core.model",
    "one_hot": "mlpjax.core.model", "predict_proba": "mlpjax.core.model", "Rows": "mlpjax.training.rows",
    "evaluate": "mlpjax.training.compiled", "TrainState": "mlpjax.core.state",
    "create_train_state": "mlpjax.core.state", "train_epoch": "mlpjax.training.steps",
    "train_step": "mlpjax.training.steps", "fit": "mlpjax.training.train",
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
