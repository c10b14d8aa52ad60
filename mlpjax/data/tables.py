"""Datasets from the user's files, and scikit-learn's bundled tables.

- ``FILE.npz``: arrays ``x_train, y_train, x_test, y_test``, or ``x, y`` (then the test rows are split off).
  Read with ``allow_pickle=False``: an object array is refused, never unpickled. Each array's header (dtype and
  shape) is read before its data, so misshapen arrays and sizes beyond the memory there is are refused first.
- ``FILE.csv`` / ``FILE.tsv``: a header row, then one row per example; the label is the last column; the other
  columns are numeric features. Labels are numbers or text; text labels become class names (sorted).
- ``FILE.parquet``: the same as a CSV file, its columns' names the header (read with pyarrow, the ``parquet``
  extra); the schema and the row count are read from the footer before any data.
- ``iris``, ``wine``, ``breast_cancer``: scikit-learn's bundled tables (offline).

A table names its features (its header less the label column, a Parquet file's schema likewise; scikit-learn's
feature names, the label column ``target``): :func:`read_rows` reads new rows to predict by those names. An npz
names none.

Where a file holds no test rows, ``test_split`` (default :data:`TEST_SPLIT`) of its rows are split off, stratified
by class, with the fixed seed :data:`SPLIT_SEED`: the same file always gives the same split, so a saved run's
``evaluate`` and ``predict`` reload the rows it was tested on. Loading a file never executes code. Every bad file
is one :class:`~mlpjax.errors.UserInputError` line naming the file (and the line and column where there is one).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import zipfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlpjax import files, memory
from mlpjax.data.stratified import stratified_indices
from mlpjax.errors import FieldError, UserInputError, check_number

if TYPE_CHECKING:
    from mlpjax.data.digest import Digest

FILE_SUFFIXES = (".npz", ".csv", ".tsv", ".parquet")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")  # the files with a label column to choose
TEST_SPLIT = 0.2  # of the rows of a file without test rows, unless test_split says otherwise
SPLIT_SEED = 0  # fixed: the split belongs to the file, not to the training seed
NPZ_SPLITS = ("x_train", "y_train", "x_test", "y_test")
NPZ_WHOLE = ("x", "y")
FEATURE_KINDS, LABEL_KINDS = "biuf", "biufUS"
SKLEARN_LABEL = "target"  # the label column of scikit-learn's tables (as ``load_iris(as_frame=True).frame`` has it)
NAMES_SHOWN = 8  # of the model's feature names in an error message
NAN_ERROR, NAN_DROP = "error", "drop"  # what a NaN, an infinity or a missing value does: refused, or its row dropped
NAN_CHOICES = (NAN_ERROR, NAN_DROP)


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What a file, table or folder holds, ready for ``make_dataset``: ``train`` and ``test`` ``(x (N, D), y (N,))``,
    the classes, ``image_shape`` (images: an npz of images, a folder of images, a tfds set), where the source names
    them, the ``D`` feature names (in column order) and the label column's name (else ``()`` and ``""``),
    ``pixel_levels`` (the features are uint8 levels ``k / pixel_levels``; None: float32 features) and the
    ``digest`` of the files read (None: not computed, or not the user's files), and the ``dropped_rows``
    (``nan="drop"``: the rows left out for a NaN, an infinity or a missing value)."""

    train: tuple
    test: tuple
    num_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] | None = None
    feature_names: tuple[str, ...] = ()
    label_column: str = ""
    pixel_levels: int | None = None
    digest: Digest | None = None
    dropped_rows: int = 0


def check_nan(nan: str) -> str:
    """``nan`` if it is one of :data:`NAN_CHOICES`; else a FieldError of ``nan``."""
    if nan not in NAN_CHOICES:
        raise FieldError("nan", f"must be {' or '.join(NAN_CHOICES)}, got {nan!r}")
    return nan


def _num_classes(codes: np.ndarray, names: tuple[str, ...]) -> int:
    """The classes of a file's labels: one per class name, else (numeric labels) the largest class number + 1."""
    return len(names) or int(codes.max()) + 1


def _every_row_dropped(path: str, rows: int) -> UserInputError:
    """The error of a table (``nan`` :data:`NAN_DROP`) whose ``rows`` rows all held a NaN, an infinity or a
    missing value."""
    return UserInputError(f"{path}: every one of its {rows} rows holds a NaN, an infinity or a missing value (dropped)")


def is_file_name(name: str) -> bool:
    """Whether dataset ``name`` names a file or a folder rather than a dataset by name: it has a suffix or a
    folder in it, or is a folder (the caller tells registered names and ``tfds:NAME`` apart first)."""
    return bool(Path(name).suffix) or "/" in name or os.sep in name or os.path.isdir(name)


def is_folder_name(name: str) -> bool:
    """Whether file name ``name`` (:func:`is_file_name`) is an image folder's: a folder, a name ending in ``/``,
    or one without a suffix (a folder that is not there yet; reading it says so)."""
    return os.path.isdir(name) or name.endswith(("/", os.sep)) or not Path(name).suffix


def check_file_name(name: str) -> str:
    """``name`` if its suffix is one mlpjax reads (:data:`FILE_SUFFIXES`) or it is a folder's; else one line saying
    which are."""
    if not is_folder_name(name) and Path(name).suffix.lower() not in FILE_SUFFIXES:
        raise UserInputError(
            f"{name}: not a kind of file mlpjax reads as a dataset; give FILE.npz, FILE.csv, FILE.tsv, "
            "FILE.parquet or a folder of images DIR/ (or a dataset name)"
        )
    return name


def is_table_name(name: str) -> bool:
    """Whether dataset ``name`` is a CSV, TSV or Parquet file's (which has a label column to choose)."""
    return not is_folder_name(name) and Path(name).suffix.lower() in TABLE_SUFFIXES


def check_label_column(name: str, label_column: str) -> str:
    """``label_column`` if it can apply to dataset ``name`` (a table's); else a FieldError of ``label_column``."""
    if not isinstance(label_column, str) or not label_column.strip():
        raise FieldError("label_column", f"must be a column's name, got {label_column!r}")
    if not is_table_name(name):
        raise FieldError(
            "label_column",
            f"{{field}} {label_column!r} needs a CSV, TSV or Parquet file as {{dataset}}, got {name!r}",
            also=("dataset",),
        )
    return label_column


def load_file(
    path: str | os.PathLike, label_column: str | None = None, test_split: float | None = None, nan: str = NAN_ERROR
) -> Loaded:
    """What file ``path`` holds (:class:`Loaded`); ``label_column``: a table's column of labels (None: its last);
    ``test_split``: the fraction of the rows split off as test rows where the file has none (None:
    :data:`TEST_SPLIT`); ``nan``: :data:`NAN_ERROR` refuses a NaN, an infinity or a missing value, naming its row
    and column,
    :data:`NAN_DROP` drops the rows holding one (before the split) and counts them (:attr:`Loaded.dropped_rows`)."""
    name = check_file_name(os.fspath(path))
    if label_column is not None:
        check_label_column(name, label_column)
    check_nan(nan)
    suffix = Path(name).suffix.lower()
    if suffix == ".npz":
        return load_npz(name, test_split, nan)
    if suffix == ".parquet":
        return load_parquet(name, label_column, test_split, nan)
    return load_table(name, delimiter=delimiter_of(name), label_column=label_column, test_split=test_split, nan=nan)


def check_test_split(test_split: float | None) -> float:
    """``test_split`` (None: :data:`TEST_SPLIT`) if it is in (0, 1); else a FieldError of ``test_split``."""
    if test_split is None:
        return TEST_SPLIT
    return check_number("test_split", test_split, low=0.0, high=1.0, low_open=True)


def refuse_test_split(test_split: float | None, name: str, why: str) -> None:
    """A ``test_split`` given for data ``name`` that has test rows of its own (``why``): a FieldError."""
    if test_split is not None:
        raise FieldError(
            "test_split", f"{{field}} {test_split:g}: {name} has test rows of its own ({why}); drop {{field}}"
        )


# --- npz -------------------------------------------------------------------------------------------------------


def _npy_header(zf: zipfile.ZipFile, member: str, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` member declares, read from its header alone."""
    fmt = np.lib.format
    try:
        with zf.open(member) as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f"npy format version {version[0]}.{version[1]} is not read (1.0 and 2.0 are)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
        raise UserInputError(f"{where}: not a NumPy array ({e})") from None
    return tuple(shape), np.dtype(dtype)


def load_npz(path: str, test_split: float | None = None, nan: str = NAN_ERROR) -> Loaded:
    """An ``.npz`` file's arrays (see the module's notes), checked from their headers before any is read;
    ``test_split`` as for :func:`load_file` (refused where the file holds test rows); ``nan`` :data:`NAN_DROP`:
    the rows of each split whose features (as float32) or float label are not finite dropped."""
    with files.open_regular(path) as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise UserInputError(f"{path}: not an npz file ({e})") from None
        with zf:
            members = {m.removesuffix(".npy"): m for m in zf.namelist()}
            keys = NPZ_SPLITS if all(k in members for k in NPZ_SPLITS) else NPZ_WHOLE
            if keys == NPZ_SPLITS:
                refuse_test_split(test_split, path, "x_test, y_test")
            missing = [k for k in keys if k not in members]
            if missing:
                found = ", ".join(sorted(members)) or "none"
                raise UserInputError(
                    f"{path}: missing array {', '.join(missing)}; an npz dataset holds x_train, "
                    f"y_train, x_test, y_test (or x, y); found: {found}"
                )
            headers = {k: _npy_header(zf, members[k], f"{path}: array {k}") for k in keys}
            _check_npz_headers(path, headers)
            nbytes = sum(math.prod(s) * (d.itemsize + (4 if k.startswith("x") else 8)) for k, (s, d) in headers.items())
            memory.check_allocation(path, nbytes, "its arrays")
            arrays = {}
            for k in keys:
                try:
                    with zf.open(members[k]) as f:
                        arrays[k] = np.lib.format.read_array(f, allow_pickle=False)
                except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
                    raise UserInputError(f"{path}: array {k} cannot be read ({e})") from None
    image_shape = headers[keys[0]][0][1:] if len(headers[keys[0]][0]) == 3 else None
    dropped = 0
    if check_nan(nan) == NAN_DROP:
        for split in ("", "_train", "_test"):
            if f"x{split}" in arrays:
                arrays[f"x{split}"], arrays[f"y{split}"], n = _drop_nan_rows(
                    path, split, arrays[f"x{split}"], arrays[f"y{split}"]
                )
                dropped += n
    xs = {k: _npz_features(path, k, arrays[k]) for k in keys if k.startswith("x")}
    if keys == NPZ_WHOLE:
        codes, names = encode_labels(path, "y", arrays["y"])
        train, test = stratified_split(path, xs["x"], codes, names, check_test_split(test_split))
    else:
        codes, names = encode_labels(path, "y_train and y_test", np.concatenate([arrays["y_train"], arrays["y_test"]]))
        n = len(arrays["y_train"])
        train, test = (xs["x_train"], codes[:n]), (xs["x_test"], codes[n:])
        absent = sorted(set(np.unique(test[1]).tolist()) - set(np.unique(train[1]).tolist()))
        if absent:
            raise UserInputError(
                f"{path}: class {_class_word(names, absent[0])} is in y_test but not in y_train; "
                "the model cannot learn a class it never sees"
            )
    return Loaded(train, test, _num_classes(codes, names), names, image_shape, dropped_rows=dropped)  # type: ignore[arg-type]


def _check_npz_headers(path: str, headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    """Features ``(N, D...)`` of numbers, labels ``(N,)`` of numbers or text, the same ``D...`` in each split."""
    for k, (_, dtype) in headers.items():
        if dtype.hasobject:
            raise UserInputError(
                f"{path}: array {k} holds Python objects (dtype {dtype}); mlpjax never unpickles "
                "a file: save numbers (or text labels as a str array)"
            )
        kinds, what = (FEATURE_KINDS, "numbers") if k.startswith("x") else (LABEL_KINDS, "numbers or text")
        if dtype.kind not in kinds:
            raise UserInputError(f"{path}: array {k} is of dtype {dtype}; expected {what}")
    for split in ("", "_train", "_test"):
        if f"x{split}" not in headers:
            continue
        (xs, _), (ys, _) = headers[f"x{split}"], headers[f"y{split}"]
        if len(xs) < 2 or 0 in xs[1:] or len(ys) != 1 or xs[0] != ys[0]:
            raise UserInputError(
                f"{path}: x{split} must be (N, D) (or (N, H, W) images) and y{split} (N,), got {xs} and {ys}"
            )
        if xs[0] == 0:
            raise UserInputError(f"{path}: x{split} holds no rows (shape {xs})")
    if "x_test" in headers and headers["x_test"][0][1:] != headers["x_train"][0][1:]:
        raise UserInputError(
            f"{path}: x_train rows are {headers['x_train'][0][1:]} but x_test rows {headers['x_test'][0][1:]}"
        )


def _drop_nan_rows(path: str, split: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``x`` and ``y`` without the rows whose features (as float32) or whose float label are not finite (NaN,
    infinite), and how many those were; every row of a split dropped is refused."""
    missing = ~np.isfinite(y) if y.dtype.kind == "f" else np.zeros(len(y), bool)
    if x.dtype.kind == "f":
        with np.errstate(over="ignore"):  # a float64 beyond float32 is infinite, as the features will be
            missing |= ~np.isfinite(x.reshape(len(x), -1).astype(np.float32, copy=False)).all(axis=1)
    if missing.all():
        raise UserInputError(f"{path}: every one of the {len(y)} rows of x{split} holds a NaN or infinity (dropped)")
    n = int(missing.sum())
    return (x[~missing], y[~missing], n) if n else (x, y, 0)


def _npz_features(path: str, key: str, x: np.ndarray) -> np.ndarray:
    """``x`` flattened to ``(N, D)`` float32; a NaN or infinite value is refused, naming its row and column."""
    x = x.reshape(len(x), -1).astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise UserInputError(f"{path}: {key} row {row}, column {col} is {x[row, col]}; features must be finite")
    return x


# --- labels and the split ---------------------------------------------------------------------------------------


def encode_labels(
    path: str, key: str, y: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """int32 class numbers of labels ``y`` and the class names (``()``: the labels were already 0 .. C-1).

    Numbers must be whole: their distinct values, sorted, are the classes (named by their values unless they are
    0 .. C-1). Text labels: the distinct strings, sorted, are the class names. One class only is refused.
    ``rows``: each label's line in the file, for the error messages (else its index).
    """

    def at(i: int) -> str:
        return f"line {rows[i]}" if rows is not None else f"index {i}"

    if y.dtype.kind in "US":
        values, codes = np.unique(y.astype(str), return_inverse=True)
        names = tuple(str(v) for v in values)
    else:
        if y.dtype.kind == "f":
            bad = ~np.isfinite(y) | (np.floor(y) != y)
            if bad.any():
                i = int(np.argmax(bad))
                raise UserInputError(
                    f"{path}: {key} label {y[i]} at {at(i)} is not a whole number; numeric labels "
                    "are classes (write text labels for names)"
                )
        values, codes = np.unique(y, return_inverse=True)
        whole = [int(v) for v in values.tolist()]
        names = () if whole == list(range(len(whole))) else tuple(str(v) for v in whole)
    if len(values) < 2:
        only = str(values[0]) if len(values) else "none"
        raise UserInputError(f"{path}: the labels hold one class only ({only}); a classifier needs at least two")
    return codes.astype(np.int32).reshape(-1), names


def _class_word(names: tuple[str, ...], c: int) -> str:
    return repr(names[c]) if names else str(c)


def stratified_split(
    path: str, x: np.ndarray, y: np.ndarray, names: tuple[str, ...], test_size: float = TEST_SPLIT
) -> tuple[tuple, tuple]:
    """``(x_train, y_train), (x_test, y_test)``: ``test_size`` of the rows split off, stratified, seed
    :data:`SPLIT_SEED`, as scikit-learn's ``train_test_split(x, y, test_size=test_size, stratify=y,
    random_state=SPLIT_SEED)`` splits them (:func:`mlpjax.data.stratified.stratified_indices`: the same rows in the
    same order). Each class needs at least 2 rows, and the test side a row of every class. The features are
    copied once: both sides are views of one array, the training rows then the test rows."""
    counts = np.bincount(y)
    thin = int(np.argmin(np.where(counts > 0, counts, len(y) + 1)))
    if counts[thin] < 2:
        raise UserInputError(
            f"{path}: class {_class_word(names, thin)} has {counts[thin]} row; splitting off a "
            f"stratified {test_size:.0%} test set needs at least 2 rows of each class"
        )
    try:
        train, test = stratified_indices(y, test_size, SPLIT_SEED)
    except ValueError as e:
        raise UserInputError(
            f"{path}: {len(y)} rows of {int((counts > 0).sum())} classes cannot be split into a "
            f"stratified {test_size:.0%} test set ({e})"
        ) from None
    memory.release_freed()  # the split's and the reader's freed arrays, before the copy
    rows = np.empty((len(train) + len(test), *x.shape[1:]), x.dtype)  # one copy of the features for both sides
    np.take(x, train, axis=0, out=rows[: len(train)], mode="clip")  # "raise" would buffer a copy
    np.take(x, test, axis=0, out=rows[len(train) :], mode="clip")
    return (rows[: len(train)], y[train]), (rows[len(train) :], y[test])


# --- csv / tsv --------------------------------------------------------------------------------------------------


def delimiter_of(path: str | os.PathLike) -> str:
    """A table file's delimiter: a tab for ``.tsv``, else a comma."""
    return "\t" if Path(path).suffix.lower() == ".tsv" else ","


def load_table(
    path: str,
    delimiter: str = ",",
    label_column: str | None = None,
    test_split: float | None = None,
    *,
    nan: str = NAN_ERROR,
    fast: bool = True,
) -> Loaded:
    """A CSV (or TSV) file with a header row: numeric features and a label column (default: the last one).

    Its size is checked first (every value takes at least two characters, so the features take at most twice the
    file's bytes as float32, and splitting them copies them once). A file of :data:`ARROW_MIN_BYTES` or more is
    read by pyarrow's CSV reader where pyarrow is installed (``fast``; :func:`_read_arrow`), a block at a time into
    float32; a smaller file (read sooner than pyarrow is imported), a file that reader cannot take as it is (any
    error, a NaN, a lone carriage return, ...) and every file without pyarrow is read by Python's csv module, row
    by row, the exact parser whose errors name the line: both give the same numbers, classes and errors. A ragged
    row, a non-numeric or non-finite feature, an empty label is refused, naming the line and column; ``nan``
    :data:`NAN_DROP` drops the rows holding a NaN, an infinity (as float32) or an empty cell in a feature, or an
    empty (or non-finite) label, instead, and :attr:`Loaded.dropped_rows` counts them.
    """
    drop = check_nan(nan) == NAN_DROP
    with _open_table(path, "its values as float32, then split") as (raw, size):
        read = _read_arrow(path, raw, delimiter, label_column, drop) if fast and size >= ARROW_MIN_BYTES else None
        if read is None:
            raw.seek(0)
            read = _read_exact(path, raw, delimiter, label_column, drop)
    header, label, feature_cols, x, codes, names, dropped = read
    train, test = stratified_split(path, x, codes, names, check_test_split(test_split))
    features = tuple(header[j] for j in feature_cols)
    return Loaded(train, test, _num_classes(codes, names), names, None, features, header[label], dropped_rows=dropped)


_TableRead = tuple[list[str], int, list[int], np.ndarray, np.ndarray, tuple[str, ...], int]


def _read_exact(path: str, raw: io.FileIO, delimiter: str, label_column: str | None, drop: bool) -> _TableRead:
    """The table in ``raw`` (at its start) read by Python's csv module, row by row: the header, the label's and
    the features' columns, the features ``(N, D)`` float32, the class numbers and names, the rows dropped."""
    with _reading(path, raw, delimiter) as (header, rows):
        label = label_index(path, header, label_column)
        feature_cols = [j for j in range(len(header)) if j != label]
        values: array = array("f")
        lines: array = array("q")
        label_codes: array = array("i")
        seen: dict[str, int] = {}
        dropped = 0
        for line, row in rows:
            numbers = array("f", _numbers(path, header, feature_cols, line, row, empty_is_nan=drop))
            cell = row[label].strip()
            finite = all(map(math.isfinite, numbers))  # as float32: beyond its range is infinite
            if not (finite or drop):
                raise _not_finite(path, header, feature_cols, line, numbers)
            if drop and (not finite or _is_missing(cell)):
                dropped += 1
                continue
            values.extend(numbers)
            if not cell:
                raise UserInputError(f"{path}: line {line}, column {label + 1} ({header[label]!r}): the label is empty")
            label_codes.append(seen.setdefault(cell, len(seen)))
            lines.append(line)
    x = _rows(path, len(feature_cols), values, lines, dropped)
    codes, names = _table_labels(
        path, header[label], seen, np.frombuffer(label_codes, np.int32), np.frombuffer(lines, np.int64)
    )
    return header, label, feature_cols, x, codes, names, dropped


def _is_missing(label: str) -> bool:
    """Whether a (stripped) label cell is missing for ``nan`` :data:`NAN_DROP`: empty, or a number not finite."""
    if not label:
        return True
    try:
        return not math.isfinite(float(label))
    except ValueError:
        return False


ARROW_CHUNK = 1 << 20  # bytes of a file without quotes that pyarrow parses at a time (by its threads)
ARROW_MIN_BYTES = 1 << 20  # a smaller file is read by the csv module sooner than pyarrow is imported (0.1-0.3 s)


def _read_arrow(path: str, raw: io.FileIO, delimiter: str, label_column: str | None, drop: bool) -> _TableRead | None:
    """The table in ``raw`` as :func:`_read_exact` reads it, read by pyarrow's CSV reader (:func:`_arrow_batches`:
    memory stays bounded by the float32 features and a chunk of the file); None where pyarrow is missing or where
    the file is not one this reader takes exactly as the csv module does, so that :func:`_read_exact` reads it
    (and names the line of what is wrong).

    The same file gives the same numbers: each feature is parsed as float64 (correctly rounded, as Python's
    ``float``) then rounded to float32, as ``array("f")`` does. None for: no pyarrow; a header the csv module
    cannot read, with repeated names, or that pyarrow reads otherwise; a lone carriage return (a line end for
    pyarrow, an error for the csv module); any error of pyarrow (a ragged row, text in a feature, bad UTF-8,
    ...); a value that is not finite, an empty cell (kept for ``drop``: dropped); an empty label; a label with a
    quote character (where the two parsers could differ); labels :func:`encode_labels` refuses (its error then
    names the line); no rows.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    raw_header = _header_cells(path, raw, delimiter)
    if raw_header is None or len(set(raw_header)) != len(raw_header):
        return None
    header = [cell.strip() for cell in raw_header]
    label = label_index(path, header, label_column)
    feature_cols = [j for j in range(len(header)) if j != label]
    lone_return, quoted = _scan(raw)
    if lone_return:
        return None
    raw.seek(0)
    types = {raw_header[j]: pa.float64() for j in feature_cols} | {raw_header[label]: pa.string()}
    # room for as many rows as the file can hold (a row of numbers takes at least 2 bytes a column): address space
    # only, its pages made resident as rows are written, so that no array is grown by copying
    room = os.fstat(raw.fileno()).st_size // (2 * len(header)) + 1
    features = np.empty((room, len(feature_cols)), np.float32)
    label_codes = np.empty(room, np.int32)
    n = 0
    seen_raw: dict[str, int] = {}  # each label as written, by its number, in order of first appearance
    missing: list[bool] = []  # whether each of seen_raw is a missing label (drop), an empty one (else)
    dropped = 0
    convert = pacsv.ConvertOptions(
        column_types=types, null_values=[""], strings_can_be_null=False, quoted_strings_can_be_null=True
    )  # an empty label, quoted or not, is "" (a missing one); an empty feature, quoted or not, a null (NaN)
    try:
        for batch in _arrow_batches(raw, raw_header, pacsv.ParseOptions(delimiter=delimiter), convert, quoted):
            if n + batch.num_rows > room:  # rows of empty cells (1 byte a column), as for drop
                return None
            x = features[n : n + batch.num_rows]
            with np.errstate(over="ignore"):  # a float64 beyond float32 is inf, as array("f") makes it
                for i, j in enumerate(feature_cols):
                    column = batch.column(j)
                    if column.null_count and not drop:
                        return None
                    x[:, i] = _float64_values(column)  # a null: NaN
            labels = batch.column(label)
            if labels.null_count or (len(labels) and pc.max(pc.binary_length(labels)).as_py() > csv.field_size_limit()):
                return None  # no null is expected; a field the csv module refuses
            encoded = pc.dictionary_encode(labels)
            numbers = []
            for v in encoded.dictionary.to_pylist():
                if v not in seen_raw:
                    seen_raw[v] = len(seen_raw)
                    missing.append(_is_missing(v.strip()) if drop else not v.strip())
                numbers.append(seen_raw[v])
            codes = np.asarray(numbers, np.int32)[_buffer_values(encoded.indices, np.dtype(np.int32))]
            unknown = ~np.isfinite(x).all(axis=1) | np.asarray(missing, bool)[codes]
            if unknown.any() and not drop:
                return None
            if unknown.any():
                dropped += int(unknown.sum())
                kept = int((~unknown).sum())
                x[:kept], codes = x[~unknown], codes[~unknown]
            label_codes[n : n + len(codes)] = codes
            n += len(codes)
    except (pa.ArrowException, ValueError, OSError, _Differs):  # pyarrow's errors name no line: the csv module's do
        return None
    if not n or any('"' in v for v in seen_raw):
        return None
    x = features[:n]
    seen, first_codes = _first_seen(list(seen_raw), label_codes[:n])
    try:
        codes, names = _table_labels(path, header[label], seen, first_codes, None)
    except UserInputError:
        return None
    return header, label, feature_cols, x, codes, names, dropped


def _buffer_values(column, dtype: np.dtype) -> np.ndarray:
    """The values of the pyarrow array ``column`` of fixed-width type ``dtype`` as a numpy view of its data buffer
    (a null's value is whatever the buffer holds). pyarrow's own ``to_numpy`` imports pandas where it is
    installed: a second and tens of MB for every command that reads a CSV file."""
    return np.frombuffer(column.buffers()[1], dtype, count=len(column), offset=column.offset * dtype.itemsize)


def _float64_values(column) -> np.ndarray:
    """The float64 pyarrow array ``column`` as numpy, a null NaN (:func:`_buffer_values`)."""
    values = _buffer_values(column, np.dtype(np.float64))
    if not column.null_count:
        return values
    bits = np.frombuffer(column.buffers()[0], np.uint8)
    valid = np.unpackbits(bits, bitorder="little")[column.offset : column.offset + len(column)].astype(bool)
    return np.where(valid, values, np.nan)


class _Differs(Exception):
    """pyarrow reads the file otherwise than the csv module (its header)."""


def _arrow_batches(raw: io.FileIO, header: list[str], parse, convert, quoted: bool):
    """The record batches of the CSV file ``raw`` (its columns ``header``), read by pyarrow.

    A file without quote characters is cut at line ends into chunks of about :data:`ARROW_CHUNK` bytes, each parsed by
    ``pyarrow.csv.read_csv`` (on its threads): memory holds one chunk and its table. A quoted field may hold a line
    end, so a file with quotes is read by pyarrow's streaming reader instead (which reads further ahead: tens of
    MB more). :class:`_Differs` where pyarrow reads another header.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw.seek(0)
    if quoted:
        reader = pacsv.open_csv(
            pa.PythonFile(raw, mode="r"),
            parse_options=pacsv.ParseOptions(delimiter=parse.delimiter, newlines_in_values=True),
            convert_options=convert,
            memory_pool=pa.system_memory_pool(),
        )
        if reader.schema.names != header:
            raise _Differs
        yield from reader
        return
    named = pacsv.ReadOptions(column_names=header)
    rest, first = b"", True
    while True:
        block = raw.read(ARROW_CHUNK)
        data, rest = (rest + block, b"") if not block else _at_line_end(rest + block)
        if data:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=None if first else named,
                parse_options=parse,
                convert_options=convert,
                memory_pool=pa.system_memory_pool(),  # frees to the system as it goes (RSS bounded)
            )
            if first and table.schema.names != header:
                raise _Differs
            first = False
            yield from table.to_batches()
            del table
        if not block:
            return


def _at_line_end(data: bytes) -> tuple[bytes, bytes]:
    """``data`` cut after its last line feed: the lines, and what follows them."""
    end = data.rfind(b"\n") + 1
    return data[:end], data[end:]


def _header_cells(path: str, raw: io.FileIO, delimiter: str) -> list[str] | None:
    """The header row of the table in ``raw`` (from its start) as the csv module reads it, its cells as they are;
    None where it has none or cannot be read (:func:`_read_exact` says why)."""
    raw.seek(0)
    buffered = io.BufferedReader(raw)
    try:
        return next(csv.reader(_utf8_lines(path, buffered), delimiter=delimiter), None) or None
    except (csv.Error, UserInputError):
        return None
    finally:
        buffered.detach()  # leaves raw open


def _scan(raw: io.FileIO) -> tuple[bool, bool]:
    """Whether the file ``raw`` holds a carriage return not followed by a line feed, and whether it holds a quote
    character: read a chunk at a time, at memory speed."""
    raw.seek(0)
    lone = quoted = after_return = False
    while block := raw.read(ARROW_CHUNK):
        if after_return and not block.startswith(b"\n"):
            lone = True
        returns = block.count(b"\r")
        if returns and returns != block.count(b"\r\n") + block.endswith(b"\r"):
            lone = True
        after_return = block.endswith(b"\r")
        quoted = quoted or b'"' in block
    return lone or after_return, quoted


def _first_seen(raw_labels: list[str], raw_codes: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """The labels of rows ``raw_codes`` (indices into ``raw_labels``) as the csv path keeps them: each stripped
    label's number, in order of first appearance (``seen``), and each row's."""
    present, first = np.unique(raw_codes, return_index=True)
    remap = np.zeros(len(raw_labels), np.int32)
    seen: dict[str, int] = {}
    for r in present[np.argsort(first, kind="stable")].tolist():
        remap[r] = seen.setdefault(raw_labels[r].strip(), len(seen))
    return seen, remap[raw_codes]


def label_index(path: str, header: list[str], label_column: str | None) -> int:
    """Which of the columns ``header`` holds the labels: ``label_column``'s (None: the last one); at least one
    other column (the features)."""
    if label_column is None:
        label = len(header) - 1
    elif label_column.strip() in header:
        label = header.index(label_column.strip())
    else:
        raise FieldError(
            "label_column",
            f"{{field}} {label_column!r}: {path} has no such column; its header has {', '.join(header)}",
        )
    if len(header) < 2:
        raise UserInputError(
            f"{path}: the header has one column ({header[0]!r}); expected feature columns and the label column"
        )
    return label


def read_rows(path: str | os.PathLike, feature_names: Sequence[str], *, width: int, ignore: str = "") -> np.ndarray:
    """The rows of the table file ``path`` as a model's input: float32 ``(N, width)``, the columns in the model's
    order. A header row, then one row per example (a tab between fields in a ``.tsv``, else a comma).

    ``feature_names``: the model's ``width`` features by name, in its order (its training table's header less the
    label column); the file's columns are matched to them by their header names, in any order, and a column
    named ``ignore`` (the training table's label column) is left out. Where the training data named no features
    (``()``, or names that repeat), the file has ``width`` columns, taken in order whatever their names.
    Read as :func:`load_table` reads (UTF-8, blank lines skipped, the size checked against the memory first). A
    missing, extra or repeated column, a ragged row, a cell that is no finite number, a file without rows: one
    UserInputError naming the file, the line and the column.
    """
    path = os.fspath(path)
    names = tuple(feature_names)
    if names and len(names) != width:
        raise FieldError("feature_names", f"names {len(names)} features for a model of {width}")
    named = names if len(set(names)) == len(names) else ()
    with _table(path, delimiter_of(path), "its values as float32") as (header, rows):
        order = _columns(path, header, named, width, ignore)
        values: array = array("f")
        lines: array = array("q")
        for line, row in rows:
            numbers = array("f", _numbers(path, header, order, line, row))
            if not all(map(math.isfinite, numbers)):
                raise _not_finite(path, header, order, line, numbers)
            values.extend(numbers)
            lines.append(line)
    return _rows(path, len(order), values, lines)


def _columns(path: str, header: list[str], names: tuple[str, ...], width: int, ignore: str) -> list[int]:
    """The header's column of each of the model's features ``names``, in their order (``()``: the first
    ``width`` columns, which must be all); see :func:`read_rows`."""
    if not names:
        if len(header) != width:
            raise UserInputError(
                f"{path}: line 1: the header has {len(header)} columns; the model takes {width} features, "
                "read in order (its training data named none)"
            )
        return list(range(width))
    where: dict[str, int] = {}
    for j, name in enumerate(header):
        if name in where:
            raise UserInputError(
                f"{path}: line 1, column {j + 1} ({name!r}): a second column of that name (column {where[name] + 1})"
            )
        where[name] = j
        if name not in names and not (ignore and name == ignore):
            left_out = f"; a label column is left out under its training name {ignore!r}" if ignore else ""
            raise UserInputError(
                f"{path}: line 1, column {j + 1} ({name!r}) is not one of the model's {width} features: "
                f"{_listed(names)}{left_out}"
            )
    missing = [name for name in names if name not in where]
    if missing:
        raise UserInputError(
            f"{path}: line 1: no column {missing[0]!r}; the model takes {width} features: {_listed(names)}"
        )
    return [where[name] for name in names]


def _listed(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > NAMES_SHOWN else "")


@contextlib.contextmanager
def _table(path: str, delimiter: str, what: str) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]]]]:
    """The header (its cells stripped) and the rows ``(line, cells)`` of the table file ``path`` (:func:`_reading`):
    a regular file whose size, four bytes a byte (``what``: for what), fits in the memory there is."""
    with _open_table(path, what) as (raw, _), _reading(path, raw, delimiter) as table:
        yield table


@contextlib.contextmanager
def _open_table(path: str, what: str) -> Iterator[tuple[io.FileIO, int]]:
    """The table file ``path`` open, and its size in bytes: a regular file whose size, four bytes a byte
    (``what``: for what), fits in the memory there is; a read that fails inside is one UserInputError."""
    with files.open_regular(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        # a value takes at least 2 bytes ("0,"), as float32 4: twice the file at most, and a copy of it once
        memory.check_allocation(path, 4 * size, what)
        try:
            yield raw, size
        except OSError as e:  # a read that fails (/proc/self/mem is a "regular file" whose reads are EIO)
            raise UserInputError(f"{path}: cannot be read ({e.strerror or e})") from None


@contextlib.contextmanager
def _reading(path: str, raw: io.FileIO, delimiter: str) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]]]]:
    """The header (its cells stripped) and the rows ``(line, cells)`` of the UTF-8 table in the open file ``raw``,
    read by the csv module from where ``raw`` stands. Blank lines are skipped; an empty file, a row of another
    length than the header's, what the csv module cannot parse: one UserInputError naming the line."""
    reader = csv.reader(_utf8_lines(path, io.BufferedReader(raw)), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for row in reader:
            if not row or row == [""]:
                continue  # a blank line
            if len(row) != len(header):
                raise UserInputError(
                    f"{path}: line {reader.line_num} has {len(row)} fields but the header has {len(header)}"
                )
            yield reader.line_num, row

    try:
        header = [cell.strip() for cell in next(reader, [])]
        if not header:
            raise UserInputError(f"{path}: empty; expected a header row, then one row per example")
        yield header, rows()
    except csv.Error as e:
        raise UserInputError(f"{path}: line {reader.line_num}: {e}") from None


def _numbers(
    path: str, header: list[str], columns: list[int], line: int, row: list[str], *, empty_is_nan: bool = False
) -> list[float]:
    """The cells ``columns`` of ``row`` (line ``line``) as numbers (``empty_is_nan``: an empty cell NaN); a cell
    that is none refused, naming it."""
    try:
        if empty_is_nan:
            return [float(row[j]) if row[j] else math.nan for j in columns]
        return [float(row[j]) for j in columns]
    except ValueError:
        j = next(j for j in columns if not (_is_number(row[j]) or (empty_is_nan and not row[j])))
        what = "an empty cell (a missing value)" if not row[j].strip() else f"{row[j]!r} is not a number"
        raise UserInputError(
            f"{path}: line {line}, column {j + 1} ({header[j]!r}): {what}; features must be numeric"
        ) from None


def _not_finite(path: str, header: list[str], columns: list[int], line: int, numbers: array) -> UserInputError:
    """The error of a row (line ``line``, its cells ``columns`` as float32 ``numbers``) holding a value that is not
    finite, naming the first one's line and column."""
    i = next(i for i, v in enumerate(numbers) if not math.isfinite(v))
    j = columns[i]
    return UserInputError(
        f"{path}: line {line}, column {j + 1} ({header[j]!r}): {numbers[i]} is not finite; "
        "features must be finite numbers"
    )


def _rows(path: str, width: int, values: array, lines: array, dropped: int = 0) -> np.ndarray:
    """The ``values`` read from ``lines`` as float32 ``(rows, width)``; no rows refused (``dropped``: the rows
    left out for a NaN, an infinity or a missing value)."""
    if not lines:
        if dropped:
            raise _every_row_dropped(path, dropped)
        raise UserInputError(f"{path}: holds a header but no rows")
    return np.frombuffer(values, np.float32).reshape(len(lines), width)


def _utf8_lines(path: str, lines: Iterable[bytes]) -> Iterator[str]:
    """Each line of ``lines`` decoded as UTF-8 (a byte-order mark at the start dropped); else one line naming it."""
    for number, line in enumerate(lines, 1):
        try:
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise UserInputError(
                f"{path}: line {number}: not UTF-8 text ({e.reason} at byte {e.start + 1} of the line)"
            ) from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _table_labels(
    path: str, column: str, seen: dict[str, int], first_codes: np.ndarray, lines: np.ndarray | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The class numbers and names of a table's label column: numbers if every label is one, else text."""
    distinct = list(seen)  # in order of first appearance: first_codes index it
    if all(_is_number(v) for v in distinct):
        values = np.array([float(v) for v in distinct])
    else:
        values = np.array(distinct)
    return encode_labels(path, f"column {column!r}", values[first_codes], lines)


# --- parquet ------------------------------------------------------------------------------------------------------


def _pyarrow():
    """pyarrow's parquet module; where pyarrow is missing, one line naming the extra that installs it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserInputError(
            "reading a Parquet file needs pyarrow, which is not installed: pip install 'mlpjax[parquet]'"
        ) from None
    return pq


def load_parquet(
    path: str, label_column: str | None = None, test_split: float | None = None, nan: str = NAN_ERROR
) -> Loaded:
    """A Parquet file as a CSV file is read: its columns' names are the header, the label column is the last (or
    ``label_column``), the others are numeric features.

    The schema and the row count are read from the footer first: a column of another type (text features,
    nested or temporal values) is refused, and the sizes checked against the memory there is, before any data is
    read. Then one column at a time into float32; a missing (null) or non-finite value and a missing or empty
    label are refused, naming the row (counted from 0, as the file's index) and the column; ``nan``
    :data:`NAN_DROP` drops the rows holding a null, a NaN or an infinity (a label: also empty) instead.
    """
    drop = check_nan(nan) == NAN_DROP
    pq = _pyarrow()
    import pyarrow as pa

    with files.open_regular(path) as raw:
        try:
            parquet = pq.ParquetFile(raw)
            meta, schema = parquet.metadata, parquet.schema_arrow
        except (pa.ArrowException, OSError, ValueError) as e:
            raise UserInputError(f"{path}: not a Parquet file ({' '.join(str(e).split())})") from None
        header = list(schema.names)
        if not header:
            raise UserInputError(f"{path}: holds no columns; expected feature columns and the label column")
        twice = sorted({n for n in header if header.count(n) > 1})
        if twice:
            raise UserInputError(f"{path}: column {twice[0]!r} appears more than once; columns need distinct names")
        label = label_index(path, header, label_column)
        features = [j for j in range(len(header)) if j != label]
        numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
        for j in features:
            kind = schema.field(j).type
            if not any(t(kind) for t in numeric):
                raise UserInputError(
                    f"{path}: column {header[j]!r} is of type {kind}; features must be numbers (integers, floats)"
                )
        kind = schema.field(label).type
        values = kind.value_type if pa.types.is_dictionary(kind) else kind
        if not any(t(values) for t in (*numeric, pa.types.is_string, pa.types.is_large_string)):
            raise UserInputError(
                f"{path}: the label column {header[label]!r} is of type {kind}; expected numbers or text"
            )
        rows = meta.num_rows
        if rows == 0:
            raise UserInputError(f"{path}: holds no rows")
        stored = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
        # the features as float32, their split copy, and one column at a time as read (at most 8 bytes a value)
        memory.check_allocation(path, stored + rows * (8 * len(features) + 16), "its columns as float32, then split")
        x = np.empty((rows, len(features)), np.float32)
        missing = np.zeros(rows, bool)
        try:
            for i, j in enumerate(features):
                x[:, i], nulls = _parquet_column(path, parquet, header[j], rows, "features must be numbers", drop)
                missing |= nulls
            y, nulls = _parquet_column(path, parquet, header[label], rows, "the label is missing", drop)
            missing |= nulls
        except (pa.ArrowException, OSError) as e:
            raise UserInputError(f"{path}: cannot be read ({' '.join(str(e).split())})") from None
    if y.dtype.kind in "US":
        y = np.char.strip(y.astype(str))
    index = np.arange(rows)  # each row's in the file
    dropped = 0
    if drop:
        missing |= ~np.isfinite(x).all(axis=1) | (
            ~np.isfinite(y) if y.dtype.kind == "f" else y == "" if y.dtype.kind == "U" else False
        )
        dropped = int(missing.sum())
        if dropped == rows:
            raise _every_row_dropped(path, rows)
        if dropped:
            x, y, index = x[~missing], y[~missing], index[~missing]
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise UserInputError(
            f"{path}: row {index[row]}, column {header[features[col]]!r}: {x[row, col]} is not finite; "
            "features must be finite numbers"
        )
    if y.dtype.kind in "US":
        empty = y == ""
        if empty.any():
            raise UserInputError(f"{path}: row {int(np.argmax(empty))}, column {header[label]!r}: the label is empty")
    codes, names = encode_labels(path, f"column {header[label]!r}", y)
    train, test = stratified_split(path, x, codes, names, check_test_split(test_split))
    feature_names = tuple(header[j] for j in features)
    return Loaded(
        train, test, _num_classes(codes, names), names, None, feature_names, header[label], dropped_rows=dropped
    )


def _parquet_column(path: str, parquet, name: str, rows: int, why: str, drop: bool) -> tuple[np.ndarray, np.ndarray]:
    """Column ``name`` of ``parquet`` as a numpy array of ``rows`` values (text as str, dictionaries decoded) and
    where it holds a missing value (null), which is refused, naming its row, unless ``drop`` (then it reads 0, or
    empty text)."""
    import pyarrow as pa

    column = parquet.read(columns=[name]).column(0)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    nulls = np.zeros(len(column), bool)
    if column.null_count:
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        if not drop:
            raise UserInputError(f"{path}: row {int(np.argmax(nulls))}, column {name!r}: a missing value (null); {why}")
        text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        column = column.fill_null(pa.scalar("" if text else 0).cast(column.type))
    values = column.to_numpy(zero_copy_only=False)
    if len(values) != rows:
        raise UserInputError(f"{path}: column {name!r} holds {len(values)} values but the file {rows} rows")
    return (values.astype(str) if values.dtype == object else values), nulls


# --- scikit-learn's tables ----------------------------------------------------------------------------------------


def load_sklearn_table(name: str, test_split: float | None = None) -> Loaded:
    """scikit-learn's bundled ``iris``, ``wine`` or ``breast_cancer``, ``test_split`` (None: :data:`TEST_SPLIT`)
    split off as a file's is; the class and feature names are scikit-learn's, the label column
    :data:`SKLEARN_LABEL`."""
    from sklearn import datasets as sk

    bunch = {"iris": sk.load_iris, "wine": sk.load_wine, "breast_cancer": sk.load_breast_cancer}[name]()
    names = tuple(str(n) for n in bunch.target_names)
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int32)
    train, test = stratified_split(name, x, y, names, check_test_split(test_split))
    features = tuple(str(n) for n in bunch.feature_names)
    return Loaded(train, test, len(names), names, None, features, SKLEARN_LABEL)
