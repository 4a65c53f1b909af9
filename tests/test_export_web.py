"""`charrnn export --format web`: the page in a real browser (Playwright + the system's chromium)
served by a real http.server on 127.0.0.1, and from file://. For a fixed seed and options its text
equals charrnn.portable's character for character; its step's logits equal the Keras model's."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main

from .conftest import BROWSER, require
from .export_runs import write_run
from .test_export import NAMES, SHAKESPEARE, _corpus

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def serve():
    """Serves a folder with http.server on 127.0.0.1; yields a function folder -> URL."""
    servers = []

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 functools.partial(_QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _export(run_dir: Path, tmp_path: Path):
    """The run as an .onnx file (opened with charrnn.portable) and a web folder, both through the CLI."""
    require("onnx")
    require("onnxruntime")
    from charrnn.portable import PortableModel

    for export_format, name in (("onnx", "model.onnx"), ("web", "web")):
        result = CliRunner().invoke(main, ["export", str(run_dir), "--format", export_format, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "web").iterdir()) == ["charrnn.js", "index.html", "weights.js"]
    return PortableModel(tmp_path / "model.onnx"), tmp_path / "web"


def _open(browser, url: str):
    page = browser.new_page()
    errors, requests = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_function("document.getElementById('status').dataset.state === 'idle'")
    return page, errors, requests


def _fill(page, **fields):
    for name, value in fields.items():
        page.fill(f"#{name}", str(value))


def _wait_done(page):
    page.wait_for_function("['done', 'error'].includes(document.getElementById('status').dataset.state)",
                           timeout=120_000)
    assert page.get_attribute("#status", "data-state") == "done", page.text_content("#status")
    assert int(page.get_attribute("#status", "data-chars-per-second")) > 0  # the page reports its speed


def _page_logits(page, ids: list[int], kernel: str, label: int | None = None) -> np.ndarray:
    return np.array(page.evaluate("""([ids, kernel, label]) => { const model = CharRNN.load(window.CHARRNN_MODEL, {kernel});
        if (model.kernel.name !== kernel) throw new Error(`the ${model.kernel.name} kernel ran, not ${kernel}`);
        const state = CharRNN.zeroState(model);
        return ids.map((id) => Array.from(CharRNN.step(model, id, state, label))); }""", [ids, kernel, label]))


def _check_logits_against_keras(page, run_dir: Path, model, text: str, label: int | None = None):
    """Both kernels' logits (WebAssembly SIMD, float32; JavaScript, float64 sums) against Keras's
    (a labelled model's under label id `label`)."""
    ids = model.encode(text)
    inputs = ids[None, :].astype(np.int32)
    keras_model = charrnn.load(run_dir).model()
    keras_logits = (keras_model(inputs) if label is None else keras_model([inputs, np.array([label], np.int32)])).numpy()[0]
    for kernel in ("wasm-simd", "js"):
        assert np.abs(_page_logits(page, ids.tolist(), kernel, label) - keras_logits).max() < 1e-4, kernel


@pytest.mark.parametrize("cell, layers, embedding_dim, options, kernel", [
    ("lstm", 2, 8, {"temperature": 0.8, "top_k": 20}, "wasm-simd"),
    ("gru", 1, 0, {"temperature": 1.2, "top_p": 0.9}, "js"),
])
def test_the_page_writes_portables_text(cell, layers, embedding_dim, options, kernel, browser, serve, tmp_path):
    text = _corpus(SHAKESPEARE)
    run_dir = write_run(tmp_path / "run", sorted(set(text)), cell, layers, 32, embedding_dim, seed=layers)
    model, web = _export(run_dir, tmp_path)
    from charrnn.portable import generate

    expected = generate(model, prime="ROMEO:", length=400, seed=7, **options)[0]
    page, errors, requests = _open(browser, serve(web) + ("?kernel=js" if kernel == "js" else ""))
    assert page.get_attribute("#status", "data-kernel") == kernel
    assert not page.is_visible("#label")  # no label menu for an unlabelled model
    _fill(page, prime="ROMEO:", length=400, seed=7, temperature=options["temperature"],
          topk=options.get("top_k", 0), topp=options.get("top_p", 1))
    page.click("#generate")
    _wait_done(page)
    assert page.text_content("#output") == expected and not errors
    assert all(url.startswith("http://127.0.0.1") for url in requests)  # nothing from the network
    _check_logits_against_keras(page, run_dir, model, text[:80])
    # Stop: a long text stops early, keeping what was written
    _fill(page, length=10_000_000)
    page.click("#generate")
    page.wait_for_function("document.getElementById('output').textContent.length > 100")
    page.click("#stop")
    page.wait_for_function("document.getElementById('status').dataset.state === 'stopped'")
    assert 100 < len(page.text_content("#output")) < 10_000_000
    page.close()


def test_the_page_writes_portables_text_under_the_label_chosen(browser, serve, tmp_path):
    text = _corpus(SHAKESPEARE)
    labels = ("verse", "prose", "notes")
    run_dir = write_run(tmp_path / "run", sorted(set(text)), "lstm", 2, 32, 8, seed=2, labels=labels)
    model, web = _export(run_dir, tmp_path)
    from charrnn.portable import generate

    page, errors, _ = _open(browser, serve(web))
    assert page.is_visible("#label") and page.locator("#label option").all_text_contents() == list(labels)
    written = {}
    for label in ("notes", "prose"):
        page.select_option("#label", label=label)
        _fill(page, prime="ROMEO:", length=300, seed=7, temperature=0.9, topk=0, topp=1)
        page.click("#generate")
        _wait_done(page)
        written[label] = page.text_content("#output")
        assert written[label] == generate(model, prime="ROMEO:", length=300, seed=7, temperature=0.9, label=label)[0]
    assert written["notes"] != written["prose"] and not errors
    _check_logits_against_keras(page, run_dir, model, text[:60], label=1)
    _check_logits_against_keras(page, run_dir, model, text[:60], label=2)
    error = page.evaluate("""() => { const model = CharRNN.load(window.CHARRNN_MODEL);
        try { CharRNN.step(model, 0, CharRNN.zeroState(model)); return null; } catch (e) { return e.message; } }""")
    assert error == "this model is labelled: give a label id from 0 to 2 (verse, prose, notes)"
    page.close()


def test_the_page_works_from_file_urls(browser, tmp_path):
    text = _corpus(SHAKESPEARE)
    run_dir = write_run(tmp_path / "run", sorted(set(text)), "rnn", 2, 32, 8)
    model, web = _export(run_dir, tmp_path)
    from charrnn.portable import generate

    page, errors, _ = _open(browser, (web / "index.html").as_uri())
    _fill(page, prime="", length=200, seed=3)
    page.click("#generate")
    _wait_done(page)
    assert page.text_content("#output") == generate(model, length=200, seed=3)[0] and not errors
    page.close()


@pytest.mark.parametrize("labels", [(), ("boys", "girls")], ids=["unlabelled", "labelled"])
def test_the_page_generates_20_items_as_portable_does(labels, browser, serve, tmp_path):
    lines = [line for line in _corpus(NAMES).splitlines() if line]
    run_dir = write_run(tmp_path / "run", sorted(set("".join(lines)) | {"\n"}), "lstm", 1, 32, 8, items=True,
                        labels=labels)
    model, web = _export(run_dir, tmp_path)
    from charrnn.portable import sample_items

    label = labels[-1] if labels else None
    expected = sample_items(model, 20, prime="a", temperature=0.9, seed=11, label=label)
    page, errors, _ = _open(browser, serve(web))
    assert page.is_visible("#generate-items") and not page.is_visible("#generate")
    assert page.is_visible("#label") == bool(labels)
    if labels:
        assert expected != sample_items(model, 20, prime="a", temperature=0.9, seed=11, label=labels[0])
        page.select_option("#label", label=label)
    _fill(page, prime="a", temperature=0.9, seed=11)
    page.click("#generate-items")
    _wait_done(page)
    assert page.locator("#items li").all_text_contents() == expected and not errors
    _check_logits_against_keras(page, run_dir, model, "\nanna\nbob\n", label=1 if labels else None)
    page.close()


def test_web_export_replaces_a_folder_only_with_force(tmp_path):
    text = _corpus(SHAKESPEARE)
    run_dir = write_run(tmp_path / "run", sorted(set(text)), "gru", 1, 8, 4)
    out = tmp_path / "page"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = CliRunner().invoke(main, ["export", str(run_dir), "--format", "web", "--out", str(out)])
    assert result.exit_code == 1 and "already exists" in result.output and (out / "mine.txt").read_text() == "keep"
    result = CliRunner().invoke(main, ["export", str(run_dir), "--format", "web", "--out", str(out), "--force"])
    assert result.exit_code == 0 and sorted(path.name for path in out.iterdir()) == ["charrnn.js", "index.html",
                                                                                     "weights.js"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["page", "run"]  # no temporary folder left


@pytest.mark.bench
def test_web_speed_prints_the_pages_rate(browser):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "bench" / "web_speed.py"
    done = subprocess.run([sys.executable, str(script), "--length", "50", "--browser", BROWSER],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "weights.js" in done.stdout and "web page (wasm-simd kernel), 2 x LSTM(256), 1 stream: " in done.stdout
