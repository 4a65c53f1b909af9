"""`charrnn export RUN --format web --out DIR`: a static folder that generates text in a browser.

The folder holds `index.html` (the page), `charrnn.js` (the recurrent step for LSTM, GRU and
SimpleRNN layers, the draw rule of `charrnn.portable.rng`, the options' rules and a library API,
`CharRNN.generate` / `textStream`, in plain JavaScript with no dependency) and `weights.js` (the metadata and the float32 weights, base64,
loaded by a <script> tag so that the page also works from file://). Given the same seed and
options the page writes the text `charrnn.portable` writes for the same model.

Weights layout in weights.js (each a float32 row-major matrix; G = gates x units):
    input_table  (vocab, G): layer 1's input part, (embedding or one-hot) @ kernel + input bias
    label_table  (labels, G): a labelled run's label part of layer 1's input, label_embedding @
                 (the kernel's label rows), added to input_table's row at every step
    kernel_L     (G, units): layer L's (L >= 2) kernel, transposed; bias_L (G,)
    recurrent_L  (G, units): layer L's recurrent kernel, transposed; recurrent_bias_L (G,) (GRU)
    head_kernel  (vocab, units), head_bias (vocab,)
Gate blocks keep Keras's order: LSTM i, f, c, o; GRU z, r, h (reset_after).
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path

import numpy as np

from charrnn.export.weights import describe, first_layer_tables, read_weights

PAGE_FILES = ("index.html", "charrnn.js")


def web_tensors(weights) -> dict[str, np.ndarray]:
    """The page's float32 tensors, by name, in the layout the module docstring gives."""
    tensors = {}
    gru = weights.cell == "gru"
    input_table, label_table = first_layer_tables(weights)
    for index, (kernel, recurrent, bias) in enumerate(weights.layers, start=1):
        input_bias = bias[0] if gru else bias
        if index == 1:
            tensors["input_table"] = input_table
            if label_table is not None:
                tensors["label_table"] = label_table
        else:
            tensors[f"kernel_{index}"] = kernel.T
            tensors[f"bias_{index}"] = input_bias
        tensors[f"recurrent_{index}"] = recurrent.T
        if gru:
            tensors[f"recurrent_bias_{index}"] = bias[1]
    tensors["head_kernel"] = weights.head[0].T
    tensors["head_bias"] = weights.head[1]
    return {name: np.ascontiguousarray(array, dtype="<f4") for name, array in tensors.items()}


def weights_script(metadata: dict, tensors: dict[str, np.ndarray]) -> str:
    """weights.js: `window.CHARRNN_MODEL = {metadata, tensors: {name: [offset, shape]}, data: base64}`
    (offsets in float32 elements into the decoded data). charrnn.js's `parseWeights` reads this exact
    form (Node, or a page that fetches the file); tests/test_export_web.py runs it in Node."""
    layout, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        layout[name] = [offset, list(array.shape)]
        offset += array.size
        blobs.append(array.tobytes())
    data = base64.b64encode(b"".join(blobs)).decode("ascii")
    header = json.dumps({"metadata": metadata, "tensors": layout}, ensure_ascii=True)
    return f"window.CHARRNN_MODEL = Object.assign({header}, {{data: \"{data}\"}});\n"


def export_web(run, folder: str | Path) -> Path:
    """Writes the page's files into `folder` (an empty folder; see `charrnn.export.export`, which
    builds it beside the target and renames it into place).

    Raises:
        ExportError: the run is not one the page can compute.
    """
    folder = Path(folder)
    weights = read_weights(run)
    metadata = describe(run)
    source = resources.files("charrnn.export") / "page"
    for name in PAGE_FILES:
        (folder / name).write_bytes((source / name).read_bytes())
    (folder / "weights.js").write_text(weights_script(metadata, web_tensors(weights)), "ascii")
    return folder
