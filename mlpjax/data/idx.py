"""IDX files (MNIST's format), read safely: the header is checked against the file's size and the memory
available before anything is allocated (:func:`read_idx`, :func:`read_idx_header`)."""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mlpjax import files, memory
from mlpjax.errors import UserInputError

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_MAX_DIMS = 4  # labels have 1 dimension, images 3; more is no MNIST-format file
DEFLATE_MAX_RATIO = 1032  # no deflate stream expands more than this: a 258-byte match costs at least 2 bits
_READ_CHUNK = 1 << 24  # bytes read (or decompressed) at a time into the array


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file, gzipped or raw (told apart by its first bytes), as an array of its declared shape and type.

    Checked before anything is allocated: the file is a regular file (links followed; a directory, FIFO or
    device is refused unread); the magic number names an IDX type and 1 to :data:`IDX_MAX_DIMS` dimensions;
    the declared size is at most the memory available and equals the file's size (raw) or is at most
    :data:`DEFLATE_MAX_RATIO` times it (gzip). Then exactly the declared bytes are read, streaming (a gzip
    stream is decompressed no further, but for one byte to detect trailing data). A zero-sized shape gives an
    empty array. Every bad file raises UserInputError naming it: bad magic, truncated, trailing data, corrupt
    compressed data, permission denied, ...
    """
    path = Path(path)
    with files.open_regular(path) as file, _read_errors(path):
        size = os.fstat(file.fileno()).st_size
        gzipped = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        stream = gzip.GzipFile(fileobj=file, mode="rb") if gzipped else file
        dtype, shape = _header(path, stream)
        nbytes = _check_idx_size(path, dtype, shape, size, gzipped)
        body = _read_body(path, stream, nbytes, f"shape {shape} ({4 + 4 * len(shape) + nbytes} bytes)")
    # uint8 (images, labels) stays a view of the bytes read: no copy
    return body.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


@contextlib.contextmanager
def _read_errors(path: Path):
    """Turn what reading ``path`` raises into one UserInputError that says why in words."""
    try:
        yield
    except EOFError:
        raise UserInputError(f"{path}: truncated: the gzip data ends before its end marker") from None
    except (zlib.error, gzip.BadGzipFile) as e:
        raise UserInputError(f"{path}: corrupt gzip data ({e})") from None
    except MemoryError:
        raise UserInputError(f"{path}: not enough memory to read it") from None
    except OSError as e:
        raise UserInputError(f"{path}: cannot read: {files.why_unusable(path, e)}") from None


def _header(path: Path, stream: io.RawIOBase | io.BufferedIOBase) -> tuple[np.dtype, tuple[int, ...]]:
    """The element type and shape from the IDX header at the start of ``stream`` (4 + 4 * ndim bytes)."""
    magic = _read_up_to(stream, 4)
    if len(magic) < 4 or magic[0] or magic[1] or magic[2] not in _IDX_DTYPES:
        raise UserInputError(
            f"{path}: not an IDX file (bad magic number {magic.hex() or 'empty'}; "
            "expected 00000801 for labels or 00000803 for images)"
        )
    ndim = magic[3]
    if not 1 <= ndim <= IDX_MAX_DIMS:
        raise UserInputError(
            f"{path}: the IDX header declares {ndim} dimensions; expected 1 to {IDX_MAX_DIMS} "
            "(1 for labels, 3 for images)"
        )
    dims = _read_up_to(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise UserInputError(f"{path}: truncated IDX header ({4 + len(dims)} of {4 + 4 * ndim} bytes)")
    return np.dtype(_IDX_DTYPES[magic[2]]), struct.unpack(f">{ndim}I", dims)


def _check_idx_size(path: Path, dtype: np.dtype, shape: tuple[int, ...], size: int, gzipped: bool) -> int:
    """The body's declared byte size, once checked against the file's ``size`` and the memory available."""
    nbytes = math.prod(shape) * dtype.itemsize
    declared = 4 + 4 * len(shape) + nbytes
    if math.prod(max(d, 1) for d in shape) * dtype.itemsize >= 2**63:
        raise UserInputError(f"{path}: the IDX header declares shape {shape}, whose size overflows 64 bits")
    if gzipped and declared > DEFLATE_MAX_RATIO * size:
        raise UserInputError(
            f"{path}: header declares shape {shape} ({declared} bytes), more than a gzip file of "
            f"{size} bytes can hold (at most {DEFLATE_MAX_RATIO} times that): a wrong count"
        )
    if not gzipped and declared != size:
        raise UserInputError(
            f"{path}: header declares shape {shape} ({declared} bytes) "
            f"but the file has {size} bytes (short read or wrong count)"
        )
    return memory.check_allocation(path, nbytes, f"shape {shape}")


def _read_body(path: Path, stream: io.RawIOBase | io.BufferedIOBase, nbytes: int, declared: str) -> np.ndarray:
    """Exactly ``nbytes`` more bytes of ``stream`` as uint8, then one more read to make sure none follow."""
    out = np.empty(nbytes, np.uint8)
    view, done = out.data, 0
    while done < nbytes:
        n = stream.readinto(view[done : done + _READ_CHUNK])
        if not n:
            raise UserInputError(
                f"{path}: header declares {declared} but the data ends {nbytes - done} bytes "
                "early (short read or wrong count)"
            )
        done += n
    if stream.read(1):
        raise UserInputError(f"{path}: header declares {declared} but more data follows (wrong count)")
    return out


def _read_up_to(stream: io.RawIOBase | io.BufferedIOBase, n: int) -> bytes:
    """``n`` bytes of ``stream``, fewer only where it ends first."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The element type and shape that the IDX file ``path`` (gzipped or raw) declares, reading its header alone.

    ``path`` is opened as :func:`read_idx` opens it (a regular file only: a FIFO or device is refused unread); a
    bad header is a UserInputError naming the file.
    """
    path = Path(path)
    with files.open_regular(path) as file, _read_errors(path):
        gzipped = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        return _header(path, gzip.GzipFile(fileobj=file, mode="rb") if gzipped else file)
