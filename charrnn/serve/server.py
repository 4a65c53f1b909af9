"""Starting `charrnn serve`: load the run (TensorFlow is imported here, once; an .onnx file is
served by charrnn.portable without it), compile the loop, bind the socket, run uvicorn; on
Ctrl-C or SIGTERM finish the requests in flight and return normally (exit code 0)."""

from __future__ import annotations

import signal
import socket
import time

GRACEFUL_S = 120  # at most this long to finish requests in flight after Ctrl-C / SIGTERM


def build_service(run, max_streams: int = 64, precision: str = "auto"):
    """A started `Service` (engine running, loop compiled for small batches) for a run or its path;
    `precision` is the sampler's (see `charrnn.Sampler`)."""
    from pathlib import Path

    from charrnn import runs

    if not isinstance(run, runs.Run) and Path(run).suffix.lower() == ".onnx":
        return build_portable_service(run, max_streams)
    from charrnn.generation.sampler import Sampler
    from .app import Service
    from .engine import Engine

    loaded = run if isinstance(run, runs.Run) else runs.load(run)
    engine = Engine(Sampler(loaded, precision=precision), max_streams=max_streams)
    engine.warm_up()
    items = getattr(loaded.train_config, "items", None) == "lines"
    return Service(engine.start(), loaded.details(), items, loaded)


def build_portable_service(path, max_streams: int = 64):
    """A started `Service` for an exported .onnx file: charrnn.portable's model stepped by a
    `PortableEngine`, scored by a `PortableScorer` (numpy and onnxruntime; no TensorFlow)."""
    from charrnn.portable import PortableModel
    from charrnn.portable.scoring import PortableScorer, model_as_run
    from .app import Service
    from .portable_engine import PortableEngine

    model = PortableModel(path)
    meta = model.metadata
    details = {"run": str(model.path), "format": "onnx", "charrnn_version": meta.get("version"),
               "model": meta.get("model", {}), "corpus": meta.get("corpus", {}), "vocab_size": model.vocab_size,
               "vocabulary": "".join(model.symbols), "unknown_symbol": model.vocab.unknown,
               "items": model.items, "max_item_length": model.max_item_length}
    engine = PortableEngine(model, max_streams=max_streams)
    return Service(engine.start(), details, model.items, model_as_run(model), scorer=PortableScorer(model))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        from charrnn.errors import CharRNNError

        raise CharRNNError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_server(run, host: str = "127.0.0.1", port: int = 8000, max_streams: int = 64, log=print,
               precision: str = "auto") -> None:
    """Serves `run` until Ctrl-C or SIGTERM, then finishes the requests in flight and returns.

    Raises:
        CharRNNError: the run cannot be loaded or the address cannot be bound.
    """
    import uvicorn

    from .app import create_app

    sock = _bind(host, port)  # before loading, so a taken port fails fast
    started = time.perf_counter()
    service = build_service(run, max_streams, precision)
    shown = f"[{host}]" if ":" in host else host
    sampler = service.engine.sampler
    log(f"serving {service.details['run']} on http://{shown}:{sock.getsockname()[1]} "
        f"({sampler.precision} weights on the {sampler.backend} loop; ready in {time.perf_counter() - started:.1f} s; "
        f"Ctrl-C stops)")
    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_S, lifespan="on")
    # uvicorn re-raises the signal that stopped it once it has drained; with these handlers in
    # place beforehand, that re-raise is caught here and the process exits 0 after a clean stop.
    stopped = []
    previous = {number: signal.signal(number, lambda number, frame: stopped.append(number))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        sock.close()
    service.engine.stop()
    log(f"stopped{' by ' + signal.Signals(stopped[0]).name if stopped else ''}; "
        f"{service.engine.served_chars:,} characters served")
