"""Crash safety, signals, full disks, odd scripts and big corpora."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn import atomic, runs
from charrnn.cli.main import main

from .conftest import TINY_OPTIONS

QUIET = dict(progress=False, log=lambda line: None)
CLI_OPTIONS = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_OPTIONS.items()]


def start_training(corpus, out, *extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "charrnn", "train", str(corpus), "--out", str(out), "--quiet",
                             *CLI_OPTIONS, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_sigkill_at_any_moment_leaves_a_loadable_run(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    process = start_training(tiny_corpus, out, "--max-steps", "100000", "--checkpoint-every", "1",
                             "--eval-every", "3")
    rng = random.Random(0)
    for kill in range(4):
        wait_for(out / runs.MODEL)
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        run = runs.load(out)  # config, vocab and model.keras are whole
        run.model()
        for line in (out / runs.METRICS).read_text().splitlines():
            json.loads(line)
        weights, _, state = runs.load_checkpoint(out)
        assert state["step"] >= 1 and all(np.isfinite(w).all() for w in weights)
        if kill < 3:
            process = start_training(tiny_corpus, out, "--resume", "--max-steps", "100000")
    steps_before = runs.load_checkpoint(out)[2]["step"]
    done = start_training(tiny_corpus, out, "--resume", "--max-steps", str(steps_before + 2))
    assert done.wait() == 0, done.stderr.read()
    assert runs.load_checkpoint(out)[2]["step"] == steps_before + 2


@pytest.mark.slow
@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_sigterm_saves_and_says_how_to_resume(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    process = start_training(tiny_corpus, out, "--max-steps", "100000", "--eval-every", "5")
    wait_for(out / runs.MODEL)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert "Stopped by SIGTERM" in stderr and f"--out {out} --resume" in stderr
    assert "Traceback" not in stderr
    assert runs.load_checkpoint(out)[2]["step"] > 0


def test_full_disk_during_training_keeps_previous_checkpoint(tmp_path, tiny_corpus, monkeypatch):
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=4, **QUIET, **dict(TINY_OPTIONS, eval_every=4))
    before = (tmp_path / "run" / runs.CHECKPOINT).read_bytes()
    real_replace = os.replace

    def replace(source, target):
        if str(target).endswith(runs.CHECKPOINT):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace)
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "run"), "--resume",
                                       "--max-steps", "8", "--quiet"])
    assert result.exit_code == 1
    assert "Error: could not write" in result.output and "No space left on device; the previous version" in result.output
    assert (tmp_path / "run" / runs.CHECKPOINT).read_bytes() == before
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_unwritable_output_folder(tmp_path, tiny_corpus, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "ro" / "run")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: cannot create {tmp_path / 'ro' / 'run'}: Permission denied"


def test_read_only_output_folder(tmp_path, tiny_corpus, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()  # exists and is empty, but nothing can be written in it

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(out), *CLI_OPTIONS, "--max-steps", "2"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: cannot write in {out}: Read-only file system"


def test_hundreds_of_symbols_train_and_sample(tmp_path):
    rng = np.random.default_rng(0)
    syllables = [chr(0xAC00 + index * 7) for index in range(400)]  # 400 Hangul syllables
    words = ["".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(3000)]
    text = " ".join(words).replace("  ", "\n")
    (tmp_path / "korean.txt").write_text(text, encoding="utf-8")
    result = charrnn.train(tmp_path / "korean.txt", tmp_path / "run", max_steps=6, **QUIET, **TINY_OPTIONS)
    vocab = charrnn.load(result.run_dir).vocab
    assert vocab.size > 300 and vocab.dtype == np.uint16
    prime = words[0]
    sampled = charrnn.Sampler(result.run_dir).generate(prime=prime, length=30, seed=0)[0]
    assert sampled.startswith(prime) and len(sampled) == len(prime) + 30
    assert set(sampled) <= set(vocab.symbols)


def test_bytes_encoding_trains_on_a_binary_file(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    (tmp_path / "blob.bin").write_bytes(data)
    result = charrnn.train(tmp_path / "blob.bin", tmp_path / "run", max_steps=3, encoding="bytes", **QUIET,
                           **TINY_OPTIONS)
    assert charrnn.load(result.run_dir).vocab.size == len(set(data))


BIG_CORPUS = """
import json, sys, charrnn
result = charrnn.train(sys.argv[1], sys.argv[2], max_steps=3, eval_every=10**9, max_val_chars=10000,
                       progress=False, log=lambda line: None)
peak_kb = int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))
print(json.dumps({"steps": result.steps, "peak_mb": peak_kb / 1024}))
"""


@pytest.mark.slow
@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_200mb_corpus_streams_with_bounded_memory(tmp_path):
    corpus = tmp_path / "big.txt"
    block = ("".join(chr(33 + (index * 7919) % 90) for index in range(9973)) + "\n") * 100
    with open(corpus, "w") as handle:
        for _ in range(200_000_000 // len(block) + 1):
            handle.write(block)
    assert corpus.stat().st_size >= 200_000_000
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", BIG_CORPUS, str(corpus), str(tmp_path / "run")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["steps"] == 3
    assert report["peak_mb"] < 1536, report
