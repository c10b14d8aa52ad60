"""``mlpjax predict`` on many inputs (issue 23, items 3 and 8): the rows of a CSV file read by the training
table's column names, several image files at once, ``--top K``, ``--json`` and ``--out FILE.csv``; the numbers
are those of ``Classifier.predict_proba`` from Python, and every bad input is one line with exit status 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import blobs, run_cli, write_table
from PIL import Image

import mlpjax
from mlpjax.draw import predict

NAMES = ["cat", "dog", "emu"]


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A run of 2 epochs on a CSV table: features a, b, c, d, labels cat, dog, emu in the column 'animal'."""
    from mlpjax import cli

    folder = tmp_path_factory.mktemp("table-run")
    x, y = blobs()
    table = write_table(folder / "animals.csv", x, np.array(NAMES)[y], header=["a", "b", "c", "d", "animal"])
    argv = ["train", "--dataset", str(table), "--epochs", "2", "--hidden", "16", "--quiet", "--output"]
    assert cli.main([*argv, str(folder / "run")]) == 0
    return folder / "run"


def new_rows(path, x: np.ndarray):
    """``x`` (N, 4) as a CSV of new rows: the columns in another order than training's, and the label column."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["d", "animal", "b", "a", "c"])
        for a, b, c, d in np.asarray(x, np.float32):
            w.writerow([d, "?", b, a, c])  # str(np.float32): the shortest decimal of the same float32
    return path


def read_table(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_predict_csv_reads_rows_by_name_and_agrees_with_python(table_run, tmp_path, capsys):
    x = np.array([[0.1, 0.0, -0.1, 0.2], [1.0, 1.1, 0.9, 1.0], [2.1, 1.9, 2.0, 2.2]], np.float32)
    rows = new_rows(tmp_path / "rows.csv", x)
    expected = mlpjax.load_model(table_run).predict_proba(x)  # the columns in the training order
    code, out, err = run_cli(capsys, "predict", table_run, "--csv", rows, "--top", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    for r, (line, p) in enumerate(zip(lines, expected, strict=True), 1):
        first, second = np.argsort(-p, kind="stable")[:2]
        assert line == (
            f"{rows} row {r}: predicted {first} {NAMES[first]} (p={p[first]:.3f}), "
            f"then {second} {NAMES[second]} (p={p[second]:.3f})"
        )
    out_file = tmp_path / "predictions.csv"
    code, out, err = run_cli(capsys, "predict", table_run, "--csv", rows, "--out", out_file)
    assert code == 0 and out == f"wrote {out_file}\n", err
    header, *body = read_table(out_file)
    assert header == ["row", "class", "class_name", "p(cat)", "p(dog)", "p(emu)"]
    got = np.array([[float(v) for v in line[3:]] for line in body], np.float32)
    np.testing.assert_array_equal(got, expected)  # the shortest decimals read back as the same float32
    assert [line[:3] for line in body] == [[str(r), str(c), NAMES[c]] for r, c in enumerate(expected.argmax(1), 1)]
    written = out_file.read_bytes()
    code, _, err = run_cli(capsys, "predict", table_run, "--csv", rows, "--out", out_file)
    assert code == 2 and f"--out {out_file}: already exists" in err and out_file.read_bytes() == written


def test_predict_json_is_one_document_of_every_class_by_name(table_run, tmp_path, capsys):
    x = np.array([[0.0, 0.1, 0.0, 0.1], [2.0, 2.0, 2.1, 1.9]], np.float32)
    rows = new_rows(tmp_path / "rows.csv", x)
    code, out, err = run_cli(capsys, "predict", table_run, "--csv", rows, "--json", "--top", "2")
    assert code == 0 and err == "", err
    doc = json.loads(out)
    assert doc["classes"] == NAMES and doc["dataset"].endswith("animals.csv") and doc["epoch"] == 2
    assert doc["checkpoint"].endswith("checkpoints/2") and len(doc["predictions"]) == 2
    for r, record in enumerate(doc["predictions"], 1):
        assert list(record) == ["input", "row", "class", "class_name", "probability", "probabilities", "top"]
        assert record["input"] == f"{rows} row {r}" and record["row"] == r
        probs = record["probabilities"]
        assert list(probs) == NAMES and abs(sum(probs.values()) - 1) < 1e-5
        c = max(range(3), key=lambda k: probs[NAMES[k]])
        assert (record["class"], record["class_name"], record["probability"]) == (c, NAMES[c], probs[NAMES[c]])
        top = record["top"]
        assert [t["class"] for t in top][:1] == [c] and len(top) == 2
        assert top[0]["probability"] >= top[1]["probability"] and top[1]["class_name"] == NAMES[top[1]["class"]]
    out_file = tmp_path / "p.csv"
    code, out, err = run_cli(capsys, "predict", table_run, "--csv", rows, "--json", "--out", out_file)
    assert code == 0 and json.loads(out)["classes"] == NAMES and err == f"wrote {out_file}\n"  # stdout: JSON alone
    assert len(read_table(out_file)) == 3


def bar_image(path, left: int):
    """A dark bar on white, 40x30, starting at column ``left``: a digit-like stroke."""
    a = np.full((40, 30), 255, np.uint8)
    a[8:32, left : left + 6] = 0
    Image.fromarray(a).save(path)
    return path


def test_several_images_at_once_with_top_json_and_a_table(digits_run, tmp_path, capsys):
    images = [bar_image(tmp_path / f"bar{i}.png", left) for i, left in enumerate((4, 12, 20))]
    model = mlpjax.load_model(digits_run)
    expected = model.predict_proba(np.stack([predict.load_image(p, 64) for p in images]))
    code, out, err = run_cli(capsys, "predict", digits_run, "--image", *images, "--top", "3")
    assert code == 0, err
    for line, image, p in zip(out.splitlines(), images, expected, strict=True):
        best = np.argsort(-p, kind="stable")[:3]
        assert line == f"{image}: predicted {best[0]} (p={p[best[0]]:.3f}), then " + ", ".join(
            f"{c} (p={p[c]:.3f})" for c in best[1:]
        )
    code, out, err = run_cli(capsys, "predict", digits_run, "--image", *images, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["classes"] == [str(c) for c in range(10)] and doc["dataset"] == "digits", err
    assert [r["input"] for r in doc["predictions"]] == [str(p) for p in images]
    assert [r["class"] for r in doc["predictions"]] == expected.argmax(1).tolist()
    assert all(len(r["top"]) == 1 and len(r["probabilities"]) == 10 for r in doc["predictions"])
    table = tmp_path / "images.csv"
    code, out, err = run_cli(capsys, "predict", digits_run, "--image", *images, "--out", table)
    assert code == 0 and out == f"wrote {table}\n", err
    header, *body = read_table(table)
    assert header[:3] == ["image", "class", "class_name"] and header[3:] == [f"p({c})" for c in range(10)]
    assert [line[0] for line in body] == [str(p) for p in images]
    np.testing.assert_array_equal(np.array([line[3:] for line in body], np.float32), expected)


def test_index_json_names_the_true_class(digits_run, tmp_path, capsys):
    drawn = tmp_path / "sample.png"
    code, out, err = run_cli(capsys, "predict", digits_run, "--index", "3", "--json", "--out", drawn)
    assert code == 0 and err == f"wrote {drawn}\n" and drawn.stat().st_size, err
    [record] = json.loads(out)["predictions"]
    label = int(mlpjax.load_dataset("digits").y_test[3])
    assert record["input"] == "digits test sample 3" and record["index"] == 3
    assert (record["true_class"], record["true_class_name"]) == (label, str(label))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--csv", "{wide}"], "--csv {wide}: line 1, column 5 ('e') is not one of the model's 4 features: a, b, c, d"),
        (["--csv", "{nan}"], "--csv {nan}: line 3, column 2 ('b'): nan is not finite; features must be finite numbers"),
        (["--csv", "{missing}"], "--csv {missing}: does not exist"),
        (["--csv", "{rows}", "--top", "4"], "--top 4: the model has 3 classes; give K from 1 to 3"),
        (["--csv", "{rows}", "--top", "0"], "argument --top: expected a positive integer, got 0"),
        (["--csv", "{rows}", "--top", "two"], "argument --top: expected a positive integer, got 'two'"),
        (
            ["--csv", "{rows}", "--top", "2", "--out", "{out}"],
            "--top 2 chooses what is printed, and with --out {out} the predictions go to the file",
        ),
        (["--image", "{image}"], "--image: {run} was trained on {table}, rows of 4 features, not images; predict"),
        (["--csv", "{rows}", "--image", "{image}"], "argument --image: not allowed with argument --csv"),
    ],
    ids=["extra-column", "nan", "missing-file", "top-beyond", "top-0", "top-text", "top-and-out", "image", "both"],
)
def test_bad_rows_and_flags_are_one_line_and_write_nothing(table_run, tmp_path, capsys, argv, message):
    paths = {
        "wide": tmp_path / "wide.csv",
        "nan": tmp_path / "nan.csv",
        "missing": tmp_path / "missing.csv",
        "rows": new_rows(tmp_path / "rows.csv", np.zeros((2, 4))),
        "out": tmp_path / "out.csv",
        "image": bar_image(tmp_path / "bar.png", 10),
        "run": table_run,
        "table": table_run.parent / "animals.csv",
    }
    paths["wide"].write_text("a,b,c,d,e\n1,2,3,4,5\n")
    paths["nan"].write_text("a,b,c,d\n1,2,3,4\n1,nan,3,4\n")
    before = sorted(tmp_path.iterdir())
    code, out, err = run_cli(capsys, "predict", table_run, *(a.format(**paths) for a in argv))
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"mlpjax predict: error: {message.format(**paths)}"), err
    assert sorted(tmp_path.iterdir()) == before


def test_an_image_run_refuses_rows_and_several_images_refuse_one_drawing(digits_run, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("a\n1\n")
    code, _, err = run_cli(capsys, "predict", digits_run, "--csv", rows)
    assert code == 2 and err.strip().endswith(
        f"--csv {rows}: {digits_run} was trained on images (digits, 8x8); predict image files with --image FILE ..."
    )
    images = [bar_image(tmp_path / f"{i}.png", 4 + 8 * i) for i in range(2)]
    code, _, err = run_cli(capsys, "predict", digits_run, "--image", *images, "--out", tmp_path / "seen.png")
    assert code == 2 and "--out FILE.csv writes their predictions" in err
    assert not (tmp_path / "seen.png").exists()


def test_rows_of_a_table_that_names_no_columns_are_taken_in_order(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "train", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--output", tmp_path / "run"
    )
    assert code == 0, err
    (tmp_path / "points.csv").write_text("x,y\n1,1\n-1,-1\n")
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", "--csv", tmp_path / "points.csv", "--json")
    assert code == 0, err
    doc = json.loads(out)
    expected = mlpjax.load_model(tmp_path / "run").predict_proba(np.array([[1, 1], [-1, -1]], np.float32))
    assert doc["classes"] == ["I", "II", "III", "IV"]
    assert [r["class"] for r in doc["predictions"]] == expected.argmax(1).tolist()
    (tmp_path / "three.csv").write_text("x,y,z\n1,1,1\n")
    code, _, err = run_cli(capsys, "predict", tmp_path / "run", "--csv", tmp_path / "three.csv")
    assert code == 2 and "line 1: the header has 3 columns; the model takes 2 features, read in order" in err


def test_predict_csv_reads_rows_by_the_names_of_a_parquet_files_columns(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, y = blobs()
    columns = {"a": x[:, 0], "animal": np.array(NAMES)[y], "b": x[:, 1], "c": x[:, 2], "d": x[:, 3]}
    pq.write_table(pa.table(columns), tmp_path / "animals.parquet")
    argv = ["--dataset", tmp_path / "animals.parquet", "--label-column", "animal", "--epochs", "1", "--hidden", "4"]
    code, _, err = run_cli(capsys, "train", *argv, "--quiet", "--output", tmp_path / "run")
    assert code == 0, err
    rows = np.array([[0.1, 0.0, -0.1, 0.2], [2.1, 1.9, 2.0, 2.2]], np.float32)
    code, out, err = run_cli(
        capsys, "predict", tmp_path / "run", "--csv", new_rows(tmp_path / "rows.csv", rows), "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    expected = mlpjax.load_model(tmp_path / "run").predict_proba(rows)  # the columns in the training order
    assert doc["classes"] == NAMES and [r["class"] for r in doc["predictions"]] == expected.argmax(1).tolist()
    got = np.array([[r["probabilities"][n] for n in NAMES] for r in doc["predictions"]], np.float32)
    np.testing.assert_array_equal(got, expected)


def test_a_closed_pipe_ends_predict_quietly(table_run, tmp_path):
    """``mlpjax predict DIR --csv BIG.csv | head -1``: the reader leaves; no BrokenPipeError traceback."""
    rows = new_rows(tmp_path / "big.csv", np.zeros((5000, 4)))  # 5000 lines: more than a pipe's buffer
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpjax.cli", "predict", str(table_run), "--csv", str(rows)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith(f"{rows} row 1: ".encode())
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141 and b"Traceback" not in err and b"Exception ignored" not in err, err.decode()


def bare_model_on_scaled(run_dir, x) -> np.ndarray:
    """The probabilities of ``run_dir``'s params, without its scaling, on ``x`` scaled by hand."""
    from mlpjax.core import model

    loaded = mlpjax.load_model(run_dir)
    assert loaded.scaler is not None
    return model.Classifier(loaded.params, loaded.model_config).predict_proba(loaded.scaler.apply(x))


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_predict_csv_and_index_apply_a_normalized_runs_scaling(kind, tmp_path, capsys):
    """The rows of --csv and the test sample of --index are raw features: predict scales them as training did,
    giving the model's probabilities on the scaled rows."""

    x, y = blobs()
    x = x * np.array([1.0, 100.0, 0.01, 1000.0]) + 50  # features of other magnitudes: a scaling matters
    table = write_table(tmp_path / "animals.csv", x, np.array(NAMES)[y], header=["a", "b", "c", "d", "animal"])
    argv = ["train", "--dataset", str(table), "--epochs", "3", "--hidden", "16", "--quiet", "--normalize", kind]
    assert run_cli(capsys, *argv, "--output", tmp_path / "run")[0] == 0
    rows = x[[0, 25, 50]].astype(np.float32)
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", "--csv", new_rows(tmp_path / "r.csv", rows), "--json")
    assert code == 0, err
    got = [[r["probabilities"][n] for n in NAMES] for r in json.loads(out)["predictions"]]
    np.testing.assert_allclose(got, bare_model_on_scaled(tmp_path / "run", rows), rtol=1e-6)
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", "--index", "2", "--json")
    assert code == 0, err
    [record] = json.loads(out)["predictions"]
    sample = mlpjax.load_dataset(str(table)).x_test[2]
    want = bare_model_on_scaled(tmp_path / "run", sample[None])[0]
    np.testing.assert_allclose([record["probabilities"][n] for n in NAMES], want, rtol=1e-6)


def test_predict_image_applies_a_normalized_image_runs_scaling(tmp_path, capsys):
    """Images with --normalize (allowed: the pixels train as float32): --image prepares the file as for any
    image model, then the model scales it."""
    argv = ["train", "--dataset", "digits", "--epochs", "2", "--hidden", "16", "--quiet", "--normalize", "standard"]
    assert run_cli(capsys, *argv, "--output", tmp_path / "run")[0] == 0
    images = [bar_image(tmp_path / f"bar{i}.png", left) for i, left in enumerate((4, 20))]
    expected = bare_model_on_scaled(tmp_path / "run", np.stack([predict.load_image(p, 64) for p in images]))
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", "--image", *images, "--json")
    assert code == 0, err
    got = [[r["probabilities"][str(c)] for c in range(10)] for r in json.loads(out)["predictions"]]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
