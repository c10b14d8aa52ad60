"""The table reader (:func:`mlpjax.data.tables.load_table`): pyarrow's CSV reader, a block at a time into float32,
and Python's csv module row by row give the same features, classes, split and errors; ``--nan error|drop`` for
CSV, TSV, Parquet and npz files, from Python and the command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import blobs, run_cli, write_table

from mlpjax import data
from mlpjax.data import tables
from mlpjax.errors import FieldError, UserInputError

pytest.importorskip("pyarrow")


@pytest.fixture(autouse=True)
def pyarrow_for_every_size(monkeypatch):
    """pyarrow's reader for the small files here too (by default it reads files of 1 MiB or more)."""
    monkeypatch.setattr(tables, "ARROW_MIN_BYTES", 0)


def read(path, fast, **options):
    return tables.load_table(str(path), tables.delimiter_of(str(path)), fast=fast, **options)


def assert_same(a: tables.Loaded, b: tables.Loaded) -> None:
    for (xa, ya), (xb, yb) in ((a.train, b.train), (a.test, b.test)):
        assert xa.dtype == xb.dtype == np.float32
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert (a.num_classes, a.class_names, a.feature_names, a.label_column, a.dropped_rows) == (
        b.num_classes,
        b.class_names,
        b.feature_names,
        b.label_column,
        b.dropped_rows,
    )


def numbers_text(rows=40, line_end="\n", delimiter=",", label=lambda i: str(i % 3)) -> str:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 3)) * 10.0 ** rng.integers(-8, 8, (rows, 3))
    lines = [delimiter.join(["a", "b", "c", "y"])]
    lines += [delimiter.join([*(repr(float(v)) for v in row), label(i)]) for i, row in enumerate(x)]
    return line_end.join(lines) + line_end


GOOD = {
    "plain.csv": numbers_text(),
    "crlf.csv": numbers_text(line_end="\r\n"),
    "tabs.tsv": numbers_text(delimiter="\t"),
    "no_last_newline.csv": numbers_text().rstrip("\n"),
    "text_labels.csv": numbers_text(label=lambda i: ["cat", " dog", "emu "][i % 3]),  # labels stripped: 3 classes
    "quoted.csv": numbers_text(label=lambda i: ['"no, never"', '"yes"', "maybe"][i % 3]),
    "spaces.csv": " a , b ,y\n" + "".join(f" {i}.5 , {-i}e-3 ,{i % 2}\n" for i in range(20)),
    "blank_lines.csv": "a,b,y\n\n" + "".join(f"{i},{i * 0.1},{i % 2}\n\n" for i in range(20)),
    # decimals that round to float32 twice (via float64, as Python's float then array("f")) the same way
    "rounding.csv": "a,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(["1.00000005960464477539062500001"] * 6)),
    "label_numbers.csv": "a,y\n" + "".join(f"{i},{10 + 5 * (i % 3)}\n" for i in range(30)),
}


@pytest.mark.parametrize("name", GOOD)
def test_pyarrow_and_the_csv_module_read_a_file_the_same(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_text(GOOD[name], newline="")
    exact = read(path, fast=False)

    def not_called(*args):
        raise AssertionError("the exact reader was used")

    monkeypatch.setattr(tables, "_read_exact", not_called)  # pyarrow's reader read it, not the fallback
    assert_same(read(path, fast=True), exact)


def test_chunks_cut_at_line_ends_read_the_same_as_one_block(tmp_path, monkeypatch):
    x, y = blobs(n_per_class=100)
    path = write_table(tmp_path / "t.csv", x, np.array(["cat", "dog", "emu"])[y])
    whole = read(path, fast=True)
    monkeypatch.setattr(tables, "ARROW_CHUNK", 97)  # a few lines a chunk, cut mid-line
    assert_same(read(path, fast=True), whole)
    assert_same(whole, read(path, fast=False))


def test_a_file_pyarrow_would_read_otherwise_goes_to_the_exact_reader(tmp_path, monkeypatch):
    path = tmp_path / "lone_return.csv"
    path.write_bytes(b"a,y\n1,0\n2,1\r3,0\n4,1\n5,0\n6,1\n")  # a lone \r: an error for the csv module
    with pytest.raises(UserInputError, match=r"lone_return.csv: line \d"):
        read(path, fast=True)


BAD = {
    "words.csv": "a,b,y\n1,2,x\n3,abc,y\n",
    "ragged.csv": "a,b,y\n1,2,x\n3,4,y\n5,y\n",
    "nan.csv": "a,b,y\n1,2,x\n3,4,y\nnan,1,x\n",
    "inf.csv": "a,b,y\n1,2,x\n3,1e999,y\n",
    "beyond_float32.csv": "a,b,y\n1,2,x\n3,1e39,y\n",
    "empty_cell.csv": "a,b,y\n1,2,x\n3,,y\n",
    "empty_label.csv": "a,b,y\n1,2,x\n3,4, \n",
    "one_class.csv": "a,y\n1,x\n2,x\n3,x\n",
    "fraction.csv": "a,y\n1,0\n2,1.5\n",
    "repeated_header.csv": "a,a,y\n1,2,x\n3,4,y\n",
    "quoted_empty_label.csv": 'a,b,y\n1,2,x\n3,4,""\n',
    "quoted_empty_feature.csv": 'a,b,y\n1,2,x\n3,"",y\n',
}


@pytest.mark.parametrize("name", BAD)
def test_pyarrow_and_the_csv_module_refuse_a_file_in_the_same_line(tmp_path, name):
    path = tmp_path / name
    path.write_text(BAD[name])
    with pytest.raises(UserInputError) as exact:
        read(path, fast=False)
    with pytest.raises(UserInputError) as fast:
        read(path, fast=True)
    assert str(fast.value) == str(exact.value) and str(path) in str(exact.value)
    assert "line" in str(exact.value) or "class" in str(exact.value)


def test_a_split_is_scikit_learns(tmp_path):
    model_selection = pytest.importorskip("sklearn.model_selection")
    x, y = blobs(n_per_class=37, classes=4)
    got = read(write_table(tmp_path / "t.csv", x, y), fast=True)
    x32 = np.array([[float(f"{v:.6g}") for v in row] for row in x], np.float32)
    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        x32, y, test_size=tables.TEST_SPLIT, stratify=y, random_state=tables.SPLIT_SEED
    )
    np.testing.assert_array_equal(got.train[0], x_train)
    np.testing.assert_array_equal(got.test[1], y_test)
    np.testing.assert_array_equal(got.train[1], y_train)
    np.testing.assert_array_equal(got.test[0], x_test)


# --- nan ----------------------------------------------------------------------------------------------------------

CLEAN = "".join(f"{i},{i % 7 * 0.5},{'pqr'[i % 3]}\n" for i in range(30))
BROKEN = {  # line (1: the header) -> the row that replaces a clean one
    3: "nan,1,q",
    5: "4,,r",  # an empty cell
    8: "inf,2,p",
    11: "5,1e39,q",  # beyond float32: infinite
    14: "6,1,",  # an empty label
    17: "7,NaN,p",
    20: '8,2,""',  # a quoted empty label
    23: '"",3,q',  # a quoted empty feature
}


def table_with(broken: dict[int, str], delimiter=",") -> tuple[str, str]:
    """The CLEAN table with the rows of ``broken`` put in (its text) and without them (the rows kept)."""
    lines = CLEAN.splitlines()
    kept = [line for i, line in enumerate(lines, 2) if i not in broken]
    full = [broken.get(i, line) for i, line in enumerate(lines, 2)]
    head = "a,b,y"
    return (
        "\n".join([head, *full]).replace(",", delimiter) + "\n",
        "\n".join([head, *kept]).replace(",", delimiter) + "\n",
    )


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_nan_drop_drops_the_rows_and_counts_them(tmp_path, fast, suffix):
    delimiter = "\t" if suffix == ".tsv" else ","
    full, kept = table_with(BROKEN, delimiter)
    (tmp_path / f"full{suffix}").write_text(full)
    (tmp_path / f"kept{suffix}").write_text(kept)
    got = read(tmp_path / f"full{suffix}", fast, nan="drop")
    assert got.dropped_rows == len(BROKEN)
    assert_same(got, dataclasses_replace(read(tmp_path / f"kept{suffix}", fast), dropped_rows=len(BROKEN)))


def dataclasses_replace(loaded, **changes):
    import dataclasses

    return dataclasses.replace(loaded, **changes)


@pytest.mark.parametrize("line", sorted(BROKEN))
def test_nan_error_names_the_line_and_column(tmp_path, line):
    full, _ = table_with({line: BROKEN[line]})
    path = tmp_path / "t.csv"
    path.write_text(full)
    with pytest.raises(UserInputError, match=rf"t.csv: line {line}, column \d"):
        data.load_dataset(path)  # nan="error", the default


def test_nan_drop_of_every_row_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,y\nnan,1\n,2\n")
    for fast in (True, False):
        with pytest.raises(UserInputError, match="t.csv: every one of its 2 rows holds a NaN"):
            read(path, fast, nan="drop")


def test_nan_drop_in_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 30
    a = [float(i) for i in range(n)]
    b = [float(i % 4) for i in range(n)]
    y = ["pqr"[i % 3] for i in range(n)]
    a[2], b[5], a[7], y[9], y[11] = np.nan, None, np.inf, None, " "
    pq.write_table(pa.table({"a": a, "b": b, "y": y}), tmp_path / "full.parquet")
    keep = [i for i in range(n) if i not in (2, 5, 7, 9, 11)]
    pq.write_table(
        pa.table({"a": [a[i] for i in keep], "b": [b[i] for i in keep], "y": [y[i] for i in keep]}),
        tmp_path / "kept.parquet",
    )
    got = tables.load_parquet(str(tmp_path / "full.parquet"), nan="drop")
    assert got.dropped_rows == 5
    assert_same(got, dataclasses_replace(tables.load_parquet(str(tmp_path / "kept.parquet")), dropped_rows=5))
    with pytest.raises(UserInputError, match=r"full.parquet: row 5, column 'b': a missing value \(null\)"):
        tables.load_parquet(str(tmp_path / "full.parquet"))  # column by column: b's null before a's NaN


def test_nan_drop_in_npz(tmp_path):
    x, y = blobs(n_per_class=10)
    y = y.astype(float)
    x[4, 1], x[7, 0], y[12] = np.nan, np.inf, np.nan
    np.savez(tmp_path / "full.npz", x=x, y=y)
    keep = np.setdiff1d(np.arange(len(y)), [4, 7, 12])
    np.savez(tmp_path / "kept.npz", x=x[keep], y=y[keep])
    got = tables.load_npz(str(tmp_path / "full.npz"), nan="drop")
    assert got.dropped_rows == 3
    assert_same(got, dataclasses_replace(tables.load_npz(str(tmp_path / "kept.npz")), dropped_rows=3))


def test_nan_is_error_or_drop_and_drop_needs_a_file(tmp_path):
    with pytest.raises(FieldError, match="must be error or drop, got 'maybe'"):
        data.load_dataset(write_table(tmp_path / "t.csv", *blobs()), nan="maybe")
    with pytest.raises(FieldError, match="needs a file"):
        data.load_dataset("digits", nan="drop")


def test_train_nan_drop_says_the_count_and_evaluate_reads_the_file_as_trained(tmp_path, capsys, monkeypatch):
    full, _ = table_with(BROKEN)
    (tmp_path / "t.csv").write_text(full)
    monkeypatch.chdir(tmp_path)
    argv = ("train", "--dataset", "t.csv", "--epochs", "1", "--hidden", "8", "--quiet")
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and "t.csv: line 3, column 1 ('a')" in err, err
    code, out, err = run_cli(capsys, *argv, "--nan", "drop", "--output", "run")
    assert code == 0, err
    assert "t.csv: 17 train, 5 test, 2 features, 3 classes; 1 epochs; 8 rows holding a NaN" in out
    assert "a missing value dropped (--nan drop)" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"]["dropped_rows"] == 8
    code, out, err = run_cli(capsys, "evaluate", "run", "--json")
    assert code == 0 and sum(map(sum, json.loads(out)["confusion"])) == 5, err


def test_sweep_nan_drop_says_the_count(tmp_path, capsys, monkeypatch):
    full, _ = table_with(BROKEN)
    (tmp_path / "t.csv").write_text(full)
    monkeypatch.chdir(tmp_path)
    argv = ("sweep", "--dataset", "t.csv", "--nan", "drop", "--seed", "0,1", "--epochs", "1", "--hidden", "8")
    code, out, err = run_cli(capsys, *argv, "--quiet")
    assert code == 0, err
    assert "; 8 rows holding a NaN, an infinity or a missing value dropped (--nan drop)" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--dataset", "digits", "--nan", "drop"), "--nan drop needs a file"),
        (("--nan", "maybe"), "--nan"),
    ],
)
def test_a_nan_that_cannot_apply_is_one_line(capsys, argv, expected):
    code, out, err = run_cli(capsys, "train", *argv, "--epochs", "1", "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and expected in err, err


MEMORY_CHILD = """
import sys
from pathlib import Path

import pyarrow.compute, pyarrow.csv  # noqa: F401  # imports are not the read

from mlpjax.data import tables

def status(field):
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024

Path("/proc/self/clear_refs").write_text("5")  # VmHWM reset to VmRSS
before = status("VmRSS")
loaded = tables.load_table(sys.argv[1])
print(status("VmHWM") - before, len(loaded.train[0]) + len(loaded.test[0]), "pandas" in sys.modules)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
def test_a_large_csv_file_peaks_at_twice_its_features_and_imports_no_pandas(tmp_path):
    """The features once as read, once split (scikit-learn's train_test_split and pandas.read_csv take three to
    five times): 300,000 rows of 30 features (34 MiB as float32), and a fixed allowance for pyarrow's code and
    buffers (docs/data.md measures a million rows)."""
    rows, cols = 300_000, 30
    rng = np.random.default_rng(0)
    block = "".join(
        ",".join(f"{v:.6f}" for v in row) + f",{i % 10}\n" for i, row in enumerate(rng.normal(size=(1000, cols)))
    )
    path = tmp_path / "big.csv"
    path.write_text(",".join([*(f"f{j}" for j in range(cols)), "label"]) + "\n" + block * (rows // 1000))
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    added, n, pandas = proc.stdout.split()
    features = rows * cols * 4
    assert int(n) == rows and pandas == "False"
    assert int(added) <= 2 * features + 24 * 2**20, f"{int(added) / features:.2f} x the features"


def test_a_small_csv_file_is_read_without_importing_pyarrow(tmp_path):
    path = write_table(tmp_path / "t.csv", *blobs())
    code = f"import sys; from mlpjax import data; data.load_dataset({str(path)!r}); print('pyarrow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.split() == ["False"], proc.stderr
