"""Sampling from an exported .onnx model with numpy and onnxruntime alone (no TensorFlow).

    model = charrnn.portable.PortableModel("model.onnx")
    print(charrnn.portable.generate(model, prime="ROMEO:", length=200, seed=1)[0])

`charrnn sample MODEL.onnx` goes through this package. Its draws come from the generator
specified in `charrnn.portable.rng` (and docs/export.md), which the exported web page repeats:
the same seed and options give the same text in Python and in the browser. They are not
`charrnn sample RUN`'s TensorFlow draws.

Nothing here imports TensorFlow, Keras or a charrnn module that does (a test blocks the import).
"""

from charrnn.portable.model import PortableError, PortableModel
from charrnn.portable.rng import PCG32, draw, filtered_weights, pick
from charrnn.portable.sampling import generate, generate_chunks, sample_items

__all__ = ["PCG32", "PortableError", "PortableModel", "draw", "filtered_weights", "generate", "generate_chunks",
           "pick", "sample_items"]
