"""The registry of benchmark cases, grouped by what they compute, and the speed
targets the project holds each case to."""
from dataclasses import dataclass, field
from typing import Callable

# The groups in the order they run and report, with their headings.
GROUPS = {
    "forward": "Forward: softmax and log_softmax",
    "backward": "Backward passes and the Jacobian",
    "cross-entropy": "Cross-entropy loss and gradient",
    "regression": "Softmax-regression loss and gradient",
    "training": "Training: SoftmaxRegression",
}


@dataclass(frozen=True)
class Target:
    """A speed target: ``median(impl) / median(peer) <= limit``.

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
    group: str
    targets: tuple[Target, ...] = ()
    slow: bool = False  # skipped by --quick unless --filter picks cases


CASES: list[Case] = []


def case(name, make, *, group, targets=(), slow=False):
    """Register a case of ``group`` (a key of :data:`GROUPS`); ``make(options)``
    builds its data and returns a :class:`Setup`."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; one of {', '.join(GROUPS)}")
    CASES.append(Case(name, make, group, tuple(targets), slow))
