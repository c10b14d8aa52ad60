"""mlpjax: the classic MNIST multilayer perceptron as pure JAX/Flax/Optax functions."""

from mlpjax.checkpoint import load_model
from mlpjax.config import TrainConfig
from mlpjax.model import Classifier, ModelConfig, apply, init, one_hot, predict_proba
from mlpjax.rows import Rows
from mlpjax.runner import evaluate
from mlpjax.state import TrainState, create_train_state
from mlpjax.steps import train_epoch, train_step
from mlpjax.train import fit

__version__ = "0.1.0"

__all__ = ["Classifier", "ModelConfig", "Rows", "TrainConfig", "TrainState", "apply", "create_train_state",
           "evaluate", "fit", "init", "load_model", "one_hot", "predict_proba", "train_epoch", "train_step"]
