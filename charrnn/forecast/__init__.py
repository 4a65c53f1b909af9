"""Numeric windowed forecasting, built from the same layer builders as the text models
(`charrnn.models.layers`): windows, scalers, forecasters, an EarlyStopping that checks what it
monitors, CSV training and prediction. The tutorial demos are in `charrnn.forecast.demos`."""

from charrnn.forecast.forecast import (MinMaxScaler, StandardScaler, build_forecaster, check_monitor,
                                       claim_forecast_dir, early_stopping, logged_metric_names,
                                       lstm_parameter_count, make_windows, predict_csv, read_csv_column,
                                       scaler_from_dict, train_csv, windows_dataset)

__all__ = ["MinMaxScaler", "StandardScaler", "build_forecaster", "check_monitor", "claim_forecast_dir",
           "early_stopping", "logged_metric_names", "lstm_parameter_count", "make_windows", "predict_csv",
           "read_csv_column", "scaler_from_dict", "train_csv", "windows_dataset"]
