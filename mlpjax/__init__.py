"""mlpjax: the classic MNIST multilayer perceptron as pure JAX/Flax/Optax functions."""

from mlpjax.checkpoint import load_model
from mlpjax.model import Classifier, ModelConfig, apply, init, one_hot, predict_proba
from mlpjax.train import TrainConfig, TrainState, create_train_state, evaluate, fit, train_step

__version__ = "0.1.0"

__all__ = ["Classifier", "ModelConfig", "TrainConfig", "TrainState", "apply", "create_train_state", "evaluate", "fit",
           "init", "load_model", "one_hot", "predict_proba", "train_step"]
