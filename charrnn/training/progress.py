"""What stops a training run, and what it shows while it runs: the time budget and signals
(`Watcher`) and the tqdm bar (`ProgressBar`). Plain Python: no TensorFlow here."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time


class Watcher:
    """Watches the time budget and SIGINT/SIGTERM; training stops after the step in flight.

    Args:
        time_budget: seconds the run may take, or None for no budget.
    """

    def __init__(self, time_budget: float | None):
        self.started = time.perf_counter()
        self.budget = time_budget
        self.signal_name: str | None = None

    def time_share(self) -> float:
        """The share of the time budget used so far (0 without a budget)."""
        return (time.perf_counter() - self.started) / self.budget if self.budget else 0.0

    def seconds_left(self) -> float | None:
        return max(0.0, self.budget * (1.0 - self.time_share())) if self.budget else None

    @contextlib.contextmanager
    def signals(self):
        """Within the block, SIGINT/SIGTERM ask for a clean stop; a second one stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

        def handler(number, frame):
            if self.signal_name is not None:  # a second Ctrl-C stops at once
                signal.signal(number, previous[number])
                raise KeyboardInterrupt
            self.signal_name = signal.Signals(number).name

        for number in previous:
            signal.signal(number, handler)
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    def reason(self) -> str | None:
        """"interrupted", "time_budget" or None (go on)."""
        if self.signal_name is not None:
            return "interrupted"
        if self.budget and self.time_share() >= 1.0:
            return "time_budget"
        return None


class ProgressBar:
    """The tqdm bar on stderr: step, loss, val loss, bits/char, chars/s and ETA.

    Args:
        enabled: draw the bar (False: only count).
        total_steps: the step limit (sys.maxsize when only a time budget limits the run).
        initial: the step the bar starts at (a resumed run's step).
        chars_per_step: characters trained per optimizer step (batch size x window).
        watcher: the run's `Watcher`, for the time-budget ETA.
    """

    def __init__(self, enabled: bool, total_steps: int, initial: int, chars_per_step: int, watcher: Watcher):
        self.chars_per_step = chars_per_step
        self.watcher = watcher
        self.total_steps = total_steps
        self.postfix: dict[str, str] = {}
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            total = total_steps if total_steps != sys.maxsize else None
            self.bar = tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True,
                            desc="train", smoothing=0.1)
        self.started, self.steps = time.perf_counter(), 0

    def step(self, loss: float) -> None:
        self.steps += 1
        if self.steps == 1:  # the first step includes graph building: time the rate from here
            self.started = time.perf_counter()
        if self.bar is None:
            return
        rate = (self.steps - 1) * self.chars_per_step / max(time.perf_counter() - self.started, 1e-9)
        seconds_left = self.watcher.seconds_left()
        if seconds_left is not None:  # a time budget: the ETA is whichever limit comes first
            left = seconds_left * rate / self.chars_per_step
            self.bar.total = int(min(self.total_steps, self.bar.n + 1 + left))
        self.postfix.update(loss=f"{loss:.3f}", chars_s=f"{rate:,.0f}")
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(1)

    def evaluated(self, row: dict) -> None:
        self.postfix.update(val=f"{row['val_loss']:.3f}", bpc=f"{row['val_bpc']:.3f}")
        if self.bar is not None:
            self.bar.set_postfix(self.postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
