"""Ctrl-C for the command line: one line, at once, whatever the process is doing (:func:`exit_on_interrupt`).

Python runs a signal handler only when its main thread returns to the interpreter, so a ``KeyboardInterrupt``
waits for a compiled epoch to end (seconds to minutes), can be swallowed by a callback that the garbage
collector runs (then training goes on), and, raised inside Orbax's save, leaves its worker threads to print
tracebacks. Instead SIGINT is blocked in every thread and one thread waits for it: it prints one line and
ends the process at once, as a kill would. That is safe by construction of the run directory: an epoch is
renamed into place only when complete, ``metrics.json`` is replaced atomically, the run's lock dies with
the process, and a half-written epoch is a temporary directory that no reader takes for an epoch and the
next save removes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

EXIT_STATUS = 130  # 128 + SIGINT, as shells report it


def exit_on_interrupt(message: str = "interrupted") -> bool:
    """From now on, SIGINT (Ctrl-C) writes ``message`` to stderr and ends the process with status 130.

    Call it from the main thread before any other thread starts: the threads started later inherit the
    blocked SIGINT (and so do child processes: not for commands that start any). Returns False where it
    cannot be installed (not the main thread, no ``pthread_sigmask``); then Ctrl-C is a KeyboardInterrupt.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return False
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def wait() -> None:
        signal.sigwait({signal.SIGINT})
        exit_now(message)

    threading.Thread(target=wait, name="mlpjax-ctrl-c", daemon=True).start()
    return True


def exit_now(message: str = "interrupted") -> None:
    """Write ``message`` to stderr on a line of its own (after what stdout holds; below an open progress bar)
    and end the process with status 130 at once."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or broken stream: the message still goes out below
            pass
    tqdm = sys.modules.get("tqdm")
    bar_open = bool(getattr(getattr(tqdm, "tqdm", None), "_instances", None))  # a progress bar's line is open
    try:
        os.write(2, f"{chr(10) if bar_open else ''}{message}\n".encode())
    finally:
        os._exit(EXIT_STATUS)
