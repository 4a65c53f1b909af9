"""tf.distribute: mirrored replicas on CPU devices and two workers on localhost."""

import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TRAIN = """
import json, sys, charrnn
options = json.loads(sys.argv[3])
result = charrnn.train(sys.argv[1], sys.argv[2], progress=False, log=lambda line: None, **options)
rows = charrnn.load(sys.argv[2], require_model=False).metrics() if result.run_dir.exists() else []
print(json.dumps({"steps": result.steps, "val_loss": result.last_metrics["val_loss"],
                  "train_loss": result.last_metrics["train_loss"], "curve": [row["val_loss"] for row in rows]}))
"""
# No dropout: its masks are drawn per replica, so with it the curves differ by more than summation order.
OPTIONS = dict(layers=1, units=32, embedding_dim=16, seq_length=20, batch_size=8, eval_every=6, max_steps=12,
               seed=3, lr_schedule="constant", dropout=0.0)


def train_in_process(corpus, out, env=None, **options):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", TRAIN, str(corpus), str(out), json.dumps({**OPTIONS, **options})],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(process, timeout=300):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_two_cpu_replicas_follow_the_single_device_curve(tmp_path, tiny_corpus):
    single = result_of(train_in_process(tiny_corpus, tmp_path / "single"))
    mirrored = result_of(train_in_process(tiny_corpus, tmp_path / "mirrored", distribute="mirrored", replicas=2))
    assert single["steps"] == mirrored["steps"] == 12
    # same global batch and seed: the same curve (every evaluation) up to float summation order
    assert len(single["curve"]) == len(mirrored["curve"]) == 2
    assert mirrored["curve"] == pytest.approx(single["curve"], abs=2e-3)
    assert mirrored["train_loss"] == pytest.approx(single["train_loss"], abs=2e-3)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_two_workers_on_localhost_follow_the_single_device_curve(tmp_path, tiny_corpus):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = [train_in_process(tiny_corpus, tmp_path / "run", distribute="multi-worker",
                                env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
               for i in range(2)]
    results = [result_of(worker, timeout=400) for worker in workers]
    single = result_of(train_in_process(tiny_corpus, tmp_path / "single"))
    assert results[0]["steps"] == results[1]["steps"] == single["steps"] == 12
    assert results[0]["val_loss"] == pytest.approx(results[1]["val_loss"], abs=1e-6)
    # the two workers split the same global batch: the single-device curve, up to summation order
    assert len(results[0]["curve"]) == len(single["curve"]) == 2
    assert results[0]["curve"] == pytest.approx(single["curve"], abs=2e-3)
    assert results[0]["train_loss"] == pytest.approx(single["train_loss"], abs=2e-3)
    assert (tmp_path / "run" / "model.keras").is_file()  # written by the chief (worker 0) alone


def test_multi_worker_needs_tf_config(tmp_path, tiny_corpus):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    process = subprocess.run([sys.executable, "-m", "charrnn", "train", str(tiny_corpus), "--out", str(tmp_path / "r"),
                              "--distribute", "multi-worker", "--max-steps", "1"], capture_output=True, text=True, env=env)
    assert process.returncode == 1 and "TF_CONFIG, which is not set" in process.stderr
