"""Sampling from an exported .onnx model with numpy and onnxruntime alone (no TensorFlow).

    model = charrnn.portable.PortableModel("model.onnx")
    print(charrnn.portable.generate(model, prime="ROMEO:", length=200, seed=1)[0])

`charrnn sample MODEL.onnx` goes through this package. Its draws follow the one draw rule of
every charrnn sampler (`charrnn.portable.rng`, docs/export.md): in float32 the same seed and
options give the text `charrnn sample RUN --precision float32`, the exported page and the
SavedModel give.

Nothing here imports TensorFlow, Keras or a charrnn module that does (a test blocks the import).
"""

from charrnn.portable.model import PortableError, PortableModel
from charrnn.portable.rng import draw, draw_rows, stream_keys, uniforms
from charrnn.portable.sampling import generate, generate_chunks, sample_items

__all__ = ["PortableError", "PortableModel", "draw", "draw_rows", "generate", "generate_chunks", "sample_items",
           "stream_keys", "uniforms"]
