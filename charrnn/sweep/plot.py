"""`charrnn sweep FOLDER --plot`: every trial's validation loss against its training seconds, in
one picture (matplotlib, the plot extra; no Ray)."""

from __future__ import annotations

from pathlib import Path

from charrnn.errors import CharRNNError


def plot_sweep(out: str | Path, image: str | Path | None = None) -> Path:
    """Draws every trial's validation loss against its training seconds in one PNG.

    Args:
        out: the sweep's folder.
        image: the PNG to write. Defaults to `out`/curves.png.

    Returns:
        The PNG's path.

    Raises:
        CharRNNError: not a sweep folder, no trial evaluated yet, or matplotlib missing.
    """
    from charrnn import runs
    from charrnn.atomic import atomic_path
    from charrnn.sweep.report import constants, describe_config
    from charrnn.sweep.sweep import TRIALS_DIR, read_record

    out = Path(out)
    record = read_record(out)
    image = Path(image) if image is not None else out / "curves.png"
    if image.suffix.lower() != ".png":
        raise CharRNNError(f"{image}: charrnn sweep --plot writes a PNG; give a path ending in .png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CharRNNError("charrnn sweep --plot needs matplotlib: pip install 'charrnn[plot]'") from None
    curves = []
    for index, config in enumerate(record["configs"]):
        metrics = out / TRIALS_DIR / f"trial-{index:03d}" / runs.METRICS
        rows = runs.read_metrics(metrics) if metrics.exists() else []
        points = [(row["elapsed_s"], row["val_loss"]) for row in rows
                  if isinstance(row.get("elapsed_s"), (int, float)) and isinstance(row.get("val_loss"), (int, float))]
        if points:
            curves.append((f"trial-{index:03d}", config, points))
    if not curves:
        raise CharRNNError(f"no trial in {out} has an evaluation to plot yet")
    curves.sort(key=lambda curve: min(loss for _, loss in curve[2]))
    hide = constants(record.get("space", {}))  # what every trial shares is not told apart
    figure, axis = plt.subplots(figsize=(9, 5), dpi=120)
    for rank, (name, config, points) in enumerate(curves):
        label = f"{name}: {describe_config(config, hide)}" if rank < 10 else None  # the legend names the ten best
        axis.plot(*zip(*points), marker="o", markersize=3, linewidth=2.2 if rank == 0 else 1.0,
                  alpha=1.0 if rank < 10 else 0.4, label=label)
    best_name, _, best_points = curves[0]
    axis.set_title(f"{out.name}: {len(curves)} trials; best {best_name} at {min(l for _, l in best_points):.4f} nats/char")
    axis.set_xlabel("training seconds")
    axis.set_ylabel("validation loss (nats/char)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(image, suffix=".png") as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return image
