"""What several commands share: a field's flag (:func:`flag`), typed argparse parsers, and the training flags,
built from :func:`mlpjax.core.config.describe` (help, choices and defaults come from ``TrainConfig``; the parser
defaults are None, so that a given flag can be told from an omitted one)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlpjax.errors import UserInputError


def _checked(cast, accept, expected: str):
    """An argparse type: ``cast(text)``, refused with "expected ..." unless ``accept(value)``. Only for flags
    that no library object checks; the others are checked once, by the object they configure."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
integer = _checked(int, lambda v: True, "an integer")
number = _checked(float, lambda v: True, "a number")
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def boolean(text: str) -> bool:
    """``true``/``false`` (also yes/no, on/off, 1/0; any case) as a bool; a ValueError otherwise."""
    word = text.strip().lower()
    if word not in TRUE + FALSE:
        raise ValueError(text)
    return word in TRUE


def widths(text: str) -> tuple[int, ...]:
    """One model's layer widths joined by ``x``: ``256x128`` -> ``(256, 128)``."""
    return tuple(int(w) for w in text.split("x"))


def listed(cast, expected: str):
    """An argparse type for comma-separated values, each ``cast`` (its ValueError: "expected ...")."""

    def parse(text: str):
        try:
            return [cast(part.strip()) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, comma-separated, got {text!r}") from None

    return parse


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (a newline or a carriage return in a file name, say)
    written as its escape, so that an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


POSITIONALS = {"directory": "DIR", "name": "NAME"}  # arguments given without a flag, by their metavar


def flag(field: str) -> str:
    """The command-line flag of a library field: ``batch_size`` -> ``--batch-size`` (a positional: its metavar)."""
    if field in POSITIONALS:
        return POSITIONALS[field]
    return "--" + field.replace("_", "-")


@contextlib.contextmanager
def flag_error(name: str):
    """Within it, a UserInputError gets the flag ``name`` in front: "--out x.png: already exists; ..."."""
    try:
        yield
    except UserInputError as e:
        raise UserInputError(f"{name} {e}") from None


def progress_bars(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: not ``--quiet``, and stderr is a terminal (a log file gets no bars)."""
    return not args.quiet and sys.stderr.isatty()


# How each kind of TrainConfig field (mlpjax.core.config.FieldHelp.kind) is read: one value, and a sweep's list.
SINGLE = {"int": integer, "float": number, "name": str, "names": str, "path": str, "text": str}
SINGLE_CAST, LISTED_EXPECTED = {"int": int, "float": float}, {"int": "integers", "float": "numbers"}
LISTED = {
    **{kind: listed(cast, LISTED_EXPECTED[kind]) for kind, cast in SINGLE_CAST.items()},
    "name": listed(str, "names"),
    "widths": listed(widths, "layer widths like 512 or 256x128"),
    "switch": listed(boolean, "true or false"),
    "names": lambda text: [text],
}  # a sweep's models compute one set of metrics: its commas join names


def listed_or_off(kind: str, off: str):
    """:data:`LISTED`'s parser of ``kind`` that also takes the word ``off`` (for None: the setting off)."""
    cast = SINGLE_CAST[kind]
    return listed(lambda text: None if text == off else cast(text), f"{LISTED_EXPECTED[kind]} or {off}")


LISTED_METAVAR = {"widths": "H,...", "switch": "true,false", "names": "NAMES"}


def _help(about, *, listed_: bool, default: str | None = None) -> str:
    """A field's help line: its text, the choices from the registry, and its default read from TrainConfig."""
    text = about.render(flag)
    if about.kind == "widths":
        text += ", layers joined by x, models by commas: 512,256x128" if listed_ else ", e.g. 256 128"
    if about.kind == "switch" and listed_:
        text += "; alone: true; true,false trains both"
    if about.off is not None and listed_:
        text += f"; {about.off} lists a model without it"
    if about.choices is not None:
        choices = about.choices()
        if about.kind == "names":
            text += (
                "; comma-separated, any of: " + ", ".join(choices) + ("; one set for every model" if listed_ else "")
            )
        elif any(choices.values()):
            text += ": " + "; ".join(f"{name}: {line}" if line else name for name, line in choices.items())
        else:
            text += ": " + ", ".join(choices)
    default = default.format(default=about.default_words()) if default else about.default_words()
    return f"{text} (default: {default})".replace("%", "%%")


def add_config_flags(
    p: argparse.ArgumentParser,
    names: Iterable[str] | None = None,
    *,
    listed_: bool = False,
    defaults: dict[str, str] | None = None,
) -> None:
    """A flag for each TrainConfig field of ``names`` (None: every one), help from its description.

    ``listed_``: as ``mlpjax sweep`` takes them, comma-separated lists (the dataset and its folder: one value);
    ``defaults``: other words for a field's default (``{default}`` in them: TrainConfig's). Parser defaults are
    None.
    """
    from mlpjax.core.config import DATA_FIELDS, describe

    fields = describe()
    for name in fields if names is None else names:
        about = fields[name]
        help_ = _help(about, listed_=listed_, default=(defaults or {}).get(name))
        if listed_ and name not in DATA_FIELDS:  # a sweep trains every model on one dataset
            if about.kind == "switch":
                p.add_argument(
                    flag(name), type=LISTED["switch"], nargs="?", const=[True], metavar="true,false", help=help_
                )
            elif about.off is not None:  # the word for None lists a model with the setting off
                p.add_argument(
                    flag(name), type=listed_or_off(about.kind, about.off), metavar=f"{about.metavar},...", help=help_
                )
            else:
                p.add_argument(
                    flag(name),
                    type=LISTED[about.kind],
                    metavar=LISTED_METAVAR.get(about.kind, f"{about.metavar},..."),
                    help=help_,
                )
        elif about.kind == "switch":
            p.add_argument(flag(name), action="store_const", const=True, help=help_)
        elif about.kind == "widths":
            p.add_argument(flag(name), type=integer, nargs="+", metavar=about.metavar, help=help_)
        else:
            p.add_argument(flag(name), type=SINGLE[about.kind], metavar=about.metavar, help=help_)


def add_saved_model_flags(p: argparse.ArgumentParser) -> None:
    """DIR of a saved run, the dataset to test it on, and --best."""
    p.add_argument("directory", metavar="DIR", help="a run directory from mlpjax train --output DIR")
    add_config_flags(
        p,
        ("dataset", "data_dir"),
        defaults={"dataset": "the dataset the model was trained on", "data_dir": "the run's, else {default}"},
    )
    p.add_argument("--best", action="store_true", help="the best epoch (--save-best) instead of the last")


def given_train_flags(args: argparse.Namespace) -> dict:
    """The flat TrainConfig fields (one flag each) that were given on the command line (flags left out are None)."""
    from mlpjax.core.config import TrainConfig

    given = {name: getattr(args, name) for name in TrainConfig.flat_fields() if getattr(args, name, None) is not None}
    if "hidden" in given:
        given["hidden"] = tuple(given["hidden"])
    if "metrics" in given:
        from mlpjax.core.metrics import check_names

        given["metrics"] = list(check_names(given["metrics"]))
    return given


def train_config_from_args(args: argparse.Namespace):
    """The TrainConfig of the training flags given (the others: its defaults)."""
    from mlpjax.core.config import TrainConfig

    return TrainConfig.from_dict(given_train_flags(args))


PLATEAU_FIELDS = ("plateau_factor", "plateau_patience")  # settings of --reduce-lr-on-plateau


def refuse_idle_plateau(given: Mapping[str, Any], plateau_on: bool) -> None:
    """A ``--plateau-*`` flag in ``given`` (fields to their values: one, or a sweep's list) does nothing unless
    ``--reduce-lr-on-plateau`` is on (``plateau_on``: for some model): refuse it rather than ignore it."""
    idle = [name for name in PLATEAU_FIELDS if name in given]
    if idle and not plateau_on:
        value = given[idle[0]]
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        raise UserInputError(
            f"{flag(idle[0])} {text} takes effect only with --reduce-lr-on-plateau, which is off; "
            f"turn that on, or drop {flag(idle[0])}"
        )


def refuse_output_beside_resume(args: argparse.Namespace) -> None:
    """``--resume DIR`` writes into DIR: an ``--output`` naming another folder is a contradiction."""
    if args.output and Path(args.output).resolve() != Path(args.resume).resolve():
        raise UserInputError(f"--resume {args.resume} keeps writing into {args.resume}; drop --output {args.output}")


def lines(items: Iterable[tuple[str, str]], width: int = 100) -> str:
    """``name  description`` lines, names padded to one column and descriptions wrapped under themselves (a
    command's list of choices in its help)."""
    items = list(items)
    column = max((len(name) for name, _ in items), default=0) + 4
    return "\n".join(
        textwrap.fill(about, width, initial_indent=f"  {name:<{column - 2}}", subsequent_indent=" " * column)
        if about
        else f"  {name}"
        for name, about in items
    )
