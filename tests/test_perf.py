"""The training benchmark (every interval, the slow-interval check) and the precision default."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn import hardware
from charrnn.training import precision
from charrnn.tools import bench
from charrnn.tools.bench import slow_intervals, steady_median, train_intervals
from charrnn.cli.main import main

from .conftest import TINY_OPTIONS

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_slow_intervals_flags_half_speed_but_not_noise_or_the_first():
    # the first interval builds the graphs: slow, never flagged, left out of the median
    assert slow_intervals([9_000, 30_000, 28_000, 15_600, 31_000, 15_601]) == [4, 6]
    assert slow_intervals([9_000, 30_000, 22_000, 36_000, 27_000]) == []  # +/-30% is noise
    assert steady_median([9_000, 30_000, 20_000, 40_000]) == 30_000
    assert slow_intervals([12_000]) == []


def test_train_intervals_reads_every_interval_of_a_real_run(tiny_corpus):
    options = {key: value for key, value in TINY_OPTIONS.items() if key != "eval_every"}
    result = train_intervals(str(tiny_corpus), steps=6, eval_every=2, roof=True, **options)
    assert result["steps"] == 6 and len(result["intervals"]) == 3
    # the roofline: achieved = FLOPs per character x chars/s, against the roof in the precision that ran
    flops = bench.flops_per_char(result["config"]["vocab_size"], "lstm", 1, TINY_OPTIONS["units"], TINY_OPTIONS["embedding_dim"])
    assert result["flops_per_char"] == flops
    assert result["gflops"] == pytest.approx(result["median_chars_per_s"] * flops / 1e9, rel=1e-3)
    assert result["roof_precision"] == ("bfloat16" if result["precision"] == "mixed_bfloat16" else "float32")
    assert result["roof_gflops"] > 0
    assert result["roof_share"] == pytest.approx(result["gflops"] / result["roof_gflops"], rel=2e-3)
    assert all(rate > 0 for rate in result["intervals"])
    assert result["median_chars_per_s"] == pytest.approx(steady_median(result["intervals"]), abs=0.1)
    assert result["precision"] in ("float32", "mixed_bfloat16") and np.isfinite(result["val_loss"])
    assert result["config"]["units"] == TINY_OPTIONS["units"] and result["config"]["seq_length"] == 20


def test_flop_counts_match_a_hand_count():
    # 1 x LSTM(2), embedding 3, 5 symbols. Forward: gates 8 x (3 + 2) = 40 multiply-adds, head
    # 2 x 5 = 10: 100 FLOPs; training is 3 x that (backward ~ 2 x forward)
    assert bench.flops_per_char(5, "lstm", layers=1, units=2, embedding_dim=3) == 300
    # 2 x GRU(2): layer 1 6 x (3 + 2) = 30, layer 2 6 x (2 + 2) = 24, head 10: 64 multiply-adds
    assert bench.flops_per_char(5, "gru", layers=2, units=2, embedding_dim=3) == 3 * 2 * 64
    # sampling: layer 1's input part is a table row, so per step 8 x 2 (recurrent) + head 2 x 5
    assert bench.sample_flops_per_char(5, "lstm", layers=1, units=2) == 2 * (16 + 10)
    # 2 layers: layer 1 recurrent 16, layer 2 input 16 + recurrent 16, head 10
    assert bench.sample_flops_per_char(5, "lstm", layers=2, units=2) == 2 * (16 + 16 + 16 + 10)
    assert bench.sample_shapes(5, 64, "lstm", 2, 2) == [(64, 2, 16), (64, 2, 13)]
    assert bench.train_shapes(5, 64, 100, "lstm", 2, 2, 3) == [(64, 5, 8), (64, 4, 8), (6400, 2, 5)]
    # the reference model: about 5.2 MFLOP per trained character, 1.6 per sampled one
    assert bench.flops_per_char(65) == pytest.approx(5.21e6, rel=1e-3)
    assert bench.sample_flops_per_char(65) == pytest.approx(1.606e6, rel=1e-3)


def test_roofline_is_the_rate_over_the_shapes_roof(monkeypatch):
    rates = {("float32", (4, 8, 16)): 10.0, ("float32", (2, 8, 8)): 20.0,
             ("bfloat16", (4, 8, 16)): 40.0, ("bfloat16", (2, 8, 8)): 5.0}
    monkeypatch.setattr(bench, "roof_gflops", lambda shapes, dtype: rates[dtype, tuple(shapes[0])])
    shapes = [(4, 8, 16), (2, 8, 8)]  # 1024 and 256 FLOPs
    float32 = bench.roofline(1e9, 10.0, shapes, "float32")  # 10 GFLOP/s achieved
    assert float32["roof_gflops"] == pytest.approx(1280 / (1024 / 10 + 256 / 20), rel=1e-3)
    assert float32["gflops"] == 10.0 and float32["roof_share"] == pytest.approx(10 / float32["roof_gflops"], rel=1e-3)
    # bf16: each shape at the faster of its bf16 and float32 rates
    bf16 = bench.roofline(1e9, 10.0, shapes, "bfloat16")
    assert bf16["roof_gflops"] == pytest.approx(1280 / (1024 / 40 + 256 / 20), rel=1e-3)
    assert bf16["roof_precision"] == "bfloat16"


def test_bench_train_refuses_fewer_than_two_intervals():
    result = CliRunner().invoke(main, ["bench", "train", "--steps", "50", "--eval-every", "50"])
    assert result.exit_code == 2 and "fewer than two intervals" in result.output


@pytest.mark.bench
def test_train_speed_script_prints_its_table():
    done = subprocess.run([sys.executable, str(BENCH / "train_speed.py"), "--rounds", "1", "--steps", "4",
                           "--eval-every", "2", "--precision", "float32"], capture_output=True, text=True, timeout=600)
    # 2 intervals of 2 steps: the second is the only judged one, so it cannot be flagged slow
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("charrnn float32"))
    assert float(row.split()[2].replace(",", "")) > 0 and "[" in row
    assert row.split()[1] in ("float32[onednn]", "float32[chunked]")  # the kernel that trained is named


# ------------------------------------------------------------------ the precision default

def test_cpu_bf16_units_reads_the_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile amx_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert hardware.cpu_bf16_units(info) == ("amx_bf16", "avx512_bf16")
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert hardware.cpu_bf16_units(info) == ()
    assert hardware.cpu_bf16_units(tmp_path / "absent") == ()


def _train(tiny_corpus, out, **options):
    lines = []
    charrnn.train(tiny_corpus, out, max_steps=2, progress=False, log=lines.append, **{**TINY_OPTIONS, **options})
    recorded = json.loads((out / "config.json").read_text())["train"]["precision"]
    return recorded, [line for line in lines if line.startswith("precision:")]


@pytest.mark.parametrize("units,expected", [(("amx_bf16",), "mixed_bfloat16"), ((), "float32")])
def test_auto_precision_follows_the_cpu_and_says_so(tmp_path, tiny_corpus, monkeypatch, units, expected):
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx2", "fma", *units})
    recorded, lines = _train(tiny_corpus, tmp_path / "run")
    assert recorded == expected  # config.json holds the concrete precision, never "auto"
    assert len(lines) == 1 and lines[0].startswith(f"precision: {expected} (")
    assert ("has no bf16 matrix units" in lines[0]) == (not units)


def test_explicit_precision_and_other_cells_keep_float32_on_a_bf16_cpu(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx2", "fma", "amx_bf16"})
    assert _train(tiny_corpus, tmp_path / "forced", precision="float32") == ("float32", [])
    recorded, lines = _train(tiny_corpus, tmp_path / "gru", cell="gru")
    assert recorded == "float32" and "fused CPU LSTM" in lines[0]


def test_resume_keeps_the_precision_the_run_started_with(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx2", "fma", "amx_bf16"})
    _train(tiny_corpus, tmp_path / "run")
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx2", "fma"})  # e.g. resumed on an older CPU
    lines = []
    charrnn.train(tiny_corpus, tmp_path / "run", resume=True, max_steps=4, progress=False, log=lines.append,
                  **TINY_OPTIONS)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == "mixed_bfloat16"
    assert not [line for line in lines if line.startswith("precision:")]


def test_cli_precision_choices(tmp_path, tiny_corpus):
    options = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_OPTIONS.items()]
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "run"), "--max-steps", "2",
                                       "--precision", "float32", "--quiet", *options])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "bad"), "--precision", "fp8"])
    assert result.exit_code == 2 and "fp8" in result.output
