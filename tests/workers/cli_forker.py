"""Starts ``mlpjax`` commands for the kill tests (``conftest.CliForker``) without their seconds of imports: this
process imports what ``mlpjax train`` and ``mlpjax sweep`` import (JAX imported, never started: no backend, no
XLA threads) and forks a child for each command, which from there on runs exactly as ``python -m mlpjax.cli
ARGV`` would: the command line's Ctrl-C handling, its exit status, the interpreter's exit.

One JSON request a line on stdin, ``{"argv": [...], "stderr": PATH}``: the child is forked and waits; ``PID n``
on stdout; then the line ``go`` on stdin starts it (so that its folder can be watched from its first path);
``EXIT status`` on stdout when it has ended (negative: killed by that signal). stdout of the command is
discarded, its stderr written to PATH.
"""

from __future__ import annotations

import json
import os
import sys

import matplotlib.pyplot  # noqa: F401 - what the commands import, imported once here
import orbax.checkpoint  # noqa: F401
import sklearn.datasets  # noqa: F401
import sklearn.model_selection  # noqa: F401
import tensorboardX  # noqa: F401

import mlpjax.cli
import mlpjax.runs.run
import mlpjax.sweep.checkpoint
import mlpjax.sweep.hparams
import mlpjax.sweep.report  # noqa: F401


def command(argv: list[str], stderr: str, go: int) -> None:
    """The forked child: wait for ``go`` (a pipe's read end), then ``mlpjax ARGV``; never returns."""
    os.read(go, 1)
    os.close(go)
    err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    sys.argv = [mlpjax.cli.__file__, *argv]
    sys.exit(mlpjax.cli.main())  # as ``python -m mlpjax.cli`` ends (mlpjax/cli/__main__.py)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write)
            command(request["argv"], request["stderr"], read)
        os.close(read)
        print(f"PID {pid}", flush=True)
        sys.stdin.readline()  # "go"
        os.write(write, b"g")
        os.close(write)
        _, status = os.waitpid(pid, 0)
        print(f"EXIT {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
