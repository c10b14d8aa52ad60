"""mlpjax: the classic MNIST multilayer perceptron as pure JAX/Flax/Optax functions.

The names below are imported on first use (PEP 562), so that ``import mlpjax.cli`` is quick and a Ctrl-C at
start-up reaches the command line's handler instead of interrupting an import.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {  # name -> module; docs/api.md documents each (tests/test_api.py keeps the two in step)
    # data
    "Dataset": "mlpjax.data",
    "load_dataset": "mlpjax.data",
    "make_dataset": "mlpjax.data",
    # the model and what a run depends on
    "ModelConfig": "mlpjax.core.model",
    "init": "mlpjax.core.model",
    "apply": "mlpjax.core.model",
    "one_hot": "mlpjax.core.model",
    "predict_proba": "mlpjax.core.model",
    "Classifier": "mlpjax.core.model",
    "TrainConfig": "mlpjax.core.config",
    "TrainState": "mlpjax.core.state",
    "create_train_state": "mlpjax.core.state",
    # training
    "Rows": "mlpjax.training.rows",
    "train_step": "mlpjax.training.steps",
    "train_epoch": "mlpjax.training.steps",
    "evaluate": "mlpjax.training.compiled",
    "fit": "mlpjax.training.train",
    # runs on disk and many models
    "load_model": "mlpjax.runs.checkpoint",
    "grid": "mlpjax.sweep",
    "run_sweep": "mlpjax.sweep",
    # your own parts (docs/plugins.md)
    "register_activation": "mlpjax.plugins",
    "register_optimizer": "mlpjax.plugins",
    "register_loss": "mlpjax.plugins",
    "register_metric": "mlpjax.plugins",
    "register_dataset": "mlpjax.plugins",
    "load_plugins": "mlpjax.plugins",
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
