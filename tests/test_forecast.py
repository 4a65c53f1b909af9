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
