import numpy as np
import pytest

from charrnn.errors import CharRNNError, TrainingError
from charrnn.forecast.forecast import (MinMaxScaler, StandardScaler, build_forecaster, check_monitor, make_windows,
                              predict_csv, read_csv_column, train_csv, windows_dataset)


def test_split_x_windows():
    x, y = make_windows(np.arange(1, 11), window=4)
    assert x.shape == (6, 4, 1) and y.shape == (6, 1)
    assert x[0, :, 0].tolist() == [1, 2, 3, 4] and y[:, 0].tolist() == [5, 6, 7, 8, 9, 10]


def test_windows_with_features_and_horizon():
    series = np.stack([np.arange(10), np.arange(10) * 10], axis=1)
    x, y = make_windows(series, window=3, horizon=2, target=1)
    assert x.shape == (6, 3, 2) and y.shape == (6, 2)
    assert y[0].tolist() == [30, 40]
    with pytest.raises(ValueError, match="needs at least 5 rows"):
        make_windows(np.arange(4), window=3, horizon=2)


def test_dataset_matches_make_windows():
    series = np.arange(30, dtype=np.float32)
    x, y = make_windows(series, window=5, horizon=2)
    batches = list(windows_dataset(series, window=5, horizon=2, batch_size=100))
    np.testing.assert_array_equal(batches[0][0].numpy(), x)
    np.testing.assert_array_equal(batches[0][1].numpy(), y)


@pytest.mark.parametrize("scaler_class", [MinMaxScaler, StandardScaler])
def test_scalers_use_training_statistics_only(scaler_class):
    train, test = np.array([1.0, 2.0, 3.0]), np.array([10.0])
    scaler = scaler_class().fit(train)
    assert scaler.transform(test)[0] > 1.5  # the test value stays outside the training range
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(test)), test, rtol=1e-6)


def test_tutorial_parameter_count():
    model = build_forecaster(window=3, recurrent=(10,), dense=(5,))
    assert model.count_params() == 541
    assert [layer.count_params() for layer in model.layers[1:]] == [480, 55, 6]


def test_monitor_check_lists_logged_names():
    model = build_forecaster(window=3)
    model.compile("adam", "mse", metrics=["mae"])
    check_monitor(model, "val_mae", validation=True)
    with pytest.raises(TrainingError, match="'val_acc'.*logged: loss, mae, val_loss, val_mae"):
        check_monitor(model, "val_acc", validation=True)
    with pytest.raises(TrainingError, match="need validation data"):
        check_monitor(model, "val_loss", validation=False)


def test_csv_errors(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("t,value\n1,2.5\n2,oops\n")
    with pytest.raises(CharRNNError, match="no column 'price'; columns: t, value"):
        read_csv_column(path, "price")
    with pytest.raises(CharRNNError, match="line 3: column 'value' holds 'oops'"):
        read_csv_column(path, "value")
    path.write_text("t,value\n1,2\n2,3\n")
    with pytest.raises(CharRNNError, match="has 2 rows"):
        train_csv(path, "value", tmp_path / "run", window=24)


@pytest.mark.slow
@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_forecaster_beats_naive_on_noisy_sine(tmp_path):
    rng = np.random.default_rng(0)
    steps = np.arange(600)
    series = 10 * np.sin(steps * 2 * np.pi / 25) + 0.02 * steps + rng.normal(0, 0.5, len(steps))
    path = tmp_path / "series.csv"
    path.write_text("step,value\n" + "".join(f"{s},{v:.5f}\n" for s, v in zip(steps, series)))
    report = train_csv(path, "value", tmp_path / "run", window=30, epochs=150, patience=15)
    assert report["val_mae"] < 0.7 * report["naive_mae"], report
    prediction = predict_csv(tmp_path / "run", path)
    expected_next = 10 * np.sin(600 * 2 * np.pi / 25) + 0.02 * 600
    assert prediction.shape == (1,) and abs(prediction[0] - expected_next) < 3


# ---------------------------------------------------------------- bad input through the CLI

def invoke(*args):
    from click.testing import CliRunner

    from charrnn.cli.main import main

    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_one_error_line(result, message):
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exc_info  # no exception escaped the command
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0], result.output
    assert "This is a bug" not in result.output and "unexpected" not in result.output


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """A tiny forecast run trained through the CLI (one epoch), and the CSV it was trained on."""
    folder = tmp_path_factory.mktemp("forecast")
    data = folder / "series.csv"
    data.write_text("x\n" + "".join(f"{value % 7}\n" for value in range(60)))
    result = invoke("forecast", "train", data, "--column", "x", "--out", folder / "run", "--window", 4,
                    "--epochs", 1)
    assert result.exit_code == 0, result.output
    return folder / "run", data


def copy_run(run, target):
    target.mkdir()
    for name in ("config.json", "model.keras"):
        (target / name).write_bytes((run / name).read_bytes())
    return target


@pytest.mark.parametrize("content,message", [
    (b"x\n1\n2\n\xff\xfe3\n", "is not UTF-8 text (byte 6)"),
    (b"\xef\xbb\xbfx\n1\n\x80\n", "is not UTF-8 text (byte 7)"),  # the offset counts the BOM
    (b"\x7fELF\x00\x01\x02", "is not a CSV text file (NUL byte at offset 4)"),
], ids=["latin", "after-bom", "binary"])
def test_train_refuses_a_file_that_is_not_utf8_text(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    assert_one_error_line(invoke("forecast", "train", path, "--column", "x", "--out", tmp_path / "run"),
                          f"{path} {message}")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", "NaN", "Infinity", "1e400"])
def test_train_refuses_non_finite_cells(tmp_path, cell):
    path = tmp_path / "data.csv"
    path.write_text("t,x\n" + "".join(f"{step},{step % 5}\n" for step in range(40)) + f"40,{cell}\n")
    with pytest.raises(CharRNNError, match=f"line 42: column 'x' holds '{cell}', not a finite number"):
        read_csv_column(path, "x")
    assert_one_error_line(invoke("forecast", "train", path, "--column", "x", "--out", tmp_path / "run", "--window", 4,
                                 "--epochs", 1), f"{path} line 42: column 'x' holds '{cell}', not a finite number")
    assert not (tmp_path / "run").exists()


def test_predict_works_on_the_tiny_run(forecast_run):
    run, data = forecast_run
    result = invoke("forecast", "predict", run, data)
    assert result.exit_code == 0, result.output
    assert np.isfinite(float(result.output.strip()))


@pytest.mark.parametrize("damage,message", [
    (lambda config: config.pop("column"), "is not a charrnn forecast run config: missing 'column'"),
    (lambda config: config.pop("window"), "is not a charrnn forecast run config: missing 'window'"),
    (lambda config: config.pop("scaler"), "is not a charrnn forecast run config: missing 'scaler'"),
    (lambda config: config.update(window="24"), "'window' is not a positive integer"),
    (lambda config: config.update(horizon=0), "'horizon' is not a positive integer"),
    (lambda config: config["scaler"].pop("std"), "'scaler' has no finite 'std'"),
    (lambda config: config["scaler"].update(kind="robust"), "'scaler' has no kind 'minmax' or 'standard'"),
    (lambda config: config["scaler"].update(std=[0.0]), "'scaler' has a 'std' of 0"),
    (lambda config: config.update(window=5), "does not match its config.json (a window of 5"),
], ids=["no-column", "no-window", "no-scaler", "window-str", "horizon-0", "no-std", "bad-kind", "std-0",
        "wrong-window"])
def test_predict_refuses_a_damaged_config(tmp_path, forecast_run, damage, message):
    import json

    run, data = forecast_run
    damaged = copy_run(run, tmp_path / "damaged")
    config = json.loads((damaged / "config.json").read_text())
    damage(config)
    (damaged / "config.json").write_text(json.dumps(config))
    assert_one_error_line(invoke("forecast", "predict", damaged, data), message)


def test_predict_refuses_a_corrupt_model(tmp_path, forecast_run):
    run, data = forecast_run
    damaged = copy_run(run, tmp_path / "damaged")
    (damaged / "model.keras").write_bytes(b"garbage")
    assert_one_error_line(invoke("forecast", "predict", damaged, data),
                          f"{damaged / 'model.keras'} is corrupt or not a Keras model")
    (damaged / "model.keras").write_bytes((run / "model.keras").read_bytes()[:500])  # truncated
    assert_one_error_line(invoke("forecast", "predict", damaged, data), "is corrupt or not a Keras model")
    (damaged / "model.keras").unlink()
    assert_one_error_line(invoke("forecast", "predict", damaged, data), "is partial: model.keras is missing")


def test_predict_on_a_missing_or_wrong_directory(tmp_path, forecast_run):
    _, data = forecast_run
    assert_one_error_line(invoke("forecast", "predict", tmp_path / "nope", data),
                          f"no such run directory: {tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    assert_one_error_line(invoke("forecast", "predict", tmp_path / "empty", data),
                          "is not a charrnn forecast run (no config.json)")
    (tmp_path / "a_file").write_text("x")
    assert_one_error_line(invoke("forecast", "predict", tmp_path / "a_file", data), "is a file, not a run directory")
