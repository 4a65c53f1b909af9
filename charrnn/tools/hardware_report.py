"""`charrnn info --hardware`: what this machine will use for training and sampling, and why.

Every line is decided by the same functions `charrnn train` and `charrnn sample` call (the
precision default, the float32 kernel rule, the oneDNN probe, the sampling loop's checks and the
budget probe), so the report cannot drift from what the commands do.
"""

from __future__ import annotations

import sys


def hardware_report(log=None) -> dict:
    """The decisions this machine makes, each with its reason.

    Args:
        log: where native build status lines go (compiling the kernel, a refusal). Defaults to stderr.

    Returns:
        A dict: "machine", "class", "training" (precision default and each LSTM kernel),
        "sampling" (the loop an LSTM run samples on), "budget" (the compute a second of
        --time-budget buys) and "native" (the kernel cache and the CHARRNN_NATIVE switch).
    """
    import os

    from charrnn import hardware, native
    from charrnn.native import sampling
    from charrnn.training import budget
    from charrnn.training.precision import choose_precision

    log = log or (lambda line: print(f"info: {line}", file=sys.stderr))
    precision, why_precision = choose_precision("lstm", None)
    ops = native.lstm_ops(log)
    kernels = {}
    for dtype in ("float32", "bfloat16"):
        if ops is None:
            kernels[dtype] = {"kernel": "chunked", "why": native.why_not_native() or "the native op did not load"}
            continue
        proven = native.proves_itself(ops, dtype, [(64, 256), (256, 256)], log)
        picked, why = (native.float32_kernel() if dtype == "float32" else
                       (True, "bf16 runs on oneDNN wherever it builds"))
        kernels[dtype] = {"kernel": "onednn" if proven and picked else "chunked",
                          "why": why if proven else f"oneDNN builds no {dtype} LSTM on this CPU"}
    loop = sampling.why_not_native()
    scale, how = budget.compute_scale()
    return {
        "machine": hardware.describe(),
        "class": hardware.cpu_class(),
        "training": {"precision": precision, "why": why_precision, "lstm_kernels": kernels},
        "sampling": {"loop": sampling.backend_name() if loop is None else "xla-float32",
                     "why": loop or ("this CPU has AMX tiles" if sampling.variant() == "amx" else
                                     "this CPU has AVX512-BF16 (vdpbf16ps), no AMX tiles")},
        "budget": {"scale": round(scale, 3), "why": how},
        "native": {"cache": str(native.cache_folder()), native.ENV: os.environ.get(native.ENV, "1")},
        "roof": reference_roofs(),
    }


def reference_roofs(seconds: float = 0.2) -> dict:
    """The reference model's (2 x LSTM(256), emb 64, 65 symbols) FLOPs per character and the
    tf.matmul roof at its shapes in float32 and in bf16 (GFLOP/s; the bf16 roof per shape is the
    faster of the two types, as `charrnn.tools.bench.roofline` counts it): training (batch 64,
    seq 100) and sampling 1 and 64 streams."""
    from charrnn.hardware import roof_gflops
    from charrnn.tools import bench

    vocab = 65
    rows = {"training": (bench.flops_per_char(vocab), bench.train_shapes(vocab))}
    for streams in (1, 64):
        rows[f"sampling_{streams}"] = (bench.sample_flops_per_char(vocab), bench.sample_shapes(vocab, streams))
    report = {}
    for name, (flops, shapes) in rows.items():
        float32 = [roof_gflops([shape], "float32", seconds) for shape in shapes]
        bfloat16 = [max(rate, roof_gflops([shape], "bfloat16", seconds)) for rate, shape in zip(float32, shapes)]
        work = [2.0 * m * k * n for m, k, n in shapes]
        combined = lambda rates: round(sum(work) / sum(w / rate for w, rate in zip(work, rates)), 1)
        report[name] = {"flops_per_char": flops, "float32_gflops": combined(float32),
                        "bfloat16_gflops": combined(bfloat16)}
    return report


def format_report(report: dict) -> list[str]:
    """`hardware_report`'s dict as the lines `charrnn info --hardware` prints."""
    training, kernels = report["training"], report["training"]["lstm_kernels"]
    lines = [f"machine     {report['machine']}",
             f"precision   {training['precision']} for an LSTM run ({training['why']})"]
    for dtype, row in kernels.items():
        lines.append(f"{dtype:<12}LSTM training on the {'oneDNN op' if row['kernel'] == 'onednn' else 'chunked XLA path'} "
                     f"({row['why']})")
    lines.append(f"sampling    {report['sampling']['loop']} loop ({report['sampling']['why']})")
    lines.append(f"budget      a --time-budget second buys {report['budget']['scale']:.2f} of the tuned CPUs' "
                 f"compute ({report['budget']['why']})")
    lines.append(f"native      kernels cached in {report['native']['cache']} (CHARRNN_NATIVE=0 turns them off)")
    for name, row in report["roof"].items():
        label = {"training": "training", "sampling_1": "sampling, 1 stream"}.get(name, name.replace("_", ", ") + " streams")
        lines.append(f"roof        {label:<22}"
                     f"{row['flops_per_char'] / 1e6:.2f} MFLOP/char; tf.matmul at its shapes "
                     f"{row['float32_gflops']:.1f} GFLOP/s float32, {row['bfloat16_gflops']:.1f} bf16 "
                     f"(2 x LSTM 256; achieved: charrnn bench train / sample)")
    return lines
