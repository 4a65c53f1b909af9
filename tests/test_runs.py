import json
import zipfile

import keras
import numpy as np
import pytest

from charrnn import atomic, runs
from charrnn.errors import CharRNNError, RunError


def test_load_validates(tmp_path, tiny_run):
    with pytest.raises(RunError, match="no such run directory"):
        runs.load(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="is a file"):
        runs.load(tmp_path / "file")
    with pytest.raises(RunError, match="not a charrnn run"):
        runs.load(tmp_path)
    run = runs.load(tiny_run)
    assert run.vocab.size == run.model_config.vocab_size
    assert run.best_metrics()["best_val_loss"] is not None


def copy_run(source, target):
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_partial_corrupt_and_future_runs(tmp_path, tiny_run):
    partial = copy_run(tiny_run, tmp_path / "partial")
    (partial / runs.MODEL).unlink()
    with pytest.raises(RunError, match="partial: model.keras is missing"):
        runs.load(partial)
    corrupt = copy_run(tiny_run, tmp_path / "corrupt")
    (corrupt / runs.CONFIG).write_text("{not json")
    with pytest.raises(RunError, match="unreadable or corrupt"):
        runs.load(corrupt)
    future = copy_run(tiny_run, tmp_path / "future")
    config = json.loads((future / runs.CONFIG).read_text())
    (future / runs.CONFIG).write_text(json.dumps({**config, "format": 99}))
    with pytest.raises(RunError, match="run format 99.*reads format 1"):
        runs.load(future)
    garbage = copy_run(tiny_run, tmp_path / "garbage")
    (garbage / runs.MODEL).write_bytes(b"not a zip")
    with pytest.raises(RunError, match="corrupt or not a Keras model"):
        runs.load(garbage).model()
    (garbage / runs.CHECKPOINT).write_bytes(b"truncated")
    with pytest.raises(RunError, match="checkpoint.npz is corrupt"):
        runs.load_checkpoint(garbage)


def test_unsafe_model_is_refused(tmp_path, tiny_run):
    unsafe = copy_run(tiny_run, tmp_path / "unsafe")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(unsafe / runs.MODEL)
    with pytest.raises(RunError, match="unsafe deserialization"):
        runs.load(unsafe).model()


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    runs.atomic_write_text(target, "old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full_disk)
    with pytest.raises(CharRNNError, match="No space left on device; the previous version"):
        runs.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["state.json"]  # no temporary left


def test_checkpoint_round_trip(tmp_path):
    weights = [np.arange(6.0).reshape(2, 3), np.ones(4, np.float32)]
    runs.save_checkpoint(tmp_path, weights, [np.array(5)], {"step": 7})
    loaded, optimizer, state = runs.load_checkpoint(tmp_path)
    assert state["step"] == 7 and optimizer[0] == 5
    np.testing.assert_array_equal(loaded[0], weights[0])
    assert zipfile.is_zipfile(tmp_path / runs.CHECKPOINT)


def test_metrics_skip_broken_lines(tmp_path):
    (tmp_path / runs.METRICS).write_text('{"step": 1}\n{"step": 2, "val\n')
    assert runs.read_metrics(tmp_path / runs.METRICS) == [{"step": 1}]


def test_atomic_copy_and_open_replace_whole_files(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 10)
    atomic.atomic_copy(source, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(tmp_path / "copy.bin") as handle:
            handle.write(b"half")
            raise RuntimeError("interrupted")
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()  # the old file, whole
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy.bin", "source.bin"]
