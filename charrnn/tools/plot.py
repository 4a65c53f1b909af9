"""`charrnn plot`: training and validation loss against characters seen, or against steps for an items
run, whose padded rows make characters per step vary (matplotlib, optional)."""

from __future__ import annotations

import math
from pathlib import Path

from charrnn.errors import CharRNNError
from charrnn.atomic import atomic_path
from charrnn.runs import bits_per_char


def plot_run(run, out: str | Path) -> Path:
    """Draws train and val loss (left axis nats/char, right axis bits/char) and saves a PNG.

    Raises:
        CharRNNError: `out` does not end in .png, matplotlib is not installed, or the run has no
            evaluations yet.
    """
    if Path(out).suffix.lower() != ".png":  # never a run's own files (config.json, ...) by a slip
        raise CharRNNError(f"--out {out}: charrnn plot writes a PNG; give a path ending in .png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CharRNNError("charrnn plot needs matplotlib: pip install 'charrnn[plot]'") from None
    rows = [row for row in run.metrics()  # the evaluations (a damaged line is skipped)
            if isinstance(row.get("step"), (int, float)) and isinstance(row.get("val_loss"), (int, float))]
    if not rows:
        raise CharRNNError(f"{run.path} has no evaluations to plot yet")
    from charrnn.generation.score import is_items_run

    if is_items_run(run):  # rows are padded items: a step's characters vary
        seen, x_label = [row["step"] for row in rows], "optimizer steps"
    else:
        chars_per_step = run.train_config.batch_size * run.train_config.seq_length
        seen, x_label = [row["step"] * chars_per_step / 1e6 for row in rows], "characters seen (millions)"
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=120)
    train = [(x, row["train_loss"]) for x, row in zip(seen, rows) if row.get("train_loss") is not None]
    axis.plot(*zip(*train), marker="o", label="train (mean over the interval)")
    axis.plot(seen, [row["val_loss"] for row in rows], marker="o", label="validation")
    axis.set_xlabel(x_label)
    axis.set_ylabel("loss (nats/char)")
    bits = axis.secondary_yaxis("right", functions=(lambda n: n / math.log(2), lambda b: b * math.log(2)))
    bits.set_ylabel("bits/char")
    best = min(rows, key=lambda row: row["val_loss"])
    axis.set_title(f"{run.path.name}: best val {best['val_loss']:.3f} nats/char "
                   f"({bits_per_char(best['val_loss']):.3f} bits/char) at step {best['step']}")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    out = Path(out)
    with atomic_path(out, suffix=".png") as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return out
