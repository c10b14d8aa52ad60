"""What a bug report needs: the versions of mlpjax, Python and the numerical libraries, and the devices JAX sees.

``library_versions()`` is recorded with every result; ``report()`` is what ``mlpjax --version`` prints.
"""

from __future__ import annotations

import importlib.metadata
import platform

# Distribution names (as pip knows them), in the order they are reported.
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


def _installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def library_versions() -> dict[str, str]:
    """``{"mlpjax": ..., "jax": ..., "jaxlib": ..., "flax": ..., "optax": ..., "orbax-checkpoint": ...,
    "numpy": ..., "python": ...}``: versions as installed, read without importing the libraries."""
    from mlpjax import __version__

    return {
        "mlpjax": __version__,
        **{name: _installed(name) for name in LIBRARIES},
        "python": platform.python_version(),
    }


def devices() -> str:
    """The default backend's devices, e.g. ``cpu: 1 device (cpu:0)`` or
    ``gpu: 2 devices (cuda:0, cuda:1; NVIDIA H200)``.

    Starting the backend may fail (a CUDA plugin without a usable GPU, a bad ``JAX_PLATFORMS``): then the error,
    on one line, is the answer, since a bug report needs it most then.
    """
    try:
        import jax

        found = jax.devices()
        backend = jax.default_backend()
    except Exception as e:  # noqa: BLE001 - any backend failure is worth reporting, not raising
        return f"unavailable ({type(e).__name__}: {' '.join(str(e).split())})"
    names = ", ".join(map(str, found[:8])) + (f", and {len(found) - 8} more" if len(found) > 8 else "")
    kinds = sorted({d.device_kind for d in found} - {backend})  # e.g. the GPU model; a CPU's kind says nothing
    processes = len({d.process_index for d in found})
    extra = "".join(f"; {x}" for x in (*kinds, *([f"{processes} processes"] if processes > 1 else [])))
    return f"{backend}: {len(found)} device{'s' if len(found) != 1 else ''} ({names}{extra})"


def report() -> str:
    """One ``name version`` line each for mlpjax, the libraries and Python, then the platform and the devices."""
    lines = [f"{name} {version}" for name, version in library_versions().items()]
    lines[-1] += f" ({platform.python_implementation()})"
    lines.append(f"platform {platform.platform()}")
    lines.append(f"devices {devices()}")
    return "\n".join(lines)
