"""Numeric windowed forecasting on the same layer builders as the text models.

`make_windows` turns a series into (window -> next values) samples (the Keras tutorial's
`split_x`, for several features and horizons); `MinMaxScaler`/`StandardScaler` are fitted on the
training split only; `build_forecaster` stacks `recurrent_stack` and `dense_head` from
`charrnn.models.layers`; `check_monitor` catches an EarlyStopping that watches a metric nobody logs.
"""

from __future__ import annotations

import codecs
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.errors import CharRNNError, RunError, TrainingError


def make_windows(series, window: int, horizon: int = 1, target: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Slices a series into inputs of `window` steps and the `horizon` values that follow.

    Args:
        series: shape (time,) or (time, features).
        window: steps per input, >= 1.
        horizon: future steps to predict, >= 1. Defaults to 1.
        target: the feature column predicted. Defaults to 0.

    Returns:
        x of shape (samples, window, features) and y of shape (samples, horizon), float32.

    Example:

    >>> x, y = make_windows(np.arange(1, 11), window=4)
    >>> x.shape, y[:, 0].tolist()
    ((6, 4, 1), [5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    """
    values = np.asarray(series, dtype=np.float32)
    values = values[:, None] if values.ndim == 1 else values
    if values.ndim != 2:
        raise ValueError(f"Expected a series of shape (time,) or (time, features). Received: shape={values.shape}")
    if window < 1 or horizon < 1:
        raise ValueError(f"Expected window >= 1 and horizon >= 1. Received: window={window}, horizon={horizon}")
    samples = len(values) - window - horizon + 1
    if samples < 1:
        raise ValueError(f"A window of {window} plus a horizon of {horizon} needs at least "
                         f"{window + horizon} rows. Received: {len(values)} rows")
    starts = np.arange(samples)[:, None]
    x = values[starts + np.arange(window)]
    y = values[starts + window + np.arange(horizon), target]
    return x, y


def windows_dataset(series, window: int, horizon: int = 1, batch_size: int = 32, shuffle: bool = False,
                    seed: int | None = None, target: int = 0):
    """The same windows as `make_windows`, as a `tf.data.Dataset` built by
    `keras.utils.timeseries_dataset_from_array` (for series too long to window in memory)."""
    import keras

    values = np.asarray(series, dtype=np.float32)
    values = values[:, None] if values.ndim == 1 else values
    count = len(values) - window - horizon + 1
    targets = np.stack([values[window + step:window + step + count, target] for step in range(horizon)], axis=-1)
    return keras.utils.timeseries_dataset_from_array(values[:count + window - 1], targets[:count], window,
                                                     batch_size=batch_size, shuffle=shuffle, seed=seed)


class MinMaxScaler:
    """Scales each feature to [0, 1] with the min and max of the data it is fitted on."""

    kind = "minmax"

    def fit(self, values) -> "MinMaxScaler":
        values = np.asarray(values, dtype=np.float64)
        self.low, high = values.min(axis=0), values.max(axis=0)
        self.span = np.where(high > self.low, high - self.low, 1.0)
        return self

    def transform(self, values) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) - self.low) / self.span).astype(np.float32)

    def inverse_transform(self, values) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.span + self.low

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": np.atleast_1d(self.low).tolist(), "span": np.atleast_1d(self.span).tolist()}


class StandardScaler:
    """Scales each feature to zero mean and unit variance (statistics of the fitted data)."""

    kind = "standard"

    def fit(self, values) -> "StandardScaler":
        values = np.asarray(values, dtype=np.float64)
        self.mean = values.mean(axis=0)
        std = values.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, values) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, values) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"kind": self.kind, "mean": np.atleast_1d(self.mean).tolist(), "std": np.atleast_1d(self.std).tolist()}


def scaler_from_dict(values: dict):
    scaler = MinMaxScaler() if values["kind"] == "minmax" else StandardScaler()
    for key, value in values.items():
        if key != "kind":
            setattr(scaler, key, np.asarray(value))
    return scaler


def build_forecaster(window: int, features: int = 1, recurrent: Sequence[int] = (10,), dense: Sequence[int] = (5,),
                     outputs: int = 1, cell: str = "lstm", activation: str = "relu",
                     dense_activation: str | None | Sequence[str | None] = None,
                     return_sequences: Sequence[bool] | None = None, name: str = "forecaster"):
    """Builds a windowed forecaster from the shared builders in `charrnn.models.layers`.

    Args:
        window: input steps.
        features: values per step. Defaults to 1.
        recurrent: widths of the recurrent layers; () gives a Dense net on the flat window.
            Defaults to (10,).
        dense: widths of the hidden Dense layers after them. Defaults to (5,).
        outputs: values predicted (the horizon). Defaults to 1.
        cell: "lstm", "gru" or "rnn". Defaults to "lstm".
        activation: of the recurrent layers (the tutorial uses relu). Defaults to "relu".
        dense_activation: of the hidden Dense layers, one or one per layer; the tutorial's are
            linear (None). Defaults to None.
        return_sequences: per-layer flags, checked (see `recurrent_stack`); None wires them.

    Returns:
        An uncompiled `keras.Model` mapping (batch, window, features) -> (batch, outputs).
    """
    import keras

    from charrnn.models.layers import dense_head, recurrent_stack

    if recurrent:
        inputs = keras.Input((window, features), name="window")
        flags = list(return_sequences) if return_sequences is not None else False
        hidden = recurrent_stack(inputs, units=list(recurrent), cell=cell, activation=activation,
                                 return_sequences=flags, name=cell)
    else:
        inputs = keras.Input((window * features,), name="window")
        hidden = inputs
    outputs_tensor = dense_head(hidden, outputs, hidden=list(dense), activation=dense_activation, name="forecast")
    return keras.Model(inputs, outputs_tensor, name=name)


def logged_metric_names(model, validation: bool = False) -> list[str]:
    """The names `fit` will log for a compiled model: loss, each metric, and val_ twins."""
    config = model.get_compile_config() or {}
    names = ["loss"]
    for metric in config.get("metrics") or []:
        names.append(metric if isinstance(metric, str) else metric["config"]["name"])
    return names + [f"val_{name}" for name in names] if validation else names


def check_monitor(model, monitor: str, validation: bool = False) -> None:
    """Raises if a callback monitors a quantity `fit` never logs (it would silently do nothing).

    Raises:
        TrainingError: naming the monitored quantity and the ones that are logged.
    """
    names = logged_metric_names(model, validation)
    if monitor not in names:
        hint = " (val_ names need validation data)" if monitor.startswith("val_") and not validation else ""
        raise TrainingError(f"EarlyStopping monitors {monitor!r}, which training never logs{hint}; "
                            f"logged: {', '.join(names)}")


def early_stopping(model, monitor: str = "val_loss", patience: int = 10, validation: bool = True, **kwargs):
    """A `keras.callbacks.EarlyStopping`, after checking that `monitor` is really logged."""
    import keras

    check_monitor(model, monitor, validation)
    return keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, **kwargs)


def lstm_parameter_count(units: int, inputs: int) -> int:
    """Parameters of an LSTM layer: 4 gates x (input weights + recurrent weights + bias)."""
    return 4 * (units * inputs + units * units + units)


# ---------------------------------------------------------------- a user's CSV

def read_csv_column(path: str | Path, column: str) -> np.ndarray:
    """Reads one numeric column of a CSV file (with a header row) as float64.

    Raises:
        CharRNNError: missing file or column, a file that is not UTF-8 text, non-numeric, empty
            or non-finite (nan, inf) cells.
    """
    import csv
    import io

    path = Path(path)
    if not path.is_file():
        raise CharRNNError(f"no such file: {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CharRNNError(f"cannot read {path}: {error.strerror or error}") from None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise CharRNNError(f"{path} is not UTF-8 text (byte {bom + error.start}): {error.reason}") from None
    if "\0" in text:
        raise CharRNNError(f"{path} is not a CSV text file (NUL byte at offset {data.index(0)})")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise CharRNNError(f"{path} is empty")
        if column not in header:
            raise CharRNNError(f"{path} has no column {column!r}; columns: {', '.join(header)}")
        index = header.index(column)
        values = []
        for row in reader:
            line = reader.line_num
            cell = row[index].strip() if index < len(row) else ""
            try:
                value = float(cell)
            except ValueError:
                raise CharRNNError(f"{path} line {line}: column {column!r} holds {cell!r}, not a number") from None
            if not math.isfinite(value):
                raise CharRNNError(f"{path} line {line}: column {column!r} holds {cell!r}, not a finite number")
            values.append(value)
    except csv.Error as error:
        raise CharRNNError(f"{path} line {reader.line_num}: not valid CSV ({error})") from None
    return np.asarray(values)


def claim_forecast_dir(out: str | Path, force: bool = False) -> Path:
    """Makes `out` ready for a new forecast run, refusing to overwrite a run without `force`.

    Args:
        out: the run directory.
        force: replace a charrnn run (forecast or text) already in `out`. Defaults to False.

    Returns:
        `out` as a Path, created if needed.

    Raises:
        RunError: `out` is a file, holds a run and `force` is off, or holds files of something
            other than a charrnn run (never overwritten).
    """
    from charrnn import runs

    return runs.claim_run_dir(out, force, resumable=False)


def train_csv(path, column: str, out: str | Path, window: int = 24, horizon: int = 1,
              val_fraction: float = 0.2, epochs: int = 200, patience: int = 20, units: int = 32,
              seed: int = 0, verbose: int = 0, force: bool = False) -> dict:
    """Trains a forecaster on one CSV column and saves a run directory.

    The series is split in time (the last `val_fraction` validates), scaled with statistics of the
    training part only, trained with EarlyStopping on val_loss (best weights restored), and
    compared with the naive forecast (repeat the last value). `out` is checked before training
    (see `claim_forecast_dir`); `force` replaces a run already there. Defaults to False.

    Returns:
        {"val_mae", "naive_mae", "epochs", ...} in the series' own units.

    Raises:
        CharRNNError: an unreadable CSV or column, too few rows.
        RunError: `out` holds a run and `force` is off, or holds something else.
    """
    import keras

    from charrnn.atomic import atomic_save_model, atomic_write_text

    series = read_csv_column(path, column)
    cut = int(round(len(series) * (1 - val_fraction)))
    if cut < window + horizon or len(series) - cut < 1:
        raise CharRNNError(f"{path} has {len(series)} rows; a window of {window} and a horizon of {horizon} "
                           f"need at least {window + horizon} training rows plus validation rows")
    out = claim_forecast_dir(out, force)
    scaler = StandardScaler().fit(series[:cut])
    scaled = scaler.transform(series)
    x_train, y_train = make_windows(scaled[:cut], window, horizon)
    x_val, y_val = make_windows(scaled[cut - window:], window, horizon)  # targets are all after the cut
    keras.utils.set_random_seed(seed)
    model = build_forecaster(window, 1, recurrent=(units,), dense=(units // 2,), outputs=horizon,
                             activation="tanh", dense_activation="relu")
    model.compile(keras.optimizers.Adam(1e-3), "mse", metrics=["mae"])
    stopper = early_stopping(model, "val_loss", patience=patience, restore_best_weights=True)
    history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=32,
                        callbacks=[stopper], verbose=verbose)
    predicted = scaler.inverse_transform(model.predict(x_val, verbose=0))
    actual = scaler.inverse_transform(y_val)
    last = scaler.inverse_transform(x_val[:, -1, :1])  # the naive forecast: the last value seen
    report = {"rows": int(len(series)), "window": window, "horizon": horizon, "epochs": len(history.history["loss"]),
              "val_mae": float(np.mean(np.abs(predicted - actual))), "naive_mae": float(np.mean(np.abs(last - actual)))}
    atomic_save_model(model, out / "model.keras")
    config = {"kind": "forecast", "format": 1, "column": column, "window": window, "horizon": horizon,
              "scaler": scaler.to_dict(), "report": report}
    atomic_write_text(out / "config.json", json.dumps(config, indent=2) + "\n")
    return report


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _finite_numbers(value) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                for v in values)


SCALER_KEYS = {"minmax": ("low", "span"), "standard": ("mean", "std")}


def read_forecast_config(run_dir: str | Path) -> dict:
    """Reads and checks RUN/config.json of a forecast run.

    Raises:
        RunError: no such directory, no config, or a config that is not a forecast run's
            (unreadable, another kind, missing or malformed keys).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunError(f"no such run directory: {run_dir}")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a run directory")
    path = run_dir / "config.json"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a charrnn forecast run (no config.json)")
    try:
        config = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise RunError(f"{run_dir} is not a charrnn forecast run ({path} is unreadable)") from None
    if not isinstance(config, dict) or config.get("kind") != "forecast":
        raise RunError(f"{run_dir} is not a charrnn forecast run")
    bad = f"{path} is not a charrnn forecast run config"
    for key in ("column", "window", "horizon", "scaler"):
        if key not in config:
            raise RunError(f"{bad}: missing {key!r}")
    if not isinstance(config["column"], str):
        raise RunError(f"{bad}: 'column' is not a string")
    for key in ("window", "horizon"):
        if not _positive_int(config[key]):
            raise RunError(f"{bad}: {key!r} is not a positive integer")
    scaler = config["scaler"]
    if not isinstance(scaler, dict) or scaler.get("kind") not in SCALER_KEYS:
        raise RunError(f"{bad}: 'scaler' has no kind 'minmax' or 'standard'")
    offset, scale = SCALER_KEYS[scaler["kind"]]
    for key in (offset, scale):
        if not _finite_numbers(scaler.get(key)):
            raise RunError(f"{bad}: 'scaler' has no finite {key!r}")
    if 0 in np.atleast_1d(scaler[scale]):
        raise RunError(f"{bad}: 'scaler' has a {scale!r} of 0")
    return config


def load_forecaster(run_dir: str | Path, window: int, horizon: int):
    """Loads RUN/model.keras (safe_mode on) and checks it maps a window to `horizon` values.

    Raises:
        RunError: a missing, corrupt or mismatched model file.
    """
    from charrnn.runs import load_keras_file

    path = Path(run_dir) / "model.keras"
    if not path.is_file():
        raise RunError(f"{run_dir} is partial: model.keras is missing")
    model = load_keras_file(path)
    shapes = (tuple(getattr(model, "input_shape", ()) or ())[1:], tuple(getattr(model, "output_shape", ()) or ())[1:])
    if shapes != ((window, 1), (horizon,)):
        raise RunError(f"{path} does not match its config.json (a window of {window} and a horizon of "
                       f"{horizon}); the model maps {shapes[0]} to {shapes[1]}")
    return model


def predict_csv(run_dir: str | Path, path: str | Path) -> np.ndarray:
    """Predicts the `horizon` values after the end of a CSV series with a saved forecaster.

    Raises:
        RunError: `run_dir` is missing or not an intact forecast run.
        CharRNNError: an unreadable CSV or column, too few rows.
    """
    run_dir = Path(run_dir)
    config = read_forecast_config(run_dir)
    series = read_csv_column(path, config["column"])
    if len(series) < config["window"]:
        raise CharRNNError(f"{path} has {len(series)} rows; the model needs the last {config['window']}")
    scaler = scaler_from_dict(config["scaler"])
    model = load_forecaster(run_dir, config["window"], config["horizon"])
    window = scaler.transform(series[-config["window"]:])[None, :, None]
    return scaler.inverse_transform(model.predict(window, verbose=0))[0]
