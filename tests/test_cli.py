import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import charrnn
from charrnn import runs
from charrnn.cli.main import main

from .conftest import TINY_OPTIONS, require


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(arg) for arg in args], input=input)


def test_help_and_version():
    result = invoke("--help")
    assert result.exit_code == 0 and "train" in result.output and "sample" in result.output
    for command in ("train", "sample", "eval", "info", "corpus", "demo", "forecast", "bench"):
        assert invoke(command, "--help").exit_code == 0
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip().endswith(f"version {charrnn.__version__}"), result.output
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", charrnn.__version__)


RUN_CLI_AND_LIST_MODULES = """
import sys
from charrnn.cli.main import main
try:
    main(sys.argv[1:], prog_name="charrnn")
except SystemExit as done:
    assert done.code in (0, None), done.code
print("loaded:", sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras")))
"""


@pytest.mark.parametrize("args", [["--help"], ["corpus", "list"], ["train", "--help"], ["sample", "--help"]])
def test_help_and_corpus_list_do_not_import_tensorflow(args):
    done = subprocess.run([sys.executable, "-c", RUN_CLI_AND_LIST_MODULES, *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "loaded: []"


def test_no_module_imports_another_that_imports_it_back():
    """No import cycle among charrnn's modules, at import time or inside functions."""
    graph = import_graph()
    for start in graph:
        path = find_cycle(graph, start)
        assert path is None, " -> ".join(path)
    assert "cli.common" in graph["cli.extra"] and "cli.main" not in graph["cli.extra"]


def import_graph() -> dict:
    """charrnn's modules (dotted, relative to the package: "data.vocab", "cli", ...; the package root,
    charrnn/__init__.py, is "charrnn") and the charrnn modules each imports (absolute or relative
    imports; a name imported from a package counts as that submodule when it is one, else as the
    package itself, so `from charrnn import __version__` is an edge to the root)."""
    import ast
    from pathlib import Path

    import charrnn

    package = Path(charrnn.__file__).parent
    def dotted(path):
        parts = list(path.relative_to(package).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or ROOT

    files = {dotted(path): path for path in package.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        here = ([] if name == ROOT else name.split(".")) if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Dict):  # a lazy-import table ({"train": "charrnn.training.train"}) is edges too
                edges.update(value.value.removeprefix("charrnn.") for value in node.values
                             if isinstance(value, ast.Constant) and isinstance(value.value, str)
                             and value.value.startswith("charrnn."))
                continue
            if isinstance(node, ast.Import):
                modules = [alias.name.removeprefix("charrnn").lstrip(".") or ROOT for alias in node.names
                           if alias.name == "charrnn" or alias.name.startswith("charrnn.")]
                edges.update(module for module in modules if module in files)
                continue
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "charrnn" or (node.module or "").startswith("charrnn."):
                module = node.module.removeprefix("charrnn").lstrip(".")
            else:
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}".lstrip(".")
                edges.add(submodule if submodule in files else module or ROOT)
        graph[name] = {edge for edge in edges if edge in files and edge != name}
    return graph


ROOT = "charrnn"  # the package root's name in `import_graph`


def test_import_graph_sees_the_package_root():
    """The root is a node: it imports the API's modules, and an import of a name it defines (not a
    submodule) is an edge to it, so a module that imports the root back shows as a cycle."""
    graph = import_graph()
    assert {"training.train", "runs", "config"} <= graph[ROOT]
    assert ROOT not in graph["training.train"] and "_version" in graph["training.train"]
    assert find_cycle({ROOT: {"training.train"}, "training.train": {ROOT}}, ROOT) == [ROOT, "training.train", ROOT]


def find_cycle(graph: dict, start: str, path: tuple = ()):
    if start in path:
        return [*path[path.index(start):], start]
    for target in sorted(graph[start]):
        found = find_cycle(graph, target, (*path, start))
        if found:
            return found
    return None


def test_cli_extra_can_be_imported_first():
    done = subprocess.run([sys.executable, "-c", "import charrnn.cli.extra"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_run):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "empty.txt").write_text("")
    (folder / "short.txt").write_text("too short " * 6)  # 54 training characters, 6 validation
    (folder / "latin.txt").write_bytes("caf\u00e9 au lait".encode("latin-1"))
    (folder / "binary.dat").write_bytes(b"\x7fELF\x00\x01\x02")
    (folder / "ok.txt").write_text("hello world, " * 100)
    (folder / "a_file").write_text("x")
    (folder / "not_a_run").mkdir()
    partial = folder / "partial_run"
    partial.mkdir()
    for name in ("config.json", "vocab.json"):
        (partial / name).write_bytes((tiny_run / name).read_bytes())
    corrupt = folder / "corrupt_run"
    corrupt.mkdir()
    for name in ("config.json", "vocab.json", "metrics.jsonl"):
        (corrupt / name).write_bytes((tiny_run / name).read_bytes())
    (corrupt / "model.keras").write_bytes(b"garbage")
    (folder / "series.csv").write_text("x\n" + "".join(f"{value % 7}\n" for value in range(100)))
    (folder / "existing").mkdir()
    (folder / "existing" / "config.json").write_text("{}")
    (folder / "aaaa.txt").write_text("a" * 2000)
    (folder / "mine").mkdir()
    (folder / "mine" / "hello.txt").write_text("my own notes, not the bundled corpus\n")
    listy = folder / "listy_run"  # a config.json whose "model" is a list
    listy.mkdir()
    for name in ("vocab.json", "model.keras"):
        (listy / name).write_bytes((tiny_run / name).read_bytes())
    (listy / "config.json").write_text(json.dumps({**json.loads((tiny_run / "config.json").read_text()), "model": []}))
    return folder


# (arguments, exit code, text that must be in the output); {f} is the folder, {run} the tiny run
BAD_INPUTS = [
    (["train", "{f}/missing.txt"], 1, "Error: no such file or corpus: {f}/missing.txt"),
    (["train", "{f}/empty.txt"], 1, "is empty"),
    (["train", "{f}/short.txt", "--out", "{f}/o1", "--seq-length", "100"], 1, "at least --seq-length + 1 = 101"),
    (["train", "{f}/latin.txt", "--out", "{f}/o2"], 1, "not valid utf-8 at byte 3; pass --encoding bytes"),
    (["train", "{f}/binary.dat", "--out", "{f}/o3"], 1, "looks binary (NUL byte at offset 4)"),
    (["train", "{f}/ok.txt", "--encoding", "klingon"], 1, "unknown encoding 'klingon'"),
    (["train", "{f}/ok.txt", "--units", "0"], 2, "Invalid value for '--units'"),
    (["train", "{f}/ok.txt", "--layers", "-1"], 2, "Invalid value for '--layers'"),
    (["train", "{f}/ok.txt", "--val-fraction", "0"], 2, "Invalid value for '--val-fraction'"),
    (["train", "{f}/ok.txt", "--val-fraction", "1"], 2, "Invalid value for '--val-fraction'"),
    (["train", "{f}/ok.txt", "--dropout", "1"], 2, "Invalid value for '--dropout'"),
    (["train", "{f}/ok.txt", "--learning-rate", "0"], 2, "Invalid value for '--learning-rate'"),
    (["train", "{f}/ok.txt", "--seq-length", "abc"], 2, "Invalid value for '--seq-length'"),
    (["train", "{f}/ok.txt", "--cell", "transformer"], 2, "Invalid value for '--cell'"),
    (["train", "{f}/ok.txt", "--time-budget", "-5"], 2, "Invalid value for '--time-budget'"),
    (["train", "{f}/ok.txt", "--eval-window", "0"], 2, "Invalid value for '--eval-window'"),
    (["train", "{f}/ok.txt", "--resume"], 2, "--resume needs --out DIR"),
    (["train", "{f}/ok.txt", "--out", "{f}/o4", "--resume", "--force"], 2, "contradict"),
    (["train", "{f}/ok.txt", "--out", "{f}/a_file"], 1, "is a file, not a folder"),
    (["train", "{f}/ok.txt", "--out", "{f}/existing", "--seq-length", "10"], 1, "already holds a run"),
    (["train", "{f}/ok.txt", "--out", "{f}/nowhere", "--resume"], 1, "no such run directory"),
    (["train"], 2, "Missing argument 'CORPUS...'"),
    (["train", "{f}/ok.txt", "--seed", "-1"], 2, "Invalid value for '--seed'"),
    (["train", "{f}/ok.txt", "--seed", "5000000000"], 2, "Invalid value for '--seed'"),
    (["train", "{f}/ok.txt", "--epochs", "inf"], 2, "'inf' is not a finite number"),
    (["train", "{f}/ok.txt", "--learning-rate", "nan"], 2, "'nan' is not a finite number"),
    (["train", "{f}/aaaa.txt", "--out", "{f}/o5"], 1, "has only one distinct symbol ('a')"),
    (["sample", "{run}", "--argmax", "--temperature", "0.5"], 2, "--argmax takes the most likely character and does not use --temperature"),
    (["sample", "{run}", "--argmax", "--top-k", "3"], 2, "does not use --top-k"),
    (["sample", "{run}", "--argmax", "--seed", "3"], 2, "does not use --seed"),
    (["sample", "{f}/listy_run"], 1, "has an invalid config or vocabulary"),
    (["plot", "{run}", "--out", "{f}/plot.json"], 1, "charrnn plot writes a PNG; give a path ending in .png"),
    (["inspect", "{run}", "{f}/ok.txt", "--out", "{f}/ok.txt"], 1, "writes an HTML page; give a path ending in .html"),
    (["corpus", "get", "hello", "--dir", "{f}/mine"], 1, "exists and is not corpus 'hello' (its sha256 differs); it is left as it is"),
    (["export", "{run}", "--out", "/proc/charrnn-export"], 1, "could not write the SavedModel to /proc/charrnn-export"),
    (["sample", "{f}/nope"], 1, "Error: no such run directory"),
    (["sample", "{f}/not_a_run"], 1, "is not a charrnn run (no config.json)"),
    (["sample", "{f}/partial_run"], 1, "partial: model.keras is missing"),
    (["sample", "{f}/corrupt_run"], 1, "corrupt or not a Keras model (not a .keras zip archive)"),
    (["sample", "{f}/a_file"], 1, "is a file, not a run directory"),
    (["sample", "{run}", "--temperature", "0"], 2, "Invalid value for '--temperature'"),
    (["sample", "{run}", "--temperature", "-1"], 2, "Invalid value for '--temperature'"),
    (["sample", "{run}", "--top-k", "0"], 2, "Invalid value for '--top-k'"),
    (["sample", "{run}", "--top-p", "0"], 2, "Invalid value for '--top-p'"),
    (["sample", "{run}", "--top-p", "1.5"], 2, "Invalid value for '--top-p'"),
    (["sample", "{run}", "--length", "-1"], 2, "Invalid value for '--length'"),
    (["sample", "{run}", "--num-samples", "0"], 2, "Invalid value for '--num-samples'"),
    (["sample", "{run}", "--prime", "QXZ", "--unknown", "error"], 1, "the prime has characters not in the vocabulary: 'Q', 'X', 'Z'"),
    (["sample", "{run}", "--unknown", "maybe"], 2, "Invalid value for '--unknown'"),
    (["eval", "{run}", "{f}/missing.txt"], 1, "no such file or corpus"),
    (["eval", "{run}", "{f}/latin.txt", "--encoding", "latin-1", "--unknown", "error"], 1,
     "characters not in this model's vocabulary: 'é'"),
    (["eval", "{run}", "{f}/ok.txt", "--window", "0"], 2, "Invalid value for '--window'"),
    (["info", "{f}/nope"], 1, "no such run directory"),
    (["inspect", "{run}", "{f}/ok.txt", "--layer", "1"], 2, "--layer picks the layer of --cell; give --cell too"),
    (["corpus", "get", "nope"], 1, "no such file or corpus: nope"),
    (["demo", "forecast", "nope"], 2, "unknown demo 'nope'"),
    (["forecast", "train", "{f}/missing.csv", "--column", "x"], 1, "no such file"),
    (["forecast", "predict", "{f}/not_a_run", "{f}/ok.txt"], 1, "is not a charrnn forecast run"),
    (["forecast", "train", "{f}/series.csv", "--column", "x", "--out", "{run}"], 1, "already holds a run; pass --force"),
    (["forecast", "train", "{f}/series.csv", "--column", "x", "--out", "{f}/not_a_run/..", "--force"], 1,
     "is not empty and is not a charrnn run"),
]


@pytest.mark.parametrize("args,code,message", BAD_INPUTS, ids=[" ".join(case[0])[:60] for case in BAD_INPUTS])
def test_bad_input_gives_one_clear_line(files, tiny_run, args, code, message):
    fill = lambda text: text.replace("{f}", str(files)).replace("{run}", str(tiny_run))  # noqa: E731
    result = invoke(*map(fill, args))
    assert result.exit_code == code, result.output
    assert fill(message) in result.output
    # click reports an error by exiting; any other exception escaped the command (a traceback)
    assert isinstance(result.exception, SystemExit), result.exc_info
    if code == 1:
        assert result.output.strip().splitlines()[-1].startswith("Error: ")


def test_refused_input_leaves_the_files_as_they_were(files, tiny_run, tiny_corpus, tmp_path):
    # a failed --force keeps the run it would replace: every check runs before the folder is touched
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "vocab.json", "model.keras", "metrics.jsonl"):
        (run / name).write_bytes((tiny_run / name).read_bytes())
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    refused = invoke("train", files / "aaaa.txt", "--out", run, "--force")
    assert refused.exit_code == 1 and "only one distinct symbol" in refused.output
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "hello.txt").write_text("my own notes\n")
    assert invoke("corpus", "get", "hello", "--dir", mine).exit_code == 1
    assert (mine / "hello.txt").read_text() == "my own notes\n"
    page = tmp_path / "text.html"  # a text whose name looks like the report's
    page.write_text(tiny_corpus.read_text()[:300])
    same = invoke("inspect", tiny_run, page, "--out", page)
    assert same.exit_code == 1 and "is the file being inspected" in same.output
    assert page.read_text() == tiny_corpus.read_text()[:300]
    # a metrics line that is valid JSON but not an evaluation is skipped, like a torn line
    with (run / "metrics.jsonl").open("a") as metrics:
        metrics.write("5\n[1, 2]\n{\"step\": 7}\n")
    rows = runs.read_metrics(run / "metrics.jsonl")
    assert rows and all(isinstance(row, dict) for row in rows)
    assert invoke("info", run).exit_code == 0
    require("matplotlib")
    plotted = invoke("plot", run, "--out", tmp_path / "loss.png")
    assert plotted.exit_code == 0, plotted.output


def test_train_sample_eval_info(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    options = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_OPTIONS.items()]
    result = invoke("train", tiny_corpus, "--out", out, "--max-steps", 10, "--quiet", *options)
    assert result.exit_code == 0, result.output
    sample = invoke("sample", out, "--length", 50, "--seed", 3, "--prime", "All:")
    assert sample.exit_code == 0 and sample.output.startswith("All:") and len(sample.output) == 55
    assert invoke("sample", out, "--length", 50, "--seed", 3, "--prime", "All:").output == sample.output
    many = invoke("sample", out, "--length", 20, "--num-samples", 3, "--seed", 1)
    texts = charrnn.Sampler(out).generate(length=20, num_samples=3, seed=1)
    assert many.exit_code == 0 and len(texts) == 3
    assert many.output == "\n".join(text + "\n" for text in texts)  # each sample, a blank line between
    scored = json.loads(invoke("eval", out, tiny_corpus, "--json").output)
    assert scored["bpc"] > 0 and scored["chars"] == len(tiny_corpus.read_text())
    info = json.loads(invoke("info", out, "--json").output)
    assert info["parameters"] > 0 and info["best_val_loss"] is not None and info["vocab_size"] > 5
    assert "best" in invoke("info", out).output
    resumed = invoke("train", tiny_corpus, "--out", out, "--resume", "--max-steps", 20, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(invoke("info", out, "--json").output)["evaluations"] == 2


def test_corpus_list_and_get(tmp_path):
    listed = json.loads(invoke("corpus", "list", "--json").output)
    assert {row["name"] for row in listed["corpora"]} >= {"tinyshakespeare", "hello"}
    got = invoke("corpus", "get", "hello", "--dir", tmp_path)
    assert got.exit_code == 0 and (tmp_path / "hello.txt").read_text().startswith("hello")


def test_console_script_reports_errors_without_traceback(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "charrnn", "sample", str(tmp_path / "nope")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "Error: no such run directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_forecast_train_replaces_a_run_only_with_force(tmp_path, files):
    out = tmp_path / "forecast"
    first = invoke("forecast", "train", files / "series.csv", "--column", "x", "--out", out, "--epochs", 2)
    assert first.exit_code == 0, first.output
    saved = (out / "model.keras").read_bytes()
    again = invoke("forecast", "train", files / "series.csv", "--column", "x", "--out", out, "--epochs", 2, "--seed", 5)
    assert again.exit_code == 1 and "already holds a run; pass --force" in again.output
    assert (out / "model.keras").read_bytes() == saved
    forced = invoke("forecast", "train", files / "series.csv", "--column", "x", "--out", out, "--epochs", 2, "--seed", 5,
                    "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "config.json").read_text())["kind"] == "forecast"


def test_a_bug_is_reported_as_one_and_its_traceback_saved(monkeypatch, tmp_path):
    import charrnn.data.corpus

    def broken_manifest():
        raise ValueError("boom inside charrnn")

    monkeypatch.setattr(charrnn.data.corpus, "manifest", broken_manifest)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # let tempfile see the new TMPDIR
    result = invoke("corpus", "list")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    line = result.output.strip()
    assert line.startswith("Error: unexpected ValueError: boom inside charrnn. This is a bug in charrnn;")
    saved = Path(line.rsplit(" ", 1)[-1])
    assert saved.parent == tmp_path and "Traceback" in saved.read_text() and "broken_manifest" in saved.read_text()


def test_config_errors_are_a_users_mistake_and_a_value_error():
    from charrnn.errors import CharRNNError, ConfigError

    with pytest.raises(ConfigError, match="Received: batch_size=0") as raised:
        charrnn.TrainConfig(batch_size=0)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, CharRNNError)


def test_bytes_run_samples_raw_bytes_and_takes_a_utf8_prime(tmp_path):
    corpus_file = tmp_path / "umlauts.txt"
    corpus_file.write_text("Grüße aus Köln, naïve café!\n" * 60, encoding="utf-8")
    out = tmp_path / "bytes_run"
    charrnn.train(corpus_file, out, max_steps=10, encoding="bytes", progress=False, log=lambda line: None,
                  **TINY_OPTIONS)
    primed = invoke("sample", out, "--prime", "Grüße, Köln", "--length", 0)
    assert primed.exit_code == 0, primed.output
    assert primed.stdout_bytes == "Grüße, Köln\n".encode("utf-8")  # not 'GrÃ¼Ã\x9fe'
    sampled = invoke("sample", out, "--prime", "Köln", "--length", 40, "--seed", 2)
    symbols = charrnn.Sampler(out).generate(length=40, seed=2, prime="Köln".encode().decode("latin-1"))[0]
    assert sampled.stdout_bytes == symbols.encode("latin-1") + b"\n"  # one raw byte per symbol
    assert sampled.stdout_bytes.startswith("Köln".encode("utf-8"))
    # JSON and tables have no raw bytes: they show a bytes run's symbols as the UTF-8 text they spell
    as_json = invoke("sample", out, "--prime", "Köln", "--length", 40, "--seed", 2, "--json")
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.stdout)["samples"][0]["text"]
    assert shown == symbols.encode("latin-1").decode("utf-8", "replace") and shown.startswith("Köln")
    lines = tmp_path / "lines.txt"
    lines.write_text("Grüße aus Köln\ncafé\n", encoding="utf-8")
    scored = invoke("score", out, lines, "--lines")
    assert scored.exit_code == 0, scored.output
    assert [row.split("\t")[-1] for row in scored.stdout.splitlines()] == ["Grüße aus Köln", "café"]
    assert [row.split("\t")[3] for row in scored.stdout.splitlines()] == ["17", "5"]  # bytes scored
    scored_json = json.loads(invoke("score", out, lines, "--lines", "--json").stdout)
    assert [row["text"] for row in scored_json["results"]] == ["Grüße aus Köln", "café"]


TENSORFLOW_LOG_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages)|absl|oneDNN|cuda|cuInit|tensorflow|XLA",
                                 re.IGNORECASE)


def run_console(*args, extra_env=None):
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "CHARRNN_TF_LOGS")}
    return subprocess.run([sys.executable, "-m", "charrnn", *map(str, args)], capture_output=True, text=True,
                          env={**env, **(extra_env or {})}, timeout=600)


def stderr_lines(done) -> list[str]:
    return [line.strip() for line in re.split(r"[\r\n]", done.stderr) if line.strip()]


@pytest.mark.slow
@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_stderr_carries_only_charrnn_lines(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    options = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_OPTIONS.items()]
    trained = run_console("train", tiny_corpus, "--out", out, "--max-steps", 10, *options)
    assert trained.returncode == 0, trained.stderr
    train_lines = stderr_lines(trained)
    ours = re.compile(r"^(train:|precision: |options: |budget: |best val loss |no evaluation finished|sample it with: |"
                      r"Warning: )")
    assert train_lines and all(ours.match(line) for line in train_lines), train_lines
    sampled = run_console("sample", out, "--length", 30, "--seed", 1)
    assert sampled.returncode == 0 and sampled.stderr == "", sampled.stderr
    assert len(sampled.stdout) == 31 and sampled.stdout.endswith("\n")  # 30 characters and a newline
    # the same check sees TensorFlow's lines when they are asked for (so it can fail)
    loud = run_console("--verbose", "sample", out, "--length", 30, "--seed", 1)
    assert loud.returncode == 0 and loud.stdout == sampled.stdout
    assert any(TENSORFLOW_LOG_LINE.search(line) for line in stderr_lines(loud)), loud.stderr


def test_sample_precision_bfloat16(tiny_run):
    args = ("sample", tiny_run, "--length", 60, "--seed", 5, "--num-samples", 2, "--precision", "bfloat16")
    result = invoke(*args)
    texts = charrnn.Sampler(tiny_run, precision="bfloat16").generate(length=60, seed=5, num_samples=2)
    assert result.exit_code == 0 and result.stdout == "\n".join(text + "\n" for text in texts)
    assert invoke(*args).stdout == result.stdout
    beam = invoke("sample", tiny_run, "--beam", 2, "--length", 10, "--precision", "bfloat16")
    assert beam.exit_code == 0, beam.output
    refused = invoke("sample", tiny_run, "--precision", "float16")
    assert refused.exit_code == 2 and "'float16' is not one of 'auto', 'float32', 'bfloat16'" in refused.output
    timed = json.loads(invoke("bench", "sample", "--run", tiny_run, "--length", 20, "--precision", "bfloat16",
                              "--json").output)
    assert timed["precision"] == "bfloat16" and timed["chars_per_s"] > 0
    assert timed["backend"] in ("native-amx-bf16", "native-avx512-bf16", "xla-bf16")
    assert timed["gflops"] == pytest.approx(timed["chars_per_s"] * timed["flops_per_char"] / 1e9, rel=1e-3)
    assert timed["roof_precision"] == ("bfloat16" if timed["backend"].startswith("native") else "float32")
    assert timed["roof_share"] == pytest.approx(timed["gflops"] / timed["roof_gflops"], rel=2e-3)


def test_anneal_shape_options_reach_the_schedule_or_are_refused(tmp_path, tiny_corpus):
    options = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_OPTIONS.items()]
    out = tmp_path / "run"
    result = invoke("train", tiny_corpus, "--out", out, "--max-steps", 8, "--eval-every", 8, "--quiet",
                    "--anneal-fraction", 0.5, "--min-lr-ratio", 0.0, *options)
    assert result.exit_code == 0, result.output
    train = json.loads((out / "config.json").read_text())["train"]
    assert (train["anneal_fraction"], train["min_lr_ratio"]) == (0.5, 0.0)
    # step 8 of 8 is 7/8 through the run: 0.15 x the rate on this schedule (0.72 x on the default one)
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["learning_rate"] < 0.2 * train["learning_rate"]
    for option in ("--anneal-fraction", "--min-lr-ratio"):
        refused = invoke("train", tiny_corpus, "--out", tmp_path / "other", "--lr-schedule", "constant", option, 0.5)
        assert refused.exit_code == 2 and f"{option} shapes the anneal schedule" in refused.output
    assert invoke("train", tiny_corpus, "--out", tmp_path / "bad", "--anneal-fraction", 0).exit_code == 2
