"""The `charrnn serve` click command (imports nothing heavy until it runs)."""

from __future__ import annotations

import click

from charrnn.cli.common import POSITIVE_INT, reports_errors, without_tensorflow


@click.command()
@click.argument("run", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port; 0 = any free port (printed).")
@click.option("--max-streams", type=POSITIVE_INT, default=64, show_default=True, help="Streams generated at once; later requests wait.")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True, help="The sampler's weights and loop, as `charrnn sample --precision`.")
@click.pass_context
@reports_errors
@without_tensorflow  # imported when the run is loaded: MODEL.onnx is served without it
def serve(context, run, host, port, max_streams, precision):
    """Serve RUN over HTTP: POST /generate, GET /stream (server-sent events), POST /score,
    GET /health, GET /info, and a page at GET /. RUN may be an .onnx file from `charrnn export
    --format onnx`, served with onnxruntime alone (no TensorFlow; the same text as `charrnn sample
    MODEL.onnx` for a seed). Ctrl-C or SIGTERM finishes the requests in flight, then exits."""
    from pathlib import Path

    from click.core import ParameterSource

    from charrnn.errors import CharRNNError

    if Path(run).suffix.lower() == ".onnx" and context.get_parameter_source("precision") != ParameterSource.DEFAULT:
        raise click.UsageError("--precision needs a run directory; an .onnx file runs in float32 on onnxruntime")

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise CharRNNError("charrnn serve needs the serve extra: pip install 'charrnn[serve]'") from None
    if Path(run).suffix.lower() != ".onnx":  # a run directory: TensorFlow, quietly (or a line naming the extra)
        from charrnn.cli.common import _verbose
        from charrnn.tensorflow_setup import import_tensorflow

        import_tensorflow(_verbose())
    from .server import run_server

    run_server(run, host, port, max_streams, log=lambda line: click.echo(line, err=True), precision=precision)
