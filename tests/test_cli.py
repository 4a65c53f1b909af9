import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from charrnn.cli import main

from .conftest import TINY_OPTIONS


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(arg) for arg in args], input=input)


def test_help_and_version():
    result = invoke("--help")
    assert result.exit_code == 0 and "train" in result.output and "sample" in result.output
    for command in ("train", "sample", "eval", "info", "corpus", "demo", "forecast", "bench"):
        assert invoke(command, "--help").exit_code == 0


def test_help_does_not_import_tensorflow():
    code = "import sys; from charrnn.cli import main; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_run):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "empty.txt").write_text("")
    (folder / "short.txt").write_text("too short")
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
    (folder / "existing").mkdir()
    (folder / "existing" / "config.json").write_text("{}")
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
    (["train", "{f}/ok.txt", "--resume"], 2, "--resume needs --out DIR"),
    (["train", "{f}/ok.txt", "--out", "{f}/o4", "--resume", "--force"], 2, "contradict"),
    (["train", "{f}/ok.txt", "--out", "{f}/a_file"], 1, "is a file, not a folder"),
    (["train", "{f}/ok.txt", "--out", "{f}/existing", "--seq-length", "10"], 1, "already holds a run"),
    (["train", "{f}/ok.txt", "--out", "{f}/nowhere", "--resume"], 1, "no such run directory"),
    (["train"], 2, "Missing argument 'CORPUS...'"),
    (["sample", "{f}/nope"], 1, "Error: no such run directory"),
    (["sample", "{f}/not_a_run"], 1, "is not a charrnn run (no config.json)"),
    (["sample", "{f}/partial_run"], 1, "partial: model.keras is missing"),
    (["sample", "{f}/corrupt_run"], 1, "corrupt or not a Keras model"),
    (["sample", "{f}/a_file"], 1, "is a file, not a run directory"),
    (["sample", "{run}", "--temperature", "0"], 2, "Invalid value for '--temperature'"),
    (["sample", "{run}", "--temperature", "-1"], 2, "Invalid value for '--temperature'"),
    (["sample", "{run}", "--top-k", "0"], 2, "Invalid value for '--top-k'"),
    (["sample", "{run}", "--top-p", "0"], 2, "Invalid value for '--top-p'"),
    (["sample", "{run}", "--top-p", "1.5"], 2, "Invalid value for '--top-p'"),
    (["sample", "{run}", "--length", "-1"], 2, "Invalid value for '--length'"),
    (["sample", "{run}", "--num-samples", "0"], 2, "Invalid value for '--num-samples'"),
    (["sample", "{run}", "--prime", "QXZ"], 1, "the prime has characters not in the vocabulary: 'Q', 'X', 'Z'"),
    (["eval", "{run}", "{f}/missing.txt"], 1, "no such file or corpus"),
    (["eval", "{run}", "{f}/latin.txt", "--encoding", "latin-1"], 1, "characters not in the vocabulary"),
    (["info", "{f}/nope"], 1, "no such run directory"),
    (["inspect", "{run}", "{f}/ok.txt", "--layer", "1"], 2, "--layer picks the layer of --cell; give --cell too"),
    (["corpus", "get", "nope"], 1, "no such file or corpus: nope"),
    (["demo", "forecast", "nope"], 2, "unknown demo 'nope'"),
    (["forecast", "train", "{f}/missing.csv", "--column", "x"], 1, "no such file"),
    (["forecast", "predict", "{f}/not_a_run", "{f}/ok.txt"], 1, "is not a charrnn forecast run"),
]


@pytest.mark.parametrize("args,code,message", BAD_INPUTS, ids=[" ".join(case[0])[:60] for case in BAD_INPUTS])
def test_bad_input_gives_one_clear_line(files, tiny_run, args, code, message):
    fill = lambda text: text.replace("{f}", str(files)).replace("{run}", str(tiny_run))  # noqa: E731
    result = invoke(*map(fill, args))
    assert result.exit_code == code, result.output
    assert fill(message) in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    if code == 1:
        assert result.output.strip().splitlines()[-1].startswith("Error: ")


def test_train_sample_eval_info(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    options = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_OPTIONS.items()]
    result = invoke("train", tiny_corpus, "--out", out, "--max-steps", 10, "--quiet", *options)
    assert result.exit_code == 0, result.output
    sample = invoke("sample", out, "--length", 50, "--seed", 3, "--prime", "All:")
    assert sample.exit_code == 0 and sample.output.startswith("All:") and len(sample.output) == 55
    assert invoke("sample", out, "--length", 50, "--seed", 3, "--prime", "All:").output == sample.output
    many = invoke("sample", out, "--length", 20, "--num-samples", 3, "--seed", 1)
    assert many.exit_code == 0 and many.output.count("\n\n") >= 2
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
