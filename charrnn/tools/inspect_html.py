"""`charrnn inspect`: a self-contained HTML page of what a model sees in a text.

It shows the text coloured by the model's surprise (bits to predict each character), and the
activation of recurrent cells over the text; cells are ranked by how well they track simple
features (inside quotes, position in the line, inside brackets), most interpretable first.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

FEATURES = ("inside quotes", "position in line", "inside brackets")


def text_features(text: str) -> dict[str, np.ndarray]:
    """Per-character feature values: quote parity, characters since the newline, bracket depth > 0."""
    quotes, column, depth = [], [], []
    inside, position, level = False, 0, 0
    for char in text:
        if char == '"':
            inside = not inside
        if char in "([{":
            level += 1
        elif char in ")]}":
            level = max(0, level - 1)
        position = 0 if char == "\n" else position + 1
        quotes.append(float(inside))
        column.append(float(position))
        depth.append(float(level > 0))
    return dict(zip(FEATURES, map(np.array, (quotes, column, depth))))


def correlation(values: np.ndarray, feature: np.ndarray) -> float:
    if values.std() == 0 or feature.std() == 0:
        return 0.0
    return float(np.corrcoef(values, feature)[0, 1])


def analyse(run, text: str) -> dict:
    """Surprise per character and every cell's activations, with cells ranked by interpretability."""
    import keras

    if run.model_config.label_names:
        from charrnn.errors import OptionError

        raise OptionError(f"{run.path} is labelled; charrnn inspect does not take a labelled run yet")
    ids = run.vocab.encode(text).astype(np.int32)[None]
    model = run.model(seq_length=None, unroll=False)
    layers = [model.get_layer(f"rnn_{index}") for index in range(1, run.model_config.layers + 1)]
    probe = keras.Model(model.input, [model.output, *[layer.output for layer in layers]])  # one input, not a list
    logits, *hidden = probe(ids)
    log_probs = np.asarray(keras.ops.log_softmax(logits, axis=-1))[0]
    targets = ids[0, 1:]  # position p predicts the character at p + 1
    bits = -log_probs[np.arange(len(targets)), targets] / math.log(2)
    surprise = [None] + bits.astype(float).tolist()
    features = text_features(text)
    cells = []
    for layer_index, states in enumerate(hidden, start=1):
        states = np.asarray(states)[0]
        for unit in range(states.shape[1]):
            scores = {name: correlation(states[:, unit], values) for name, values in features.items()}
            best = max(scores, key=lambda name: abs(scores[name]))
            cells.append({"layer": layer_index, "cell": unit, "feature": best, "correlation": scores[best],
                          "activations": np.round(states[:, unit], 3).tolist()})
    cells.sort(key=lambda cell: -abs(cell["correlation"]))
    return {"text": text, "surprise": surprise, "cells": cells}


def render(analysis: dict, title: str, chosen: tuple[int, int] | None = None, top: int = 12) -> str:
    """The page: surprise view, a cell's activation view, and the ranked cell list (inline JS/CSS)."""
    cells = analysis["cells"]
    if chosen is not None:
        picked = [cell for cell in cells if (cell["layer"], cell["cell"]) == chosen]
        shown = picked + [cell for cell in cells[:top] if cell not in picked]
    else:
        shown = cells[:top]
    data = {"text": analysis["text"], "surprise": analysis["surprise"], "cells": shown}
    known = [value for value in analysis["surprise"] if value is not None]
    mean_bits = sum(known) / max(len(known), 1)
    rows = "".join(
        f'<tr data-index="{index}"><td>{cell["layer"]}</td><td>{cell["cell"]}</td>'
        f'<td>{html.escape(cell["feature"])}</td><td>{cell["correlation"]:+.2f}</td></tr>'
        for index, cell in enumerate(shown))
    return PAGE.replace("__TITLE__", html.escape(title)).replace("__MEAN__", f"{mean_bits:.3f}").replace(
        "__ROWS__", rows).replace("__DATA__", json.dumps(data).replace("</", "<\\/"))


def inspect_run(run, file: str | Path, out: str | Path, max_chars: int = 3000,
                cell: tuple[int, int] | None = None) -> Path:
    """Writes the HTML report for `file` (its first `max_chars` characters) and returns its path."""
    from charrnn.atomic import atomic_write_text
    from charrnn.data.corpus import load_corpus
    from charrnn.errors import ConfigError

    if Path(out).suffix.lower() not in (".html", ".htm"):  # never the text or a run's file by a slip
        raise ConfigError(f"--out {out}: charrnn inspect writes an HTML page; give a path ending in .html")
    if Path(out).exists() and Path(file).exists() and Path(out).resolve() == Path(file).resolve():
        raise ConfigError(f"--out {out} is the file being inspected; give another path")
    corpus = load_corpus([file], run.train_config.encoding, vocab=run.vocab, use_cache=False)
    text = run.vocab.decode(corpus.ids[:max_chars])
    if cell is not None and not (1 <= cell[0] <= run.model_config.layers and 0 <= cell[1] < run.model_config.units):
        raise ConfigError(f"Expected --layer in 1..{run.model_config.layers} and --cell in "
                          f"0..{run.model_config.units - 1}. Received: layer={cell[0]}, cell={cell[1]}")
    page = render(analyse(run, text), f"{run.path.name} on {Path(file).name}", chosen=cell)
    atomic_write_text(out, page)
    return Path(out)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>charrnn inspect: __TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
.text { font: 13px/1.6 ui-monospace, monospace; white-space: pre-wrap; border: 1px solid #ccc; padding: .6em;
        max-height: 24em; overflow: auto; }
.text span { border-radius: 2px; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; }
tr.chosen { background: #ffeeba; } tr[data-index] { cursor: pointer; }
.legend { font-size: 12px; color: #555; }
</style></head><body>
<h1>charrnn inspect: __TITLE__</h1>
<h2>Surprise <span class="legend">(bits to predict each character; white = 0, red = 8 or more; mean __MEAN__ bits/char)</span></h2>
<div id="surprise" class="text"></div>
<h2>Cell activation <span id="cellname"></span> <span class="legend">(blue = -1, white = 0, red = +1)</span></h2>
<div id="activation" class="text"></div>
<h2>Most interpretable cells <span class="legend">(by |correlation| with a text feature; click a row)</span></h2>
<table id="cells"><tr><th>layer</th><th>cell</th><th>best feature</th><th>correlation</th></tr>__ROWS__</table>
<script id="data" type="application/json">__DATA__</script>
<script>
const data = JSON.parse(document.getElementById("data").textContent);
function paint(target, values, colour) {
  const box = document.getElementById(target);
  box.textContent = "";
  [...data.text].forEach((char, index) => {
    const span = document.createElement("span");
    span.textContent = char;
    const value = values[index];
    if (value !== null && value !== undefined) { span.style.background = colour(value); span.title = value.toFixed(3); }
    box.appendChild(span);
  });
}
const heat = bits => `rgba(220, 30, 30, ${Math.min(bits / 8, 1).toFixed(3)})`;
const signed = value => value >= 0 ? `rgba(220, 30, 30, ${Math.min(value, 1).toFixed(3)})`
                                   : `rgba(30, 80, 220, ${Math.min(-value, 1).toFixed(3)})`;
function choose(index) {
  const cell = data.cells[index];
  document.getElementById("cellname").textContent = `layer ${cell.layer}, cell ${cell.cell} (${cell.feature}, r = ${cell.correlation.toFixed(2)})`;
  paint("activation", cell.activations, signed);
  document.querySelectorAll("tr[data-index]").forEach(row => row.classList.toggle("chosen", row.dataset.index == index));
}
paint("surprise", data.surprise, heat);
document.querySelectorAll("tr[data-index]").forEach(row => row.addEventListener("click", () => choose(+row.dataset.index)));
choose(0);
</script></body></html>
"""
