"""A saved model in other formats: ONNX, Keras (``.keras``) and plain NumPy (``.npz``); and a Keras Dense/Dropout
MLP brought in as an mlpjax run.

Every format computes what :meth:`mlpjax.core.model.Classifier.predict_proba` computes: class probabilities
``(batch, num_classes)`` float32 for inputs ``(batch, input_dim)`` float32, any batch size (dropout is inactive
at inference, as in Keras). A model trained with ``normalize`` takes the raw features in every format: its
scaling ``(x - shift) / scale`` comes first (npz: two arrays the JSON names; ONNX: Sub and Div nodes; Keras: a
``Normalization`` layer). The optional packages (``pip install "mlpjax[export]"``) are imported only by the
format that needs them; a missing one is a UserInputError saying what to install. Each writer makes a new
file (an existing one is never replaced). Loading a ``.keras`` file keeps Keras' safe mode on: no code in a
model file is run. Round-trip differences are measured in docs/export.md.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import files
from mlpjax.core import model
from mlpjax.errors import FieldError, UserInputError

NPZ_FORMAT, NPZ_VERSION = "mlpjax-npz", 1
SCALING_ENTRIES = {"shift": "scaling.shift", "scale": "scaling.scale"}  # an npz's arrays of a model's scaling
KERAS_SCALING = "scaling"  # the name of the Normalization layer that a Keras export starts with
ARCHITECTURE = "architecture.json"  # the npz entry holding the architecture as JSON text
ONNX_OPSET = 17  # Softmax over the last axis (opset 13+); every onnxruntime since 1.11 runs it
ONNX_IR_VERSION = 8  # the IR version of opset 17, so that older runtimes load the file too
KERAS_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}  # mlpjax name -> Keras name
ONNX_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "step": None}  # None: Greater + Cast


EXPORTED_KINDS = ("hidden", "dropout", "output")  # the layer kinds (model.LAYER_KINDS) every format writes


def refuse_registered(classifier: model.Classifier) -> None:
    """A model whose activation was registered from the user's code (``mlpjax.register_activation``): no format
    here knows it, so it is refused in one line."""
    activation = classifier.model_config.activation
    if activation not in ONNX_ACTIVATIONS:
        raise UserInputError(
            f"the model's activation {activation!r} was registered from Python (docs/plugins.md); mlpjax export "
            f"writes the built-in activations only ({', '.join(ONNX_ACTIVATIONS)})"
        )


def _arrays(classifier: model.Classifier) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(layer name, kernel (in, out), bias (out,))`` float32, input to output; a model with a layer of another
    kind than :data:`EXPORTED_KINDS` or a registered activation is refused in one line naming it."""
    refuse_registered(classifier)
    for layer in classifier.model_config.layers():
        if layer.kind not in EXPORTED_KINDS:
            raise UserInputError(
                f"the model's layer {layer.name or layer.kind} is a {layer.kind} layer, which "
                f"mlpjax export does not write (it writes {', '.join(EXPORTED_KINDS)} layers)"
            )
    names = classifier.model_config.layer_names()
    return [
        (
            name,
            np.asarray(classifier.params[name]["kernel"], np.float32),
            np.asarray(classifier.params[name]["bias"], np.float32),
        )
        for name in names
    ]


def _needs(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserInputError(
            f"{what} needs the Python package {module.split('.')[0]!r}, which is not installed: "
            'pip install "mlpjax[export]"'
        ) from None


def _refuse_activation(classifier: model.Classifier, supported, fmt: str) -> None:
    activation = classifier.model_config.activation
    if activation not in supported:
        raise UserInputError(
            f"the model's activation {activation!r} has no {fmt} equivalent ({fmt} has "
            f"{', '.join(sorted(supported))}); export this model as onnx or npz"
        )


# --- npz ---------------------------------------------------------------------------------------------------------


def architecture(classifier: model.Classifier) -> dict:
    """The JSON stored beside the arrays of an npz export: the model config and, per layer, its arrays' names."""
    m = classifier.model_config
    layers = [
        {
            "name": name,
            "kernel": f"{name}.kernel",
            "bias": f"{name}.bias",
            "activation": m.activation if name != "output" else "softmax",
        }
        for name, _, _ in _arrays(classifier)
    ]
    scaler = classifier.scaler
    return {
        "format": NPZ_FORMAT,
        "version": NPZ_VERSION,
        "input_dim": m.input_dim,
        "hidden": list(m.hidden),
        "activation": m.activation,
        "dropout": m.dropout,
        "num_classes": m.num_classes,
        **({} if scaler is None else {"scaling": {"kind": scaler.kind, **SCALING_ENTRIES}}),
        "layers": layers,
        "computes": "x (batch, input_dim) float32"
        + ("" if scaler is None else "; first x = (x - scaling.shift) / scaling.scale (the raw features scaled)")
        + "; each layer: x = activation(x @ kernel + bias); dropout only in training",
    }


def export_npz(classifier: model.Classifier, out: str | os.PathLike) -> Path:
    """``out`` (a new file): one float32 array per ``LAYER.kernel`` and ``LAYER.bias`` (and, for a model trained
    with ``normalize``, ``scaling.shift`` and ``scaling.scale``, named in the JSON's ``scaling``) and, under
    ``architecture.json``, the :func:`architecture` as a NumPy string; ``np.load(out)`` reads it all without
    pickle."""
    entries = {}
    for name, kernel, bias in _arrays(classifier):
        entries[f"{name}.kernel"], entries[f"{name}.bias"] = kernel, bias
    if classifier.scaler is not None:
        for key, entry in SCALING_ENTRIES.items():
            entries[entry] = classifier.scaler.arrays()[key]
    entries[ARCHITECTURE] = np.array(json.dumps(architecture(classifier)))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name
            np.savez(f, **entries)  # type: ignore[arg-type]  # numpy's stub: no key here is allow_pickle

    return files.write_new(out, write)


ACTIVATIONS_NUMPY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "step": lambda x: (x > 0).astype(x.dtype),
}


def npz_predict_proba(path: str | os.PathLike, x: np.ndarray) -> np.ndarray:
    """Probabilities ``(batch, num_classes)`` of the npz export ``path`` for ``x`` ``(batch, input_dim)``, with
    NumPy alone: the reference reader of the format (docs/export.md shows it in ten lines)."""
    with np.load(path, allow_pickle=False) as z:
        arch = json.loads(str(z[ARCHITECTURE]))
        x = np.asarray(x, np.float32)
        if "scaling" in arch:  # a model trained with normalize: the raw features scaled first
            x = (x - z[arch["scaling"]["shift"]]) / z[arch["scaling"]["scale"]]
        for layer in arch["layers"]:
            x = x @ z[layer["kernel"]] + z[layer["bias"]]
            if layer["activation"] != "softmax":
                x = ACTIVATIONS_NUMPY[layer["activation"]](x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- Keras -------------------------------------------------------------------------------------------------------


def _keras():
    """Keras 3, on the JAX backend unless ``KERAS_BACKEND`` says otherwise (no TensorFlow needed)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return _needs("keras", "the Keras format")


def keras_model(classifier: model.Classifier):
    """The tutorial's ``keras.Sequential``: ``Dense(h, activation) -> Dropout(rate)`` per hidden layer, then
    ``Dense(num_classes, softmax)``, with the trained weights (layer names as mlpjax's). A model trained with
    ``normalize`` starts with ``Normalization`` (named ``scaling``: mean ``shift``, variance ``scale ** 2``), so
    that the Keras model takes the raw features too; one whose scale falls below Keras' epsilon (1e-7, which
    ``Normalization`` divides by at least) is refused in one line."""
    _refuse_activation(classifier, KERAS_ACTIVATIONS, "Keras")
    keras = _keras()
    m, scaler = classifier.model_config, classifier.scaler
    layers = [keras.Input((m.input_dim,), name="x")]
    if scaler is not None:
        if scaler.scale.min() < keras.config.epsilon():
            raise UserInputError(
                f"the model's {scaler.kind} scaling divides feature {int(scaler.scale.argmin())} by "
                f"{scaler.scale.min():g}, below the {keras.config.epsilon():g} that Keras' Normalization divides by "
                "at least; export this model as onnx or npz"
            )
        layers.append(keras.layers.Normalization(name=KERAS_SCALING))
    for i, width in enumerate(m.hidden):
        layers.append(keras.layers.Dense(width, activation=KERAS_ACTIVATIONS[m.activation], name=f"hidden_{i}"))
        if m.dropout > 0:
            layers.append(keras.layers.Dropout(m.dropout, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(m.num_classes, activation="softmax", name="output"))
    net = keras.Sequential(layers, name="mlpjax")
    for name, kernel, bias in _arrays(classifier):
        net.get_layer(name).set_weights([kernel, bias])
    if scaler is not None:  # its adapted state: mean, variance and the count of rows (not used in a call)
        norm = net.get_layer(KERAS_SCALING)
        norm.set_weights([scaler.shift, np.square(scaler.scale), np.zeros((), np.int32)])
        norm.finalize_state()  # the mean and variance that a call uses, from those weights (as adapt() ends)
    return net


def export_keras(classifier: model.Classifier, out: str | os.PathLike) -> Path:
    """``out`` (a new ``.keras`` file): :func:`keras_model`, saved by ``model.save`` (loadable by
    ``keras.saving.load_model`` in safe mode)."""
    if Path(out).suffix != ".keras":
        raise UserInputError(f"{out}: a Keras model file must end in .keras (Keras reads no other)")
    files.check_new_file(out)
    net = keras_model(classifier)

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory() as folder:  # Keras insists on the .keras suffix
            saved = Path(folder) / "model.keras"
            net.save(saved)
            shutil.copyfile(saved, tmp)

    return files.write_new(out, write)


# --- ONNX --------------------------------------------------------------------------------------------------------


def onnx_model(classifier: model.Classifier):
    """An ONNX ``ModelProto`` (opset :data:`ONNX_OPSET`): input ``x`` ``(batch, input_dim)`` float32, output
    ``probabilities`` ``(batch, num_classes)``; ``batch`` is symbolic (any size). Built node by node with the
    ``onnx`` package's helpers (MatMul, Add, the activation, Softmax; for a model trained with ``normalize``, Sub
    and Div of its scaling first), the weights as initializers."""
    onnx = _needs("onnx", "the ONNX format")
    from onnx import TensorProto, helper, numpy_helper

    m, scaler = classifier.model_config, classifier.scaler
    nodes, inits, current = [], [], "x"
    if scaler is not None:  # the raw features scaled first, as predict_proba does: (x - shift) / scale
        inits += [numpy_helper.from_array(a, f"scaling.{key}") for key, a in scaler.arrays().items()]
        nodes += [
            helper.make_node("Sub", ["x", "scaling.shift"], ["scaling.centred"]),
            helper.make_node("Div", ["scaling.centred", "scaling.scale"], ["scaling.out"]),
        ]
        current = "scaling.out"
    for name, kernel, bias in _arrays(classifier):
        inits += [numpy_helper.from_array(kernel, f"{name}.kernel"), numpy_helper.from_array(bias, f"{name}.bias")]
        nodes += [
            helper.make_node("MatMul", [current, f"{name}.kernel"], [f"{name}.matmul"]),
            helper.make_node("Add", [f"{name}.matmul", f"{name}.bias"], [f"{name}.linear"]),
        ]
        current = f"{name}.linear"
        if name == "output":
            nodes.append(helper.make_node("Softmax", [current], ["probabilities"], axis=-1))
        elif (op := ONNX_ACTIVATIONS[m.activation]) is None:  # step: 1 where x > 0, else 0
            zero = numpy_helper.from_array(np.zeros((), np.float32), f"{name}.zero")
            inits.append(zero)
            nodes += [
                helper.make_node("Greater", [current, zero.name], [f"{name}.positive"]),
                helper.make_node("Cast", [f"{name}.positive"], [f"{name}.out"], to=TensorProto.FLOAT),
            ]
            current = f"{name}.out"
        else:
            nodes.append(helper.make_node(op, [current], [f"{name}.out"]))
            current = f"{name}.out"
    graph = helper.make_graph(
        nodes,
        "mlpjax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", m.input_dim])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", m.num_classes])],
        inits,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="mlpjax", ir_version=ONNX_IR_VERSION
    )
    helper.set_model_props(proto, {"mlpjax.architecture": json.dumps(architecture(classifier))})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(classifier: model.Classifier, out: str | os.PathLike) -> Path:
    """``out`` (a new file): :func:`onnx_model`, serialized."""
    files.check_new_file(out)
    data = onnx_model(classifier).SerializeToString()
    return files.write_new(out, lambda tmp: tmp.write_bytes(data))


# One registry: the CLI's --format choices and help come from it.
FORMATS: dict[str, tuple[Callable[[model.Classifier, str | os.PathLike], Path], str]] = {
    "onnx": (export_onnx, f"ONNX (opset {ONNX_OPSET}), for onnxruntime and other runtimes; needs onnx"),
    "keras": (export_keras, "a Keras 3 .keras file (Dense/Dropout Sequential); needs keras"),
    "npz": (export_npz, "NumPy arrays and the architecture as JSON, read with numpy alone"),
}


def export(classifier: model.Classifier, fmt: str, out: str | os.PathLike) -> Path:
    """``classifier`` written to the new file ``out`` in format ``fmt`` (one of :data:`FORMATS`)."""
    from mlpjax.errors import check_name

    check_name("format", fmt, FORMATS)
    refuse_registered(classifier)
    return FORMATS[fmt][0](classifier, out)


# --- Keras import ------------------------------------------------------------------------------------------------

KERAS_CONFIG_BYTES = 16 * 2**20  # a Dense/Dropout model's config.json is a few KiB
IMPORTED = "imported.json"  # beside the checkpoint of an imported run: where its weights came from


def _keras_config(path: Path) -> dict:
    """The ``config.json`` inside the ``.keras`` zip ``path``, read as JSON (nothing deserialised)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("config.json")
            if info.file_size > KERAS_CONFIG_BYTES:
                raise UserInputError(f"{path}: its config.json is {info.file_size} bytes; a Keras MLP's is a few KiB")
            return json.loads(z.read(info))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError):
        raise UserInputError(f"{path}: not a Keras 3 model file (a .keras zip with a config.json)") from None
    except OSError as e:
        raise UserInputError(f"{path}: cannot read: {files.why_unusable(path, e)}") from None


def keras_architecture(config: dict, path: Path) -> tuple[list[str], str, float]:
    """From a ``.keras`` file's config: the names of its Dense layers (the last one the output), their hidden
    activation and the dropout rate (0: none). Raises a UserInputError naming the first layer mlpjax's MLP
    cannot be: anything but ``Dense(h, relu|sigmoid|tanh) [Dropout(rate)] ... Dense(C, softmax)`` with one
    activation and one rate after every hidden layer (or none), biases on."""
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        raise UserInputError(
            f"{path}: a {config.get('class_name') if isinstance(config, dict) else '?'} model; "
            "mlpjax imports a keras.Sequential of Dense and Dropout layers"
        )
    layers = [layer for layer in config.get("config", {}).get("layers", []) if isinstance(layer, dict)]
    dense, rates = [], []
    activations: set[Any] = set()  # the hidden layers' Keras names, each checked below
    after: list[float | None] = []  # the dropout rate after each Dense layer
    for layer in layers:
        kind, settings = layer.get("class_name"), layer.get("config") or {}
        name = settings.get("name", "?")
        if kind == "InputLayer":
            continue
        if kind == "Normalization":
            raise UserInputError(
                f"{path}: layer {name!r} is a Normalization (a feature scaling); mlpjax imports no scaling "
                "layer: remove it and give the scaled features, or train the model in mlpjax with a normalize scaling"
            )
        if kind == "Dense":
            act = settings.get("activation")
            if not settings.get("use_bias", True) or settings.get("lora_rank"):
                raise UserInputError(
                    f"{path}: layer {name!r} (Dense) has no bias or a LoRA adapter; "
                    "mlpjax's Dense layers are plain kernel + bias"
                )
            dense.append((name, act))
            after.append(None)
        elif kind == "Dropout":
            if not dense or after[-1] is not None:
                raise UserInputError(
                    f"{path}: layer {name!r} (Dropout) does not follow a Dense layer; mlpjax "
                    "applies one dropout after each hidden layer"
                )
            after[-1] = float(settings.get("rate", 0.0))
        else:
            raise UserInputError(
                f"{path}: layer {name!r} is a {kind}; mlpjax imports only Dense and Dropout "
                "layers (Dense(h, activation) [Dropout] ... Dense(classes, softmax))"
            )
    if len(dense) < 2:
        raise UserInputError(
            f"{path}: {len(dense)} Dense layer(s); mlpjax's MLP has at least one hidden Dense "
            "layer and a softmax output"
        )
    *hidden, (out_name, out_act) = dense
    if out_act != "softmax":
        raise UserInputError(
            f"{path}: layer {out_name!r} (the output Dense) has activation {out_act!r}; mlpjax's output is a softmax"
        )
    if after[-1] is not None:
        raise UserInputError(f"{path}: a Dropout follows the output layer {out_name!r}; mlpjax has none there")
    for name, act in hidden:
        if act not in KERAS_ACTIVATIONS.values():
            raise UserInputError(
                f"{path}: layer {name!r} has activation {act!r}; mlpjax's hidden layers take "
                f"{', '.join(KERAS_ACTIVATIONS.values())}"
            )
        activations.add(act)
    rates = after[:-1]
    if len(activations) > 1:
        raise UserInputError(f"{path}: hidden layers with activations {sorted(activations)}; mlpjax's MLP has one")
    if len(set(rates)) > 1:
        odd = next(name for (name, _), rate in zip(hidden, rates, strict=True) if rate != rates[0])
        raise UserInputError(
            f"{path}: the dropout after layer {odd!r} differs from the first ({rates[0]}); "
            "mlpjax applies one rate after every hidden layer"
        )
    activation = next(k for k, v in KERAS_ACTIVATIONS.items() if v == activations.pop())
    return [name for name, _ in dense], activation, rates[0] or 0.0


def _dataset_for_shape(input_dim: int, num_classes: int, dataset: str | None, path: Path) -> str:
    from mlpjax import data

    if dataset is not None:
        shape = data.get_spec(dataset).shape
        if shape is None and data.is_path(dataset):  # a file or folder: its shape is known once it is read
            found = data.load_dataset(dataset)
            shape = (found.input_dim, found.num_classes)
        if shape is not None and shape != (input_dim, num_classes):
            raise FieldError(
                "dataset",
                f"{{field}} {dataset} has {shape[0]} features and {shape[1]} classes; "
                f"the model in {path} takes {input_dim} and {num_classes}",
            )
        return dataset
    for name, spec in data.DATASETS.items():
        if spec.shape == (input_dim, num_classes):
            return name
    raise FieldError(
        "dataset",
        f"{path}: no dataset of mlpjax has {input_dim} features and {num_classes} "
        "classes; give the one to test it on with {field}",
    )


def import_keras(path: str | os.PathLike, output: str | os.PathLike, *, dataset: str | None = None) -> Path:
    """Make the run directory ``output`` (new, as training would make it) from the Keras model file ``path``:
    one checkpoint (epoch 1, its history NaN: Keras' training is not known) holding the Keras weights, a fresh
    optimizer state, and ``imported.json`` naming the source. ``dataset``: the dataset its commands test on, a
    registered name or a file or folder (read here, to check its shape; its path recorded absolute) (default: the
    first registered one of the model's input width and class count, e.g. mnist for 784 -> 10).

    The layers are checked from the file's config.json before Keras reads the file; Keras then loads it in
    safe mode (no code in the file runs). Returns ``output``."""
    import hashlib

    import jax

    from mlpjax.core.config import TrainConfig
    from mlpjax.core.state import create_train_state
    from mlpjax.runs import checkpoint
    from mlpjax.runs import run as run_lib
    from mlpjax.training.result import HISTORY_KEYS

    path = Path(path)
    if path.suffix != ".keras":
        raise UserInputError(f"{path}: expected a Keras 3 model file ending in .keras")
    with files.open_regular(path) as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    names, activation, dropout = keras_architecture(_keras_config(path), path)
    keras = _keras()
    try:
        net = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a file it cannot read
        raise UserInputError(
            f"{path}: Keras cannot load it ({type(e).__name__}: {' '.join(str(e).split())[:300]})"
        ) from None
    weights = [[np.asarray(w, np.float32) for w in net.get_layer(name).get_weights()] for name in names]
    hidden = tuple(int(w[0].shape[1]) for w in weights[:-1])
    input_dim, num_classes = int(weights[0][0].shape[0]), int(weights[-1][0].shape[1])
    name = _dataset_for_shape(input_dim, num_classes, dataset, path)
    config = TrainConfig(dataset=name, model=model.ModelConfig(hidden=hidden, activation=activation, dropout=dropout))
    model_config = config.model_config(input_dim, num_classes)
    ours = model_config.layer_names()
    params = {layer: {"kernel": w[0], "bias": w[1]} for layer, w in zip(ours, weights, strict=True)}
    state = create_train_state(jax.random.PRNGKey(config.seed), config, model_config)
    state = state.replace(params=jax.tree_util.tree_map(jax.numpy.asarray, params), opt_state=state.tx.init(params))
    claimed = run_lib.start(output, config)
    try:
        writer = checkpoint.Writer(
            claimed.directory, claimed.config, keep=checkpoint.DEFAULT_KEEP, save_best=False
        )  # its config as the run claimed it: a dataset file's path absolute
        try:
            writer.save(1, state, {key: [float("nan")] for key in HISTORY_KEYS})
        finally:
            writer.close()
        files.write_json(
            claimed.directory / IMPORTED,
            {
                "source": str(path.resolve()),
                "sha256": digest,
                "keras": keras.__version__,
                "layers": dict(zip(ours, names, strict=True)),
                "note": "Keras' weights; its training history is not known",
            },
            replace=False,
        )
    finally:
        claimed.close()
    return claimed.directory
