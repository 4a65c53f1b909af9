import numpy as np
import pytest

from charrnn.data.windows import WindowBatches, scoring_windows
from charrnn.errors import CorpusError


def test_targets_are_inputs_shifted_by_one():
    ids = np.arange(1000) % 251
    batches = WindowBatches(ids, seq_length=10, batch_size=4, seed=3)
    inputs, targets = batches.batch(0)
    assert inputs.shape == targets.shape == (4, 10) and inputs.dtype == np.int32
    assert (targets[:, :-1] == inputs[:, 1:]).all()
    for row_in, row_out in zip(inputs, targets):  # each row is a contiguous slice of ids
        start = int(np.flatnonzero(ids == row_in[0])[0])
        assert (ids[start:start + 11][:10] == row_in).all() and (ids[start + 1:start + 11] == row_out).all()


def test_batches_depend_only_on_seed_and_step():
    ids = np.arange(5000)
    first, second = WindowBatches(ids, 20, 8, seed=1), WindowBatches(ids, 20, 8, seed=1)
    for step in (7, 0, 30, 7):  # any order: the batch for a step is fixed
        assert (first.batch(step)[0] == second.batch(step)[0]).all()
    assert not (first.batch(0)[0] == WindowBatches(ids, 20, 8, seed=2).batch(0)[0]).all()


def test_an_epoch_covers_every_window():
    ids = np.arange(2001)
    batches = WindowBatches(ids, 10, 7, seed=0)
    starts = {int(batches.batch(step)[0][row, 0]) for step in range(batches.steps_per_epoch) for row in range(7)}
    assert len(starts) == batches.windows == 200


def test_short_corpus_error_names_needed_length():
    with pytest.raises(CorpusError, match="at least --seq-length \\+ 1 = 101"):
        WindowBatches(np.arange(50), 100, 4)


def test_scoring_windows_score_every_target_once():
    ids = np.arange(57)
    batches = list(scoring_windows(ids, seq_length=10, batch_size=4))
    weights = np.concatenate([batch[2] for batch in batches])
    targets = np.concatenate([batch[1] for batch in batches])
    assert weights.sum() == 56
    assert sorted(targets[weights > 0].tolist()) == list(range(1, 57))
    assert all(batch[0].shape == (4, 10) for batch in batches)
    # a text of fewer windows than a batch is scored in one batch of its own windows, not padded
    few = list(scoring_windows(ids, seq_length=30, batch_size=64))
    assert len(few) == 1 and few[0][0].shape == (2, 30) and few[0][2].sum() == 56


def test_rows_per_call_caps_the_logits_of_long_windows():
    from charrnn.generation.evaluate import LOGITS_PER_CALL, rows_per_call

    assert rows_per_call(64, 2048, 65) == 64
    assert rows_per_call(64, 2048, 5000) == LOGITS_PER_CALL // (2048 * 5000) == 13
    assert rows_per_call(64, 1 << 20, 1 << 10) == 1


def test_dataset_matches_batches():
    batches = WindowBatches(np.arange(3000), 15, 4, seed=5)
    for step, (inputs, targets) in zip(range(3, 6), batches.dataset(3, 6)):
        assert (inputs.numpy() == batches.batch(step)[0]).all()
        assert (targets.numpy() == batches.batch(step)[1]).all()
