import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import charrnn
from click.testing import CliRunner

from charrnn import runs
from charrnn.cli.main import main
from charrnn.errors import RunError, TrainingError

from .conftest import TINY_OPTIONS

QUIET = dict(progress=False, log=lambda line: None)


def test_train_writes_a_complete_run(tmp_path, tiny_corpus):
    result = charrnn.train(tiny_corpus, tmp_path / "run", max_steps=10, **QUIET, **TINY_OPTIONS)
    assert result.steps == 10 and result.stopped_by == "max_steps"
    names = {path.name for path in (tmp_path / "run").iterdir()}
    assert {"config.json", "vocab.json", "model.keras", "checkpoint.npz", "metrics.jsonl"} <= names
    row = charrnn.load(tmp_path / "run").metrics()[-1]
    assert {"step", "epoch", "train_loss", "val_loss", "val_bpc", "chars_per_s", "elapsed_s"} <= set(row)
    assert row["val_bpc"] == pytest.approx(row["val_loss"] / np.log(2))
    # trained with the fused CPU stack (TINY_OPTIONS: one LSTM layer, on a CPU), saved as plain Keras layers
    saved = charrnn.load(tmp_path / "run").keras_model()
    assert [layer.name for layer in saved.layers if type(layer).__name__ == "LSTM"] == ["rnn_1"]
    assert "rnn" not in [layer.name for layer in saved.layers]


def test_refuses_to_overwrite_without_force(tmp_path, tiny_corpus):
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=2, **QUIET, **TINY_OPTIONS)
    with pytest.raises(RunError, match="already holds a run; pass --resume.*--force"):
        charrnn.train(tiny_corpus, tmp_path / "run", max_steps=2, **QUIET, **TINY_OPTIONS)
    assert charrnn.train(tiny_corpus, tmp_path / "run", max_steps=2, force=True, **QUIET, **TINY_OPTIONS).steps == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty and is not a charrnn run"):
        charrnn.train(tiny_corpus, tmp_path / "other", max_steps=2, force=True, **QUIET, **TINY_OPTIONS)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_resume_continues_the_count(tmp_path, tiny_corpus):
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=10, **QUIET, **TINY_OPTIONS)
    result = charrnn.train(tiny_corpus, tmp_path / "run", resume=True, max_steps=20, **QUIET, **TINY_OPTIONS)
    assert result.steps == 20
    assert [row["step"] for row in charrnn.load(tmp_path / "run").metrics()] == [10, 20]


def interrupt_after(monkeypatch, steps: int) -> None:
    """Makes training see a Ctrl-C right after its `steps`-th step in this process."""
    from charrnn.training.callbacks import StepCounter

    done = {"steps": 0}
    original = StepCounter.on_train_batch_end

    def counting(self, batch, logs=None):
        done["steps"] += 1
        if done["steps"] == steps:
            self.watcher.signal_name = "SIGINT"
        original(self, batch, logs)

    monkeypatch.setattr(StepCounter, "on_train_batch_end", counting)


def checkpoint_arrays(run_dir):
    weights, optimizer_values, state = runs.load_checkpoint(run_dir)
    return weights + optimizer_values + runs.load_generator_states(run_dir), state


# the dropout variants are long: in make test-sweep, which CI runs
@pytest.mark.parametrize("cell,dropout", [("lstm", 0.0), pytest.param("lstm", 0.3, marks=pytest.mark.sweep),
                                          pytest.param("gru", 0.3, marks=pytest.mark.sweep)])
def test_deterministic_resume_ends_bit_for_bit_where_an_uninterrupted_run_does(tmp_path, tiny_corpus, monkeypatch,
                                                                                cell, dropout):
    # the default (annealed) schedule; with dropout, the checkpoint carries the generators' states
    options = dict(TINY_OPTIONS, deterministic=True, seed=4, eval_every=5, dropout=dropout, cell=cell, max_steps=16)
    charrnn.train(tiny_corpus, tmp_path / "whole", **QUIET, **options)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 7)
        stopped = charrnn.train(tiny_corpus, tmp_path / "split", **QUIET, **options)
    assert stopped.stopped_by == "interrupted" and stopped.steps == 7
    charrnn.train(tiny_corpus, tmp_path / "split", resume=True, **QUIET, **options)
    (whole, whole_state), (split, split_state) = checkpoint_arrays(tmp_path / "whole"), checkpoint_arrays(tmp_path / "split")
    assert whole_state["step"] == split_state["step"] == 16
    assert len(whole) == len(split)
    for left, right in zip(whole, split):
        assert np.array_equal(left, right)


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_constant_rate_resume_with_a_later_step_limit_is_bit_exact(tmp_path, tiny_corpus):
    # a constant rate does not depend on --max-steps, so a resume may move the limit
    options = dict(TINY_OPTIONS, deterministic=True, seed=4, eval_every=5, lr_schedule="constant")
    charrnn.train(tiny_corpus, tmp_path / "whole", max_steps=16, **QUIET, **options)
    charrnn.train(tiny_corpus, tmp_path / "split", max_steps=7, **QUIET, **options)
    charrnn.train(tiny_corpus, tmp_path / "split", resume=True, max_steps=16, **QUIET, **options)
    (whole, _), (split, _) = checkpoint_arrays(tmp_path / "whole"), checkpoint_arrays(tmp_path / "split")
    assert all(np.array_equal(left, right) for left, right in zip(whole, split))


def test_resume_refuses_options_it_cannot_honour(tmp_path, tiny_corpus):
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=2, **QUIET, **TINY_OPTIONS)
    before = (tmp_path / "run" / runs.CHECKPOINT).read_bytes()
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "run"), "--resume",
                                       "--max-steps", "4", "--batch-size", "4", "--units", "16", "--quiet"])
    assert result.exit_code == 2
    assert "cannot honour --units 16 (the run has 32), --batch-size 4 (the run has 8)" in result.output
    assert (tmp_path / "run" / runs.CHECKPOINT).read_bytes() == before
    # the run's own values are fine, and options a resume can change are honoured
    result = charrnn.train(tiny_corpus, tmp_path / "run", resume=True, max_steps=4, tensorboard=True, **QUIET,
                           **TINY_OPTIONS)
    assert result.steps == 4 and (tmp_path / "run" / "tensorboard").is_dir()
    assert charrnn.load(tmp_path / "run").train_config.tensorboard is True


def test_replicas_needs_distribute_mirrored(tmp_path, tiny_corpus):
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "run"), "--replicas", "2"])
    assert result.exit_code == 2 and "--replicas splits the CPU for --distribute mirrored" in result.output
    assert not (tmp_path / "run").exists()


def test_checkpoint_every_sets_when_checkpoints_are_written(tmp_path, tiny_corpus, monkeypatch):
    saved = []
    real = runs.save_checkpoint
    monkeypatch.setattr(runs, "save_checkpoint", lambda path, weights, values, state, *rest: (
        saved.append(state["step"]), real(path, weights, values, state, *rest)))
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=12, checkpoint_every=10, **QUIET,
                  **dict(TINY_OPTIONS, eval_every=5))
    assert saved == [10, 12]  # not at the evaluations of steps 5: every 10 steps, and at the end
    assert [row["step"] for row in charrnn.load(tmp_path / "run").metrics()] == [5, 10, 12]


def test_a_run_without_limits_stops_by_epochs(tmp_path, tiny_corpus):
    result = charrnn.train(tiny_corpus, tmp_path / "run", **QUIET, **dict(TINY_OPTIONS, eval_every=1000))
    assert result.stopped_by == "epochs"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_corpus):
    options = dict(TINY_OPTIONS, eval_every=3)
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=3, **QUIET, **options)
    good = runs.load_checkpoint(tmp_path / "run")[0]
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at step \d+.*last good checkpoint \(step 3\)"):
        charrnn.train(tiny_corpus, tmp_path / "run", resume=True, max_steps=40, learning_rate=1e38,
                      **QUIET, **options)
    kept = runs.load_checkpoint(tmp_path / "run")[0]
    assert all(np.array_equal(left, right) for left, right in zip(good, kept))


def test_time_budget_and_patience(tmp_path, tiny_corpus):
    result = charrnn.train(tiny_corpus, tmp_path / "budget", time_budget=2, **QUIET, **TINY_OPTIONS)
    assert result.stopped_by == "time_budget" and result.best_val_loss is not None
    result = charrnn.train(tiny_corpus, tmp_path / "patience", max_steps=200, patience=1, learning_rate=1e-12,
                           **QUIET, **dict(TINY_OPTIONS, eval_every=2))
    assert result.stopped_by == "patience" and result.steps == 4


TRAIN_UNTIL_STOPPED = """
import json, sys
import charrnn
result = charrnn.train(sys.argv[1], sys.argv[2], max_steps=100_000, progress=False, log=lambda line: None,
                       **json.loads(sys.argv[3]))
print(json.dumps({"stopped_by": result.stopped_by, "steps": result.steps, "signal": result.signal}))
"""


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_sigint_stops_cleanly_and_resumes(tmp_path, tiny_corpus):
    """SIGINT goes to a training subprocess (never to pytest itself), once its run has started."""
    out = tmp_path / "run"
    options = json.dumps(dict(TINY_OPTIONS, eval_every=100_000))
    process = subprocess.Popen([sys.executable, "-c", TRAIN_UNTIL_STOPPED, str(tiny_corpus), str(out), options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / runs.CONFIG).exists():  # written just before the loop starts
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
        time.sleep(1.0)  # into the loop, its signal handlers installed
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-2000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["stopped_by"] == "interrupted" and result["signal"] == "SIGINT"
    state = runs.load_checkpoint(out)[2]
    assert state["step"] == result["steps"] > 0
    again = charrnn.train(tiny_corpus, out, resume=True, max_steps=result["steps"] + 3, **QUIET, **TINY_OPTIONS)
    assert again.steps == result["steps"] + 3


def test_corpus_shorter_than_a_window(tmp_path):
    (tmp_path / "short.txt").write_text("abcdefghij" * 3)
    with pytest.raises(charrnn.CorpusError, match="at least --seq-length \\+ 1 = 101"):
        charrnn.train(tmp_path / "short.txt", tmp_path / "run", max_steps=1, seq_length=100, **QUIET)


def test_resume_refuses_another_corpus(tmp_path, tiny_corpus):
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=2, **QUIET, **TINY_OPTIONS)
    other = tmp_path / "other.txt"
    other.write_text(tiny_corpus.read_text()[::-1])
    with pytest.raises(RunError, match="is not the corpus this run trained on"):
        charrnn.train(other, tmp_path / "run", resume=True, max_steps=4, **QUIET, **TINY_OPTIONS)


def test_evaluate_scores_a_file(tiny_run, tiny_corpus):
    result = charrnn.evaluate(charrnn.load(tiny_run), tiny_corpus)
    assert result["chars"] == len(tiny_corpus.read_text())
    assert result["bpc"] == pytest.approx(result["loss"] / np.log(2))
    assert 0 < result["loss"] < np.log(charrnn.load(tiny_run).vocab.size) + 0.5


def _validation_text(run_dir, corpus_path, folder):
    """The run's validation split written to a file, and the best val loss training logged."""
    from charrnn.data.corpus import load_corpus, split

    run = charrnn.load(run_dir)
    val = split(load_corpus([corpus_path]).ids, run.train_config.val_fraction)[1]
    path = folder / "val.txt"
    path.write_text(run.vocab.decode(val), encoding="utf-8")
    best = min(row["val_loss"] for row in runs.read_metrics(run_dir / runs.METRICS))
    return run, path, len(val), best


@pytest.mark.parametrize("eval_window, precision", [(None, "float32"), (64, "float32"), (64, "mixed_bfloat16")])
def test_validation_loss_is_evaluate_on_the_split_in_its_windows(tmp_path, tiny_corpus, eval_window, precision):
    """Training's val loss is `charrnn.evaluate` of the best model on the validation text, in windows
    of eval_window (cut to the split, never below --seq-length) or, with None, of --seq-length.
    In bf16 the validation copy runs the inference op where the native kernel loads (evaluate
    scores in float32: a bf16 tolerance)."""
    options = {**TINY_OPTIONS, "eval_window": eval_window, "precision": precision}
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=20, **QUIET, **options)
    run, path, length, best = _validation_text(tmp_path / "run", tiny_corpus, tmp_path)
    seq_length = TINY_OPTIONS["seq_length"]
    expected = seq_length if eval_window is None else min(eval_window, length - 1)
    assert run.train_config.validation_window() == (eval_window or seq_length)
    result = charrnn.evaluate(run, path)
    assert result["window"] == expected and result["chars"] == length
    assert result["loss"] == pytest.approx(best, abs=1e-4 if precision == "float32" else 2e-2)
    other = charrnn.evaluate(run, path, window=seq_length if eval_window else 64)
    assert abs(other["loss"] - result["loss"]) > 1e-4  # the window changes what is scored
    assert abs(result["loss"] - best) < abs(other["loss"] - best)  # and training scored this window


def test_a_run_written_before_eval_window_keeps_its_windows():
    saved = {key: value for key, value in charrnn.TrainConfig(seq_length=30).to_dict().items()
             if key != "eval_window"}
    assert charrnn.TrainConfig.from_dict(saved).validation_window() == 30
    assert charrnn.TrainConfig(seq_length=30).validation_window() == charrnn.TrainConfig().eval_window > 30
    # cut to the text's targets, never below the training window; an explicit window wins
    config = charrnn.TrainConfig(seq_length=30)
    assert (config.validation_window(500), config.validation_window(10), config.validation_window(500, 64)) == (499, 30, 64)


def test_mixed_bfloat16_trains_and_saves_a_float32_model(tmp_path, tiny_corpus):
    import keras

    result = charrnn.train(tiny_corpus, tmp_path / "run", max_steps=4, precision="mixed_bfloat16",
                           **QUIET, **TINY_OPTIONS)
    assert result.steps == 4 and np.isfinite(result.best_val_loss)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    text = charrnn.Sampler(tmp_path / "run").generate(length=20, seed=0)[0]
    assert len(text) == 20  # an empty prime adds nothing to the text


def test_a_long_time_budget_widens_the_default_lstm(tmp_path, tiny_corpus):
    """Under --time-budget >= 300 s an LSTM whose units / dropout / learning rate / weight decay were
    not given gets 384 / 0.2 / 3e-3 / 0.1; given values, other cells, shorter budgets and runs
    without a budget keep their own."""
    from charrnn.config import LONG_BUDGET_LSTM, LONG_BUDGET_TRAIN, with_budget_defaults

    long = {"time_budget": 600}
    assert with_budget_defaults({}, long) == (LONG_BUDGET_LSTM, {**long, **LONG_BUDGET_TRAIN})
    assert with_budget_defaults({"units": 256}, {"time_budget": 300, "learning_rate": 0.01, "weight_decay": 0.0}) == (
        {"units": 256, "dropout": 0.2}, {"time_budget": 300, "learning_rate": 0.01, "weight_decay": 0.0})
    assert with_budget_defaults({}, {"time_budget": 300, "learning_rate": 0.01})[1] == {
        "time_budget": 300, "learning_rate": 0.01, "weight_decay": 0.1}
    assert with_budget_defaults({}, {"time_budget": 299}) == ({}, {"time_budget": 299})
    assert with_budget_defaults({}, {}) == ({}, {})
    assert with_budget_defaults({}, {**long, "eval_window": None})[1] == {**long, "eval_window": None, **LONG_BUDGET_TRAIN}
    assert with_budget_defaults({"cell": "gru"}, long) == ({"cell": "gru"}, long)
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "run"), "--time-budget",
                                       "600", "--max-steps", "1", "--layers", "1", "--embedding-dim", "8",
                                       "--seq-length", "20", "--batch-size", "8", "--quiet"])
    assert result.exit_code == 0, result.output
    model = runs.load(tmp_path / "run").model_config
    assert (model.units, model.dropout) == (384, 0.2)
    train = runs.load(tmp_path / "run").train_config
    assert (train.learning_rate, train.weight_decay) == (LONG_BUDGET_TRAIN["learning_rate"], 0.1) == (3e-3, 0.1)


def test_weight_decay_shrinks_the_weights_and_spares_the_biases(tmp_path, tiny_corpus):
    """--weight-decay is AdamW's decoupled decay: at a rate so small that the gradient steps barely
    move anything, a large decay shrinks every kernel and embedding while the biases stay put."""
    options = {**QUIET, **TINY_OPTIONS, "max_steps": 10, "learning_rate": 1e-4, "lr_schedule": "constant",
               "dropout": 0.0}
    plain = charrnn.train(tiny_corpus, tmp_path / "plain", **options)
    decayed = charrnn.train(tiny_corpus, tmp_path / "decayed", weight_decay=500.0, **options)
    assert runs.load(decayed.run_dir).train_config.weight_decay == 500.0

    def weights(run_dir):
        model = runs.load(run_dir).keras_model()
        return {variable.path: np.asarray(variable) for variable in model.weights}

    before, after = weights(plain.run_dir), weights(decayed.run_dir)
    assert before.keys() == after.keys()
    biases = [path for path in before if path.endswith("bias")]
    matrices = [path for path in before if not path.endswith("bias")]
    assert biases and len(matrices) >= 4  # embedding, kernel, recurrent kernel, head
    for path in matrices:  # ten steps of x (1 - 500 x 1e-4) = 0.95 each: 0.95 ** 10 = 0.60
        ratio = np.linalg.norm(after[path]) / np.linalg.norm(before[path])
        assert 0.55 < ratio < 0.65, (path, ratio)
    for path in biases:
        assert np.abs(after[path] - before[path]).max() < 0.01, path


def test_beta2_sets_how_fast_adams_squared_gradient_mean_forgets(tmp_path, tiny_corpus):
    """After one step Adam's second moment is (1 - beta_2) x g^2 and its first (1 - beta_1) x g: with
    the same seed (the same first gradient), --beta2 0.5 makes the second moments 500 times those of
    Keras's 0.999 and leaves the first alone."""
    options = {**QUIET, **TINY_OPTIONS, "max_steps": 1, "dropout": 0.0, "precision": "float32"}
    keras_default = charrnn.train(tiny_corpus, tmp_path / "default", **options)
    fast = charrnn.train(tiny_corpus, tmp_path / "fast", beta2=0.5, **options)
    assert runs.load(fast.run_dir).train_config.beta2 == 0.5
    assert runs.load(keras_default.run_dir).train_config.beta2 == 0.999
    _, first, _ = runs.load_checkpoint(keras_default.run_dir)
    _, second, _ = runs.load_checkpoint(fast.run_dir)
    ratios = []
    for one, other in zip(first, second):
        seen = np.abs(one) > 1e-12
        if one.ndim and seen.any():
            ratios.append(float(np.median(other[seen] / one[seen])))
    moments = [ratio for ratio in ratios if abs(ratio - 1) > 1e-3]
    assert len(ratios) >= 2 * len(moments) > 0  # a first moment (unchanged) beside each second
    assert all(abs(ratio - 500) < 5 for ratio in moments), ratios
    with pytest.raises(charrnn.ConfigError, match="beta2"):
        charrnn.TrainConfig(beta2=1.0)
