"""The registry of benchmark cases and the speed bars the issues set on them."""
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Bar:
    """An issue's speed bar: ``median(impl) / median(peer) <= limit``.

    ``peer=None`` makes it absolute (``limit`` in seconds); ``peer_case`` names
    the case the peer was timed in when it is not this one.
    """
    peer: str | None
    limit: float
    impl: str = "csoftmax"
    peer_case: str | None = None


@dataclass
class Setup:
    """What a case hands the timing loop.

    ``impls`` maps names to argument-free callables; the first is csoftmax's,
    the one every ratio "cs/peer" is taken against.  ``reference`` names the
    implementation whose result csoftmax's is checked against.
    ``calibrate=False`` (for calls of seconds) skips warm-up and inner loops.
    """
    impls: dict[str, Callable]
    baseline: str = "copy"
    reference: str | None = "numpy"
    notes: list[str] = field(default_factory=list)
    calibrate: bool = True
    repeats: int | None = None


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable  # (options) -> Setup
    issue: int
    bars: tuple[Bar, ...] = ()
    slow: bool = False  # skipped by --quick unless --filter picks cases


CASES: list[Case] = []


def case(name, make, *, issue, bars=(), slow=False):
    """Register a case; ``make(options)`` builds its data and returns a :class:`Setup`."""
    CASES.append(Case(name, make, issue, tuple(bars), slow))
