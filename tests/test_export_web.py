"""`charrnn export --format web`: the page in a real browser (Playwright + the system's chromium)
served by a real http.server on 127.0.0.1, and from file://. For a fixed seed and options its text
equals charrnn.portable's character for character; its step's logits equal the Keras model's. Its
fields refuse what `charrnn sample` refuses (one rule table in charrnn.js, checked here against the
CLI's options), and charrnn.js works as a library in Node and in a page of its own."""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main

from .conftest import BROWSER, require, require_program
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


def _refused(page, field: str, message: str, button: str = "#generate"):
    """Clicks `button` and checks the page refused: `message` beside `field` (its error element),
    no other field marked, the status an error, and nothing generated."""
    page.click(button)
    page.wait_for_function("document.getElementById('status').dataset.state === 'error'", timeout=10_000)
    shown = {name: page.text_content(f"#{name}-error") for name in FIELD_ERRORS}
    assert message in shown[field], shown
    assert not [name for name, text in shown.items() if text and name != field], shown
    assert page.text_content("#output") == "" and page.locator("#items li").count() == 0


FIELD_ERRORS = ("prime", "label", "length", "temperature", "topk", "topp", "seed", "stop", "argmax")


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
          topk=options.get("top_k", ""), topp=options.get("top_p", ""))
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
        _fill(page, prime="ROMEO:", length=300, seed=7, temperature=0.9, topk="", topp="")
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
    # a label the model lacks (a menu edited by hand) is refused beside the menu, nothing generated
    page.evaluate("() => { const menu = document.getElementById('label'); menu.add(new Option('loud', 'loud')); menu.value = 'loud'; }")
    _refused(page, "label", 'this model has no label "loud"; its labels are: verse, prose, notes')
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
    _fill(page, **{"stop-text": "e"})  # each item ends at its end symbol or before its first "e"
    page.click("#generate-items")
    _wait_done(page)
    expected = _items_cut_at_stops(model, 20, "a", ["e"], temperature=0.9, seed=11, label=label)[0]
    assert page.locator("#items li").all_text_contents() == expected and not errors
    _fill(page, length=0)  # as `charrnn sample ITEMS.onnx --length 0`: no room for an item
    _refused(page, "length", "length 0 leaves no room for an item; give at least 1", button="#generate-items")
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


# ---------------------------------------------------------------- the fields' rules, and the library

JS = Path(charrnn.__file__).parent / "export" / "page" / "charrnn.js"


def _fields() -> dict:
    """charrnn.js's rule table (CharRNN.FIELDS), read from the source."""
    found = re.search(r"/\* FIELDS \*/(.*?)/\* FIELDS \*/", JS.read_text("utf-8"), re.S)
    return json.loads(found.group(1))


def _sample_option(name: str):
    import click

    command = main.commands["sample"]
    return next(param for param in command.params if isinstance(param, click.Option) and name in param.opts)


def test_the_pages_rules_are_the_cli_options_rules():
    """Each entry of charrnn.js's table names a `charrnn sample` option and has its type, bounds and
    default; every option `charrnn sample MODEL.onnx` takes (and --stop) is in the table."""
    import click

    from charrnn.cli.common import SAMPLE_DEFAULTS, FloatRange, StopText

    fields = _fields()
    options = {rule["option"] for rule in fields.values()}
    assert options == {"--prime", "--length", "--temperature", "--top-k", "--top-p", "--seed", "--num-samples",
                       "--argmax", "--stop", "--label", "--unknown"}
    for name, rule in fields.items():
        param = _sample_option(rule["option"])
        kind = param.type
        if rule["kind"] in ("integer", "number"):
            wanted = (click.IntRange, click.types.IntParamType) if rule["kind"] == "integer" else (FloatRange,)
            assert isinstance(kind, wanted), (name, kind)
            bounds = {"min": getattr(kind, "min", None), "max": getattr(kind, "max", None),
                      "minOpen": getattr(kind, "min_open", False), "maxOpen": getattr(kind, "max_open", False)}
            assert {key: rule.get(key, False if key.endswith("Open") else None) for key in bounds} == bounds, name
        elif rule["kind"] == "flag":
            assert param.is_flag
        elif rule["kind"] == "stop":
            assert isinstance(kind, StopText) and param.multiple
        elif rule["kind"] == "choice":
            assert isinstance(kind, click.Choice) and list(kind.choices) == rule["choices"]
        else:  # text, label
            assert kind == click.STRING and param.multiple == (rule["kind"] == "label")
        unset = param.default is None or type(param.default).__name__ == "Sentinel"  # click 8.2's UNSET
        if rule["kind"] in ("stop", "label"):
            assert rule["default"] in ([], None) and (unset or param.default == ())
        else:  # left out: the option's default, or SampleConfig's (a random seed for None)
            assert rule["default"] == (SAMPLE_DEFAULTS[param.name] if unset else param.default), name
    assert fields["argmax"]["excludes"] == ["temperature", "topK", "topP", "seed"]  # main._check_argmax_options's


PROBES = ["0", "1", "-1", "7", "+3", " 12 ", "1_000", "1__0", "05", "1.5", "0.5", "-0.0", "1e-3", "1E2", ".5", "5.",
          "1e", "e3", "abc", "0x10", "inf", "-inf", "nan", "Infinity", "1,5", "2 3", "1.0.1", "_1", "1_", "99999999999999999999"]
STOP_PROBES = ["\\n", "\\n\\n", "a\\tb", "\\\\", "x\\", "\\q", "é\\r", "plain", "\\", "\\\\n"]


def _node(script: str, *args: str, cwd: Path | None = None) -> str:
    node = require_program("node")
    done = subprocess.run([node, "-e", script, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_js_checks_accept_and_refuse_the_strings_the_cli_does():
    """The same strings through click's option types and through CharRNN.checkField (in Node 20):
    the same ones accepted, with the same values; and the stops through parse_stop and parseStop."""
    import click

    from charrnn.errors import ConfigError
    from charrnn.generation.stops import parse_stop

    fields = _fields()
    numeric = [name for name, rule in fields.items() if rule["kind"] in ("integer", "number")]
    out = _node(f"""const C = require({json.dumps(str(JS))});
        const result = {{}};
        for (const name of {json.dumps(numeric)}) result[name] = {json.dumps(PROBES)}.map((probe) => {{
          try {{ const value = C.checkField(name, probe); return [true, value === null ? null : String(value)]; }}
          catch (error) {{ return [false, error.message]; }} }});
        result.stop = {json.dumps(STOP_PROBES)}.map((probe) => {{
          try {{ return [true, C.parseStop(probe)]; }} catch (error) {{ return [false, error.message]; }} }});
        console.log(JSON.stringify(result));""")
    js = json.loads(out)
    for name in numeric:
        param = _sample_option(fields[name]["option"])
        for probe, (accepted, value) in zip(PROBES, js[name]):
            try:
                expected = param.type.convert(probe, param, None)
            except click.BadParameter:
                assert not accepted, (name, probe, value)
                continue
            assert accepted, (name, probe, value)
            assert float(value) == float(expected), (name, probe, value, expected)
    for probe, (accepted, value) in zip(STOP_PROBES, js["stop"]):
        try:
            expected = parse_stop(probe)
        except ConfigError:
            assert not accepted, (probe, value)
            continue
        assert accepted and value == expected, (probe, value)


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """An LSTM whose width (30) is not a multiple of 4, so the page takes the JavaScript kernel
    (the WebAssembly one needs 4 lanes), exported as .onnx and as a web folder."""
    text = _corpus(SHAKESPEARE)
    folder = tmp_path_factory.mktemp("narrow")
    run_dir = write_run(folder / "run", sorted(set(text)), "lstm", 2, 30, 8, seed=4)
    model, web = _export(run_dir, folder)
    return run_dir, model, web


def _stopped(model, text: str, prime: str, stops) -> tuple[str, str | None]:
    """charrnn.portable's text cut by charrnn.generation.stops's rule (the prime is not searched)."""
    from charrnn.generation.stops import StopScanner

    scanner = StopScanner(list(stops))
    generated = scanner.feed(text[len(prime):])
    return prime + generated + (scanner.finish() if scanner.stopped is None else ""), scanner.stopped


def _a_stop_in(generated: str) -> str:
    """Two characters generated after the 40th (so the stop cuts the text well inside it)."""
    return generated[40:42]


def test_the_page_with_a_width_not_a_multiple_of_4_runs_the_javascript_kernel(narrow, browser, serve):
    run_dir, model, web = narrow
    from charrnn.portable import generate

    page, errors, _ = _open(browser, serve(web))
    assert page.get_attribute("#status", "data-kernel") == "js"  # no ?kernel=js: the fallback
    _fill(page, prime="ROMEO:", length=300, seed=9, temperature=0.9, topp=0.95)
    page.click("#generate")
    _wait_done(page)
    assert page.text_content("#output") == generate(model, prime="ROMEO:", length=300, seed=9, temperature=0.9,
                                                    top_p=0.95)[0] and not errors
    ids = model.encode(_corpus(SHAKESPEARE)[:60])
    keras_logits = charrnn.load(run_dir).model()(ids[None, :].astype(np.int32)).numpy()[0]
    assert np.abs(_page_logits(page, ids.tolist(), "js") - keras_logits).max() < 1e-4
    page.close()


@pytest.mark.parametrize("fields, field, message", [
    ({"prime": "ROMEO:\u20ac", "unknown": "error"}, "prime", "the prime has characters not in the vocabulary: \"\u20ac\""),
    ({"length": "-1"}, "length", "Expected length >= 0. Received: length=\"-1\""),
    ({"length": "2.5"}, "length", "Expected length to be an integer"),
    ({"temperature": "0"}, "temperature", "Expected temperature > 0. Received: temperature=\"0\""),
    ({"temperature": "warm"}, "temperature", "Expected temperature to be a number"),
    ({"temperature": "inf"}, "temperature", "Expected temperature to be a finite number"),
    ({"topk": "0"}, "topk", "Expected top-k >= 1. Received: top-k=\"0\""),
    ({"topp": "0"}, "topp", "Expected 0 < top-p <= 1. Received: top-p=\"0\""),
    ({"topp": "1.5"}, "topp", "Expected 0 < top-p <= 1"),
    ({"seed": "1.5"}, "seed", "Expected seed to be an integer. Received: seed=\"1.5\""),
    ({"seed": "lucky"}, "seed", "Expected seed to be an integer"),
    ({"stop-text": "a\\q"}, "stop", "unknown escape \\q in the stop"),
    ({"stop-text": "a\\"}, "stop", "ends in a lone backslash"),
    ({"stop-text": "\u20ac"}, "stop", "has characters not in the vocabulary: \"\u20ac\", so it can never be generated"),
    ({"argmax": True, "temperature": "0.8"}, "temperature", "argmax takes the most likely character and does not use temperature"),
    ({"argmax": True, "seed": "3"}, "seed", "argmax takes the most likely character and does not use seed"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_each_field_refuses_what_the_cli_refuses(fields, field, message, narrow, browser, serve):
    """A bad value is shown beside its field, and nothing is generated; the same fields corrected
    generate (the errors go)."""
    page, errors, _ = _open(browser, serve(narrow[2]))
    _fill(page, prime="ROMEO:", length=50, seed="" if "argmax" in fields else 1)
    for name, value in fields.items():
        if name == "argmax":
            page.check("#argmax")
        elif name == "unknown":
            page.select_option("#unknown", value)
        else:
            page.fill(f"#{name}", value)
    _refused(page, field, message)
    assert page.get_attribute(f"#{'stop-text' if field == 'stop' else field}", "aria-invalid") == "true"
    for name in fields:
        if name == "argmax":
            page.uncheck("#argmax")
        elif name == "unknown":
            page.select_option("#unknown", "auto")
        else:
            page.fill(f"#{name}", "" if name != "prime" else "ROMEO:")
    page.click("#generate")
    _wait_done(page)
    assert page.text_content("#output").startswith("ROMEO:") and page.text_content(f"#{field}-error") == ""
    assert not errors
    page.close()


def test_the_pages_stop_field_ends_the_text_as_charrnn_sample_stop_does(narrow, browser, serve):
    run_dir, model, web = narrow
    from charrnn.portable import generate

    full = generate(model, prime="ROMEO:", length=400, seed=3, temperature=1.1)[0]
    stop = _a_stop_in(full[len("ROMEO:"):])
    typed = stop.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    expected, stopped = _stopped(model, full, "ROMEO:", [stop])
    assert stopped == stop and len(expected) < len(full)
    page, errors, _ = _open(browser, serve(web))
    _fill(page, prime="ROMEO:", length=400, seed=3, temperature=1.1, **{"stop-text": typed})
    page.click("#generate")
    _wait_done(page)
    assert page.text_content("#output") == expected and not errors
    assert page.text_content("#status").endswith(f"; ended at the stop {json.dumps(stop)})")
    page.close()


LIBRARY_PAGE = """<!doctype html><meta charset="utf-8"><title>a page of my own</title>
<script src="weights.js"></script><script src="charrnn.js"></script>
<script>
window.run = async (options, streamed) => {
  const model = CharRNN.load(window.CHARRNN_MODEL);
  let called = "";
  const result = await CharRNN.generate(model, options, (text) => { called += text; });
  let iterated = "";
  const stream = CharRNN.textStream(model, streamed);
  for await (const text of stream) iterated += text;
  let refused = null;
  try { CharRNN.textStream(model, {temperature: -1}); } catch (error) { refused = error.errors; }
  return {result, called, iterated, streamSeed: stream.seed, streamStopped: stream.stopped, refused};
};
</script>"""


def test_the_library_in_a_page_of_its_own_writes_portables_text(narrow, browser, serve):
    """charrnn.js imported by another page (not the shipped index.html): generate with a callback,
    textStream as an async iterator, each equal to charrnn.portable's text cut at the stops."""
    run_dir, model, web = narrow
    from charrnn.portable import generate

    (web / "mine.html").write_text(LIBRARY_PAGE, "utf-8")
    full = generate(model, prime="JULIET:", length=500, seed=12, temperature=0.8, top_k=20, num_samples=2)
    stops = [_a_stop_in(full[0][len("JULIET:"):]), "\n\n"]
    expected = [_stopped(model, text, "JULIET:", stops) for text in full]
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve(web) + "mine.html")
    options = {"prime": "JULIET:", "length": 500, "seed": 12, "temperature": 0.8, "topK": 20, "numSamples": 2,
               "stop": stops}
    got = page.evaluate("([options, streamed]) => window.run(options, streamed)",
                        [options, {"prime": "JULIET:", "length": 300, "seed": "12", "temperature": 0.8, "topK": 20}])
    assert got["result"]["texts"] == [text for text, _ in expected]
    assert got["result"]["stopped"] == [stop for _, stop in expected]
    assert got["result"]["stopAt"] == [len(text) if stop else None for text, stop in expected]
    assert got["called"] == "".join(text for text, _ in expected)  # the callback saw every piece
    assert got["result"]["seed"] == "12" and got["streamSeed"] == "12"
    assert got["iterated"] == generate(model, prime="JULIET:", length=300, seed=12, temperature=0.8, top_k=20)[0]
    assert got["refused"] == {"temperature": "Expected temperature > 0. Received: temperature=-1"}
    assert not errors
    page.close()


NODE_SCRIPT = """
const fs = require("fs");
const [folder, optionsJson] = process.argv.slice(1);
const CharRNN = require(folder + "/charrnn.js");
const model = CharRNN.load(CharRNN.parseWeights(fs.readFileSync(folder + "/weights.js", "utf8")));
(async () => {
  const answers = [];
  for (const options of JSON.parse(optionsJson)) {
    const pieces = [];
    let result;
    try {
      result = await CharRNN.generate(model, options, (text, sample) => pieces.push([sample, text]));
    } catch (error) {
      if (error.name !== "OptionsError") throw error;
      answers.push({refused: error.errors, pieces});
      continue;
    }
    let streamed = null;
    if (!model.meta.vocabulary.items && (options.numSamples || 1) === 1) {
      streamed = "";
      for await (const text of CharRNN.textStream(model, options)) streamed += text;
    }
    answers.push({result, pieces, streamed, kernel: model.kernel.name});
  }
  console.log(JSON.stringify(answers));
})().catch((error) => { console.error(error.stack); process.exit(1); });
"""


def _node_generate(web: Path, options: list[dict]) -> list[dict]:
    return json.loads(_node(NODE_SCRIPT, str(web), json.dumps(options)))


def test_the_library_in_node_writes_portables_and_charrnn_samples_text(narrow):
    """Node 20 runs the exported charrnn.js on the exported weights.js: its text for a seed is
    `charrnn sample MODEL.onnx`'s and charrnn.portable's (stops cut by the Python rule)."""
    run_dir, model, web = narrow
    from charrnn.portable import generate

    sampled = CliRunner().invoke(main, ["sample", str(model.path), "--prime", "ROMEO:", "--length", "300", "--seed", "5",
                                        "--temperature", "0.9", "--top-p", "0.9"])
    assert sampled.exit_code == 0, sampled.output
    full = generate(model, prime="", length=600, seed=8, argmax=False, temperature=1.0, num_samples=3)
    stops = [_a_stop_in(full[1]), full[2][100:103], "zz"]
    answers = _node_generate(web, [
        {"prime": "ROMEO:", "length": 300, "seed": 5, "temperature": 0.9, "topP": 0.9},
        {"length": 600, "seed": "8", "numSamples": 3, "stop": stops},
        {"prime": "KING", "length": 80, "argmax": True},
        {"prime": "\u20ac", "length": -1, "topK": 0, "unknown": "error"}])
    plain, stopped, greedy, refused = answers
    assert plain["result"]["texts"] == [sampled.output[:-1]] == generate(model, prime="ROMEO:", length=300, seed=5,
                                                                          temperature=0.9, top_p=0.9)
    assert plain["streamed"] == plain["result"]["texts"][0] and plain["kernel"] == "js"
    expected = [_stopped(model, text, "", stops) for text in full]
    assert stopped["result"]["texts"] == [text for text, _ in expected]
    assert stopped["result"]["stopped"] == [stop for _, stop in expected] and expected[1][1] is not None
    for sample, (text, _) in enumerate(expected):  # the pieces of each sample, in order, make its text
        assert "".join(piece for index, piece in stopped["pieces"] if index == sample) == text
    assert greedy["result"]["texts"] == generate(model, prime="KING", length=80, argmax=True)
    assert greedy["result"]["seed"] is None
    assert refused == {"refused": {"prime": 'the prime has characters not in the vocabulary: "\u20ac"',
                                   "length": "Expected length >= 0. Received: length=-1",
                                   "topK": "Expected top-k >= 1. Received: top-k=0"}, "pieces": []}


def _items_cut_at_stops(model, count: int, prime: str, stops: list, **options) -> tuple[list, list]:
    """charrnn.portable's item draws (draw d is stream d of the seed) cut by `charrnn sample`'s rule
    for an items run's stops (charrnn.items.sampling): an item also ends before the first stop in
    its own characters; the first `count` whole ones, and the stop that ended each (or None)."""
    from charrnn.generation.stops import StopScanner
    from charrnn.portable import generate

    end, cap = model.end_symbol, model.max_item_length
    items, stopped, draw = [], [], 0
    while len(items) < count:
        text = generate(model, prime=end + prime, length=max(1, cap - len(prime) + 1), first_stream=draw, **options)[0]
        draw += 1
        before, found_end, _ = text[len(end + prime):].partition(end)
        scanner = StopScanner(stops)
        kept = scanner.feed(before)
        if scanner.stopped is None and found_end:
            kept += scanner.finish()
        elif scanner.stopped is None:
            continue  # the cap came first: not a whole item
        if prime + kept:
            items.append(prime + kept)
            stopped.append(scanner.stopped)
    return items, stopped


def test_the_library_in_node_refuses_bad_options_and_draws_items(tmp_path):
    lines = [line for line in _corpus(NAMES).splitlines() if line]
    labels = ("boys", "girls")
    run_dir = write_run(tmp_path / "run", sorted(set("".join(lines)) | {"\n"}), "gru", 1, 20, 8, items=True, labels=labels)
    model, web = _export(run_dir, tmp_path)
    from charrnn.portable import sample_items

    never = model.symbols[-1] * 12  # a stop no 24-character item completes: the draws must be drawItem's
    runs = [{"label": "girls", "numSamples": 12, "prime": "a", "temperature": 0.9, "seed": 4},
            {"label": "girls", "numSamples": 12, "prime": "a", "temperature": 0.9, "seed": 4, "stop": never},
            {"label": "boys", "numSamples": 10, "temperature": 1.1, "seed": 6, "stop": ["an", "e"]}]
    out = _node(f"""const fs = require("fs"); const C = require({json.dumps(str(web / "charrnn.js"))});
        const model = C.load(C.parseWeights(fs.readFileSync({json.dumps(str(web / "weights.js"))}, "utf8")));
        const refusals = [];
        for (const options of [{{}}, {{label: "cats"}}, {{label: "boys", length: 0}}, {{label: "boys", stop: "a\\n"}},
                               {{label: "boys", numSamples: 0, colour: 1}}]) {{
          try {{ C.checkOptions(model, options); refusals.push(null); }} catch (error) {{ refusals.push(error.errors); }}
        }}
        Promise.all({json.dumps(runs)}.map((options) => C.generate(model, options)))
          .then((results) => console.log(JSON.stringify({{refusals, results}})));""")
    answer = json.loads(out)
    plain, unstopped, stopped = answer["results"]
    assert plain["items"] == sample_items(model, 12, prime="a", temperature=0.9, seed=4, label="girls")
    assert plain["draws"] >= 12 and "stopped" not in plain
    assert unstopped["items"] == plain["items"] and unstopped["stopped"] == [None] * 12
    items, stops = _items_cut_at_stops(model, 10, "", ["an", "e"], temperature=1.1, seed=6, label="boys")
    assert stopped["items"] == items and stopped["stopped"] == stops and None in stops and set(stops) - {None}
    none, unknown, no_room, newline, several = answer["refusals"]
    assert none == {"label": "this model is labelled: give a label, one of: boys, girls"}
    assert unknown == {"label": 'this model has no label "cats"; its labels are: boys, girls'}
    assert no_room == {"length": "length 0 leaves no room for an item; give at least 1"}
    assert newline == {"stop": 'the stop "a\\n" holds a newline, which ends every item: an item never holds one'}
    assert set(several) == {"numSamples", "colour"}


def _docs_example(language: str) -> str:
    """The `language` example of docs/export.md's "charrnn.js as a library" section."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text("utf-8")
    section = text[text.index("### `charrnn.js` as a library"):]
    return re.search(rf"^```{language}\n(.*?)^```", section, re.S | re.M).group(1)


def test_the_docs_library_examples_run_in_a_page_and_in_node(narrow, browser, serve, tmp_path):
    """docs/export.md's two examples, as written: the page's text is portable's cut at its stop,
    and Node prints portable's text for its seed, then three texts."""
    run_dir, model, web = narrow
    from charrnn.portable import generate

    page_example = _docs_example("html")
    assert len(page_example.strip().splitlines()) <= 11  # "a ten-line example"
    (web / "example.html").write_text(page_example, "utf-8")
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    full = generate(model, prime="ROMEO:", length=300, temperature=0.8, top_k=20, seed=1)[0]
    expected, stopped = _stopped(model, full, "ROMEO:", ["\n\n"])
    with page.expect_console_message(lambda message: message.text.startswith("seed "), timeout=60_000) as logged:
        page.goto(serve(web) + "example.html")
    assert logged.value.text == f"seed 1, ended at {'null' if stopped is None else stopped}"
    assert page.text_content("#out") == expected and not errors
    page.close()
    node_example = _docs_example("js")
    assert len(node_example.strip().splitlines()) <= 11
    (tmp_path / "site").symlink_to(web, target_is_directory=True)
    out = _node(node_example, cwd=tmp_path)
    assert out.startswith(generate(model, prime="ROMEO:", length=300, seed=1)[0])
    texts = [_stopped(model, text, "", ["\n\n"])[0] for text in generate(model, length=200, seed=7, num_samples=3)]
    shown = _node("console.log(JSON.parse(process.argv[1]))", json.dumps(texts))  # console.log's form of them
    assert out == generate(model, prime="ROMEO:", length=300, seed=1)[0] + shown


def test_the_page_reads_an_unseen_prime_character_by_the_one_rule(narrow, browser, serve):
    """A prime character the model never saw is skipped (this model has no unknown symbol), as
    charrnn.portable and `charrnn sample` read it; the prime is shown as typed."""
    _, model, web = narrow
    from charrnn.portable import generate

    page, errors, _ = _open(browser, serve(web))
    _fill(page, prime="ROM\u20acEO:", length=120, seed=4)
    page.click("#generate")
    _wait_done(page)
    expected = generate(model, prime="ROM\u20acEO:", length=120, seed=4)[0]
    assert page.text_content("#output") == expected and expected.startswith("ROM\u20acEO:") and not errors
    assert expected[len("ROM\u20acEO:"):] == generate(model, prime="ROMEO:", length=120, seed=4)[0][len("ROMEO:"):]
    page.close()
