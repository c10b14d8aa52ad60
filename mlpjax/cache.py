"""JAX's persistent compilation cache for mlpjax, on by default: a compiled program is kept on disk and a later
process that compiles the same program (same jax, backend, flags and shapes) loads it instead.

The folder is ``$MLPJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlpjax``, else ``~/.cache/mlpjax``;
``MLPJAX_CACHE_DIR=`` (empty) or ``configure(enabled=False)`` (the CLI's ``--no-cache``) turns it off. Every
program is cached however fast it compiled (mlpjax's are small), and the folder is bounded to
:data:`MAX_BYTES`: JAX evicts the least recently used entries first. JAX's own variables
(``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``, ``JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES``,
``JAX_COMPILATION_CACHE_MAX_SIZE``), when set, are left as they are. A cached program computes what a fresh
compilation computes (XLA serialises the executable itself); measurements in docs/speed.md.

A leaf: imports nothing heavy, so that it can run before JAX is imported (then it sets JAX's environment
variables, which JAX reads when imported, and which child processes inherit) or after (then it updates
``jax.config``).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

ENV = "MLPJAX_CACHE_DIR"
MAX_BYTES = 1 << 30  # 1 GiB; one mlpjax program is 2 to 100 KiB compressed (docs/speed.md)
NO_CACHE_HELP = f"compile everything afresh, without the persistent compilation cache (also: {ENV}= empty)"

# JAX's settings the cache needs, by config name; set unless the user set JAX's variable of the same name.
TUNING = {
    "jax_persistent_cache_min_compile_time_secs": 0,  # cache every program, however fast it compiled
    "jax_persistent_cache_min_entry_size_bytes": -1,  # and however small (-1: no minimum, no override by JAX)
    "jax_compilation_cache_max_size": MAX_BYTES,  # JAX evicts the least recently used entries beyond it
}


def cache_dir(environ=None) -> Path | None:
    """The cache folder the environment asks for (``None``: the cache is off); see the module's docstring.

    An XDG_CACHE_HOME that is empty or relative is ignored, as the XDG specification says."""
    environ = os.environ if environ is None else environ
    if ENV in environ:
        return Path(environ[ENV]).expanduser() if environ[ENV] else None
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path(environ.get("HOME") or Path.home()) / ".cache"
    return base / "mlpjax"


def settings(enabled: bool = True, environ=None) -> dict[str, object]:
    """JAX's config names and the values :func:`configure` gives them."""
    environ = os.environ if environ is None else environ
    folder = cache_dir(environ) if enabled else None
    if folder is None:
        return {"jax_enable_compilation_cache": False}
    chosen = {"jax_enable_compilation_cache": True, "jax_compilation_cache_dir": str(folder)}
    bounded = _has_filelock()  # JAX needs filelock to bound the folder; without it the cache is unbounded
    chosen.update(
        {
            name: value
            for name, value in TUNING.items()
            if name.upper() not in environ and (bounded or name != "jax_compilation_cache_max_size")
        }
    )
    return chosen


def _has_filelock() -> bool:
    import importlib.util

    return importlib.util.find_spec("filelock") is not None


def _writable_folder(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def configure(enabled: bool = True) -> Path | None:
    """Turn the persistent compilation cache on (in :func:`cache_dir`) or off for this process and its children;
    the folder in use, or ``None``. Call it before anything is compiled: JAX opens its cache at the first
    compilation and keeps it for the life of the process. A folder that cannot be made (a read-only home)
    leaves the cache off, silently: it only saves time."""
    chosen = settings(enabled)
    # a cache entry that cannot be written or read is compiled afresh: it only costs time, so JAX need not say so
    warnings.filterwarnings("ignore", message="Error (writing|reading) persistent compilation cache entry")
    if "jax_compilation_cache_dir" in chosen and not _writable_folder(str(chosen["jax_compilation_cache_dir"])):
        chosen = settings(False)
    if "jax" in sys.modules:
        import jax

        for name, value in chosen.items():
            jax.config.update(name, value)
    for name, value in chosen.items():  # children (bench, experiment) and a JAX imported later read these
        os.environ[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    folder = chosen.get("jax_compilation_cache_dir")
    return None if folder is None else Path(str(folder))
