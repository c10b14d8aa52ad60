"""The exception types for bad input. The library names fields and values; only the command line turns a field
name into its flag (:meth:`UserInputError.for_cli`) when it prints the error as one line with exit status 2."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

FIELD = "{field}"  # where a FieldError's text names its field


class UserInputError(ValueError):
    """Bad input from a user: a value, a name, a file. The message names it and says what would be right."""

    def for_cli(self, flag: Callable[[str], str]) -> str:
        """The message as the command line shows it; ``flag(field)`` gives a field's flag, e.g. ``--batch-size``."""
        return str(self)


class FieldError(UserInputError):
    """A bad value of the field ``field`` (a config field or a function's parameter).

    ``text`` names the field as ``{field}`` (or, without it, starts with it): ``FieldError("epochs", "must be at
    least 1, got 0")`` reads ``epochs must be at least 1, got 0`` in Python and ``--epochs must be ...`` on the
    command line. Other fields it mentions are named in ``also`` and written ``{name}``. ``where`` (a path)
    prefixes it.
    """

    def __init__(self, field: str, text: str, *, where: Any = None, also: tuple[str, ...] = ()):
        self.field, self.text, self.where = field, text if FIELD in text else f"{FIELD} {text}", where
        self.also = also
        super().__init__(self._render(lambda name: name))

    def _render(self, flag: Callable[[str], str]) -> str:
        text = self.text.replace(FIELD, flag(self.field))
        for name in self.also:
            text = text.replace("{" + name + "}", flag(name))
        return ("" if self.where is None else f"{self.where}: ") + text

    def for_cli(self, flag: Callable[[str], str]) -> str:
        return self._render(flag)


def check_name(what: str, name: str, valid: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``valid``, else raise an error that lists the valid names."""
    valid = list(valid)
    if name not in valid:
        raise UserInputError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
    return name


def check_int(field: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int from ``minimum`` to ``maximum`` (None: no top): a bool, a float or a string is refused,
    not converted."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise FieldError(field, f"must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise FieldError(field, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise FieldError(field, f"must be at most {maximum}, got {value}")
    return value


def check_number(
    field: str,
    value: Any,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = True,
    describe: str = "",
) -> float:
    """``value`` as a finite float in the interval given (``low_open``: ``low`` excluded; ``high`` None: no top)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        number = float("nan")
    if (
        isinstance(value, bool)
        or not math.isfinite(number)
        or not (number > low if low_open else number >= low)
        or (high is not None and not (number < high if high_open else number <= high))
    ):
        interval = describe or (
            "a positive number"
            if low_open and low == 0 and high is None
            else f"in {'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'}"
            f"{')' if high_open or high is None else ']'}"
        )
        raise FieldError(field, f"must be {interval}, got {value!r}")
    return number
