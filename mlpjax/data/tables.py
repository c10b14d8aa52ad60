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


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What a file, table or folder holds, ready for ``make_dataset``: ``train`` and ``test`` ``(x (N, D), y (N,))``,
    the classes, ``image_shape`` (images: an npz of images, a folder of images, a tfds set), where the source names
    them, the ``D`` feature names (in column order) and the label column's name (else ``()`` and ``""``),
    ``pixel_levels`` (the features are uint8 levels ``k / pixel_levels``; None: float32 features) and the
    ``digest`` of the files read (None: not computed, or not the user's files)."""

    train: tuple
    test: tuple
    num_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] | None = None
    feature_names: tuple[str, ...] = ()
    label_column: str = ""
    pixel_levels: int | None = None
    digest: Digest | None = None


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


def load_file(path: str | os.PathLike, label_column: str | None = None, test_split: float | None = None) -> Loaded:
    """What file ``path`` holds (:class:`Loaded`); ``label_column``: a table's column of labels (None: its last);
    ``test_split``: the fraction of the rows split off as test rows where the file has none (None:
    :data:`TEST_SPLIT`)."""
    name = check_file_name(os.fspath(path))
    if label_column is not None:
        check_label_column(name, label_column)
    suffix = Path(name).suffix.lower()
    if suffix == ".npz":
        return load_npz(name, test_split)
    if suffix == ".parquet":
        return load_parquet(name, label_column, test_split)
    return load_table(name, delimiter=delimiter_of(name), label_column=label_column, test_split=test_split)


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


def load_npz(path: str, test_split: float | None = None) -> Loaded:
    """An ``.npz`` file's arrays (see the module's notes), checked from their headers before any is read;
    ``test_split`` as for :func:`load_file` (refused where the file holds test rows)."""
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
    return Loaded(train, test, len(names) or int(codes.max()) + 1, names, image_shape)  # type: ignore[arg-type]


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
    :data:`SPLIT_SEED`. Each class needs at least 2 rows, and the test side a row of every class."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    thin = int(np.argmin(np.where(counts > 0, counts, len(y) + 1)))
    if counts[thin] < 2:
        raise UserInputError(
            f"{path}: class {_class_word(names, thin)} has {counts[thin]} row; splitting off a "
            f"stratified {test_size:.0%} test set needs at least 2 rows of each class"
        )
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=test_size, stratify=y, random_state=SPLIT_SEED
        )
    except ValueError as e:
        raise UserInputError(
            f"{path}: {len(y)} rows of {int((counts > 0).sum())} classes cannot be split into a "
            f"stratified {test_size:.0%} test set ({e})"
        ) from None
    return (x_train, y_train), (x_test, y_test)


# --- csv / tsv --------------------------------------------------------------------------------------------------


def delimiter_of(path: str | os.PathLike) -> str:
    """A table file's delimiter: a tab for ``.tsv``, else a comma."""
    return "\t" if Path(path).suffix.lower() == ".tsv" else ","


def load_table(
    path: str, delimiter: str = ",", label_column: str | None = None, test_split: float | None = None
) -> Loaded:
    """A CSV (or TSV) file with a header row: numeric features and a label column (default: the last one).

    Read row by row into float32 (its size is checked first: every value takes at least two characters, so the
    features take at most twice the file's bytes, and splitting them copies them once). A ragged row, a
    non-numeric or non-finite feature, an empty label is refused, naming the line and column.
    """
    with _table(path, delimiter, "its values as float32, then split") as (header, rows):
        label = label_index(path, header, label_column)
        feature_cols = [j for j in range(len(header)) if j != label]
        values: array = array("f")
        lines: array = array("q")
        label_codes: array = array("i")
        seen: dict[str, int] = {}
        for line, row in rows:
            values.extend(_numbers(path, header, feature_cols, line, row))
            cell = row[label].strip()
            if not cell:
                raise UserInputError(f"{path}: line {line}, column {label + 1} ({header[label]!r}): the label is empty")
            label_codes.append(seen.setdefault(cell, len(seen)))
            lines.append(line)
    x = _finite(path, header, feature_cols, values, lines)
    codes, names = _table_labels(
        path, header[label], seen, np.frombuffer(label_codes, np.int32), np.frombuffer(lines, np.int64)
    )
    train, test = stratified_split(path, x, codes, names, check_test_split(test_split))
    features = tuple(header[j] for j in feature_cols)
    return Loaded(train, test, len(names) or int(codes.max()) + 1, names, None, features, header[label])


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
            values.extend(_numbers(path, header, order, line, row))
            lines.append(line)
    return _finite(path, header, order, values, lines)


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
    """The header (its cells stripped) and the rows ``(line, cells)`` of the table file ``path``: a regular file of
    UTF-8 text whose size, four bytes a byte (``what``: for what), fits in the memory there is. Blank lines are
    skipped; an empty file, a row of another length than the header's, what the csv module cannot parse: one
    UserInputError naming the line."""
    with files.open_regular(path) as raw:
        # a value takes at least 2 bytes ("0,"), as float32 4: twice the file at most, and a copy of it once
        memory.check_allocation(path, 4 * os.fstat(raw.fileno()).st_size, what)
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
        except OSError as e:  # a read that fails (/proc/self/mem is a "regular file" whose reads are EIO)
            raise UserInputError(f"{path}: cannot be read ({e.strerror or e})") from None


def _numbers(path: str, header: list[str], columns: list[int], line: int, row: list[str]) -> list[float]:
    """The cells ``columns`` of ``row`` (line ``line``) as numbers; a cell that is none refused, naming it."""
    try:
        return [float(row[j]) for j in columns]
    except ValueError:
        j = next(j for j in columns if not _is_number(row[j]))
        raise UserInputError(
            f"{path}: line {line}, column {j + 1} ({header[j]!r}): {row[j]!r} is not a number; features must be numeric"
        ) from None


def _finite(path: str, header: list[str], columns: list[int], values: array, lines: array) -> np.ndarray:
    """The ``values`` of ``columns`` read from ``lines`` as float32 ``(rows, columns)``; no rows, or a value that
    is not finite, refused (naming its line and column)."""
    if not lines:
        raise UserInputError(f"{path}: holds a header but no rows")
    x = np.frombuffer(values, np.float32).reshape(len(lines), len(columns))
    bad = ~np.isfinite(x)
    if bad.any():
        row_i, col_i = (int(i) for i in np.argwhere(bad)[0])
        j = columns[col_i]
        raise UserInputError(
            f"{path}: line {lines[row_i]}, column {j + 1} ({header[j]!r}): {x[row_i, col_i]} is "
            "not finite; features must be finite numbers"
        )
    return x


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
    path: str, column: str, seen: dict[str, int], first_codes: np.ndarray, lines: np.ndarray
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


def load_parquet(path: str, label_column: str | None = None, test_split: float | None = None) -> Loaded:
    """A Parquet file as a CSV file is read: its columns' names are the header, the label column is the last (or
    ``label_column``), the others are numeric features.

    The schema and the row count are read from the footer first: a column of another type (text features,
    nested or temporal values) is refused, and the sizes checked against the memory there is, before any data is
    read. Then one column at a time into float32; a missing (null) or non-finite value and a missing or empty
    label are refused, naming the row (counted from 0, as the file's index) and the column.
    """
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
        try:
            for i, j in enumerate(features):
                x[:, i] = _parquet_column(path, parquet, header[j], rows, "features must be numbers")
            y = _parquet_column(path, parquet, header[label], rows, "the label is missing")
        except (pa.ArrowException, OSError) as e:
            raise UserInputError(f"{path}: cannot be read ({' '.join(str(e).split())})") from None
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise UserInputError(
            f"{path}: row {row}, column {header[features[col]]!r}: {x[row, col]} is not finite; "
            "features must be finite numbers"
        )
    if y.dtype.kind in "US":
        y = np.char.strip(y.astype(str))
        empty = y == ""
        if empty.any():
            raise UserInputError(f"{path}: row {int(np.argmax(empty))}, column {header[label]!r}: the label is empty")
    codes, names = encode_labels(path, f"column {header[label]!r}", y)
    train, test = stratified_split(path, x, codes, names, check_test_split(test_split))
    feature_names = tuple(header[j] for j in features)
    return Loaded(train, test, len(names) or int(codes.max()) + 1, names, None, feature_names, header[label])


def _parquet_column(path: str, parquet, name: str, rows: int, why: str) -> np.ndarray:
    """Column ``name`` of ``parquet`` as a numpy array of ``rows`` values (text as str, dictionaries decoded); a
    missing (null) value is refused, naming its row."""
    import pyarrow as pa

    column = parquet.read(columns=[name]).column(0)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if column.null_count:
        row = int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))
        raise UserInputError(f"{path}: row {row}, column {name!r}: a missing value (null); {why}")
    values = column.to_numpy(zero_copy_only=False)
    if len(values) != rows:
        raise UserInputError(f"{path}: column {name!r} holds {len(values)} values but the file {rows} rows")
    return values.astype(str) if values.dtype == object else values


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
