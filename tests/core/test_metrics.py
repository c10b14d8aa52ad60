import numpy as np
import pytest
from sklearn import metrics as skm

from mlpjax.core import metrics
from mlpjax.errors import UserInputError


def test_confusion_matrix_and_macro_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    preds = np.where(rng.random(300) < 0.7, labels, rng.integers(0, 5, 300))
    cm = np.asarray(metrics.confusion_matrix(labels, preds, 5))
    np.testing.assert_array_equal(cm, skm.confusion_matrix(labels, preds, labels=range(5)))
    scores = metrics.from_confusion(cm)
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert scores["precision"] == pytest.approx(skm.precision_score(labels, preds, average="macro"))
    assert scores["recall"] == pytest.approx(skm.recall_score(labels, preds, average="macro"))
    assert scores["f1_score"] == pytest.approx(skm.f1_score(labels, preds, average="macro"))


def test_weight_zero_examples_are_not_counted():
    cm = metrics.confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2, np.array([1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(cm, [[1, 0], [0, 1]])


def test_probability_errors():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    targets = np.array([[1.0, 0.0], [1.0, 0.0]])
    errors = metrics.probability_errors(probs, targets)
    np.testing.assert_allclose(errors["mse"], [0.25, 0.0])
    np.testing.assert_allclose(errors["mae"], [0.5, 0.0])


def test_select_by_name():
    assert metrics.select({"accuracy": 0.9, "mse": 0.1}, ["accuracy"]) == {"accuracy": 0.9}
    with pytest.raises(UserInputError, match="unknown metric 'auc'; valid: accuracy, precision"):
        metrics.select({}, ["auc"])
