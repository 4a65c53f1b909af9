"""The HTTP side of `charrnn serve`: a Starlette app whose routes hand requests to the `Engine`.

Every route is one `async def handler(request)` in `ROUTES`; adding an endpoint is adding one
function and one line there. Refused requests get a JSON body {"error": ..., "field": ...}.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import json
import secrets
import threading
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import limits
from .engine import Busy, Engine, Job
from .limits import RequestError

KEEPALIVE_S = 2.0  # a stream waiting for room sends an SSE comment this often (and so notices a gone client)


class Service:
    """What the routes share: the engine, the run's vocabulary and its `charrnn info` details; an
    .onnx file's service has a `PortableEngine`, a stand-in for the run
    (`charrnn.portable.scoring.model_as_run`) and its `PortableScorer` as `scorer`."""

    def __init__(self, engine: Engine, details: dict, items: bool, run=None, scorer=None):
        self.engine, self.details, self.items, self.run = engine, details, items, run
        # an `--encoding bytes` run's symbols are bytes: requests arrive and answers leave as text
        self.bytes = getattr(getattr(run, "train_config", None), "encoding", None) == "bytes"
        self.vocabulary = set(engine.sampler.vocab.symbols)
        self._scorer = scorer  # else built on the first POST /score (it compiles its own pass)
        self._scoring = threading.Lock()  # one scoring pass at a time, off the event loop

    def score(self, texts: list, label=None, unknown: str = "auto") -> list[dict]:
        """`charrnn score`'s numbers for each text (called in a worker thread); a labelled run's
        under `label` (one name, or one per text)."""
        from charrnn.errors import VocabularyError
        from charrnn.generation.score import Scorer

        label = limits.sample_label({"label": label}, self.engine.sampler.label_names, len(texts))
        with self._scoring:
            if self._scorer is None:
                self._scorer = Scorer(self.run)
            try:
                rows = self._scorer.score([self._symbols(text, "texts") for text in texts], label=label, unknown=unknown)
            except VocabularyError as error:
                raise RequestError(str(error), field="texts") from None
        return [{**row, "text": text} for row, text in zip(rows, texts)]  # as sent, not as bytes

    def _symbols(self, text, field: str):
        """The run's symbols for text a client sent: a bytes run's are the text's UTF-8 bytes (one
        latin-1 character each); other values are left for the limits to refuse."""
        from charrnn.data.corpus import symbols_of_text

        if not (self.bytes and isinstance(text, str)):
            return text
        try:  # strict: over HTTP a surrogate escape is no undecodable byte, only bad text
            return symbols_of_text(text, "bytes", errors="strict")
        except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud83d") has no UTF-8 bytes
            raise RequestError(f"the {field} is not valid Unicode text (a lone surrogate)", field) from None

    def config(self, fields: dict):
        if isinstance(fields, dict) and "prime" in fields:
            fields = {**fields, "prime": self._symbols(fields["prime"], "prime")}
        if isinstance(fields, dict) and isinstance(fields.get("stop"), list):
            fields = {**fields, "stop": [self._symbols(stop, "stop") for stop in fields["stop"]]}
        elif isinstance(fields, dict) and "stop" in fields:
            fields = {**fields, "stop": self._symbols(fields["stop"], "stop")}
        config = limits.sample_config(fields, self.vocabulary, self.engine.max_streams)
        label = limits.sample_label(fields, self.engine.sampler.label_names, config.num_samples)
        return config if label is None else dataclasses.replace(config, label=label)

    def stops(self, job: Job, lengths: list[int]) -> dict:
        """With stop sequences, the answer's {"stopped": [the stop that ended each sample (as text),
        or None], "stop_at": [its offset in the sample's text (`lengths`, as sent), or None]}; else {}."""
        from charrnn.data.corpus import text_of_symbols

        if not job.scanners:
            return {}
        stopped = [scanner.stopped for scanner in job.scanners]
        encoding = "bytes" if self.bytes else "utf-8"
        return {"stopped": [None if stop is None else text_of_symbols(stop, encoding) for stop in stopped],
                "stop_at": [None if stop is None else length for stop, length in zip(stopped, lengths)]}

    def submit(self, config) -> tuple[Job, asyncio.Queue]:
        """Queues a generation; its pieces arrive on the returned queue as (kind, value) pairs. A bytes
        run's pieces arrive as text: each stream's bytes decoded as UTF-8 as they come (a character
        split between pieces waits for its last byte; bytes that are not UTF-8 become U+FFFD)."""
        from charrnn.data.corpus import output_of_symbols

        loop, queue = asyncio.get_running_loop(), asyncio.Queue()

        def put(kind, value):
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        decoders = [codecs.getincrementaldecoder("utf-8")("replace") for _ in range(config.num_samples)]

        def deliver(kind, value):  # called from the engine's thread
            if self.bytes and kind == "piece":
                value = [decoder.decode(output_of_symbols(piece, "bytes")) for decoder, piece in zip(decoders, value)]
            elif self.bytes and kind == "done":
                rest = [decoder.decode(b"", final=True) for decoder in decoders]
                if any(rest):
                    put("piece", rest)
            put(kind, value)

        seed = config.seed if config.seed is not None else secrets.randbits(31)
        job = Job(config, deliver, seed=seed)
        try:
            self.engine.submit(job)
        except Busy as error:
            raise RequestError(str(error), status=503) from None
        return job, queue


async def read_json(request: Request):
    """The request's JSON body, read up to `MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length", "")
    too_large = RequestError(f"the body is larger than {limits.MAX_BODY_BYTES} bytes", status=413)
    if declared.isdigit() and int(declared) > limits.MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limits.MAX_BODY_BYTES:
            raise too_large
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError(f"the body is not valid JSON: {error}") from None


def _service(request: Request) -> Service:
    return request.app.state.service


async def generate(request: Request) -> Response:
    """POST /generate: the whole texts, one per sample, prime included."""
    service = _service(request)
    config = service.config(await read_json(request))
    job, queue = service.submit(config)
    texts = [""] * config.num_samples
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    return Response(status_code=499)  # nobody reads it; the slot is freed below
                continue
            if kind == "error":
                return JSONResponse({"error": value, "field": None}, status_code=500)
            if kind == "done":
                return JSONResponse({"texts": texts, "seed": job.seed, "length": config.length,
                                     "num_samples": config.num_samples, **service.stops(job, list(map(len, texts)))})
            texts = [text + piece for text, piece in zip(texts, value)]
    finally:
        job.cancel()  # no effect on a finished job; frees the streams of an abandoned one


def _event(data: dict, name: str | None = None) -> str:
    return (f"event: {name}\n" if name else "") + f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream(request: Request) -> Response:
    """GET /stream?prime=...&length=...: server-sent events as the text is generated: `start`
    ({seed, num_samples}), then unnamed events {"texts": [one piece per sample]} (the prime
    first), then `done` ({seed}, and with stop sequences {stopped, stop_at})."""
    service = _service(request)
    config = service.config(limits.from_query(request.query_params))
    job, queue = service.submit(config)

    async def events():
        sent = [0] * config.num_samples  # characters sent per sample
        try:
            yield _event({"seed": job.seed, "num_samples": config.num_samples}, "start")
            while True:
                try:
                    kind, value = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": waiting\n\n"
                    continue
                if kind == "piece":
                    sent = [count + len(piece) for count, piece in zip(sent, value)]
                    yield _event({"texts": value})
                else:
                    yield _event({"seed": job.seed, **service.stops(job, sent)} if kind == "done" else {"error": value},
                                 kind)
                    return
        finally:
            job.cancel()  # a client gone mid-stream frees its streams before the next chunk

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def score(request: Request) -> Response:
    """POST /score: {"texts": [...], "label"?} -> {"scores": [what `charrnn score --json` gives per
    text]}; a labelled run's texts are scored under "label" (one name, or one per text)."""
    service = _service(request)
    body = await read_json(request)
    texts = limits.score_texts(body)
    scores = await asyncio.get_running_loop().run_in_executor(None, service.score, texts, body.get("label"),
                                                              body.get("unknown", "auto"))
    return JSONResponse({"scores": scores})


async def health(request: Request) -> Response:
    """GET /health: {"status": "ok"} and the engine's load."""
    return JSONResponse({"status": "ok", **_service(request).engine.stats()})


async def info(request: Request) -> Response:
    """GET /info: what `charrnn info --json` prints for the run."""
    return JSONResponse(_service(request).details)


async def page(request: Request) -> Response:
    """GET /: the page (one file, no external resources)."""
    html = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    return HTMLResponse(html.replace("__ITEMS__", "true" if _service(request).items else "false"))


ROUTES = [
    Route("/", page, methods=["GET"]),
    Route("/generate", generate, methods=["POST"]),
    Route("/stream", stream, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/info", info, methods=["GET"]),
    Route("/score", score, methods=["POST"]),
]


async def _refused(request: Request, error: RequestError) -> Response:
    return JSONResponse(error.body(), status_code=error.status)


async def _http_error(request: Request, error: HTTPException) -> Response:
    return JSONResponse({"error": error.detail, "field": None}, status_code=error.status_code,
                        headers=getattr(error, "headers", None))


def create_app(service: Service, routes=None) -> Starlette:
    """The Starlette app over a `Service`; `routes` defaults to `ROUTES`. The engine is stopped
    (its jobs finished) when the app shuts down."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, service.engine.stop)

    app = Starlette(routes=list(routes or ROUTES), lifespan=lifespan,
                    exception_handlers={RequestError: _refused, HTTPException: _http_error})
    app.state.service = service
    return app
