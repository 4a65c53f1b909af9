"""`charrnn export --format tflite`: the one-step LiteRT signature, stepped through the LiteRT
interpreter (ai-edge-litert where installed, else tf.lite.Interpreter), scores unseen text as
`charrnn eval` does, within 1e-4 nats/char; the loop docs/export.md shows around it writes
`charrnn sample`'s text for a seed."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("cell, labels", [("lstm", ()), ("gru", ("verse", "prose"))])
def test_the_documented_litert_loop_writes_sample_s_text(cell, labels, tmp_path):
    """`charrnn.export.tflite.generate` (the loop docs/export.md shows) gives `charrnn sample RUN
    --precision float32`'s 2,000 characters for a seed, with top-k and top-p."""
    from charrnn.export.tflite import generate, read_metadata

    text = _corpus(SHAKESPEARE)
    run_dir = write_run(tmp_path / "run", sorted(set(text)), cell, 2, 32, 8, seed=5, labels=labels)
    out = tmp_path / "model.tflite"
    result = CliRunner().invoke(main, ["export", str(run_dir), "--format", "tflite", "--out", str(out)])
    assert result.exit_code == 0, result.output
    step = _interpreter(out).get_signature_runner("step")
    label = labels[-1] if labels else None
    options = {"temperature": 0.8, "top_k": 20, "top_p": 0.95, "seed": 2}
    texts = [generate(step, read_metadata(out.read_bytes()), "ROMEO:", 2000, sample=sample, label=label, **options)
             for sample in range(2)]
    args = ["sample", str(run_dir), "--prime", "ROMEO:", "--length", "2000", "--num-samples", "2", "--json",
            "--precision", "float32", "--temperature", "0.8", "--top-k", "20", "--top-p", "0.95", "--seed", "2",
            *(["--label", label] if label else [])]
    sampled = CliRunner().invoke(main, args)
    assert sampled.exit_code == 0, sampled.output
    assert texts == [entry["text"] for entry in json.loads(sampled.stdout)["samples"]] and texts[0] != texts[1]
