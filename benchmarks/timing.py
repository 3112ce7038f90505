"""The one timing loop: implementations timed side by side, repeats interleaved."""
import gc
import itertools
import statistics
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mode:
    """How hard to measure: at most ``repeats`` samples (at least ``min_repeats``)
    per implementation, each the mean over an inner loop lasting >= ``min_time``
    seconds, with fewer repeats once a case's rounds would pass ``budget`` seconds."""
    repeats: int
    min_repeats: int
    min_time: float
    budget: float


FULL = Mode(repeats=15, min_repeats=5, min_time=0.02, budget=6.0)
QUICK = Mode(repeats=5, min_repeats=3, min_time=0.005, budget=0.5)


@dataclass
class Timing:
    """Seconds per call of one implementation: one sample per repeat."""
    samples: list[float] = field(default_factory=list)
    number: int = 1  # calls per sample
    error: str | None = None

    @property
    def median(self):
        return statistics.median(self.samples) if self.samples else None

    @property
    def min(self):
        return min(self.samples) if self.samples else None


def _clock(f, number):
    loop = itertools.repeat(None, number)
    start = time.perf_counter()
    for _ in loop:
        f()
    return time.perf_counter() - start


def _autorange(f, min_time):
    """Calls per sample so that a sample lasts >= ``min_time`` (as timeit's autorange)."""
    number = 1
    while True:
        t = _clock(f, number)
        if t >= min_time:
            return number, t / number
        number = max(2 * number, int(1.2 * number * min_time / max(t, 1e-7)) + 1)


def _error(exc):
    return f"{type(exc).__name__}: {exc}"


def measure(impls, mode, *, calibrate=True, repeats=None):
    """Time each callable of ``impls``: returns ``{name: Timing}``.

    Each is warmed up (JIT compilation, first-touch page faults) and calibrated,
    then the repeats go round-robin over the implementations, starting one
    further along each round, so that machine noise and cache state hit all
    alike.  A callable that raises is reported with its error, not timed.
    """
    timings = {name: Timing() for name in impls}
    round_time = 0.0
    for name, f in impls.items() if calibrate else ():
        try:
            f()
            timings[name].number, per_call = _autorange(f, mode.min_time)
            round_time += timings[name].number * per_call
        except Exception as exc:
            timings[name].error = _error(exc)
    if repeats is None:
        repeats = mode.repeats
        if round_time > 0:
            repeats = min(repeats, max(mode.min_repeats, int(mode.budget / round_time)))
    names = [name for name in impls if timings[name].error is None]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            start = r % max(len(names), 1)
            for name in names[start:] + names[:start]:
                t = timings[name]
                if t.error is not None:
                    continue
                try:
                    t.samples.append(_clock(impls[name], t.number) / t.number)
                except Exception as exc:
                    t.error = _error(exc)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings
