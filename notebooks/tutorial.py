# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The MNIST multilayer perceptron, step by step, in JAX
#
# The classic Keras tutorial (Dense(512, relu) → Dropout(0.2) → Dense(10, softmax), Adam, batch 128) told with
# mlpjax calls: every number below is computed, every figure drawn from what was computed. It runs top to bottom
# on CPU in about a minute, on scikit-learn's 8×8 digits (no download); set `DATASET = "mnist"` below (and
# `$MLPJAX_DATA_DIR` to a folder with the four MNIST IDX files) for the real thing.
#
# Chapters: 1. neurons and activations · 2. softmax and cross-entropy · 3. the quadrant network · 4. dropout ·
# 5. backpropagation by hand beside `jax.grad` · 6. training the MLP · 7. where it goes wrong ·
# 8. what it looks at (saliency).

# %%
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from IPython.display import Image, display

from mlpjax import data, plots
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.teaching import backprop, basics, gradcheck
from mlpjax.training import train

DATASET = "digits"  # or "mnist" (needs $MLPJAX_DATA_DIR), "fashion_mnist"
FIGURES = Path(tempfile.mkdtemp(prefix="mlpjax-tutorial-"))  # figures are drawn to files, then shown inline


def show(path):
    display(Image(filename=str(path)))


# %% [markdown]
# ## 1. Neurons and activations
#
# A neuron sums its weighted inputs and adds a bias; an activation function decides what it passes on. The
# tutorial's hidden values through the step function, ReLU and the sigmoid (`mlpjax.core.model.ACTIVATIONS`):

# %%
a = basics.activations()
for name in ("hidden", "step", "relu", "sigmoid"):
    print(f"{name:>8}: {np.round(a[name], 4).tolist()}")
show(plots.activation_functions({n: lambda x, f=model.ACTIVATIONS[n]: np.asarray(f(jnp.asarray(x)))
                                 for n in ("step", "relu", "sigmoid", "tanh")}, FIGURES / "activations.png"))

# %% [markdown]
# Without an activation between them, two layers are one: `W2 (W1 x + b1) + b2 = (W2 W1) x + (W2 b1 + b2)`.

# %%
c = basics.linear_collapse()
print(f"two linear layers vs one: max |difference| = {c['max_abs_diff']:.2e}")
print(f"with ReLU between them:   max |difference| = {c['relu_max_abs_diff']:.2f}")

# %% [markdown]
# ## 2. Softmax and cross-entropy, with the tutorial's numbers
#
# The network's last layer gives scores (logits); softmax turns them into probabilities, and the loss is the
# cross-entropy `−Σ t ln p` against the one-hot truth.

# %%
s = basics.softmax_example()
print("scores       ", np.round(s["scores"], 4).tolist())
print("softmax      ", np.round(s["probabilities"], 4).tolist(), "(the tutorial's:", s["tutorial"], ")")
ce = basics.cross_entropy_example()
print(f"cross-entropy −ln p(true) = −ln {ce['p_true']} = {ce['natural_log']:.4f} (natural log, what Keras computes)")
print(f"the tutorial's {ce['tutorial']} is −log10 {ce['p_true']} = {ce['log10']:.4f}")
print("one-hot of 5:", basics.one_hot_example(5)["one_hot"])

# %% [markdown]
# ## 3. The quadrant network and its decision regions
#
# Four points, one per quadrant, and a 2-50-4 ReLU network trained with Adam. Which quadrant does it give (2, 2),
# a point it never saw?

# %%
quadrants = data.load_dataset("quadrants")
q_config = TrainConfig.from_dict({"dataset": "quadrants", "hidden": [50], "dropout": 0.0, "seed": 0})
q_result = train.fit(q_config, quadrants)
q_model = model.Classifier(q_result.state.params, q_result.state.model_config)
query = np.array([2.0, 2.0], np.float32)
print(f"{q_config.epochs} epochs, final loss {q_result.history['loss'][-1]:.4f}; "
      f"(2, 2) -> quadrant {quadrants.class_names[int(q_model.predict(query))]}")
show(plots.decision_regions(q_model.predict, quadrants.x_train, quadrants.y_train, FIGURES / "regions.png",
                            class_names=quadrants.class_names, queries=query[None],
                            title="2-50-4 ReLU network: the class of every point"))

# %% [markdown]
# ## 4. Dropout
#
# In training, each hidden unit is kept with probability 0.8 and the kept ones are scaled by 1/0.8, so that on
# average the layer passes on what it would at test time, where nothing is dropped.

# %%
d = basics.dropout_example()
print("layer output  ", d["x"])
print("kept          ", d["keep"])
print("in training   ", np.round(d["train"], 3).tolist())
print(f"mean of {d['draws']} draws", np.round(d["mean_train"], 3).tolist())

# %% [markdown]
# ## 5. Backpropagation by hand, beside `jax.grad`
#
# The classic 2-2-2 sigmoid network (inputs 0.05, 0.10; targets 0.01, 0.99): one forward pass, the chain rule
# neuron by neuron, and the same eight gradients from `jax.grad` of the error written as plain JAX.

# %%
step = backprop.worked_step()
reference = gradcheck.article_jax_grads()
print(f"E_total = {step.trace.total_error:.9f}")
print(f"{'weight':>6} {'by hand':>14} {'jax.grad':>14} {'updated':>12}")
for name in backprop.WEIGHT_NAMES:
    print(f"{name:>6} {step.grads[name]:14.9f} {reference[name]:14.9f} {step.updated[name]:12.9f}")
print("largest difference:", max(abs(step.grads[n] - reference[n]) for n in backprop.WEIGHT_NAMES))

# %% [markdown]
# ## 6. Training the MLP
#
# The tutorial's model: Dense(512, relu) → Dropout(0.2) → Dense(10), softmax in the loss, Adam, batch 128.

# %%
dataset = data.load_dataset(DATASET)
config = TrainConfig.from_dict({"dataset": DATASET, "epochs": 20 if DATASET == "digits" else 2, "seed": 0})
result = train.fit(config, dataset)
classifier = model.Classifier(result.state.params, result.state.model_config)
print(f"{dataset.name}: {len(dataset.y_train)} training images of {dataset.image_shape}, {config.epochs} epochs; "
      f"test accuracy {result.test_metrics['accuracy']:.4f}")
show(plots.training_curves({DATASET: result.history}, FIGURES / "curves.png", title="Learning curves"))

# %% [markdown]
# ## 7. Where it goes wrong: the confusion matrix and the confident errors

# %%
from mlpjax.core import metrics

probs = classifier.predict_proba(dataset.x_test)
predicted = probs.argmax(axis=1)
names = list(dataset.class_names) or [str(k) for k in range(dataset.num_classes)]
cm = np.asarray(metrics.confusion_matrix(dataset.y_test, predicted, dataset.num_classes)).astype(int)
show(plots.confusion_matrix(cm, FIGURES / "confusion.png", class_names=names,
                            title=f"accuracy {np.trace(cm) / cm.sum():.4f}"))
wrong = np.flatnonzero(predicted != dataset.y_test)
confident = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:10]
print(f"{len(wrong)} of {len(dataset.y_test)} test images wrong")
if len(confident):
    show(plots.image_grid(dataset.x_test[confident], FIGURES / "errors.png", image_shape=dataset.image_shape,
                          ncols=5, titles=[f"{names[dataset.y_test[i]]} -> {names[predicted[i]]}\n"
                                           f"p={probs[i, predicted[i]]:.2f}" for i in confident]))

# %% [markdown]
# ## 8. What it looks at: a saliency map
#
# How much does each pixel move the predicted class's logit? One `jax.grad` of the model's own forward pass with
# respect to its input. (For a drawing on a 28×28 model, `mlpjax.draw.insight.inspect` computes the same, and
# `mlpjax draw DIR --web` shows it live as you draw.)

# %%
index = 0
x = jnp.asarray(dataset.x_test[index])
label = int(classifier.predict(x))
saliency = jax.grad(lambda v: model.apply(classifier.params, v[None], model_config=classifier.model_config)[0, label])(x)
image = np.asarray(saliency).reshape(dataset.image_shape)
bound = float(np.abs(image).max())
fig = plots.new_figure(6, 3)
left, right = fig.subplots(1, 2)
left.imshow(np.asarray(x).reshape(dataset.image_shape), cmap="gray")
left.set_title(f"test #{index}: true {names[dataset.y_test[index]]}, predicted {names[label]}")
right.imshow(image, cmap="bwr", vmin=-bound, vmax=bound)
right.set_title("∂ logit / ∂ pixel (red raises it)")
for ax in (left, right):
    ax.axis("off")
show(plots.save(fig, FIGURES / "saliency.png"))
