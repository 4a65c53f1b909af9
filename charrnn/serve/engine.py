"""The batching engine behind `charrnn serve`: every active request's streams run as columns of
one batched compiled loop (`Sampler.draw_chunk`), chunk after chunk, on one scheduler thread.

Requests join and leave the batch between chunks. Each stream carries its own key (its
request's seed and its sample index), position, temperature, top-k and top-p, so its text does
not depend on the other streams beside it. Streams are grouped by draw mode (plain, truncated,
argmax), one compiled loop each. Every chunk runs in blocks of exactly `BLOCK` streams (the last
block padded): XLA's CPU products round a column differently at different batch widths (about
1e-9 in a logit, measured here: widths 1, 32 and 64 differed from 2-17), which now and then
flips a draw that lands on a boundary; at one fixed width a stream's arithmetic is the same alone
or in a crowd, and XLA compiles one shape per mode. The native loop needs no padding (a stream's
rows are the same at any width), so there a chunk is one call over the group's streams as they
are. TensorFlow is called from the scheduler thread only.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from charrnn.config import SampleConfig
from charrnn.generation.draw import draw_mode, stream_knobs
from charrnn.generation.stops import scan_pieces, scanners_for

CHUNK = 64  # characters per compiled call while streams are active: a join waits at most one chunk
BLOCK = 16  # streams per compiled call: one fixed width, so a stream's text never depends on its company
log = logging.getLogger("charrnn")


class Busy(Exception):
    """The engine's queue of waiting requests is full."""


@dataclass(eq=False)
class Job:
    """One request: `num_samples` streams that join the batch together.

    `deliver` is called from the scheduler thread with ("piece", [one string per sample]) each
    time text is ready (the prime first), then ("done", None), or ("error", message). With stop
    sequences (`config.stop`) each sample's text ends before its first stop: `scanners` (one
    `StopScanner` per sample, set by `Engine.submit`) say which stop ended it, once done.
    """

    config: SampleConfig
    deliver: Callable[[str, object], None]
    seed: int = field(default_factory=lambda: secrets.randbits(31))
    cancelled: threading.Event = field(default_factory=threading.Event)
    left: int = 0  # characters still to draw
    scanners: list = field(default_factory=list)  # one StopScanner per sample, with stop sequences

    def cancel(self) -> None:
        """Frees the job's streams before the next chunk (e.g. its client went away)."""
        self.cancelled.set()


class _Group:
    """The streams of one draw mode: their logits (N, V), states (per layer, (units, N)
    columns), and per-stream knobs and positions."""

    KNOBS = ("seeds", "samples", "temperature", "top_k", "top_p")

    def __init__(self, mode: str):
        self.mode = mode
        self.jobs: list[Job] = []  # one entry per stream (a job with n samples appears n times)
        self.logits = None
        self.states = None
        self.knobs = {name: np.zeros(0, dtype) for name, dtype in zip(self.KNOBS, (np.int32, np.int32, np.float32,
                                                                                   np.int32, np.float32))}
        self.positions = np.zeros(0, np.int32)

    def join(self, job: Job, logits, states) -> None:
        import tensorflow as tf

        self.jobs += [job] * job.config.num_samples
        if self.logits is None:
            self.logits, self.states = logits, states
        else:
            self.logits = tf.concat([self.logits, logits], axis=0)
            self.states = [tuple(tf.concat([old, new], axis=1) for old, new in zip(layer, added))
                           for layer, added in zip(self.states, states)]
        for name, vector in zip(self.KNOBS, stream_knobs(job.config, job.seed)):
            self.knobs[name] = np.concatenate([self.knobs[name], vector])
        self.positions = np.concatenate([self.positions, np.zeros(job.config.num_samples, np.int32)])

    def keep(self, kept: list[int]) -> None:
        """Keeps only the streams at these indices."""
        import tensorflow as tf

        if len(kept) == len(self.jobs):
            return
        self.jobs = [self.jobs[index] for index in kept]
        if not kept:
            self.logits = self.states = None
        else:
            indices = tf.constant(kept, tf.int32)
            self.logits = tf.gather(self.logits, indices)
            self.states = [tuple(tf.gather(part, indices, axis=1) for part in layer) for layer in self.states]
        for name in self.KNOBS:
            self.knobs[name] = self.knobs[name][kept]
        self.positions = self.positions[kept]


def _padded(tensor, width: int, axis: int):
    import tensorflow as tf

    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return tf.concat([tensor, tf.zeros(shape, tensor.dtype)], axis=axis)


def _concat(tensors: list, axis: int):
    import tensorflow as tf

    return tensors[0] if len(tensors) == 1 else tf.concat(tensors, axis=axis)


class JobQueue:
    """What every engine shares: requests wait in a bounded queue until the engine's scheduler
    thread (its `_run`) takes their streams into the batch it steps.

    Args:
        max_streams: streams stepped at once; requests beyond wait their turn.
        max_waiting: requests allowed to wait; `submit` raises `Busy` beyond.
        chunk: characters per scheduling round.
        thread_name: the scheduler thread's name.
    """

    def __init__(self, max_streams: int, max_waiting: int, chunk: int, thread_name: str):
        if max_streams < 1:
            raise ValueError(f"Expected max_streams >= 1. Received: max_streams={max_streams}")
        self.max_streams, self.max_waiting, self.chunk = max_streams, max_waiting, chunk
        self._waiting: deque[Job] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self.served_chars = 0
        self.peak_streams = 0  # the most streams one round has run together

    def _run(self) -> None:
        raise NotImplementedError

    def _active(self) -> int:
        """The streams now in the batch."""
        raise NotImplementedError

    def _admit(self) -> list[Job]:
        """Takes waiting jobs, in order, while their streams fit (call with the lock held)."""
        joining, room = [], self.max_streams - self._active()
        while self._waiting and (self._waiting[0].config.num_samples <= room or self._waiting[0].cancelled.is_set()):
            job = self._waiting.popleft()
            if not job.cancelled.is_set():
                joining.append(job)
                room -= job.config.num_samples
        return joining

    def start(self):
        self._thread.start()
        return self

    def submit(self, job: Job) -> None:
        """Queues a job; its streams join the batch before the next round that has room.

        Raises:
            Busy: `max_waiting` requests are already waiting.
        """
        job.left = job.config.length
        job.scanners = scanners_for(job.config.stop, job.config.num_samples) or []
        with self._wake:
            if len(self._waiting) >= self.max_waiting:
                raise Busy(f"{len(self._waiting)} requests are already waiting; try again shortly")
            self._waiting.append(job)
            self._wake.notify()

    def stop(self, timeout: float | None = None) -> None:
        """Finishes every submitted job, then ends the scheduler thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)


class Engine(JobQueue):
    """Runs requests as streams of one batched compiled loop on a scheduler thread.

    Args:
        sampler: a `charrnn.Sampler`.
        max_streams: streams generated at once; requests beyond wait their turn. Defaults to 64.
        max_waiting: requests allowed to wait; `submit` raises `Busy` beyond. Defaults to 256.
        chunk: characters per compiled call. Defaults to 64.
    """

    def __init__(self, sampler, max_streams: int = 64, max_waiting: int = 256, chunk: int = CHUNK):
        super().__init__(max_streams, max_waiting, chunk, "charrnn-serve-engine")
        self.sampler = sampler
        self._groups: dict[str, _Group] = {}

    def stats(self) -> dict:
        with self._wake:
            return {"active_streams": sum(len(group.jobs) for group in self._groups.values()),
                    "waiting_requests": len(self._waiting), "max_streams": self.max_streams,
                    "peak_streams": self.peak_streams, "served_chars": self.served_chars}

    def warm_up(self, widths=(BLOCK,), modes=("plain",)) -> float:
        """Compiles the loop for these batch widths and modes now (call before `start`); returns seconds."""
        import tensorflow as tf

        started = time.perf_counter()
        for mode in modes:
            for width in widths:
                config = SampleConfig(num_samples=width, length=1, seed=0, top_k=2 if mode == "truncated" else None,
                                      argmax=mode == "argmax", label=(self.sampler.label_names or (None,))[0])
                logits, states = self.sampler.prime_states(config)
                knobs = [tf.constant(vector) for vector in stream_knobs(config, 0)]
                self.sampler.draw_chunk(logits, states, tf.zeros([width], tf.int32), tf.constant(1), *knobs, mode)
        return time.perf_counter() - started

    # ------------------------------------------------------------ the scheduler thread

    def _active(self) -> int:
        return sum(len(group.jobs) for group in self._groups.values())

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._active() and not self._stopping:
                    self._wake.wait()
                if self._stopping and not self._waiting and not self._active():
                    return
                joining = self._admit()
            try:
                for job in joining:
                    self._join(job)
                for group in list(self._groups.values()):
                    self._drop_cancelled(group)
                    if group.jobs:
                        self._run_chunk(group)
            except Exception as error:  # a fault here must not leave clients waiting forever
                log.warning("generation failed: %s", error)
                self._fail_all(f"generation failed: {error}")
            with self._wake:
                self._groups = {mode: group for mode, group in self._groups.items() if group.jobs}

    def _fail_all(self, message: str) -> None:
        with self._wake:
            jobs = {id(job): job for group in self._groups.values() for job in group.jobs}
            for group in self._groups.values():
                group.keep([])
        for job in jobs.values():
            job.deliver("error", message)

    def _join(self, job: Job) -> None:
        """Feeds a job's prime and adds its streams to the group of its draw mode."""
        try:
            logits, states = self.sampler.prime_states(job.config)
            job.deliver("piece", [job.config.prime] * job.config.num_samples)
            if job.left == 0:
                job.deliver("done", None)
                return
            mode = draw_mode(job.config)
            with self._wake:
                self._groups.setdefault(mode, _Group(mode)).join(job, logits, states)
        except Exception as error:  # the request was validated; this is a server fault, reported to it
            log.warning("a request failed to start: %s", error)
            job.deliver("error", f"generation failed: {error}")

    def _drop_cancelled(self, group: _Group) -> None:
        kept = [index for index, job in enumerate(group.jobs) if not job.cancelled.is_set()]
        with self._wake:
            group.keep(kept)

    def _run_chunk(self, group: _Group) -> None:
        streams = len(group.jobs)
        self.peak_streams = max(self.peak_streams, streams)
        size = min(self.chunk, max(job.left for job in group.jobs))
        width = BLOCK if self.sampler.backend.startswith("xla") else streams
        blocks = [self._run_block(group, start, min(start + width, streams), size, width)
                  for start in range(0, streams, width)]
        ids = np.concatenate([block[0] for block in blocks], axis=0)
        group.logits = _concat([block[1] for block in blocks], axis=0)
        group.states = [tuple(_concat([block[2][layer][part] for block in blocks], axis=1)
                              for part in range(len(group.states[layer])))
                        for layer in range(len(group.states))]
        group.positions = group.positions + size
        self._deliver(group, ids, size)

    def _run_block(self, group: _Group, start: int, stop: int, size: int, width: int):
        """Runs streams start..stop-1 of `group` for `size` characters as one call of `width`
        streams (padded); returns their ids (stop - start, size), logits and states."""
        import tensorflow as tf

        streams = stop - start
        pad = lambda vector, fill=0: np.concatenate([vector[start:stop], np.full(width - streams, fill, vector.dtype)])
        knobs = [tf.constant(pad(group.knobs[name], 1 if name in ("temperature", "top_p") else 0))
                 for name in group.KNOBS]
        logits = _padded(group.logits[start:stop], width, 0)
        states = [tuple(_padded(part[:, start:stop], width, 1) for part in layer) for layer in group.states]
        ids, logits, states = self.sampler.draw_chunk(logits, states, tf.constant(pad(group.positions)),
                                                      tf.constant(size), *knobs, group.mode)
        return (np.asarray(ids)[:streams, :size], logits[:streams],
                [tuple(part[:, :streams] for part in layer) for layer in states])

    def _deliver(self, group: _Group, ids: np.ndarray, size: int) -> None:
        """Hands each job its streams' new text and retires the jobs that are complete; with stop
        sequences, a stream that has stopped leaves the batch, and its job is complete when all
        of its streams have stopped."""
        rows: dict[int, list[int]] = {}
        jobs: dict[int, Job] = {}
        for index, job in enumerate(group.jobs):
            rows.setdefault(id(job), []).append(index)
            jobs[id(job)] = job
        kept = []
        for key, indices in rows.items():
            job = jobs[key]
            taken = min(size, job.left)
            job.left -= taken
            self.served_chars += taken * len(indices)
            pieces = [""] * job.config.num_samples  # a stream that has stopped gets ""
            for index in indices:
                pieces[group.knobs["samples"][index]] = self.sampler.vocab.decode(ids[index, :taken])
            if job.scanners:
                pieces = scan_pieces(job.scanners, pieces, last=job.left == 0)
                indices = [index for index in indices if job.scanners[group.knobs["samples"][index]].stopped is None]
            job.deliver("piece", pieces)
            if job.left == 0 or not indices:
                job.deliver("done", None)
            else:
                kept += indices
        with self._wake:
            group.keep(sorted(kept))
