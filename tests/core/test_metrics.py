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
    assert scores["precision_macro"] == pytest.approx(skm.precision_score(labels, preds, average="macro"))
    assert scores["recall_macro"] == pytest.approx(skm.recall_score(labels, preds, average="macro"))
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(labels, preds, average="macro"), rel=1e-6)
    per_class = skm.f1_score(labels, preds, average=None)
    np.testing.assert_allclose([scores[f"f1_score_{c}"] for c in range(5)], per_class, rtol=1e-6)
    assert "precision" not in scores and "f1_score" not in scores


def test_f1_of_a_class_never_predicted_nor_seen_is_zero():
    scores = metrics.from_confusion(np.array([[3.0, 0.0], [0.0, 0.0]]))
    assert scores["f1_score_0"] == pytest.approx(1.0, rel=1e-6) and scores["f1_score_1"] == 0.0


def test_threshold_counts_pool_every_output_above_one_half():
    # Keras' Precision()/Recall(): each output > 0.5 is a positive, all classes pooled.
    probs = np.float32([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    labels = np.array([0, 0, 0, 2])
    counts = metrics.threshold_counts(probs, labels, np.float32([1, 1, 1, 0]))
    assert float(counts["above"]) == 2.0 and float(counts["hits"]) == 1.0  # the last row has weight 0
    assert metrics.from_threshold_counts(2.0, 1.0, 3.0) == {"precision": 0.5, "recall": pytest.approx(1 / 3)}
    assert metrics.from_threshold_counts(0.0, 0.0, 3.0) == {"precision": 0.0, "recall": 0.0}


@pytest.mark.parametrize(
    "alias, name",
    [
        ("acc", "accuracy"),
        ("mean_absolute_error", "mae"),
        ("MSE", "mse"),
        ("mean_squared_error", "mse"),
        ("F1Score", "f1_score"),
        ("f1", "f1_score"),
        ("Precision", "precision"),
        ("categorical_accuracy", "accuracy"),
    ],
)
def test_keras_metric_aliases_resolve_to_one_name(alias, name):
    assert metrics.check_names(f"{alias},{name}") == (name,)


def test_unknown_metric_is_a_field_error_listing_the_names():
    with pytest.raises(UserInputError, match="metrics: unknown metric 'auc'; valid: accuracy, precision"):
        metrics.check_names("accuracy,auc")


def test_result_keys_spread_f1_score_over_the_classes():
    assert metrics.result_keys("f1_score", 3) == ("f1_score_0", "f1_score_1", "f1_score_2")
    assert metrics.result_keys("precision_macro", 3) == ("precision_macro",)


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
    assert metrics.select({"f1_score_0": 0.5, "f1_score_1": 0.7, "f1_macro": 0.6}, ["f1_score"]) == {
        "f1_score_0": 0.5,
        "f1_score_1": 0.7,
    }
    with pytest.raises(UserInputError, match="unknown metric 'auc'; valid: accuracy, precision"):
        metrics.select({}, ["auc"])
