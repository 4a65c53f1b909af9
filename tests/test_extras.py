"""TensorBoard, plots and SavedModel export."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main

from .conftest import TINY_OPTIONS, require, require_program

LOAD_WITHOUT_CHARRNN = """
import sys
sys.modules["charrnn"] = None  # prove the SavedModel needs no charrnn
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
text = model.signatures["generate"](prime=tf.constant(sys.argv[2]), length=tf.constant(int(sys.argv[3])),
                                    temperature=tf.constant(0.8), seed=tf.constant(7))["output_0"]
sys.stdout.write(text.numpy().decode("utf-8"))
"""


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_export_runs_with_plain_tensorflow_and_matches_sample(tmp_path, tiny_run):
    out = tmp_path / "exported"
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--format", "saved_model", "--out", str(out)])
    assert result.exit_code == 0, result.output
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # 600 characters: more than one 512-character chunk of the compiled loop
    done = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_CHARRNN, str(out), "All:", "600"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout) == 4 + 600
    sampled = CliRunner().invoke(main, ["sample", str(tiny_run), "--prime", "All:", "--length", "600",
                                        "--temperature", "0.8", "--seed", "7", "--precision", "float32"])
    assert done.stdout == sampled.output.rstrip("\n")  # the export is XLA's float32 loop
    # a prime character the run never saw is skipped by the one rule, and the prime returned as typed
    done = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_CHARRNN, str(out), "All:\u20ac", "600"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout == "All:\u20ac" + sampled.output.rstrip("\n")[len("All:"):]
    again = CliRunner().invoke(main, ["export", str(tiny_run), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_tensorboard_and_plot(tmp_path, tiny_corpus):
    result = charrnn.train(tiny_corpus, tmp_path / "run", max_steps=20, tensorboard=True, progress=False,
                           log=lambda line: None, **TINY_OPTIONS)
    events = list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    import tensorflow as tf

    tags = {value.tag for event in tf.compat.v1.train.summary_iterator(str(events[0])) for value in event.summary.value}
    assert {"val_loss", "val_bpc", "train_loss", "learning_rate", "chars_per_s", "sample"} <= tags
    require("matplotlib")
    plotted = CliRunner().invoke(main, ["plot", str(result.run_dir), "--out", str(tmp_path / "loss.png")])
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_get_it(tiny_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(main, ["plot", str(tiny_run)])
    assert result.exit_code == 1 and "pip install 'charrnn[plot]'" in result.output


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_inspect_writes_a_self_contained_page(tmp_path, tiny_run, tiny_corpus):
    import json

    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["inspect", str(tiny_run), str(tiny_corpus), "--out", str(out),
                                       "--max-chars", "400"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<script src" not in page and "<link" not in page  # nothing fetched from elsewhere
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    assert len(data["text"]) == 400 and data["surprise"][0] is None
    assert all(value >= 0 for value in data["surprise"][1:])
    correlations = [abs(cell["correlation"]) for cell in data["cells"]]
    assert correlations == sorted(correlations, reverse=True)
    assert len(data["cells"][0]["activations"]) == 400
    chosen = CliRunner().invoke(main, ["inspect", str(tiny_run), str(tiny_corpus), "--out", str(out),
                                       "--layer", "1", "--cell", "5"])
    assert chosen.exit_code == 0
    data = json.loads(out.read_text().split('type="application/json">')[1].split("</script>")[0])
    assert (data["cells"][0]["layer"], data["cells"][0]["cell"]) == (1, 5)
    bad = CliRunner().invoke(main, ["inspect", str(tiny_run), str(tiny_corpus), "--cell", "999"])
    assert bad.exit_code == 1 and "--cell in 0..31" in bad.output
    browser = require_program("chromium", "chromium-browser")
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1100,1400", out.as_uri()],
                   check=True, capture_output=True, timeout=120)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank page compresses to a few KB
