"""The TensorFlow-free runtime does what the CLI does with a model file: `charrnn score`, `classify`,
`sample --stop/--rank` and `serve` on an exported .onnx file, each run in a subprocess where
TensorFlow cannot be imported, checked against the same commands on the run directory (with
TensorFlow) and against charrnn.portable's own text; and a command that needs TensorFlow, where
it is not installed, names the extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main

from .conftest import first_stop, require
from .export_runs import write_run
from .test_export import BLOCK_TENSORFLOW, NAMES, PORTABLE_CLI, SHAKESPEARE, _corpus, _onnx_model

SCORE_NATS = 1e-4  # |onnxruntime's log-probability - charrnn score RUN's|, nats per text (measured: 9e-5 over 1,500 characters)
LABELS = ("verse", "prose", "notes")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(charrnn.__file__).parents[1]),
                                                                    os.environ.get("PYTHONPATH")]))}


def portable_cli(*args) -> subprocess.CompletedProcess:
    """`charrnn ARGS` in a subprocess where TensorFlow (and Keras) cannot be imported."""
    return subprocess.run([sys.executable, "-c", PORTABLE_CLI, *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=300)


def _close(found: float, expected: float) -> bool:
    return abs(found - expected) <= SCORE_NATS + 1e-7 * abs(expected)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(run directory, its .onnx file) of a stream run, a labelled stream run and a labelled items run."""
    shakespeare = _corpus(SHAKESPEARE)
    names = [line for line in _corpus(NAMES).splitlines() if line]
    folder = tmp_path_factory.mktemp("portable-cli")
    runs = {"stream": write_run(folder / "stream", sorted(set(shakespeare)), "lstm", 2, 16, 8),
            "labelled": write_run(folder / "labelled", sorted(set(shakespeare)), "gru", 1, 8, 4, labels=LABELS),
            "items": write_run(folder / "items", sorted(set("".join(names)) | {"\n"}), "lstm", 1, 16, 8, items=True,
                               labels=("boys", "girls"))}
    found = {}
    for name, run in runs.items():
        (folder / name / "onnx").mkdir()
        found[name] = (run, _onnx_model(run, folder / name / "onnx").path)
    texts = folder / "texts.txt"
    texts.write_text(shakespeare[-3000:-1200] + "\n\u00a7 an unseen character\nROMEO:\n", "utf-8")
    lines = folder / "names.txt"
    lines.write_text("emma\nolivia\n\nnoah\r\nxq\n", "utf-8")
    return found, texts, lines


def test_score_onnx_gives_charrnn_score_runs_numbers_without_tensorflow(models):
    found, texts, lines = models
    cases = [("stream", [str(texts)], ["--json"]), ("stream", [str(texts)], ["--lines", "--json", "--unknown", "skip"]),
             ("labelled", [str(texts), str(lines)], ["--label", "prose", "--json", "--encoding", "utf-8"]),
             ("items", [str(lines)], ["--lines", "--label", "girls", "--json"])]
    for name, files, options in cases:
        run, onnx = found[name]
        expected = CliRunner().invoke(main, ["score", str(run), *files, *options])
        assert expected.exit_code == 0, expected.output
        done = portable_cli("score", onnx, *files, *options)
        assert done.returncode == 0, done.stderr[-2000:]
        want, got = json.loads(expected.stdout), json.loads(done.stdout)
        assert got["run"] == str(onnx) and len(got["results"]) == len(want["results"]) > 0
        for row, wanted in zip(got["results"], want["results"]):
            assert {key: value for key, value in row.items() if key not in ("log_prob", "nats_per_char", "bits_per_char")} \
                == {key: value for key, value in wanted.items() if key not in ("log_prob", "nats_per_char", "bits_per_char")}
            assert _close(row["log_prob"], wanted["log_prob"]), (name, row, wanted)
    # the table, sorted, as for a run directory (the figures to the digits shown)
    run, onnx = found["items"]
    expected = CliRunner().invoke(main, ["score", str(run), str(lines), "--lines", "--label", "boys", "--sort"])
    done = portable_cli("score", onnx, lines, "--lines", "--label", "boys", "--sort")
    assert done.returncode == 0 and done.stdout == expected.stdout and done.stdout.count("\n") == 4, done.stderr
    # the one text rule: an unseen character is skipped and counted, or refused under --unknown error
    done = portable_cli("score", found["stream"][1], texts)
    assert done.returncode == 0 and "1 character(s) outside the model's vocabulary: 1 skipped" in done.stderr
    done = portable_cli("score", found["stream"][1], texts, "--unknown", "error")
    assert done.returncode == 1 and done.stderr.startswith("Error: characters not in this model's vocabulary: '\u00a7'")
    done = portable_cli("score", found["labelled"][1], texts)
    assert done.returncode == 2 and "is labelled: give a label (--label), one of: verse, prose, notes" in done.stderr


def test_classify_onnx_ranks_the_labels_as_classify_run_does_without_tensorflow(models):
    found, texts, lines = models
    for name, options in (("labelled", [str(texts), "--lines"]), ("items", [str(lines), "--lines"])):
        run, onnx = found[name]
        expected = CliRunner().invoke(main, ["classify", str(run), *options, "--json"])
        assert expected.exit_code == 0, expected.output
        done = portable_cli("classify", onnx, *options, "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        want = [json.loads(line) for line in expected.stdout.splitlines()]
        got = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(got) == len(want) > 2
        for row, wanted in zip(got, want):
            assert (row["file"], row["line"], row["chars"], row["unknown"], row["skipped"]) == \
                (wanted["file"], wanted["line"], wanted["chars"], wanted["unknown"], wanted["skipped"])
            if abs(list(wanted["scores"].values())[0] - list(wanted["scores"].values())[1]) > 1e-5:
                assert row["label"] == wanted["label"] and list(row["scores"]) == list(wanted["scores"])
            for label, nats in wanted["scores"].items():
                assert abs(row["scores"][label] - nats) * row["chars"] <= SCORE_NATS + 1e-7 * nats * row["chars"]
    done = portable_cli("classify", found["stream"][1], texts)
    assert done.returncode == 2 and "was trained without labels, so it has nothing to classify by" in done.stderr


def test_sample_onnx_stops_and_ranks_without_tensorflow(models):
    from charrnn.portable import PortableModel, generate, sample_items
    from charrnn.portable.scoring import PortableScorer

    found, _, _ = models
    model = PortableModel(found["stream"][1])
    options = dict(prime="KING:", length=300, temperature=0.9, seed=7)
    texts = generate(model, num_samples=4, **options)
    stop = next(text[30:32] for text in texts if "\n" not in text[30:32])
    cut = [first_stop(text[5:], [stop, "\n\n"]) for text in texts]
    assert cut[0][1] == stop  # the first stream meets it
    common = ["--prime", "KING:", "--length", "300", "-t", "0.9", "--seed", "7", "--stop", stop, "--stop", "\\n\\n"]
    done = portable_cli("sample", model.path, *common)  # one stream, written as it is generated
    assert done.returncode == 0 and done.stdout == "KING:" + cut[0][0] + "\n", done.stderr
    done = portable_cli("sample", model.path, *common, "--num-samples", "4", "--json")
    assert done.returncode == 0, done.stderr
    samples = json.loads(done.stdout)["samples"]
    assert [sample["text"] for sample in samples] == ["KING:" + text for text, _ in cut]
    assert [sample["stopped"] for sample in samples] == [where for _, where in cut]
    assert [sample["stop_at"] for sample in samples] == [None if where is None else 5 + len(text) for text, where in cut]
    # --rank: most likely first, each with the log-probability `charrnn score` gives its text
    done = portable_cli("sample", model.path, *common, "--num-samples", "4", "--json", "--rank")
    assert done.returncode == 0, done.stderr
    ranked = json.loads(done.stdout)["samples"]
    assert sorted(sample["text"] for sample in ranked) == sorted(sample["text"] for sample in samples)
    assert [sample["nats_per_char"] for sample in ranked] == sorted(sample["nats_per_char"] for sample in ranked)
    run_scores = charrnn.score(found["stream"][0], [sample["text"] for sample in ranked])
    assert all(_close(sample["log_prob"], score["log_prob"]) for sample, score in zip(ranked, run_scores))
    done = portable_cli("sample", model.path, *common, "--num-samples", "4", "--rank")
    assert done.returncode == 0 and done.stdout == "\n".join(sample["text"] + "\n" for sample in ranked), done.stderr
    # items, under two labels: each item ends before its first stop, then --rank orders them
    items = PortableModel(found["items"][1])
    drawn = {label: sample_items(items, 5, seed=3, label=label) for label in ("boys", "girls")}
    stop = next(text[1:3] for text in drawn["boys"] if len(text) > 3)
    expected = [(label, first_stop(text, [stop])) for label in ("boys", "girls") for text in drawn[label]]
    done = portable_cli("sample", items.path, "--label", "boys", "--label", "girls", "--num-samples", "5",
                        "--seed", "3", "--stop", stop)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(f"{label}\t{text}\n" for label, (text, _) in expected)
    done = portable_cli("sample", items.path, "--label", "boys", "--label", "girls", "--num-samples", "5",
                        "--seed", "3", "--stop", stop, "--rank", "--json")
    rows = json.loads(done.stdout)["items"]
    assert sorted((row["label"], row["text"], row["stopped"]) for row in rows) == \
        sorted((label, text, where) for label, (text, where) in expected)
    scores = PortableScorer(items).score([row["text"] for row in rows], label=[row["label"] for row in rows])
    assert [row["log_prob"] for row in rows] == [score["log_prob"] for score in scores]
    assert [row["nats_per_char"] for row in rows] == sorted(row["nats_per_char"] for row in rows)
    # what an .onnx file cannot do is refused, naming what can
    for args, code, message in ((["--beam", "2"], 2, "--beam needs a run directory"),
                                (["--novel"], 2, "--novel needs a run directory"),
                                (["--stop", "\\n", "--label", "boys"], 2, "holds a newline, which ends every item"),
                                (["--stop", "\u00a7", "--label", "boys"], 1,
                                 "has characters not in the vocabulary: '\u00a7', so it can never be generated")):
        done = portable_cli("sample", items.path, *args)
        assert done.returncode == code and message in done.stderr, done.stderr


def test_serve_onnx_serves_portable_text_and_scores_without_tensorflow(models):
    from concurrent.futures import ThreadPoolExecutor

    from charrnn.portable import PortableModel, generate
    from charrnn.portable.scoring import PortableScorer

    from .test_serve import Server, _events

    found, _, _ = models
    model = PortableModel(found["labelled"][1])
    server = Server(model.path, "--max-streams", "8", launcher=("-c", PORTABLE_CLI), env=_env())
    try:
        assert f"serving {model.path} on http://127.0.0.1:{server.port} (float32 weights on the onnxruntime loop" \
            in server.lines[-1]
        # several requests at once, batched together: each gets `charrnn sample MODEL.onnx`'s text for its seed
        requests = [{"prime": "KING:", "length": 90, "seed": seed, "num_samples": count, "temperature": 0.8,
                     "label": label, **knobs}
                    for seed, count, label, knobs in ((1, 3, "verse", {}), (2, 1, "prose", {"top_k": 5}),
                                                      (3, 2, "notes", {"top_p": 0.9}), (4, 4, "verse", {}))]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda body: server.request("POST", "/generate", body), requests))
        for body, (status, answer) in zip(requests, answers):
            assert status == 200, answer
            options = {key: value for key, value in body.items() if key != "label"}
            assert answer["texts"] == generate(model, **options, label=body["label"]), body
        status, health = server.request("GET", "/health")
        assert status == 200 and health["peak_streams"] > 4  # the requests shared the batch
        # a stream with stops: the pieces as generated, cut where `charrnn sample --stop` cuts
        texts = generate(model, prime="A", length=200, seed=9, label="prose", num_samples=2)
        stop = texts[0][40:42]
        query = urllib.parse.urlencode({"prime": "A", "length": 200, "seed": 9, "label": "prose", "num_samples": 2,
                                        "stop": stop})
        status, text = server.request("GET", f"/stream?{query}")
        events = _events(text)
        assert status == 200 and events[0] == ("start", {"seed": 9, "num_samples": 2})
        pieces = [data["texts"] for name, data in events if name == "message"]
        streamed = ["".join(piece[sample] for piece in pieces) for sample in range(2)]
        cut = [first_stop(text[1:], [stop]) for text in texts]
        assert streamed == ["A" + text for text, _ in cut] and len(pieces) > 3
        assert events[-1] == ("done", {"seed": 9, "stopped": [where for _, where in cut],
                                       "stop_at": [None if where is None else 1 + len(text) for text, where in cut]})
        # POST /score: `charrnn score`'s numbers, from the same file
        status, answer = server.request("POST", "/score", {"texts": ["ROMEO: hark", "x"], "label": "notes"})
        assert status == 200
        expected = PortableScorer(model).score(["ROMEO: hark", "x"], label="notes")
        assert answer["scores"] == expected
        assert all(_close(row["log_prob"], run_row["log_prob"]) for row, run_row in
                   zip(answer["scores"], charrnn.score(found["labelled"][0], ["ROMEO: hark", "x"], label="notes")))
        # the limits and refusals of a run directory's server, the page, /info
        status, answer = server.request("POST", "/generate", {"length": 10 ** 6, "label": "verse"})
        assert status == 400 and answer["field"] == "length"
        status, answer = server.request("POST", "/generate", {"length": 5})
        assert status == 400 and answer["field"] == "label" and "verse, prose, notes" in answer["error"]
        status, answer = server.request("POST", "/score", {"texts": ["a"], "label": "poems"})
        assert status == 400 and answer["field"] == "label"
        status, page = server.request("GET", "/")
        assert status == 200 and "<html" in page and "const ITEMS = false;" in page
        status, info = server.request("GET", "/info")
        assert status == 200 and info["model"]["label_names"] == list(LABELS) and info["format"] == "onnx"
    finally:
        code = server.stop()
    assert code == 0, "".join(server.lines)
    assert "Traceback" not in "".join(server.lines) and "characters served" in server.lines[-1]
    done = portable_cli("serve", model.path, "--precision", "bfloat16")
    assert done.returncode == 2 and "--precision needs a run directory" in done.stderr


NOT_INSTALLED = """
import sys

class NotInstalled:  # as if TensorFlow and Keras were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from charrnn.cli.main import main
main(sys.argv[1:], prog_name="charrnn")
"""


def test_a_command_that_needs_tensorflow_names_the_extra_where_it_is_not_installed(models, tmp_path):
    found, texts, _ = models
    run, onnx = found["stream"]
    for args in (["train", "tinyshakespeare", "--out", tmp_path / "run"], ["sample", run], ["score", run, texts],
                 ["export", run, "--format", "onnx"], ["serve", run, "--port", "0"]):
        done = subprocess.run([sys.executable, "-c", NOT_INSTALLED, *map(str, args)], capture_output=True, text=True,
                              env=_env(), timeout=300)
        assert done.returncode == 1 and done.stdout == "", done.stderr
        assert done.stderr == f'Error: charrnn {args[0]} needs TensorFlow: pip install "charrnn[train]"\n'
    assert not (tmp_path / "run").exists()
    done = subprocess.run([sys.executable, "-c", NOT_INSTALLED, "score", str(onnx), str(texts), "--unknown", "skip"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0 and done.stdout.endswith(f"\t{texts}\n"), done.stderr
