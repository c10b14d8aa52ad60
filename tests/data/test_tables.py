"""Datasets from the user's files (FILE.npz, FILE.csv, FILE.tsv, FILE.parquet) and scikit-learn's tables by name:
loaded, trained on end to end from Python and the command line, their test split chosen, a changed file refused on
resuming, and every bad file refused in one line naming it, with exit 2."""

import csv
import dataclasses
import hashlib
import json
import sys

import numpy as np
import pytest
from conftest import blobs, run_cli, write_table

import mlpjax
from mlpjax import data, memory
from mlpjax.core.config import TrainConfig
from mlpjax.errors import UserInputError


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_scikit_learns_tables_by_name(name):
    ds = data.load_dataset(name)
    spec = data.DATASETS[name]
    assert (ds.input_dim, ds.num_classes) == spec.shape and ds.class_names == spec.class_names
    n = len(ds.y_train) + len(ds.y_test)
    assert abs(len(ds.y_test) - 0.2 * n) <= 1 and ds.x_train.dtype == np.float32
    assert set(np.unique(ds.y_test)) == set(range(ds.num_classes))  # stratified: every class tested
    np.testing.assert_array_equal(data.load_dataset(name).y_test, ds.y_test)  # a fixed split


def test_npz_with_its_own_split_keeps_it_and_flattens_images(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 255, (30, 5, 4), dtype=np.uint8), rng.integers(0, 255, (10, 5, 4), np.uint8)
    path = tmp_path / "images.npz"
    np.savez(path, x_train=x_train, y_train=np.arange(30) % 3, x_test=x_test, y_test=np.arange(10) % 3)
    ds = data.load_dataset(path)
    assert ds.name == str(path) and ds.image_shape == (5, 4) and ds.num_classes == 3 and ds.class_names == ()
    np.testing.assert_array_equal(ds.x_test, x_test.reshape(10, 20).astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, np.arange(30) % 3)


def test_npz_x_y_is_split_stratified_and_the_same_every_time(tmp_path):
    x, y = blobs(n_per_class=10)
    path = tmp_path / "xy.npz"
    np.savez_compressed(path, x=x, y=np.array(["b", "a", "c"])[y])  # text labels: sorted class names
    ds = data.load_dataset(str(path))
    assert ds.class_names == ("a", "b", "c") and len(ds.y_test) == 6 and len(ds.y_train) == 24
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(data.load_dataset(str(path)).encoded_test, ds.encoded_test)


@pytest.mark.parametrize(
    ("labels", "names"),
    [
        (lambda y: np.array(["virginica", "setosa", "versicolor"])[y], ("setosa", "versicolor", "virginica")),
        (lambda y: y + 1, ("1", "2", "3")),  # numbers, not 0 .. C-1: the values name the classes
        (lambda y: y, ()),  # already class numbers
    ],
)
def test_csv_labels_numbers_or_text(tmp_path, labels, names):
    x, y = blobs()
    ds = data.load_dataset(write_table(tmp_path / "t.csv", x, labels(y)))
    assert ds.class_names == names and ds.num_classes == 3 and ds.input_dim == 4
    assert len(ds.y_train) == 48 and len(ds.y_test) == 12
    assert abs(ds.x_train.mean() - x.mean()) < 0.2


def test_tsv_and_quoted_fields(tmp_path):
    x, y = blobs(classes=2)
    path = write_table(tmp_path / "t.tsv", x, np.array(["no, never", "yes"])[y], delimiter="\t")
    ds = data.load_dataset(path)
    assert ds.class_names == ("no, never", "yes") and ds.input_dim == 4


def test_python_fit_on_a_csv_file(tmp_path):
    x, y = blobs()
    path = write_table(tmp_path / "t.csv", x, np.array(["x", "y", "z"])[y])
    result = mlpjax.fit(TrainConfig.from_dict({"dataset": str(path), "epochs": 2, "hidden": (16,)}))
    assert len(result.history["loss"]) == 2
    assert result.dataset["class_names"] == ["x", "y", "z"] and result.dataset["x_train"] == [48, 4]


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_train_evaluate_and_predict_a_file_from_the_command_line(tmp_path, capsys, monkeypatch, kind):
    x, y = blobs()
    names = np.array(["cat", "dog", "emu"])
    if kind == "csv":
        path = write_table(tmp_path / "animals.csv", x, names[y])
    else:
        path = tmp_path / "animals.npz"
        np.savez(path, x=x, y=names[y])
    monkeypatch.chdir(tmp_path)  # a relative path is recorded as an absolute one
    code, out, err = run_cli(
        capsys, "train", "--dataset", path.name, "--epochs", "2", "--hidden", "16", "--output", "run", "--quiet"
    )
    assert code == 0, err
    assert f"{path.name}: 48 train, 12 test, 4 features, 3 classes; 2 epochs" in out
    assert "test sample 9: predicted" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"]["class_names"] == ["cat", "dog", "emu"]
    monkeypatch.chdir(tmp_path.parent)  # evaluate and predict reload the file the run recorded
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dataset"] == str(path) and report["class_names"] == ["cat", "dog", "emu"]
    assert sum(map(sum, report["confusion"])) == 12
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", "--index", "3")
    label = data.load_dataset(path).y_test[3]
    assert code == 0 and f"{path} test sample 3: predicted" in out and f"true {label} {names[label]}" in out, err


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_train_a_table_by_name_from_the_command_line(capsys, name):
    code, out, err = run_cli(capsys, "train", "--dataset", name, "--epochs", "1", "--quiet")
    assert code == 0 and f"{name}: " in out and "test accuracy" in out, err


# --- bad input: one line naming the file, exit status 2 -------------------------------------------------------


def npz(**arrays):
    return lambda path: np.savez(path, **arrays)


def text(body):
    return lambda path: path.write_text(body)


X, Y = blobs(n_per_class=5)
BAD = {
    "missing.csv": (None, "missing.csv: does not exist"),
    "data.json": (text("a"), "data.json: not a kind of file mlpjax reads as a dataset; give FILE.npz, FILE.csv,"),
    "no_y.npz": (npz(x=X), "no_y.npz: missing array y; an npz dataset holds x_train, y_train, x_test, y_test"),
    "half_split.npz": (npz(x_train=X, y_train=Y, x_test=X), "half_split.npz: missing array x, y"),
    "flat.npz": (npz(x=X[:, 0], y=Y), "flat.npz: x must be (N, D) (or (N, H, W) images) and y (N,), got (15,)"),
    "counts.npz": (
        npz(x=X, y=Y[:-1]),
        "counts.npz: x must be (N, D) (or (N, H, W) images) and y (N,), got (15, 4) and (14,)",
    ),
    "widths.npz": (
        npz(x_train=X, y_train=Y, x_test=X[:, :3], y_test=Y),
        "widths.npz: x_train rows are (4,) but x_test rows (3,)",
    ),
    "objects.npz": (
        npz(x=X.astype(object), y=Y),
        "objects.npz: array x holds Python objects (dtype object); mlpjax never unpickles",
    ),
    "text_x.npz": (npz(x=X.astype(str), y=Y), "text_x.npz: array x is of dtype <U"),
    "nan.npz": (
        npz(x=np.where(np.arange(60).reshape(15, 4) == 9, np.nan, X), y=Y),
        "nan.npz: x row 2, column 1 is nan; features must be finite",
    ),
    "one_class.npz": (npz(x=X, y=np.zeros(15, int)), "one_class.npz: the labels hold one class only (0)"),
    "half_label.npz": (npz(x=X, y=Y + 0.5), "half_label.npz: y label 0.5 at index 0 is not a whole number"),
    "unseen.npz": (
        npz(x_train=X, y_train=Y % 2, x_test=X, y_test=Y),
        "unseen.npz: class 2 is in y_test but not in y_train",
    ),
    "garbage.npz": (text("not a zip"), "garbage.npz: not an npz file"),
    "empty.csv": (text(""), "empty.csv: empty; expected a header row"),
    "header_only.csv": (text("a,b,label\n"), "header_only.csv: holds a header but no rows"),
    "one_column.csv": (text("label\n1\n2\n"), "one_column.csv: the header has one column ('label')"),
    "words.csv": (text("a,b,label\n1,2,x\n3,abc,y\n"), "words.csv: line 3, column 2 ('b'): 'abc' is not a number"),
    "nan.csv": (text("a,b,label\n1,2,x\n3,4,y\nnan,1,x\n"), "nan.csv: line 4, column 1 ('a'): nan is not finite"),
    "inf.csv": (text("a,b,label\n1,2,x\n3,1e999,y\n"), "inf.csv: line 3, column 2 ('b'): inf is not finite"),
    "ragged.csv": (text("a,b,label\n1,2,x\n3,4,y\n5,y\n"), "ragged.csv: line 4 has 2 fields but the header has 3"),
    "no_label.csv": (text("a,b,label\n1,2,x\n3,4, \n"), "no_label.csv: line 3, column 3 ('label'): the label is empty"),
    "one_class.csv": (text("a,label\n1,x\n2,x\n3,x\n"), "one_class.csv: the labels hold one class only (x)"),
    "lonely.csv": (
        text("a,label\n1,x\n2,x\n3,x\n4,y\n"),
        "lonely.csv: class 'y' has 1 row; splitting off a stratified 20% test set needs at least 2 rows of each",
    ),
    "fraction.csv": (
        text("a,label\n1,0\n2,1.5\n"),
        "fraction.csv: column 'label' label 1.5 at line 3 is not a whole number",
    ),
    "latin1.csv": (lambda p: p.write_bytes(b"a,label\n1,caf\xe9\n"), "latin1.csv: line 2: not UTF-8 text"),
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_file_is_one_line_naming_it_and_exit_2(tmp_path, capsys, name):
    make, expected = BAD[name]
    path = tmp_path / name
    if make is not None:
        make(path)
    code, out, err = run_cli(capsys, "train", "--dataset", path, "--epochs", "1", "--quiet")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mlpjax train: error: ") and str(path) in err, err
    assert expected in err, err
    with pytest.raises(UserInputError, match=str(path)):  # the library raises the same line
        data.load_dataset(path)


@pytest.mark.parametrize("name", ["big.csv", "big.npz"])
def test_a_file_larger_than_memory_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch, name):
    x, y = blobs()
    path = tmp_path / name
    np.savez(path, x=x, y=y) if name.endswith(".npz") else write_table(path, x, y)
    monkeypatch.setattr(memory, "available_memory", lambda: 100)
    code, _, err = run_cli(capsys, "train", "--dataset", path, "--epochs", "1", "--quiet")
    assert code == 2 and err.count("\n") == 1 and f"{path}: " in err and "more than the 100 B of memory" in err, err


def test_a_pickle_is_never_loaded(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(UserInputError, match="evil.npz: not an npz file"):
        data.load_dataset(path)


def test_label_column_chooses_the_labels_and_the_run_keeps_it(tmp_path, capsys):
    x, y = blobs()
    path = tmp_path / "middle.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "kind", "b", "c", "d"])
        for row, label in zip(x, y, strict=True):
            w.writerow([row[0], ["p", "q", "r"][label], *row[1:]])
    ds = data.load_dataset(path, label_column="kind")
    assert ds.class_names == ("p", "q", "r") and ds.input_dim == 4
    code, out, err = run_cli(
        capsys,
        "train",
        "--dataset",
        path,
        "--label-column",
        "kind",
        "--epochs",
        "1",
        "--output",
        tmp_path / "run",
        "--quiet",
    )
    assert code == 0 and "4 features, 3 classes" in out, err
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--json")
    assert code == 0 and json.loads(out)["class_names"] == ["p", "q", "r"], err
    code, out, err = run_cli(capsys, "train", "--dataset", path, "--epochs", "1", "--quiet")  # labels: the last
    assert code == 2 and f"{path}: line 2, column 2 ('kind'): 'p' is not a number; features must be numeric" in err


@pytest.mark.parametrize(
    ("dataset", "option", "value", "expected"),
    [
        (
            "t.csv",
            "--label-column",
            "nope",
            "--label-column 'nope': {path} has no such column; its header has f0, f1, f2",
        ),
        ("t.npz", "--label-column", "label", "--label-column 'label' needs a CSV, TSV or Parquet file as --dataset"),
        ("digits", "--label-column", "label", "--label-column 'label' needs a CSV, TSV or Parquet file as --dataset"),
        ("digits", "--test-split", "0.3", "--test-split 0.3: 'digits' has test rows of its own (a fixed split); drop"),
        ("own.npz", "--test-split", "0.3", "--test-split 0.3: {path} has test rows of its own (x_test, y_test); drop"),
        ("t.csv", "--test-split", "0", "--test-split must be in (0, 1), got 0.0"),
        ("t.csv", "--test-split", "1", "--test-split must be in (0, 1), got 1.0"),
        ("t.csv", "--test-split", "nan", "--test-split must be in (0, 1), got nan"),
        ("t.csv", "--test-split", "0.01", "{path}: 60 rows of 3 classes cannot be split into a stratified 1% test set"),
        ("t.csv", "--image-size", "8", "--image-size needs a folder of images or a tfds:NAME set as --dataset"),
    ],
)
def test_an_option_that_cannot_apply_is_one_line(tmp_path, capsys, dataset, option, value, expected):
    x, y = blobs()
    path = tmp_path / dataset
    if dataset == "t.csv":
        write_table(path, x, y)
    elif dataset == "t.npz":
        np.savez(path, x=x, y=y)
    elif dataset == "own.npz":
        np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    else:
        path = dataset
    code, out, err = run_cli(capsys, "train", "--dataset", path, option, value, "--epochs", "1", "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and expected.format(path=path) in err, err


def test_sweep_and_summary_take_a_file(tmp_path, capsys, monkeypatch):
    x, y = blobs()
    write_table(tmp_path / "t.csv", x, np.array(["x", "y", "z"])[y])
    monkeypatch.chdir(tmp_path)  # each model's run records the file's absolute path, as the plan's relative one
    code, out, err = run_cli(
        capsys,
        "sweep",
        "--dataset",
        "t.csv",
        "--seed",
        "0,1",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--output",
        "sweep",
        "--quiet",
    )
    assert code == 0 and (tmp_path / "sweep" / "results.json").exists(), err
    code, out, err = run_cli(capsys, "summary", "--dataset", "t.csv", "--hidden", "8")
    assert code == 0 and "Total params: 67" in out, err  # 4*8+8 + 8*3+3


def test_resume_a_run_on_a_file_given_by_a_relative_path(tmp_path, capsys, monkeypatch):
    x, y = blobs()
    write_table(tmp_path / "t.csv", x, y)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(
        capsys, "train", "--dataset", "t.csv", "--epochs", "1", "--hidden", "8", "--output", "run", "--quiet"
    )
    assert code == 0, err
    code, out, err = run_cli(capsys, "train", "--resume", "run", "--dataset", "t.csv", "--epochs", "2", "--quiet")
    assert code == 0 and "test accuracy" in out, err
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]["loss"]) == 2


# --- Parquet -----------------------------------------------------------------------------------------------------


def write_parquet(path, columns: dict):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_is_read_as_the_same_csv_is(tmp_path):
    import pyarrow as pa

    x, y = blobs()
    x = np.round(x * 4) / 4  # exact in a CSV's text as in float32
    names = np.array(["x", "y", "z"])[y]
    csv_ds = data.load_dataset(write_table(tmp_path / "t.csv", x, names))
    columns = {f"f{j}": x[:, j] for j in range(4)}
    pq_ds = data.load_dataset(write_parquet(tmp_path / "t.parquet", {**columns, "label": names}))
    dictionary = {**columns, "label": pa.array(names).dictionary_encode()}  # pandas' category
    for ds in (pq_ds, data.load_dataset(write_parquet(tmp_path / "d.parquet", dictionary))):
        assert ds.class_names == csv_ds.class_names == ("x", "y", "z") and ds.digest is not None
        np.testing.assert_array_equal(ds.encoded_train, csv_ds.encoded_train)
        np.testing.assert_array_equal(ds.y_test, csv_ds.y_test)
    kind = data.load_dataset(write_parquet(tmp_path / "k.parquet", {"kind": y + 1, **columns}), label_column="kind")
    assert kind.class_names == ("1", "2", "3") and kind.input_dim == 4


def test_a_parquet_file_names_its_features_and_label_column_as_a_csv_file_does(tmp_path):
    x, y = blobs()
    path = write_parquet(tmp_path / "t.parquet", {"b": x[:, 1], "kind": y, "a": x[:, 0], "d": x[:, 3]})
    ds = data.load_dataset(path, label_column="kind")
    assert ds.feature_names == ("b", "a", "d") and ds.label_column == "kind" and ds.digest is not None
    assert ds.describe()["feature_names"] == ["b", "a", "d"] and ds.describe()["label_column"] == "kind"
    rows = rows_file(tmp_path / "new.csv", "a,kind,d,b\n1,?,3,2\n")  # new rows, read by the parquet file's names
    assert data.read_rows(rows, ds.feature_names, width=3, ignore=ds.label_column).tolist() == [[2, 1, 3]]


def test_train_and_evaluate_a_parquet_file_from_the_command_line(tmp_path, capsys):
    x, y = blobs()
    path = write_parquet(tmp_path / "t.parquet", {"a": x[:, 0], "b": x[:, 1] > 1, "c": y.astype(np.int8), "k": y})
    code, out, err = run_cli(
        capsys, "train", "--dataset", path, "--label-column", "k", "--epochs", "2", "--output", tmp_path / "run"
    )
    assert code == 0 and f"{path}: 48 train, 12 test, 3 features, 3 classes; 2 epochs" in out, err
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--json")
    assert code == 0 and sum(map(sum, json.loads(out)["confusion"])) == 12, err


def parquet(**columns):
    return lambda path: write_parquet(path, columns)


def duplicated(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_arrays([pa.array(X[:, 0]), pa.array(X[:, 1]), pa.array(Y)], ["a", "a", "y"]), path)


NULL = [None if i == 4 else float(v) for i, v in enumerate(X[:, 1])]
BAD_PARQUET = {
    "garbage.parquet": (text("not parquet"), "garbage.parquet: not a Parquet file (Parquet magic bytes not found"),
    "words.parquet": (
        parquet(a=X[:, 0], b=X[:, 1].astype(str), y=Y),
        "words.parquet: column 'b' is of type string; features must be numbers",
    ),
    "null.parquet": (
        parquet(a=X[:, 0], b=NULL, y=Y),
        "null.parquet: row 4, column 'b': a missing value (null); features must be numbers",
    ),
    "inf.parquet": (
        parquet(a=np.where(np.arange(15) == 6, np.inf, X[:, 0]), y=Y),
        "inf.parquet: row 6, column 'a': inf is not finite; features must be finite numbers",
    ),
    "null_label.parquet": (
        parquet(a=X[:, 0], y=[None if i == 2 else "p" for i in range(15)]),
        "null_label.parquet: row 2, column 'y': a missing value (null); the label is missing",
    ),
    "empty_label.parquet": (
        parquet(a=X[:, 0], y=["" if i == 3 else "p" for i in range(15)]),
        "empty_label.parquet: row 3, column 'y': the label is empty",
    ),
    "nested.parquet": (
        parquet(a=X[:, 0], y=[[1, 2]] * 15),
        "nested.parquet: the label column 'y' is of type list<",
    ),
    "one_class.parquet": (parquet(a=X[:, 0], y=np.zeros(15, int)), "one_class.parquet: the labels hold one class"),
    "empty.parquet": (parquet(a=X[:0, 0], y=Y[:0]), "empty.parquet: holds no rows"),
    "one_column.parquet": (parquet(y=Y), "one_column.parquet: the header has one column ('y')"),
    "duplicated.parquet": (duplicated, "duplicated.parquet: column 'a' appears more than once"),
}


@pytest.mark.parametrize("name", BAD_PARQUET)
def test_a_bad_parquet_file_is_one_line_naming_row_and_column(tmp_path, capsys, name):
    make, expected = BAD_PARQUET[name]
    path = tmp_path / name
    make(path)
    code, out, err = run_cli(capsys, "train", "--dataset", path, "--epochs", "1", "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and expected in err, err


def test_a_parquet_file_larger_than_memory_is_refused_from_its_footer(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    path = write_parquet(tmp_path / "big.parquet", {"a": X[:, 0], "y": Y})
    read = []
    monkeypatch.setattr(pq.ParquetFile, "read", lambda self, *a, **k: read.append(1))
    monkeypatch.setattr(memory, "available_memory", lambda: 100)
    with pytest.raises(UserInputError, match=rf"^{path}: its columns as float32, then split needs .* than the 100 B"):
        data.load_dataset(path)
    assert not read


def test_without_pyarrow_parquet_names_the_extra(tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "t.parquet", {"a": X[:, 0], "y": Y})
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UserInputError, match=r"needs pyarrow, which is not installed: pip install 'mlpjax\[parquet\]'"):
        data.load_dataset(path)


# --- --test-split ---------------------------------------------------------------------------------------------


def test_test_split_chooses_the_fraction_split_off_and_the_run_keeps_it(tmp_path, capsys):
    x, y = blobs()
    path = write_table(tmp_path / "t.csv", x, y)
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    for name in (path, tmp_path / "xy.npz"):
        ds = data.load_dataset(name, test_split=0.5)
        assert (len(ds.y_train), len(ds.y_test)) == (30, 30) and np.bincount(ds.y_test).tolist() == [10, 10, 10]
    assert len(data.load_dataset("iris", test_split=0.5).y_test) == 75
    code, out, err = run_cli(
        capsys, "train", "--dataset", path, "--test-split", "0.25", "--epochs", "1", "--output", tmp_path / "run"
    )
    assert code == 0 and f"{path}: 45 train, 15 test" in out, err
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--json")  # the same 15 test rows
    assert code == 0 and sum(map(sum, json.loads(out)["confusion"])) == 15, err


# --- a changed file ---------------------------------------------------------------------------------------------


def test_a_run_records_the_files_digest_and_refuses_it_changed(tmp_path, capsys):
    x, y = blobs()
    path = write_table(tmp_path / "t.csv", x, y)
    code, _, err = run_cli(capsys, "train", "--dataset", path, "--epochs", "1", "--output", tmp_path / "run", "--quiet")
    assert code == 0, err
    digest = json.loads((tmp_path / "run" / "metrics.json").read_text())["dataset"]["digest"]
    assert digest == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size, "files": 1}
    before = path.read_bytes()
    path.write_bytes(before + b"1,2,3,4,0\n")  # a row added
    for argv in (["train", "--resume", tmp_path / "run", "--epochs", "2", "--quiet"], ["evaluate", tmp_path / "run"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert f"{path}: changed since the model in {tmp_path / 'run'} was trained on it (then " in err
        assert f"SHA-256 {digest['sha256'][:12]}; now " in err and "put the data back as it was" in err
    path.write_bytes(before)  # put back: resumes
    code, out, err = run_cli(capsys, "train", "--resume", tmp_path / "run", "--epochs", "2", "--quiet")
    assert code == 0, err


def test_a_sweep_records_the_files_digest_and_refuses_it_changed(tmp_path, capsys):
    x, y = blobs()
    path = write_table(tmp_path / "t.csv", x, y)
    sweep = ["sweep", "--dataset", path, "--seed", "0,1", "--epochs", "1", "--hidden", "4", "--quiet"]
    code, _, err = run_cli(capsys, *sweep, "--output", tmp_path / "sweep")
    assert code == 0, err
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["dataset_digest"]["bytes"] == path.stat().st_size
    path.write_text(path.read_text() + "1,2,3,4,1\n")
    code, out, err = run_cli(capsys, "sweep", "--resume", tmp_path / "sweep", "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{path}: changed since the sweep in {tmp_path / 'sweep'} was trained on it" in err


# --- the names a table gives its features, and new rows read by them (issue 23, item 3) ---------------------------


def test_a_table_names_its_features_and_label_column_and_the_run_records_them(tmp_path):
    x, y = blobs()
    ds = data.load_dataset(write_table(tmp_path / "t.csv", x, y, header=["a", "b", "c", "d", "kind"]))
    assert ds.feature_names == ("a", "b", "c", "d") and ds.label_column == "kind"
    assert ds.describe()["feature_names"] == ["a", "b", "c", "d"] and ds.describe()["label_column"] == "kind"
    iris = data.load_dataset("iris")
    assert iris.feature_names[0] == "sepal length (cm)" and len(iris.feature_names) == 4
    assert iris.label_column == "target"
    np.savez(tmp_path / "t.npz", x=x, y=y)
    unnamed = data.load_dataset(tmp_path / "t.npz")
    assert unnamed.feature_names == () and "feature_names" not in unnamed.describe()
    with pytest.raises(UserInputError, match=r"feature_names names 2 features; the data has 4"):
        dataclasses.replace(ds, feature_names=("a", "b"))


def rows_file(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_new_rows_are_read_by_column_name_in_any_order_the_label_column_left_out(tmp_path):
    path = rows_file(tmp_path / "new.csv", "c,kind,a,d,b\n3,?,1,4,2\n\n7,dog,5,8,6\n")
    x = data.read_rows(path, ("a", "b", "c", "d"), width=4, ignore="kind")
    assert x.dtype == np.float32 and x.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    tsv = rows_file(tmp_path / "new.tsv", "b\ta\n 2 \t1\n")
    assert data.read_rows(tsv, ("a", "b"), width=2).tolist() == [[1, 2]]


def test_new_rows_without_names_are_taken_in_order(tmp_path):
    path = rows_file(tmp_path / "new.csv", "anything,at all\n1,2\n")
    assert data.read_rows(path, (), width=2).tolist() == [[1, 2]]
    assert data.read_rows(path, ("f", "f"), width=2).tolist() == [[1, 2]]  # names that repeat name nothing
    with pytest.raises(UserInputError, match=r"new.csv: line 1: the header has 2 columns; the model takes 3 features"):
        data.read_rows(path, (), width=3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,c\n1,2,3\n", "line 1: no column 'd'; the model takes 4 features: a, b, c, d"),
        (
            "a,b,c,d,e\n1,2,3,4,5\n",
            "line 1, column 5 ('e') is not one of the model's 4 features: a, b, c, d; a label column is left out "
            "under its training name 'kind'",
        ),
        ("a,b,c,d,a\n1,2,3,4,1\n", "line 1, column 5 ('a'): a second column of that name (column 1)"),
        ("a,b,c,d\n1,2,3,4\n1,x,3,4\n", "line 3, column 2 ('b'): 'x' is not a number; features must be numeric"),
        ("a,b,c,d\n1,2,nan,4\n", "line 2, column 3 ('c'): nan is not finite; features must be finite numbers"),
        ("a,b,c,d\n1,2,1e39,4\n", "line 2, column 3 ('c'): inf is not finite; features must be finite numbers"),
        ("a,b,c,d\n1,2,3\n", "line 2 has 3 fields but the header has 4"),
        ("a,b,c,d\n", "holds a header but no rows"),
        ("", "empty; expected a header row, then one row per example"),
        ("a,b,c,d\n1,2,3," + "4" * 200_000 + "\n", "line 2: field larger than field limit (131072)"),
    ],
    ids=["missing", "extra", "twice", "text", "nan", "overflow", "ragged", "no-rows", "empty", "huge-field"],
)
def test_bad_new_rows_are_one_line_naming_file_line_and_column(tmp_path, text, message):
    path = rows_file(tmp_path / "new.csv", text)
    with pytest.raises(UserInputError) as e:
        data.read_rows(path, ("a", "b", "c", "d"), width=4, ignore="kind")
    assert str(e.value) == f"{path}: {message}"


def test_new_rows_are_read_only_from_a_regular_file_that_fits_in_memory(tmp_path, monkeypatch):
    with pytest.raises(UserInputError, match=r"is a directory, expected a regular file"):
        data.read_rows(tmp_path, ("a",), width=1)
    path = rows_file(tmp_path / "new.csv", "a\n1\n" * 100)
    monkeypatch.setattr(memory, "available_memory", lambda: 100)
    with pytest.raises(UserInputError, match=r"new.csv: its values as float32 needs .* more than the"):
        data.read_rows(path, ("a",), width=1)
