"""The command line end to end: train / predict / evaluate / info on the shared real data, and
clear messages with the right exit status for bad files and arguments."""
import csv
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

import fastmlp as fm
from fastmlp.cli import main

from data_paths import require


def run(capsys, *argv):
    """(exit status, stdout, stderr) of ``fastmlp argv...`` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors and --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """2000 training and 1000 test MNIST digits as .npz files (X uint8 images, y labels)."""
    folder = tmp_path_factory.mktemp("mnist")
    train_x = _load_idx(require("mnist/train-images-idx3-ubyte.gz"))[:2000]
    train_y = _load_idx(require("mnist/train-labels-idx1-ubyte.gz"))[:2000]
    test_x = _load_idx(require("mnist/t10k-images-idx3-ubyte.gz"))[:1000]
    test_y = _load_idx(require("mnist/t10k-labels-idx1-ubyte.gz"))[:1000]
    np.savez(folder / "train.npz", X=train_x, y=train_y)
    np.savez(folder / "test.npz", X=test_x, y=test_y)
    return folder


WINE = "winequality/winequality-red.csv"


# ---------------------------------------------------------------- end to end
def test_wine_regression_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wine = require(WINE)
    code, out, err = run(capsys, "train", wine, "--target", "quality", "--task", "regression",
                         "--hidden", "32,16", "--epochs", "15", "--seed", "1", "-o", "wine.fmlp")
    assert code == 0, err
    assert "target 'quality': regression" in out and "11 features" in out
    assert out.count("epoch ") == 15 and "val_rmse" in out and "saved wine.fmlp" in out
    assert os.path.exists("wine.fmlp")

    code, out, err = run(capsys, "info", "wine.fmlp")
    assert code == 0, err
    assert "format version 1" in out and "Dense(32" in out and "task: regression" in out
    assert "target: quality" in out and "alcohol" in out and "validation metrics" in out

    code, out, err = run(capsys, "evaluate", "wine.fmlp", wine)
    assert code == 0, err
    r2 = float(out.split("r2 ")[1].split()[0])
    assert out.startswith(f"{wine}: 1599 rows") and r2 > 0.25  # sklearn's MLP: 0.34 held out

    code, out, err = run(capsys, "predict", "wine.fmlp", wine, "-o", "pred.csv")
    assert code == 0, err
    with open("pred.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction"] and len(rows) == 1600
    values = np.array([float(r[0]) for r in rows[1:]])
    assert 4.0 < values.mean() < 7.0

    # the saved model takes raw features: the scaling was folded into its weights
    model, meta = fm.load("wine.fmlp", return_metadata=True)
    a = np.loadtxt(wine, delimiter=";", skiprows=1)
    np.testing.assert_allclose(model.predict(a[:, :11])[:, 0], values, rtol=1e-5)
    assert meta["features"][-1] == "alcohol" and meta["task"] == "regression"


def test_mnist_classification_end_to_end(tmp_path, capsys, mnist):
    model_path = tmp_path / "mnist.fmlp"
    code, out, err = run(capsys, "train", mnist / "train.npz", "--hidden", "64", "--epochs", "4",
                         "--scale", "minmax", "-o", model_path)
    assert code == 0, err
    assert "classification" in out and "10 classes" in out and "val_accuracy" in out
    code, out, err = run(capsys, "evaluate", model_path, mnist / "test.npz")
    assert code == 0, err
    accuracy = float(out.split("accuracy ")[1].split("%")[0]) / 100
    assert accuracy > 0.82  # 2000 training digits, 4 epochs

    code, out, err = run(capsys, "predict", model_path, mnist / "test.npz", "--proba")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "prediction," + ",".join(f"p_{d}" for d in range(10))
    assert len(lines) == 1001
    first = lines[1].split(",")
    assert abs(sum(float(p) for p in first[1:]) - 1) < 1e-4
    assert first[0] == str(int(np.argmax([float(p) for p in first[1:]])))


def test_string_labels_and_auto_task(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "red", "blue")
    data = tmp_path / "d.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "colour"])
        for row, label in zip(X, labels):
            w.writerow([f"{v:.6f}" for v in row] + [label])
    code, out, err = run(capsys, "train", data, "--target", "colour", "--epochs", "30",
                         "-o", tmp_path / "c.fmlp", "--quiet")
    assert code == 0 and out == "", err
    model, meta = fm.load(tmp_path / "c.fmlp", return_metadata=True)
    assert meta["task"] == "classification" and meta["classes"] == ["blue", "red"]
    code, out, err = run(capsys, "evaluate", tmp_path / "c.fmlp", data)
    assert code == 0 and float(out.split("accuracy ")[1].split("%")[0]) > 90
    code, out, err = run(capsys, "predict", tmp_path / "c.fmlp", data)  # target column ignored
    assert code == 0 and set(out.split()[1:]) <= {"red", "blue"}

    code, out, err = run(capsys, "train", data, "--target", "-1", "--epochs", "1",
                         "-o", tmp_path / "c2.fmlp")
    assert code == 0 and "'colour': classification (the target is text)" in out


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_sklearn_estimator_files_work_with_the_cli(tmp_path, capsys):
    sk = pytest.importorskip("fastmlp.sklearn")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = sk.MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0,
                           learning_rate_init=0.05).fit(X, y)
    fm.save(clf, tmp_path / "clf.fmlp")
    np.savez(tmp_path / "d.npz", X=X, y=y)
    code, out, err = run(capsys, "info", tmp_path / "clf.fmlp")
    assert code == 0 and "fastmlp.sklearn.MLPClassifier" in out and "hidden_layer_sizes" in out
    code, out, err = run(capsys, "predict", tmp_path / "clf.fmlp", tmp_path / "d.npz", "--proba")
    assert code == 0 and out.splitlines()[0] == "prediction,p_0,p_1"
    code, out, err = run(capsys, "evaluate", tmp_path / "clf.fmlp", tmp_path / "d.npz")
    assert code == 0 and "accuracy" in out


def test_demo_still_runs(capsys):
    code, out, err = run(capsys, "demo", "--epochs", "1", "--hidden", "16")
    assert code == 0 and "final test accuracy" in out


# ---------------------------------------------------------------- help and usage errors
def test_help_explains_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for word in ("train", "predict", "evaluate", "info", "demo", "Exit status", "CSV", ".npz"):
        assert word in out
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--target" in out and "--hidden" in out and "examples:" in out
    code, out, _ = run(capsys)
    assert code == 2 and "COMMAND" in out


@pytest.mark.parametrize("argv,message", [
    (["train", "x.csv", "--hidden", "64,abc"], "comma-separated"),
    (["train", "x.csv", "--hidden", "-3"], "positive"),
    (["train", "x.csv", "--epochs", "0"], "positive integer"),
    (["train", "x.csv", "--validation-split", "1.5"], "[0, 1)"),
    (["train", "x.csv", "--activation", "swoosh"], "Unknown activation"),
    (["train", "x.csv", "--optimizer", "lbfgs"], "invalid choice"),
    (["train", "x.csv", "--batch-size", "-1"], "--batch-size"),
    (["predict", "model.fmlp"], "required"),
    (["frobnicate"], "invalid choice"),
    (["demo", "--epochs", "0"], "positive integer"),
])
def test_bad_arguments_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err


# ---------------------------------------------------------------- bad files: exit 1, one line
def _err_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_data_files(tmp_path, capsys):
    wine = require(WINE)
    cases = []
    (tmp_path / "empty.csv").write_text("")
    cases.append(([tmp_path / "empty.csv"], "no rows"))
    (tmp_path / "ragged.csv").write_text("a,b,y\n1,2,3\n4,5\n")
    cases.append(([tmp_path / "ragged.csv", "--target", "y"], "line 3 has 2 fields"))
    (tmp_path / "text.csv").write_text("a,b,y\n1,red,0\n2,blue,1\n")
    cases.append(([tmp_path / "text.csv", "--target", "y"], "column 'b' is not numeric"))
    (tmp_path / "nan.csv").write_text("a,b,y\n1,2,0\n,3,1\n")
    cases.append(([tmp_path / "nan.csv", "--target", "y"], "missing values"))
    (tmp_path / "one.csv").write_text("a,y\n1,x\n2,x\n3,x\n")
    cases.append(([tmp_path / "one.csv", "--target", "y"], "single class"))
    (tmp_path / "data.json").write_text("{}")
    cases.append(([tmp_path / "data.json"], "unsupported file type"))
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    cases.append(([tmp_path / "bad.npz"], "not a readable .npz"))
    np.savez(tmp_path / "nox.npz", features2=np.ones((3, 2)))
    cases.append(([tmp_path / "nox.npz"], "name it 'X'"))
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)))
    cases.append(([tmp_path / "noy.npz"], "no target array"))
    cases.append(([tmp_path / "missing.csv"], "no such file"))
    cases.append(([wine, "--target", "qualty"], "no column 'qualty'"))
    cases.append(([wine], "no target column"))
    for argv, message in cases:
        code, out, err = run(capsys, "train", *argv, "-o", tmp_path / "m.fmlp")
        assert code == 1, (argv, err)
        line = _err_line(err)
        assert line.startswith("fastmlp train: error:") and message in line, line
    assert not os.path.exists(tmp_path / "m.fmlp")


def test_bad_model_files_and_mismatched_data(tmp_path, capsys):
    wine = require(WINE)
    (tmp_path / "junk.fmlp").write_bytes(b"not a model at all")
    for command in ("info", "predict", "evaluate"):
        extra = [] if command == "info" else [wine]
        code, _, err = run(capsys, command, tmp_path / "junk.fmlp", *extra)
        assert code == 1 and "not a fastmlp model file" in _err_line(err)
    code, _, err = run(capsys, "info", tmp_path / "nope.fmlp")
    assert code == 1 and "no such file" in _err_line(err)

    model = fm.Sequential([fm.Dense(2)], input_dim=3, seed=0)
    model.compile("softmax_cross_entropy")
    model.save(tmp_path / "three.fmlp")
    np.savez(tmp_path / "five.npz", X=np.ones((4, 5)), y=np.zeros(4, int))
    code, _, err = run(capsys, "predict", tmp_path / "three.fmlp", tmp_path / "five.npz")
    assert code == 1 and "has 5 feature columns but the model expects 3" in _err_line(err)

    code, _, err = run(capsys, "train", wine, "--target", "quality", "--task", "regression",
                       "--epochs", "1", "-o", tmp_path / "wine.fmlp")
    assert code == 0
    (tmp_path / "fewer.csv").write_text("alcohol;pH\n9.4;3.5\n")
    code, _, err = run(capsys, "predict", tmp_path / "wine.fmlp", tmp_path / "fewer.csv")
    assert code == 1 and "lacks" in _err_line(err) and "fixed acidity" in err
    code, _, err = run(capsys, "predict", tmp_path / "wine.fmlp", wine, "--proba")
    assert code == 1 and "--proba needs a classification model" in _err_line(err)


def test_diverging_training_is_a_clear_error(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", X=rng.normal(size=(50, 2)) * 1e3, y=rng.normal(size=50) * 1e6)
    code, _, err = run(capsys, "train", tmp_path / "big.npz", "--task", "regression",
                       "--scale", "none", "--optimizer", "sgd", "--lr", "10", "--epochs", "5",
                       "-o", tmp_path / "m.fmlp", "-q")
    assert code == 1 and "smaller learning rate" in _err_line(err)


def test_installed_entry_point_runs():
    """``python -m fastmlp`` reaches the same main (the console script calls it too)."""
    proc = subprocess.run([sys.executable, "-m", "fastmlp", "info", "/nonexistent.fmlp"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "no such file" in proc.stderr and "Traceback" not in proc.stderr
