"""Your own parts without editing mlpjax: activations, optimizers, losses, metrics and datasets registered from
your code, and the plugins that register them (``docs/plugins.md``).

``register_activation``, ``register_optimizer``, ``register_loss``, ``register_metric`` and
``register_dataset`` add an entry of exactly the shape of the built-ins' to the registry of its kind
(:data:`mlpjax.core.model.ACTIVATIONS`, :data:`mlpjax.core.optimizers.OPTIMIZERS`,
:data:`mlpjax.core.losses.LOSSES`, :data:`mlpjax.core.metrics.METRICS`, :data:`mlpjax.data.DATASETS`), after
checking the name and trying the function on small abstract arrays (:func:`jax.eval_shape`: nothing is
computed or compiled). Everything downstream reads the registries, so a registered name is a valid
``TrainConfig`` value, a command-line choice listed in ``--help``, and trains, evaluates and saves as a
built-in does. A run records the name alone, never where the part came from: loading a run whose part is not
registered is refused in one line (:class:`MissingPartError`), and loading never imports anything.

Names: letters, digits and underscores (at most 64), not a built-in's nor one of its Keras aliases. Registering
a name again with the same function does nothing (a plugin loaded twice is harmless); with another one it is
refused unless ``replace=True``, which also drops every compiled program and cached optimizer, so that the new
part is used from then on.

:func:`load_plugins` loads plugins: the installed ones (entry points of the group :data:`GROUP`; an entry point
names a module, which registers parts when imported, or a callable, which is called with no arguments), then
the modules it is given (a module name on ``sys.path`` or the path of a ``.py`` file). The command line calls it
before it reads its flags, so that the parts are choices of its flags.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlpjax import data as data_lib
from mlpjax.core import losses, metrics, model, optimizers, schedules
from mlpjax.errors import FieldError, UserInputError, check_int, check_number
from mlpjax.training import compiled

GROUP = "mlpjax.plugins"  # the entry-point group of installed plugins
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
RESERVED_METRIC_KEYS = re.compile(r"(loss|lr|f1_score_\d+)\Z")  # what a run records beside its metrics


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of part: its ``TrainConfig`` field, its registry, the names of mlpjax's own (built-ins and
    aliases, which are never replaced), and what its ``register_<kind>`` call takes after the name (for
    messages)."""

    field: str
    registry: dict[str, Any]
    builtins: frozenset[str]
    arguments: str


KINDS: dict[str, Kind] = {
    "activation": Kind("activation", model.ACTIVATIONS, frozenset(model.ACTIVATIONS), "fn"),
    "optimizer": Kind("optimizer", optimizers.OPTIMIZERS, frozenset(optimizers.OPTIMIZERS), "build, default_lr"),
    "loss": Kind("loss", losses.LOSSES, frozenset({*losses.LOSSES, *losses.ALIASES}), "fn"),
    "metric": Kind("metrics", metrics.METRICS, frozenset({*metrics.METRICS, *metrics.ALIASES}), "fn"),
    "dataset": Kind("dataset", data_lib.DATASETS, frozenset(data_lib.DATASETS), "load"),
}
_GIVEN: dict[tuple[str, str], tuple[Any, ...]] = {}  # (kind, name) -> what the user registered, to tell repeats


class MissingPartError(UserInputError):
    """A saved run or sweep names a part that is not registered in this process: which, and how to register it."""

    def __init__(self, where: Any, what: str, kind: str, name: str):
        self.where, self.what, self.kind, self.name = where, what, kind, name
        super().__init__(self._line("mlpjax.load_plugins(MODULE)"))

    def _line(self, plugin: str) -> str:
        call = f"mlpjax.register_{self.kind}({self.name!r}, {KINDS[self.kind].arguments})"
        return (
            f"{self.where}: this {self.what} uses {self.kind} {self.name!r}, which is not registered; "
            f"register it with {call} or {plugin}"
        )

    def for_cli(self, flag: Callable[[str], str]) -> str:
        return self._line(f"{flag('plugin')} MODULE")


def registered() -> dict[str, tuple[str, ...]]:
    """The names registered from outside mlpjax, by kind (``{"activation": ("gelu",), "optimizer": (), ...}``)."""
    return {kind: tuple(n for n in k.registry if n not in k.builtins) for kind, k in KINDS.items()}


def known(kind: str) -> frozenset[str]:
    """Every name of ``kind`` valid now: the built-ins, their aliases and the registered ones."""
    return KINDS[kind].builtins | frozenset(KINDS[kind].registry)


def check_parts(config: Any, where: Any, what: str = "run") -> None:
    """Refuse a saved training config (``TrainConfig.to_dict``'s form) that names a part not registered now,
    before it is validated: a :class:`MissingPartError` naming the first. Only a name that could have been
    registered counts (:data:`NAME`); any other value is left for the config's own validation. Nothing named is
    imported or called."""
    if not isinstance(config, Mapping):
        return
    for kind, k in KINDS.items():
        value = config.get(k.field)
        for name in value if kind == "metric" and isinstance(value, list) else [value]:
            if isinstance(name, str) and NAME.match(name) and name not in known(kind):
                raise MissingPartError(where, what, kind, name)


def clear_caches() -> None:
    """Forget every compiled program and cached optimizer (they were built from parts by name)."""
    jax.clear_caches()
    compiled._COMPILED.clear()
    optimizers.get_optimizer.cache_clear()
    schedules._optimizer.cache_clear()
    schedules._group_optimizer.cache_clear()


@contextlib.contextmanager
def _part(kind: str, name: Any):
    """Check a registration of ``kind`` ``name`` within it: the name first, and every error as one line that
    begins with the part (``activation 'gelu': ...``)."""
    if not isinstance(name, str) or not NAME.match(name):
        raise UserInputError(
            f"{kind} name {name!r}: expected letters, digits and underscores, beginning with a letter or an "
            "underscore, at most 64 characters (runs record it and read it back as a name)"
        )
    if name in KINDS[kind].builtins or (kind == "metric" and RESERVED_METRIC_KEYS.match(name)):
        raise UserInputError(
            f"{kind} {name!r}: mlpjax has one of that name (or records one so); register yours under another "
            "name (a saved run's name keeps meaning the same part)"
        )
    try:
        yield
    except UserInputError as e:
        raise UserInputError(f"{kind} {name!r}: {e}") from e.__cause__


def _add(kind: str, name: str, value: Any, given: tuple[Any, ...], replace: bool) -> None:
    """Put ``value`` into the registry of ``kind`` under ``name``; ``given``: what the user passed, which tells
    a repeat (nothing to do) from another part of the same name (refused unless ``replace``)."""
    registry = KINDS[kind].registry
    if name in registry:
        if _GIVEN.get((kind, name)) == given:
            return  # the same part again: a plugin loaded twice
        if not replace:
            raise UserInputError(
                "another part of that name is registered already; pass replace=True to use this one from now "
                "on, or choose another name"
            )
    registry[name] = value
    _GIVEN[(kind, name)] = given
    if replace:
        clear_caches()


def _check_callable(fn: Any, what: str) -> None:
    if not callable(fn):
        raise UserInputError(f"{what} must be a function, got {type(fn).__name__}")


def _shape(tree: Any) -> str:
    if isinstance(tree, jax.ShapeDtypeStruct):
        return f"{tuple(tree.shape)} {np.dtype(tree.dtype).name}"
    return type(tree).__name__


def _short(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"


def _traced(what: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` (an abstract evaluation of the user's function); an exception from it is one line."""
    try:
        return fn()
    except Exception as e:  # the user's function raises anything
        raise UserInputError(f"{what} fails under JAX ({_short(e)})") from e


def _per_example(fn: Callable, wants: str) -> None:
    """Check that ``fn(a (4, 3), b (4, 3))`` gives a float per example ``(4,)``."""
    _check_callable(fn, "fn")
    pair = jax.ShapeDtypeStruct((4, 3), jnp.float32)
    out = _traced("fn", lambda: jax.eval_shape(fn, pair, pair))
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != (4,) or not jnp.issubdtype(out.dtype, jnp.floating):
        raise UserInputError(
            f"fn({wants}) must give one float per example (batch,); given (4, 3) float32 arrays it gave {_shape(out)}"
        )


def register_activation(name: str, fn: Callable[[jax.Array], jax.Array], *, replace: bool = False) -> None:
    """Register ``fn``, an elementwise function of a float32 array (any shape) that JAX can trace and
    differentiate (``jax.nn.gelu``), as the hidden layers' activation ``name``.

    Training differentiates it with ``jax.grad``; the hand-derived backward pass of :mod:`mlpjax.teaching` knows
    the built-in activations only. ``mlpjax export`` writes the built-in activations only."""
    with _part("activation", name):
        _check_callable(fn, "fn")
        x = jax.ShapeDtypeStruct((2, 3), jnp.float32)
        out = _traced("fn", lambda: jax.eval_shape(fn, x))
        if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != x.shape or out.dtype != x.dtype:
            raise UserInputError(
                "fn must map a float32 array to one of the same shape and dtype (elementwise); given (2, 3) "
                f"float32 it gave {_shape(out)}"
            )
        _traced("jax.grad of fn", lambda: jax.eval_shape(jax.grad(lambda v: jnp.sum(fn(v))), x))
        _add("activation", name, fn, (fn,), replace)


def register_optimizer(
    name: str,
    build: Callable[[optax.ScalarOrSchedule], optax.GradientTransformation],
    default_lr: float,
    *,
    replace: bool = False,
) -> None:
    """Register optimizer ``name``: ``build(lr)`` gives its ``optax.GradientTransformation`` for a learning rate
    given as a float, a traced scalar (a sweep's models share one program) or an optax schedule of the step
    count, as optax's own optimizers take it (``lambda lr: optax.adamw(lr, weight_decay=1e-4)``);
    ``default_lr`` is the learning rate when none is given."""
    with _part("optimizer", name):
        _check_callable(build, "build")
        lr = check_number("default_lr", default_lr, low=0.0, low_open=True)
        _try_optimizer(build, lr)
        _add("optimizer", name, (lr, build), (build, lr), replace)


def _try_optimizer(build: Callable[[optax.ScalarOrSchedule], optax.GradientTransformation], lr: float) -> None:
    """One abstract update of small params by ``build``'s transformation, for each way a learning rate comes."""
    params = {"kernel": jax.ShapeDtypeStruct((3, 2), jnp.float32), "bias": jax.ShapeDtypeStruct((2,), jnp.float32)}

    def updates(rate: Any, tree: Any) -> Any:
        tx = build(rate)
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(f"build(lr) gave {type(tx).__name__}, not an optax.GradientTransformation")
        return tx.update(tree, tx.init(tree), tree)[0]

    def schedule(count: Any) -> float:
        return lr

    tries: dict[str, Callable[[], Any]] = {
        "build(default_lr)": lambda: jax.eval_shape(functools.partial(updates, lr), params),  # lr a float
        "build(lr) of a traced lr": lambda: jax.eval_shape(updates, jax.ShapeDtypeStruct((), jnp.float32), params),
        "build(lr) of a schedule": lambda: jax.eval_shape(functools.partial(updates, schedule), params),
    }
    for what, attempt in tries.items():
        out = _traced(what, attempt)
        try:
            shaped = jax.tree_util.tree_map(lambda got, want: got.shape == want.shape, out, params)
        except (ValueError, TypeError, AttributeError):  # another tree, or leaves that are no arrays
            shaped = False
        if not all(jax.tree_util.tree_leaves(shaped)):
            raise UserInputError(f"the updates of {what} are not shaped as the params")


def register_loss(name: str, fn: Callable[[jax.Array, jax.Array], jax.Array], *, replace: bool = False) -> None:
    """Register loss ``name``: ``fn(logits (batch, C), targets (batch, C) one-hot)`` gives the loss of each
    example ``(batch,)``, which training averages and differentiates with ``jax.grad`` (softmax it yourself
    where it is a loss of the probabilities, as the built-ins other than cross-entropy do)."""
    with _part("loss", name):
        _per_example(fn, "logits, targets")
        pair = jax.ShapeDtypeStruct((4, 3), jnp.float32)
        _traced("jax.grad of fn", lambda: jax.eval_shape(jax.grad(lambda z: jnp.sum(fn(z, z))), pair))
        _add("loss", name, fn, (fn,), replace)


def register_metric(name: str, fn: Callable[[jax.Array, jax.Array], jax.Array], *, replace: bool = False) -> None:
    """Register metric ``name``: ``fn(probs (batch, C), targets (batch, C) one-hot)`` gives one value per example
    ``(batch,)``; the metric is their mean over the evaluated examples (as Keras' ``MeanMetricWrapper``).
    Every evaluation computes it; ``metrics=(..., name)`` records it as ``val_<name>`` each epoch."""
    with _part("metric", name):
        _per_example(fn, "probs, targets")
        _add("metric", name, fn, (fn,), replace)


def register_dataset(
    name: str,
    load: Callable[..., data_lib.Dataset],
    *,
    epochs: int = data_lib.datasets.FILE_EPOCHS,
    about: str = "",
    class_names: tuple[str, ...] = (),
    shape: tuple[int, int] | None = None,
    replace: bool = False,
) -> None:
    """Register dataset ``name``: ``load()`` gives a :class:`mlpjax.Dataset` (:func:`mlpjax.make_dataset` builds one
    from arrays), or, if it takes an argument, ``load(data_dir)`` with the data folder (None where none is
    given). It is called when the dataset is needed, not here. ``epochs``: the default number of epochs;
    ``about``: one line for ``--help``; ``class_names``: one per class; ``shape``: ``(input_dim, num_classes)``
    where known without loading (training then checks the data against it).

    The loaded data takes ``name`` (a run records it, and its commands load the dataset by it again) and
    ``class_names`` where given."""
    with _part("dataset", name):
        _check_callable(load, "load")
        takes_folder = _takes_folder(load)
        epochs = check_int("epochs", epochs)
        if not isinstance(about, str) or not about.isprintable():
            raise FieldError("about", f"must be one line of text, got {about!r}")
        if not isinstance(class_names, (tuple, list)) or not all(isinstance(c, str) for c in class_names):
            raise FieldError("class_names", f"must be a sequence of names (str), got {class_names!r}")
        if shape is not None:
            if not isinstance(shape, (tuple, list)) or len(shape) != 2:
                raise FieldError("shape", f"must be (input_dim, num_classes), got {shape!r}")
            shape = (check_int("shape", shape[0]), check_int("shape", shape[1], 2))
        names = tuple(class_names)
        spec = data_lib.DatasetSpec(
            functools.partial(_load_dataset, name, load, takes_folder, names), epochs, about, names, shape, takes_folder
        )
        _add("dataset", name, spec, (load, epochs, about, names, shape), replace)


def _takes_folder(load: Callable) -> bool:
    """Whether ``load`` takes the data folder (one argument), rather than none; more is refused."""
    try:
        parameters = list(inspect.signature(load).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: called without arguments
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.default is p.empty and p.kind in (*positional, p.KEYWORD_ONLY)]
    if len(required) > 1 or any(p.kind == p.KEYWORD_ONLY for p in required):
        raise UserInputError("load must take no argument, or one: the data folder")
    return bool(parameters) and parameters[0].kind in (*positional, inspect.Parameter.VAR_POSITIONAL)


def _load_dataset(
    name: str, load: Callable, takes_folder: bool, class_names: tuple[str, ...], data_dir: str | None
) -> data_lib.Dataset:
    """A registered dataset's ``DatasetSpec.load``: the user's ``load``, its result checked, named ``name``."""
    try:
        ds = load(data_dir) if takes_folder else load()
    except UserInputError:
        raise
    except Exception as e:  # the user's loader raises anything: one line, the cause chained
        raise UserInputError(f"dataset {name!r}: its load function failed ({_short(e)})") from e
    if not isinstance(ds, data_lib.Dataset):
        raise UserInputError(
            f"dataset {name!r}: its load function gave {type(ds).__name__}, not a mlpjax.Dataset "
            "(mlpjax.make_dataset builds one from arrays)"
        )
    found = class_names or ds.class_names
    if found and len(found) != ds.num_classes:
        raise UserInputError(f"dataset {name!r}: {len(found)} class names for {ds.num_classes} classes")
    return dataclasses.replace(ds, name=name, class_names=tuple(found))


# --- plugins -----------------------------------------------------------------------------------------------------

_LOADED: dict[str, Any] = {}  # what was loaded (an entry point, a file path) -> its module or callable's result


def _failed(what: str, e: BaseException, *, given: bool = True) -> UserInputError:
    """A plugin that failed: one line naming it (``given``: as the ``plugin`` field, else as an installed one),
    then what its own error says (a bad registration's line)."""
    text = f"{what}: " + (str(e) if isinstance(e, UserInputError) else f"cannot be loaded ({_short(e)})")
    return FieldError("plugin", f"{{field}} {text}") if given else UserInputError(f"plugin {text}")


def _load_file(path: Path) -> Any:
    """The module of the ``.py`` file ``path``, executed once per process (by its resolved path)."""
    key = str(path.resolve())
    if key in _LOADED:
        return _LOADED[key]
    stem = re.sub(r"\W", "_", path.stem)
    module_name, n = f"mlpjax_plugin_{stem}", 1
    while module_name in sys.modules:
        n += 1
        module_name = f"mlpjax_plugin_{stem}_{n}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None  # a .py path always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    _LOADED[key] = module
    return module


def load_module(plugin: str | os.PathLike) -> Any:
    """Import the plugin ``plugin``: a module name on ``sys.path`` (``my_parts``, ``pkg.parts``) or the path of a
    ``.py`` file (executed once per process); a failure is one line naming it (a ``FieldError`` of ``plugin``)."""
    text = os.fspath(plugin) if isinstance(plugin, (str, os.PathLike)) else plugin
    if not isinstance(text, str) or "\x00" in text:
        raise FieldError("plugin", f"must be a module name or a FILE.py path, got {plugin!r}")
    is_file = text.endswith(".py") or os.sep in text or "/" in text
    if not is_file and not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", text):
        raise FieldError("plugin", f"{{field}} {text!r}: expected a module name (my_parts) or a FILE.py path")
    if is_file:
        path = Path(text)
        if not path.is_file():
            raise FieldError("plugin", f"{{field}} {text}: no such file (a module: give its name, without .py)")
    try:
        return _load_file(path) if is_file else importlib.import_module(text)
    except ModuleNotFoundError as e:
        if not is_file and e.name is not None and (text == e.name or text.startswith(e.name + ".")):
            hint = f"; a file here: {text}.py" if Path(f"{text}.py").is_file() else ""
            raise FieldError(
                "plugin", f"{{field}} {text}: no module of that name on sys.path (give a FILE.py path instead){hint}"
            ) from None
        raise _failed(text, e) from e
    except Exception as e:  # the plugin's code raises anything: one line naming the plugin
        raise _failed(text, e) from e


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed plugins: the entry points of group :data:`GROUP`, sorted by name."""
    return sorted(importlib.metadata.entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value))


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    key = f"entry point {ep.name} = {ep.value}"
    if key in _LOADED:
        return
    dist = getattr(getattr(ep, "dist", None), "name", None)
    what = f"{ep.name} (entry point {ep.value!r} of group {GROUP}" + (f", installed by {dist})" if dist else ")")
    try:
        found = ep.load()
        result = found() if callable(found) and not inspect.ismodule(found) else found
    except Exception as e:  # the plugin's code raises anything: one line naming the plugin
        raise _failed(what, e, given=False) from e
    _LOADED[key] = result


def load_plugins(*modules: str | os.PathLike, installed: bool = True) -> list[str]:
    """Load the installed plugins (with ``installed``: every entry point of group :data:`GROUP`, a module imported
    or a callable called), then each of ``modules`` (:func:`load_module`), in order; each once per process. Returns
    what was loaded, as ``entry point NAME = VALUE`` and the ``modules`` given. A failure is one line naming the
    plugin (:class:`mlpjax.errors.FieldError` of ``plugin``); the plugins before it stay loaded."""
    done = []
    for ep in entry_points() if installed else []:
        _load_entry_point(ep)
        done.append(f"entry point {ep.name} = {ep.value}")
    for plugin in modules:
        load_module(plugin)
        done.append(os.fspath(plugin))
    return done
