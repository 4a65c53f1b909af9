"""The batching engine of `charrnn serve MODEL.onnx`: `Engine`'s interface (submit, stop, stats,
`Job`s delivering pieces) over `charrnn.portable`, without TensorFlow.

Every active request's streams are rows of one batch: each character is one onnxruntime call
for all of them (ids (N, 1) and state (layers x parts, N, units) in, logits and new state out),
then each request's rows are drawn with its own options. Requests join and leave between chunks
of `CHUNK` characters. A stream's text is `charrnn sample MODEL.onnx`'s for the same seed and
options: its prime is fed as `generate_chunks` feeds it (the request's streams together), and
sample j of a request draws from stream j of its seed (`draw_rows` with `stream_keys(seed, [j])`, by
the draw rule of docs/export.md), so it does not depend on the streams beside it (tested). onnxruntime is called from the scheduler
thread only (POST /score runs its own calls in a worker thread; a session may run concurrently).
"""

from __future__ import annotations

import logging
import types

import numpy as np

from charrnn.generation.stops import scan_pieces
from charrnn.portable.model import PortableModel
from charrnn.portable.rng import draw_rows, stream_keys

from .engine import Job, JobQueue

CHUNK = 16  # characters per scheduling round: a join waits at most this many steps
log = logging.getLogger("charrnn")


class _Request:
    """One job's streams in the batch: their keys (stream j of the seed for sample j), how many
    characters each has drawn (its position in the draw rule) and the text drawn since the last
    delivery."""

    def __init__(self, job: Job):
        config = job.config
        self.job = job
        self.keys = None if config.argmax else stream_keys(job.seed, np.arange(config.num_samples))
        self.position = 0  # characters drawn by each live stream so far
        self.live = list(range(config.num_samples))  # samples still drawing (not stopped)
        self.drawn = [[] for _ in range(config.num_samples)]


def draw_request(rows: np.ndarray, request: _Request, samples: list[int]) -> np.ndarray:
    """One id per row of a request's logits (the rows of `samples`, its live streams), drawn as
    `charrnn.portable.generate_chunks` draws (the one place this engine draws)."""
    config = request.job.config
    if config.argmax:
        return draw_rows(rows, None, None, argmax=True)
    return draw_rows(rows, request.keys[samples], request.position, config.temperature, config.top_k, config.top_p)


class PortableEngine(JobQueue):
    """Runs requests as rows of one batch stepped by onnxruntime, on a scheduler thread.

    Args:
        model: a `PortableModel`.
        max_streams: streams generated at once; requests beyond wait their turn. Defaults to 64.
        max_waiting: requests allowed to wait; `submit` raises `Busy` beyond. Defaults to 256.
        chunk: characters per scheduling round. Defaults to 16.
    """

    def __init__(self, model: PortableModel, max_streams: int = 64, max_waiting: int = 256, chunk: int = CHUNK):
        super().__init__(max_streams, max_waiting, chunk, "charrnn-serve-portable")
        self.model = model
        # what the routes and the start-up line read from `Engine.sampler`
        self.sampler = types.SimpleNamespace(vocab=model.vocab, label_names=model.labels, precision="float32",
                                             backend="onnxruntime")
        self._requests: list[_Request] = []
        self._rows: list[tuple[_Request, int]] = []  # (request, sample) of each batch row
        self._logits = np.zeros((0, model.vocab_size), np.float32)
        self._state = model.zero_state(0)
        self._labels = np.zeros(0, np.int64)

    # ------------------------------------------------------------ start, submit and stop: `JobQueue`'s

    def stats(self) -> dict:
        with self._wake:
            return {"active_streams": len(self._rows), "waiting_requests": len(self._waiting),
                    "max_streams": self.max_streams, "peak_streams": self.peak_streams,
                    "served_chars": self.served_chars}

    def warm_up(self) -> float:
        """Nothing to compile: onnxruntime's session is ready once loaded. Returns 0.0."""
        return 0.0

    # ------------------------------------------------------------ the scheduler thread

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._rows and not self._stopping:
                    self._wake.wait()
                if self._stopping and not self._waiting and not self._rows:
                    return
                joining = self._admit()
            try:
                for job in joining:
                    self._join(job)
                self._drop([request for request in self._requests if request.job.cancelled.is_set()])
                if self._rows:
                    self._round()
            except Exception as error:  # a fault here must not leave clients waiting forever
                log.warning("generation failed: %s", error)
                self._fail_all(f"generation failed: {error}")

    def _active(self) -> int:
        return len(self._rows)

    def _join(self, job: Job) -> None:
        """Feeds a job's prime (its streams together, as `generate_chunks` does) and adds its rows."""
        config, model = job.config, self.model
        try:
            count = config.num_samples
            labels = model.label_ids(config.label, count)
            fed = model.read_prime(config.prime, config.unknown)
            logits, state = model.run(np.repeat(fed[None, :], count, axis=0), model.zero_state(count), labels)
        except Exception as error:  # the request was validated; this is a server fault, reported to it
            log.warning("a request failed to start: %s", error)
            job.deliver("error", f"generation failed: {error}")
            return
        job.deliver("piece", [config.prime] * count)
        if job.left == 0:
            job.deliver("done", None)
            return
        request = _Request(job)
        with self._wake:
            self._requests.append(request)
            self._rows += [(request, sample) for sample in range(count)]
            self._logits = np.concatenate([self._logits, logits[:, -1, :]])
            self._state = np.concatenate([self._state, state], axis=1)
            if labels is not None:
                self._labels = np.concatenate([self._labels, labels.astype(np.int64)])
            self.peak_streams = max(self.peak_streams, len(self._rows))

    def _drop(self, requests: list[_Request], stopped: list[tuple[_Request, int]] = ()) -> None:
        """Takes these requests' rows (and the single `stopped` rows) out of the batch."""
        if not requests and not stopped:
            return
        gone, single = {id(request) for request in requests}, set(stopped)
        kept = [index for index, (request, sample) in enumerate(self._rows)
                if id(request) not in gone and (request, sample) not in single]
        with self._wake:
            self._requests = [request for request in self._requests if id(request) not in gone]
            self._rows = [self._rows[index] for index in kept]
            self._logits, self._state = self._logits[kept], self._state[:, kept]
            if self.model.labels:
                self._labels = self._labels[kept]

    def _round(self) -> None:
        """Draws up to `chunk` characters for every row (one onnxruntime call per character),
        then delivers them."""
        steps = min(self.chunk, max(request.job.left for request in self._requests))
        for position in range(steps):
            ids = np.zeros(len(self._rows), np.int64)
            start = 0
            for request in self._requests:  # a request's live rows are consecutive, in sample order
                rows = len(request.live)
                if position < request.job.left:
                    drawn = draw_request(self._logits[start:start + rows], request, request.live)
                    request.position += 1
                    ids[start:start + rows] = drawn
                    for sample, index in zip(request.live, drawn):
                        request.drawn[sample].append(int(index))
                start += rows
            if position + 1 < steps or any(request.job.left > steps for request in self._requests):
                logits, self._state = self.model.run(ids[:, None], self._state,
                                                     self._labels if self.model.labels else None)
                self._logits = logits[:, 0, :]
        self._deliver(steps)

    def _deliver(self, steps: int) -> None:
        """Hands each job its streams' new text; retires complete jobs and stopped streams."""
        finished, stopped = [], []
        for request in self._requests:
            job = request.job
            taken = min(steps, job.left)
            job.left -= taken
            self.served_chars += taken * len(request.live)
            pieces = [""] * job.config.num_samples  # a stream that has stopped gets ""
            for sample in request.live:
                pieces[sample] = self.model.decode(request.drawn[sample])
                request.drawn[sample] = []
            if job.scanners:
                pieces = scan_pieces(job.scanners, pieces, last=job.left == 0)
                ended = [sample for sample in request.live if job.scanners[sample].stopped is not None]
                stopped += [(request, sample) for sample in ended]
                request.live = [sample for sample in request.live if sample not in ended]
            job.deliver("piece", pieces)
            if job.left == 0 or not request.live:
                job.deliver("done", None)
                finished.append(request)
        self._drop(finished, stopped)

    def _fail_all(self, message: str) -> None:
        requests = list(self._requests)
        self._drop(requests)
        for request in requests:
            request.job.deliver("error", message)
