"""`charrnn export --format tflite`: the one-step LiteRT signature, stepped through the LiteRT
interpreter (ai-edge-litert where installed, else tf.lite.Interpreter), scores unseen text as
`charrnn eval` does, within 1e-4 nats/char."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main

from .export_runs import write_run
from .test_export import PARITY_NATS, SHAKESPEARE, UNSEEN_CHARS, _corpus


def _interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path))


@pytest.mark.parametrize("cell, layers, embedding_dim, fused", [
    ("lstm", 2, 8, False), ("lstm", 2, 0, True), ("gru", 2, 0, False), ("rnn", 2, 8, False)])
def test_tflite_steps_score_as_eval_does(cell, layers, embedding_dim, fused, tmp_path):
    from charrnn.export.tflite import read_metadata

    text = _corpus(SHAKESPEARE)
    run_dir = write_run(tmp_path / "run", sorted(set(text)), cell, layers, 16, embedding_dim, fused=fused)
    unseen = text[-UNSEEN_CHARS:]
    (tmp_path / "unseen.txt").write_text(unseen, "utf-8")
    out = tmp_path / "model.tflite"
    result = CliRunner().invoke(main, ["export", str(run_dir), "--format", "tflite", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"({out.stat().st_size:,} bytes)" in result.output  # the size is reported
    run = charrnn.load(run_dir)
    assert read_metadata(out.read_bytes())["vocabulary"]["symbols"] == "".join(run.vocab.symbols)
    expected = charrnn.evaluate(run, tmp_path / "unseen.txt")
    assert expected["window"] >= UNSEEN_CHARS - 1  # one window: the state runs through the whole text
    step = _interpreter(out).get_signature_runner("step")
    ids = run.vocab.encode(unseen).astype(np.int32)
    parts = 2 if cell == "lstm" else 1
    state = np.zeros((layers * parts, 1, 16), np.float32)
    total = 0.0
    for position in range(len(ids) - 1):
        outputs = step(ids=ids[position:position + 1], state=state)
        state = outputs["new_state"]
        logits = outputs["logits"][0].astype(np.float64)
        total += np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[ids[position + 1]]
    assert abs(total / (len(ids) - 1) - expected["loss"]) < PARITY_NATS
    # two streams side by side step as each alone
    pair = step(ids=ids[:2], state=np.zeros((layers * parts, 2, 16), np.float32))["logits"]
    alone = step(ids=ids[1:2], state=np.zeros((layers * parts, 1, 16), np.float32))["logits"]
    assert np.abs(pair[1] - alone[0]).max() < 1e-5
