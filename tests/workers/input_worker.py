"""Reads input files for the fuzz tests, in a process with a memory limit (see ``conftest.LimitedWorker``).

One JSON request a line on stdin: ``{"call": "read_idx" | "load_idx_folder" | "load_image" | "cli", "path": ...}``
(``load_image`` also takes ``"input_dim"``; ``cli`` runs ``mlpjax ARGV`` in the folder ``path``, ``"argv"``, stopping
where ``"stop_at"`` says the real work begins, with ``"env"`` changed). One reply a line on stdout, after ``REPLY ``:
``{"outcome": "ok", ...what was read}``, ``{"outcome": "user", "message": ...}`` for a UserInputError, or
``{"outcome": "crash", "traceback": ...}`` for any other exception (MemoryError included). JAX is imported with
mlpjax but never started, so a small address space suffices.
"""

from __future__ import annotations

import hashlib
import json
import sys
import traceback
from collections.abc import Sequence

import numpy as np

from mlpjax import data
from mlpjax.draw import predict
from mlpjax.errors import UserInputError


def digest(array: np.ndarray) -> dict:
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
    }


def read_idx(path: str) -> dict:
    return digest(data.read_idx(path))


def load_idx_folder(path: str) -> dict:
    ds = data.load_idx_folder(path)
    return {"train": digest(ds.encoded_train), "y_train": digest(ds.y_train), "test": digest(ds.encoded_test)}


def load_image(path: str, input_dim: int = 784) -> dict:
    x = predict.load_image(path, input_dim)
    assert x.shape == (input_dim,) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1, (x.shape, x.dtype)
    return digest(x)


class WorkStarted(BaseException):
    """Raised in place of a function named in ``cli``'s ``stop_at``: the command got past its checks and began
    its real work (a BaseException, so that no ``except Exception`` of the command can swallow it)."""


def cli(path: str, argv: list[str], stop_at: Sequence[str] = (), env: dict[str, str | None] | None = None) -> dict:
    """``mlpjax ARGV`` in this process, run in the folder ``path``: its exit status and what it wrote to stderr
    (argparse's own exits included). This process's address space is limited: whatever a flag asks for must be
    refused before it is allocated.

    ``stop_at``: functions (``"module.name"``) where the command's real work begins (a benchmark's first
    measurement, an experiment's first training): reaching one ends the command there, as status 0 with
    ``"started"`` naming it. ``env``: variables set (None: unset) for this command only."""
    import contextlib
    import io
    import os
    from unittest import mock

    from mlpjax import cli as mlpjax_cli

    err = io.StringIO()
    os.chdir(path)
    started = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ))
        for name, value in (env or {}).items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        for target in stop_at:
            stack.enter_context(mock.patch(target, side_effect=WorkStarted(target)))
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            code: int | str | None = mlpjax_cli.main(argv)
        except SystemExit as e:
            code = e.code
        except WorkStarted as e:
            code, started = 0, str(e)
    return {"code": code, "err": err.getvalue(), "started": started}


CALLS = {f.__name__: f for f in (read_idx, load_idx_folder, load_image, cli)}


def answer(request: dict) -> dict:
    call = CALLS[request.pop("call")]
    try:
        return {"outcome": "ok", **call(**request)}
    except UserInputError as e:
        return {"outcome": "user", "message": str(e)}
    except BaseException:  # noqa: BLE001 - every other exception is what the fuzz tests look for
        return {"outcome": "crash", "traceback": traceback.format_exc()}


def main() -> None:
    for line in sys.stdin:
        print("REPLY " + json.dumps(answer(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
