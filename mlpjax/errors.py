"""The one exception type for bad input; the command line turns it into one line and exit status 2."""

from __future__ import annotations

from typing import Iterable


class UserInputError(ValueError):
    """Bad input from a user: a flag, a name, a file. The message names it and says what would be right."""


def check_name(what: str, name: str, valid: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``valid``, else raise an error that lists the valid names."""
    valid = list(valid)
    if name not in valid:
        raise UserInputError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
    return name
