"""The TensorFlow-free install, for real: a fresh venv, `pip install "charrnn[portable,serve]"` from this
checkout (PyPI for the dependencies), no TensorFlow or oneDNN in it, and `charrnn sample`, `score`,
`classify` and `serve` working there on an .onnx file exported by this environment. Long (a pip
install): in `make test-sweep`, which CI runs."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import require
from .export_runs import write_run
from .test_export import SHAKESPEARE, _corpus, _onnx_model

ROOT = Path(__file__).resolve().parents[1]
INSTALL_COMMAND = 'pip install "charrnn[portable,serve]"'  # as docs/export.md gives it


def _copy_checkout(out: Path) -> Path:
    """The files a wheel is built from, copied (so the build leaves nothing in the checkout)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, out / name)
    for name in ("charrnn", "corpora"):
        shutil.copytree(ROOT / name, out / name, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.o"))
    return out


@pytest.mark.sweep
def test_the_tensorflow_free_install_runs_an_exported_model(tmp_path):
    require("onnxruntime")
    from charrnn.portable import PortableModel, generate
    from charrnn.portable.scoring import PortableScorer, classify

    shakespeare = _corpus(SHAKESPEARE)
    onnx = _onnx_model(write_run(tmp_path / "run", sorted(set(shakespeare)), "gru", 1, 16, 8,
                                 labels=("verse", "prose")), tmp_path).path
    model = PortableModel(onnx)
    (tmp_path / "src").mkdir()
    source = _copy_checkout(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python, charrnn = venv / "bin" / "python", venv / "bin" / "charrnn"
    assert INSTALL_COMMAND in (ROOT / "docs" / "export.md").read_text("utf-8")  # the documented command, tested
    extras = INSTALL_COMMAND.split('"')[1].removeprefix("charrnn")
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           f"{source}{extras}"], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            check=True, timeout=300)
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert {"charrnn", "onnxruntime", "numpy", "click", "starlette", "uvicorn"} <= names
    assert not [name for name in names if "tensorflow" in name or "onednn" in name or name in ("keras", "tf-keras")]
    # the commands, on the file this environment exported
    text = tmp_path / "text.txt"
    text.write_text(shakespeare[-1500:], "utf-8")
    run = lambda *args: subprocess.run([str(charrnn), *map(str, args)], capture_output=True, text=True, timeout=300)
    done = run("sample", onnx, "--label", "verse", "--prime", "KING:", "--length", "120", "--seed", "4",
               "--num-samples", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert [sample["text"] for sample in json.loads(done.stdout)["samples"]] == \
        generate(model, prime="KING:", length=120, seed=4, num_samples=2, label="verse")
    done = run("score", onnx, text, "--label", "prose", "--json")
    assert done.returncode == 0, done.stderr
    expected = PortableScorer(model).score([text.read_text("utf-8")], label="prose")[0]
    assert abs(json.loads(done.stdout)["results"][0]["log_prob"] - expected["log_prob"]) < 1e-6
    done = run("classify", onnx, text, "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["label"] == classify(model, [text.read_text("utf-8")])[0]["label"]
    done = run("train", "tinyshakespeare", "--out", tmp_path / "trained")
    assert done.returncode == 1 and done.stderr == 'Error: charrnn train needs TensorFlow: pip install "charrnn[train]"\n'
    server = subprocess.Popen([str(charrnn), "serve", str(onnx), "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line, deadline = "", time.monotonic() + 120
        while time.monotonic() < deadline and not re.search(r"http://127\.0\.0\.1:(\d+) ", line):
            line = server.stderr.readline()
            assert line or server.poll() is None, "the server exited"
        port = int(re.search(r"http://127\.0\.0\.1:(\d+) ", line).group(1))
        body = json.dumps({"prime": "KING:", "length": 60, "seed": 4, "label": "prose"}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/generate", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert json.loads(answer.read())["texts"] == generate(model, prime="KING:", length=60, seed=4, label="prose")
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
