"""Memory before it is allocated: what this process may still allocate on the host or the first accelerator.

A leaf module: anything in mlpjax may use it. Reading a file whose header declares a size, training a model
and restoring a checkpoint all check their bytes here (:func:`check_allocation`, :func:`free_memory`) before
they allocate, so that no input can make mlpjax allocate without bound.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlpjax.errors import UserInputError

try:
    import resource
except ImportError:  # not a Unix
    resource = None  # type: ignore[assignment]  # the callers fall back where it is None


def available_memory() -> int:
    """Bytes this process may still allocate on the host: the system's MemAvailable (else its physical memory),
    less where a cgroup's memory limit or an address-space limit (``RLIMIT_AS``) leaves less."""
    budget = _meminfo_bytes("MemAvailable") or os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cgroup = _cgroup_room()
    if cgroup is not None:
        budget = min(budget, cgroup)
    limit = resource.getrlimit(resource.RLIMIT_AS)[0] if resource else -1
    if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)):
        budget = min(budget, limit - (_meminfo_bytes("VmSize", "/proc/self/status") or 0))
    return max(budget, 0)


def _cgroup_room() -> int | None:
    """What this process's cgroup still allows (its memory limit less its use); None without a limit."""
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),  # cgroup v2, then v1
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path("/sys/fs/cgroup", limit_file).read_text().strip()
            used = int(Path("/sys/fs/cgroup", usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or v1's near-2**63: no limit
            return max(0, int(limit) - used)
        return None
    return None


def _meminfo_bytes(key: str, source: str = "/proc/meminfo") -> int | None:
    """The ``key: N kB`` line of ``source`` in bytes; None where there is none (not Linux)."""
    try:
        with open(source, "rb") as f:
            for line in f:
                if line.startswith(key.encode() + b":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_allocation(path: str | os.PathLike, nbytes: int, what: str) -> int:
    """``nbytes`` if that many bytes can be allocated for ``what`` read from ``path``; else one line naming both."""
    available = available_memory()
    if nbytes > available:
        raise UserInputError(
            f"{path}: {what} needs {format_bytes(nbytes)}, more than the "
            f"{format_bytes(available)} of memory available; the file's header is wrong or the "
            "machine is too small for it"
        )
    return nbytes


def format_bytes(n: int) -> str:
    """``n`` bytes for people: "512 B", "3.2 MiB", "17.0 GiB", ..."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def device_memory() -> int | None:
    """Free bytes of the first accelerator (None on CPU, whose memory is the host's)."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats() or {}
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError):
        return None


def free_memory() -> int:
    """Bytes a run may use: the host's available memory, or the first accelerator's free memory if less."""
    return min(m for m in (available_memory(), device_memory()) if m is not None)


def release_freed() -> None:
    """Give the heap memory this process has freed back to the system (glibc's ``malloc_trim``; elsewhere
    nothing), so that a large allocation that follows adds to what is in use, not to what malloc kept: glibc
    keeps freed blocks of up to 32 MB in its heap once it has freed one that size."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)
