"""`charrnn sweep`: the search space and its seeded draws, refusals before anything starts, the
`on_evaluation` hook of train(), the plot; a local sweep end to end (slow), and (sweep marker) a
sweep across a two-node Ray cluster on localhost and a sweep killed midway and resumed."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from charrnn.cli.main import main
from charrnn.errors import ConfigError
from charrnn.sweep.space import DEFAULT_SPACE, ITEMS_SPACE, load_space, sample_configs
from tests.conftest import require

# A space of tiny GRUs (no native op to build), a report every 10 steps, a short validation
TINY_SPACE = {"cell": "gru", "layers": 1, "units": {"choice": [8, 16]}, "embedding_dim": 8, "seq_length": 16,
              "batch_size": 8, "eval_every": 10, "eval_window": 32, "learning_rate": {"loguniform": [3e-3, 1e-2]}}


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def write_space(tmp_path, space, name="space.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(space), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the space

def test_a_space_file_goes_over_the_default_in_json_and_toml(tmp_path):
    json_file = write_space(tmp_path, {"--units": {"choice": [64]}, "dropout": None, "beta2": 0.95})
    toml_file = tmp_path / "space.toml"
    toml_file.write_text('units = {choice = [64]}\ndropout = {}\nbeta2 = 0.95\n', encoding="utf-8")
    for path in (json_file, toml_file):
        space = load_space(path)
        assert space["units"] == {"choice": [64]} and space["beta2"] == 0.95
        assert "dropout" not in space  # dropped: trials take charrnn train's default
        assert space["learning_rate"] == DEFAULT_SPACE["learning_rate"]  # the rest of the default stays
    assert "seq_length" not in load_space(None, items=True) and load_space(None, items=True) == ITEMS_SPACE


def test_every_searchable_option_is_a_charrnn_train_option():
    """The best trial's command reproduces it only if each option a space sets is one train takes."""
    from charrnn.cli.main import train
    from charrnn.sweep.space import SEARCHABLE

    assert set(SEARCHABLE) <= {param.name for param in train.params}


def test_the_same_seed_draws_the_same_configs_and_another_seed_others():
    space = load_space(None)
    first, again, other = sample_configs(space, 6, 7), sample_configs(space, 6, 7), sample_configs(space, 6, 8)
    assert first == again and first != other
    for config in first:
        assert set(config) == set(space)
        assert config["units"] in DEFAULT_SPACE["units"]["choice"]
        assert 1e-3 <= config["learning_rate"] <= 1e-2 and 0.0 <= config["dropout"] <= 0.4
    assert len({json.dumps(config, sort_keys=True) for config in first}) > 1  # they differ from trial to trial


@pytest.mark.parametrize("space, message", [
    ({"unitz": 3}, "unknown option 'unitz' in the search space"),
    ({"time_budget": 3}, "unknown option 'time_budget'"),
    ({"dropout": {"uniform": [0.5, 0.1]}}, "dropout: the range uniform [0.5, 0.1] cannot be sampled: low must be below high"),
    ({"learning_rate": {"loguniform": [0, 0.1]}}, "cannot be sampled: both bounds must be > 0"),
    ({"units": {"uniform": [64, 128]}}, "units takes whole numbers; uniform draws floats"),
    ({"units": {"choice": []}}, "units: choice needs a non-empty list"),
    ({"dropout": {"choice": [0.1, 1.5]}}, "dropout: 1.5 (in its choice [0.1, 1.5]) is refused"),
    ({"cell": "lsmt"}, "cell: \"lsmt\" is refused"),
    ({"layers": {"normal": [1, 2]}}, "is not a constant or one of"),
])
def test_a_space_that_cannot_be_sampled_is_refused(tmp_path, space, message):
    with pytest.raises(ConfigError) as raised:
        load_space(write_space(tmp_path, space))
    assert message in str(raised.value)


# ---------------------------------------------------------------- refusals: one line, nothing started

def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once closed: nothing listens there


@pytest.mark.parametrize("case", ["unknown key", "bad range", "unreachable", "missing corpus", "RAY_ADDRESS"])
def test_bad_input_is_one_error_line_before_ray_starts(tmp_path, tiny_corpus, monkeypatch, case):
    monkeypatch.setitem(sys.modules, "ray", None)  # had the command reached Ray, it would say Ray is missing
    out = tmp_path / "sweep"
    args = [tiny_corpus, "--trials", 2, "--time-budget-per-trial", 3, "--out", out]
    port = closed_port()
    expected = {
        "unknown key": "Error: unknown option 'unitz' in the search space",
        "bad range": "Error: dropout: the range uniform [0.4, 0.2] cannot be sampled: low must be below high",
        "unreachable": f"Error: no Ray cluster answers at ray://127.0.0.1:{port}: ",
        "missing corpus": "Error: no such file or corpus: ",
        "RAY_ADDRESS": f"Error: no Ray cluster answers at 127.0.0.1:{port}: ",
    }[case]
    if case == "unknown key":
        args += ["--space", write_space(tmp_path, {"unitz": {"choice": [1, 2]}})]
    elif case == "bad range":
        args += ["--space", write_space(tmp_path, {"dropout": {"uniform": [0.4, 0.2]}})]
    elif case == "unreachable":
        args += ["--address", f"ray://127.0.0.1:{port}"]
    elif case == "missing corpus":
        args[0] = tmp_path / "nothing-here.txt"
    else:
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    result = invoke("sweep", *args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.output
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--cpus", 2, "--address", "127.0.0.1:1"], "--cpus sizes the local Ray instance"),
    (["--cpus", 1, "--threads-per-trial", 2], "--threads-per-trial 2 is more than --cpus 1"),
    (["--resume", "--force"], "--resume and --force contradict each other"),
    (["--resume", "--total-time", 60], "--total-time cannot change on --resume"),
    (["--items", "lines", "--space", "ITEMS_SPACE"], "seq_length does not apply to --items lines"),
    (["--address", "somewhere"], "expected ray://HOST:PORT or HOST:PORT"),
])
def test_contradicting_options_are_usage_errors(tmp_path, tiny_corpus, monkeypatch, args, message):
    monkeypatch.setitem(sys.modules, "ray", None)
    args = [write_space(tmp_path, {"seq_length": 16}) if arg == "ITEMS_SPACE" else arg for arg in args]
    result = invoke("sweep", tiny_corpus, "--time-budget-per-trial", 3, "--out", tmp_path / "sweep", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "sweep").exists()


def test_the_budget_per_trial_is_required_and_a_folder_is_not_reused(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    missing = invoke("sweep", tiny_corpus)
    assert missing.exit_code == 2 and "--time-budget-per-trial" in missing.output
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "sweep.json").write_text("{}", encoding="utf-8")
    result = invoke("sweep", tiny_corpus, "--time-budget-per-trial", 3, "--out", taken)
    assert result.exit_code == 1 and "already holds a sweep; continue it with --resume" in result.output
    resumed = invoke("sweep", tiny_corpus, "--time-budget-per-trial", 3, "--out", tmp_path / "none", "--resume")
    assert resumed.exit_code == 1 and "holds no sweep" in resumed.output


def test_the_command_says_so_when_ray_is_missing(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = invoke("sweep", tiny_corpus, "--time-budget-per-trial", 3, "--out", tmp_path / "sweep")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: charrnn sweep needs Ray Tune: pip install 'charrnn[sweep]'"


# ---------------------------------------------------------------- the hook and the plot

def test_train_calls_on_evaluation_with_each_row_it_writes(tmp_path, tiny_corpus):
    import charrnn
    from charrnn import runs

    rows = []
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=25, progress=False, log=lambda line: None,
                  on_evaluation=rows.append, layers=1, units=8, embedding_dim=4, seq_length=10, batch_size=4,
                  eval_every=10)
    written = runs.read_metrics(tmp_path / "run" / runs.METRICS)
    assert [row["step"] for row in rows] == [10, 20, 25]
    assert [{key: value for key, value in row.items() if key != "stopped_by"} for row in rows] == written
    assert [row.get("stopped_by") for row in rows] == [None, None, "max_steps"]  # the last says it ends the run


def test_plot_draws_every_trial_of_a_sweep_folder(tmp_path):
    require("matplotlib")
    folder = tmp_path / "sweep"
    configs = [{"units": 8}, {"units": 16}, {"units": 32}]
    (folder / "trials").mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"format": 1, "configs": configs}), encoding="utf-8")
    for index, loss in enumerate((2.0, 1.5)):  # the third trial never evaluated
        run = folder / "trials" / f"trial-{index:03d}"
        run.mkdir()
        (run / "metrics.jsonl").write_text("".join(json.dumps({"step": step, "elapsed_s": step / 10,
                                                               "val_loss": loss + 1 / step}) + "\n"
                                                   for step in (10, 20, 30)), encoding="utf-8")
    result = invoke("sweep", folder, "--plot")
    assert result.exit_code == 0, result.output
    image = Path(result.output.strip())
    assert image == folder / "curves.png" and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = invoke("sweep", folder, "--plot", "--trials", 3)
    assert refused.exit_code == 2 and "--plot reads a finished sweep's folder; drop --trials" in refused.output
    empty = tmp_path / "empty"
    (empty / "trials").mkdir(parents=True)
    (empty / "sweep.json").write_text(json.dumps({"format": 1, "configs": configs}), encoding="utf-8")
    assert invoke("sweep", empty, "--plot").output.strip() == f"Error: no trial in {empty} has an evaluation to plot yet"


# ---------------------------------------------------------------- real sweeps on Ray

def sweep_cli(*args) -> list[str]:
    return [sys.executable, "-m", "charrnn", "sweep", *map(str, args)]


@pytest.mark.slow
def test_a_local_sweep_ranks_trials_links_the_best_and_survives_a_failing_trial(tmp_path, tiny_corpus):
    require("ray.tune")
    space = {**TINY_SPACE, "seq_length": {"choice": [16, 100_000]}}  # a window longer than the text fails
    out = tmp_path / "sweep"
    loaded = load_space(write_space(tmp_path, space))
    seed = next(seed for seed in range(100)  # one whose 4 draws hold both windows
                if len({config["seq_length"] for config in sample_configs(loaded, 4, seed)}) == 2)
    done = subprocess.run(sweep_cli(tiny_corpus, "--trials", 4, "--seed", seed, "--time-budget-per-trial", 4, "--cpus", 2,
                                    "--space", write_space(tmp_path, space), "--out", out, "--json"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    record = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert record["configs"] == sample_configs(loaded, 4, seed)  # the seed's configs, in trial order
    ranked = summary["ranked"]
    failed = [trial for trial in ranked if trial["config"]["seq_length"] == 100_000]
    trained = [trial for trial in ranked if trial["config"]["seq_length"] == 16]
    assert failed and trained, record["configs"]
    assert all(trial["state"] == "error" and "fewer than one window" in trial["error"] for trial in failed)
    assert all(trial["state"] in ("done", "stopped") and trial["best_val_loss"] for trial in trained)
    losses = [trial["best_val_loss"] for trial in ranked if trial["best_val_loss"] is not None]
    assert losses == sorted(losses) and summary["best"]["trial"] == ranked[0]["trial"]
    assert os.readlink(out / "best") == f"trials/{ranked[0]['trial']}"
    # the best trial is an ordinary run: sampled as it is, and its metrics say its loss
    sampled = invoke("sample", out / "best", "--length", 20, "--seed", 1)
    assert sampled.exit_code == 0 and len(sampled.output) >= 20, sampled.output
    from charrnn import runs

    best_rows = runs.read_metrics(out / "best" / runs.METRICS)
    assert min(row["val_loss"] for row in best_rows) == pytest.approx(summary["best"]["best_val_loss"])
    command = summary["best"]["command"].split()
    assert command[:3] == ["charrnn", "train", str(tiny_corpus)] and "--time-budget" in command
    best_config = ranked[0]["config"]
    assert command[command.index("--units") + 1] == str(best_config["units"])
    assert "fewer than one window" in done.stderr and "ranked by best validation loss" in done.stderr
    # the command's line parses as charrnn train options
    from charrnn.cli.main import train

    train.make_context("train", command[2:], resilient_parsing=False)


@pytest.mark.sweep
def test_a_sweep_runs_across_a_two_node_ray_cluster(tmp_path, tiny_corpus):
    require("ray.tune")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                           "object_store_memory": 80 * 2**20})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        out = tmp_path / "sweep"
        done = subprocess.run(sweep_cli(tiny_corpus, "--trials", 2, "--time-budget-per-trial", 6, "--address",
                                        cluster.address, "--space", write_space(tmp_path, TINY_SPACE), "--out", out,
                                        "--json"), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        # ASHA may stop the worse of the two at a rung; both trained and evaluated
        assert all(trial["state"] in ("done", "stopped") and trial["best_val_loss"] for trial in summary["ranked"]), summary
        # one CPU a node, one a trial, both running at once: one trial on each node
        assert len({trial["node"] for trial in summary["ranked"]}) == 2, summary
        assert f"the Ray cluster at {cluster.address}" in done.stderr
    finally:
        cluster.shutdown()


@pytest.mark.sweep
def test_a_killed_sweep_resumes_and_keeps_its_finished_trials(tmp_path, tiny_corpus):
    require("ray.tune")
    out, space = tmp_path / "sweep", write_space(tmp_path, TINY_SPACE)
    args = (tiny_corpus, "--trials", 3, "--time-budget-per-trial", 5, "--cpus", 1, "--space", space, "--out", out)
    sweep = subprocess.Popen(sweep_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:  # one trial at a time: kill the sweep once the first has finished and the second is training
        deadline = time.monotonic() + 300
        while not ((out / "trials" / "trial-000.done").exists() and (out / "trials" / "trial-001" / "config.json").exists()):
            assert sweep.poll() is None and time.monotonic() < deadline, "the sweep ended or stalled before the kill"
            time.sleep(0.5)
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        sweep.wait()
    first_metrics = (out / "trials" / "trial-000" / "metrics.jsonl").read_bytes()
    assert not (out / "results.json").exists()
    # the options not given are the sweep's own
    resumed = subprocess.run(sweep_cli(tiny_corpus, "--out", out, "--resume", "--json"), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    states = {trial["trial"]: trial["state"] for trial in summary["ranked"]}
    # every trial ran to its end or to ASHA's stop (three trials, one at a time: a worse one may stop at a rung)
    assert states["trial-000"] == "done" and set(states) == {"trial-000", "trial-001", "trial-002"}, summary
    assert {states["trial-001"], states["trial-002"]} <= {"done", "stopped"}, summary
    # the finished trial was kept as it was, not trained again
    assert (out / "trials" / "trial-000" / "metrics.jsonl").read_bytes() == first_metrics
    refused = subprocess.run(sweep_cli(tiny_corpus, "--out", out, "--resume", "--seed", 9), capture_output=True,
                             text=True, timeout=600)
    assert refused.returncode == 2 and "cannot honour seed 9" in refused.stderr


SHOW_THREADS = """
from charrnn.models.char_model import configure_cpu_threads
import tensorflow as tf
print(configure_cpu_threads(1), tf.config.threading.get_intra_op_parallelism_threads())
"""


@pytest.mark.parametrize("share, expected", [("1", "True 1"), ("", f"True {os.cpu_count()}")])
def test_a_trial_trains_with_its_share_of_the_cores(share, expected):
    """CHARRNN_CPU_THREADS (what a sweep sets in each trial) sizes TensorFlow's pool; unset, all cores."""
    env = {**os.environ, "CHARRNN_CPU_THREADS": share}
    done = subprocess.run([sys.executable, "-c", SHOW_THREADS], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected


LIST_HEAVY_MODULES = """
import sys
from charrnn.cli.main import main
try:
    main(["sweep", "--help"], prog_name="charrnn")
except SystemExit as done:
    assert done.code in (0, None), done.code
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "ray")))
"""


def test_sweep_help_imports_neither_tensorflow_nor_ray():
    done = subprocess.run([sys.executable, "-c", LIST_HEAVY_MODULES], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
