"""Every CPU class end to end: its flags and its kernels faked together, then the real choices made.

`charrnn.hardware.cpu_flags` is the one source of CPU facts, so faking it fakes the class for the
precision default, the float32 kernel rule and the native sampling loop alike. Whether oneDNN
builds its LSTM for a type is the kernel side of a class: `native.proves_itself` answers as that
class's CPU would, and `native_lstm_layer` is replaced by the same LSTM math on TensorFlow's path,
so a class whose kernel this CPU cannot run still trains here, through the code path it takes there.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

import charrnn
from charrnn import hardware, native
from charrnn.models import fused_lstm
from charrnn.native import sampling
from charrnn.training import precision

from .conftest import TINY_OPTIONS

BASE = {"fpu", "sse2", "avx", "avx2", "fma"}
AVX512 = {"avx512f", "avx512bw", "avx512vl"}
# class: (flags, machine, oneDNN builds bf16 / float32 LSTM there, auto precision, float32 kernel, sampling loop)
CLASSES = {
    "amx": (BASE | AVX512 | {"avx512_bf16", "amx_tile", "amx_bf16"}, "x86_64", (True, True),
            "mixed_bfloat16", "chunked", None),
    "avx512_bf16": (BASE | AVX512 | {"avx512_bf16"}, "x86_64", (True, True), "mixed_bfloat16", "onednn", None),
    "avx512": (BASE | AVX512, "x86_64", (True, True), "float32", "chunked",
               "this CPU has no AMX tiles and lacks avx512_bf16"),
    "avx2": (BASE, "x86_64", (False, True), "float32", "chunked",
             "this CPU has no AMX tiles and lacks avx512_bf16, avx512bw, avx512f"),
    "arm64": ({"fp", "asimd", "bf16"}, "aarch64", (False, False), "float32", "chunked",
              "it is built only on Linux x86-64"),
}


@pytest.fixture(params=list(CLASSES))
def cpu(request, monkeypatch):
    """Fakes one CPU class (flags, platform, which oneDNN LSTM types build) and returns its row."""
    flags, machine, (bf16, float32), *_ = row = CLASSES[request.param]
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: set(flags))
    monkeypatch.setattr(hardware.platform, "machine", lambda: machine)
    monkeypatch.setattr(native.platform, "machine", lambda: machine)
    monkeypatch.delenv("CHARRNN_LSTM_FLOAT32", raising=False)
    native.reset()
    sampling.reset()
    builds = {"bfloat16": bf16, "float32": float32}
    monkeypatch.setattr(native, "lstm_ops", lambda log=None: object() if machine == "x86_64" else None)
    monkeypatch.setattr(native, "proves_itself", lambda ops, dtype, shapes, log=None: builds[dtype])
    calls = []

    def same_math(sequence, kernel, recurrent, bias, ops, training=True, dtype=None, threads=0):
        calls.append(dtype.name)
        steps = sequence.shape[0]  # in chunks, as the chunked path runs: one long chunk compiles for minutes
        sizes = [fused_lstm.CHUNK] * (steps // fused_lstm.CHUNK) + ([steps % fused_lstm.CHUNK] if steps % fused_lstm.CHUNK else [])
        chunks = fused_lstm.lstm_layer(tf.split(sequence, sizes, axis=0), kernel, recurrent, bias)
        return tf.concat(chunks, axis=0)

    monkeypatch.setattr(fused_lstm, "native_lstm_layer", same_math)
    # the native sampling loop is not built here (a compile of minutes that could not run on this CPU)
    monkeypatch.setattr(sampling, "loop_library", lambda: sampling._loaded.update(library=None, reason="faked CPU"))
    yield request.param, row, calls
    native.reset()
    sampling.reset()


def test_each_class_picks_its_precision_kernels_and_sampling_loop(cpu, tmp_path, tiny_corpus):
    name, (_, _, (bf16, _), expected_precision, float32_kernel, sampling_reason), calls = cpu
    assert hardware.cpu_class() == name and name in hardware.CLASSES
    assert precision.choose_precision("lstm", None)[0] == expected_precision
    assert native.float32_kernel()[0] == (float32_kernel == "onednn")
    assert sampling.why_not_native() == sampling_reason
    lines = []
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=2, progress=False, log=lines.append, **TINY_OPTIONS)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"]
    assert recorded == expected_precision
    assert [line for line in lines if line.startswith("precision:")][0].startswith(f"precision: {expected_precision} (")
    # which kernel trained: oneDNN's in bf16 where bf16 is chosen, in float32 where the class picks it
    kernel_type = "bfloat16" if expected_precision == "mixed_bfloat16" else "float32"
    runs_onednn = bf16 if kernel_type == "bfloat16" else float32_kernel == "onednn"
    assert set(calls) == ({kernel_type} if runs_onednn else set())
    text = charrnn.Sampler(tmp_path / "run").generate(length=12, seed=1)[0]
    assert len(text) == 12 and set(text) <= set(tiny_corpus.read_text())


def test_forced_bf16_says_its_cost_only_without_bf16_units(cpu, tmp_path, tiny_corpus):
    name, (_, _, (bf16, _), expected_precision, *_), calls = cpu
    lines = []
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=2, progress=False, log=lines.append,
                  precision="mixed_bfloat16", **TINY_OPTIONS)
    notes = [line for line in lines if line.startswith("precision:")]
    assert set(calls) == ({"bfloat16"} if bf16 else set())  # oneDNN's op where it builds, else the chunked path
    if expected_precision == "mixed_bfloat16":  # bf16 units: bf16 is what auto picks, nothing to warn of
        assert notes == [] and precision.evaluation_precision("mixed_bfloat16") == "mixed_bfloat16"
    else:
        assert len(notes) == 1 and f"{precision.SLOW_BF16_FACTOR:.1f}x slower than float32" in notes[0]
        assert "--precision float32 is faster here" in notes[0]
        assert precision.evaluation_precision("mixed_bfloat16") == "float32"


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_validation_runs_in_float32_where_bf16_is_emulated(tmp_path, tiny_corpus, monkeypatch):
    """On a CPU without bf16 units a forced bf16 run is validated by a float32 copy of the model,
    whose score is evaluate()'s float32 score of the same weights."""
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: set(BASE))
    options = {**TINY_OPTIONS, "precision": "mixed_bfloat16"}
    charrnn.train(tiny_corpus, tmp_path / "run", max_steps=6, progress=False, log=lambda line: None, **options)
    run = charrnn.load(tmp_path / "run")
    from charrnn import runs
    from charrnn.data.corpus import load_corpus, split

    val = split(load_corpus([tiny_corpus]).ids, run.train_config.val_fraction)[1]
    (tmp_path / "val.txt").write_text(run.vocab.decode(val), encoding="utf-8")
    best = min(row["val_loss"] for row in runs.read_metrics(tmp_path / "run" / runs.METRICS))
    # float32 on both sides: the bf16 tolerance the bf16-validated runs need (2e-2) is not needed here
    assert charrnn.evaluate(run, tmp_path / "val.txt")["loss"] == pytest.approx(best, abs=1e-4)


def test_describe_names_model_class_and_flags(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel name\t: AMD EPYC 7B12\n"
                    "flags\t\t: fpu sse2 avx avx2 fma\n")
    assert hardware.cpu_model(info) == "AMD EPYC 7B12, family 23"
    assert hardware.cpu_flags(info) == {"fpu", "sse2", "avx", "avx2", "fma"}
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx2", "fma"})
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    assert "(class avx2; avx2 fma)" in hardware.describe()


# ------------------------------------------------------------------ what a time budget buys

def test_budget_defaults_follow_the_compute_a_second_buys():
    from charrnn.config import (LONG_BUDGET_LSTM, LONG_BUDGET_TRAIN, SHORT_SEQ_LENGTH, SMALL_BUDGET_UNITS,
                                with_budget_defaults)

    # a tuned CPU (scale 1): 90 s keeps the defaults, 600 s widens; a third of its compute: 90 s
    # narrows to SMALL_BUDGET_UNITS, 600 s keeps 256 units in short windows
    assert with_budget_defaults({}, {"time_budget": 90}) == ({}, {"time_budget": 90})
    assert with_budget_defaults({}, {"time_budget": 30}) == ({}, {"time_budget": 30})  # measured on slower CPUs only
    assert with_budget_defaults({}, {"time_budget": 600})[0] == LONG_BUDGET_LSTM
    assert with_budget_defaults({}, {"time_budget": 90}, scale=0.35) == ({"units": SMALL_BUDGET_UNITS},
                                                                         {"time_budget": 90})
    assert with_budget_defaults({}, {"time_budget": 600}, scale=0.35) == (
        {}, {"time_budget": 600, "seq_length": SHORT_SEQ_LENGTH})
    # given values win; other cells keep their units; a faster CPU counts as a tuned one
    assert with_budget_defaults({"units": 256}, {"time_budget": 90}, scale=0.35)[0] == {"units": 256}
    assert with_budget_defaults({"cell": "gru"}, {"time_budget": 90}, scale=0.35)[0] == {"cell": "gru"}
    assert with_budget_defaults({}, {"time_budget": 600, "seq_length": 80}, scale=0.35)[1]["seq_length"] == 80
    assert with_budget_defaults({}, {"time_budget": 600}, scale=3.0) == (LONG_BUDGET_LSTM,
                                                                         {"time_budget": 600, **LONG_BUDGET_TRAIN})


def test_the_budget_probe_measures_once_and_a_pinned_scale_is_checked(monkeypatch):
    from charrnn.training import budget

    monkeypatch.delenv(budget.SCALE_ENV, raising=False)
    budget._measured.clear()
    probes = []
    monkeypatch.setattr(hardware, "matmul_gflops", lambda seconds=1.0: probes.append(seconds) or 80.0)
    assert budget.compute_scale() == (80.0 / budget.TUNED_ROOF_GFLOPS,
                                      "matmul roof 80 GFLOP/s against the tuned CPUs' 250")
    budget.compute_scale()
    assert probes == [0.5]  # measured once per process, for about half a second
    budget._measured.clear()
    budget._measured.clear()
    monkeypatch.setattr(hardware, "matmul_gflops", lambda seconds=1.0: 210.0)  # the tuned Xeon on a slow day
    assert budget.compute_scale()[0] == 1.0
    budget._measured.clear()
    monkeypatch.setenv(budget.SCALE_ENV, "2")
    assert budget.compute_scale() == (1.0, "CHARRNN_BUDGET_SCALE=2")
    monkeypatch.setenv(budget.SCALE_ENV, "fast")
    with pytest.raises(ValueError, match="CHARRNN_BUDGET_SCALE must be a positive number, not 'fast'"):
        budget.compute_scale()


def test_train_says_what_its_budget_bought(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setenv("CHARRNN_BUDGET_SCALE", "0.3")
    lines = []
    options = {key: value for key, value in TINY_OPTIONS.items() if key != "units"}
    charrnn.train(tiny_corpus, tmp_path / "run", time_budget=100, max_steps=2, progress=False, log=lines.append,
                  **options)
    assert charrnn.load(tmp_path / "run").model_config.units == 128
    assert "budget: a second here buys 0.30 s of the CPUs the defaults were tuned on (CHARRNN_BUDGET_SCALE=0.3)" in lines
    options_line = next(line for line in lines if line.startswith("options: "))
    assert "units=128 (budget)" in options_line and "layers=1 (given)" in options_line
    assert "time_budget=100 (given)" in options_line
    assert json.loads((tmp_path / "run" / "config.json").read_text())["origins"]["units"] == "budget"
    monkeypatch.setenv("CHARRNN_BUDGET_SCALE", "-1")
    from click.testing import CliRunner

    from charrnn.cli.main import main

    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "bad"), "--time-budget", "5"])
    assert result.exit_code == 1 and "Error: CHARRNN_BUDGET_SCALE must be a positive number, not '-1'" in result.output
    assert not (tmp_path / "bad").exists()


def test_a_gflops_probe_is_positive():
    from charrnn.hardware import matmul_gflops

    assert np.isfinite(matmul_gflops(m=64, k=64, n=64, seconds=0.05)) and matmul_gflops(64, 64, 64, 0.05) > 0


def test_a_bad_float32_kernel_setting_is_one_error_line(tmp_path, tiny_corpus, monkeypatch):
    from click.testing import CliRunner

    from charrnn.cli.main import main

    monkeypatch.setenv("CHARRNN_LSTM_FLOAT32", "bogus")
    result = CliRunner().invoke(main, ["train", str(tiny_corpus), "--out", str(tmp_path / "run"), "--max-steps", "2"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "Error: CHARRNN_LSTM_FLOAT32 must be 'onednn' or 'chunked', not 'bogus'"
    assert not (tmp_path / "run").exists()


def test_info_hardware_reports_the_roofs_at_the_reference_shapes(monkeypatch):
    """`charrnn info --hardware`'s roof lines: the reference model's FLOPs per character and the
    tf.matmul roof at its shapes, float32 and bf16 (per shape the faster of the two)."""
    from charrnn.tools import bench, hardware_report

    seen = []

    def fake_roof(shapes, dtype, seconds=0.3):
        seen.append((tuple(shapes[0]), dtype))
        return {"float32": 100.0, "bfloat16": 50.0 if shapes[0][0] == 1 else 300.0}[dtype]

    monkeypatch.setattr(hardware, "roof_gflops", fake_roof)
    roofs = hardware_report.reference_roofs()
    assert set(roofs) == {"training", "sampling_1", "sampling_64"}
    assert roofs["training"]["flops_per_char"] == bench.flops_per_char(65)
    assert roofs["sampling_64"]["flops_per_char"] == bench.sample_flops_per_char(65)
    assert roofs["training"]["float32_gflops"] == 100.0 and roofs["training"]["bfloat16_gflops"] == 300.0
    assert roofs["sampling_1"]["bfloat16_gflops"] == 100.0  # one row: bf16 slower than float32 in tf.matmul
    assert {shape for shape, _ in seen} == set(bench.train_shapes(65) + bench.sample_shapes(65, 1) + bench.sample_shapes(65, 64))
    report = {"machine": "m", "training": {"precision": "float32", "why": "w", "lstm_kernels": {}},
              "sampling": {"loop": "xla-float32", "why": "w"}, "budget": {"scale": 1.0, "why": "w"},
              "native": {"cache": "c"}, "roof": roofs}
    lines = [line for line in hardware_report.format_report(report) if line.startswith("roof")]
    assert len(lines) == 3 and "sampling, 1 stream " in lines[1] and "5.21 MFLOP/char" in lines[0]
    assert "100.0 GFLOP/s float32, 300.0 bf16" in lines[0]
