"""Long-running checks, opt-in (``pytest --runslow`` or ``CSOFTMAX_SLOW=1``):

* no memory is lost over many calls of every function, error paths included;
* results stay bitwise the same while Python threads call the functions and
  another thread keeps changing the thread count;
* a forked child (after threaded calls, and while other threads compute)
  computes correct results on one thread and never hangs;
* arrays of more than 2**31 elements, where the machine has the memory.

Each runs in its own interpreter where the process state matters (resident
memory, forks), so that the rest of the suite neither disturbs nor is
disturbed by it.
"""
import os
import threading

import numpy as np
import pytest

import csoftmax
from csoftmax import _runtime

from helpers import run_python

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------ leaks

_LEAK = r"""
import gc, warnings
import numpy as np
import csoftmax as cs

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 37)).astype(np.float32)
xd = x.astype(np.float64)
g = rng.standard_normal(x.shape).astype(np.float32)
lab = rng.integers(0, 37, 64)
probs = cs.softmax(xd, axis=-1)
mask = rng.random(x.shape) < 0.7
W = rng.standard_normal((37, 5))
Xr = rng.standard_normal((64, 5))
out = np.empty_like(x)
bad_label = lab.copy(); bad_label[3] = 99

def raises(f):
    try:
        f()
    except (ValueError, TypeError, IndexError, OverflowError):
        return
    raise AssertionError("no error")

calls = [
    lambda: cs.softmax(x, axis=-1),
    lambda: cs.softmax(x, axis=0, out=out),
    lambda: cs.softmax(x.T, axis=(0, 1)),
    lambda: cs.log_softmax(xd, axis=-1),
    lambda: cs.softmax(x, axis=-1, where=mask),
    lambda: cs.log_softmax(x, axis=0, where=mask),
    lambda: cs.logsumexp(xd, axis=-1),
    lambda: cs.logsumexp(x, axis=0, b=g, return_sign=True),
    lambda: cs.softmax_backward(g, x, axis=-1),
    lambda: cs.log_softmax_backward(g, x, axis=0),
    lambda: cs.softmax_jacobian(x[:4]),
    lambda: cs.cross_entropy(xd, lab),
    lambda: cs.cross_entropy_grad(x, lab, reduction="sum"),
    lambda: cs.cross_entropy_grad(xd, probs),
    lambda: cs.cross_entropy_grad(x, lab, weight=np.ones(37), ignore_index=2, label_smoothing=0.1),
    lambda: cs.softmax_regression_loss_grad(W, Xr, lab, l2=0.1),
    lambda: raises(lambda: cs.softmax(x, axis=5)),
    lambda: raises(lambda: cs.softmax(x, axis=-1, out=np.empty((3, 3), np.float32))),
    lambda: raises(lambda: cs.softmax(x, axis=-1, where=mask[:3])),
    lambda: raises(lambda: cs.logsumexp(x, b=np.ones(3))),
    lambda: raises(lambda: cs.softmax_backward(g[:3], x)),
    lambda: raises(lambda: cs.cross_entropy(x, bad_label)),
    lambda: raises(lambda: cs.cross_entropy_grad(x, -probs)),
    lambda: raises(lambda: cs.cross_entropy_grad(x, lab, weight=np.ones(3))),
    lambda: raises(lambda: cs.softmax_regression_loss_grad(W, Xr, lab, l2=-1.0)),
    lambda: raises(lambda: cs.set_num_threads(0)),
    lambda: raises(lambda: cs.set_num_threads("2")),
]

def run(n):
    for _ in range(n):
        for f in calls:
            f()

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    run(300)                     # caches, interned objects, the allocator's pools
    gc.collect()
    before = rss()
    run(N)
    gc.collect()
    after = rss()
print(before, after)
"""


def test_no_memory_lost_over_many_calls():
    """RSS after warming up, and after N more rounds of every call (errors
    included): a leak of even one small object per call would add
    ``N * len(calls) * 64`` bytes, ~35 MB; the bound leaves room for the
    allocator's own growth."""
    n = 20_000
    res = run_python(f"N = {n}\n" + _LEAK, timeout=1200)
    assert res.returncode == 0, res.stderr
    before, after = map(int, res.stdout.split())
    assert after - before < 4 * 2**20, f"resident memory grew by {(after - before) / 2**20:.1f} MiB over {n} rounds"


# ------------------------------------------------------------------ threads

def test_thread_count_changing_under_load():
    """Eight Python threads call the functions while another thread flips the
    thread count between 1 and 2 (and back to the start); every result is the
    one computed up front, bit for bit."""
    if not _runtime.has_openmp():
        pytest.skip("serial build: the thread count cannot change")
    before = csoftmax.get_num_threads()
    rng = np.random.default_rng(1)
    x32 = rng.standard_normal((700, 333)).astype(np.float32)
    x64 = rng.standard_normal((333, 700))
    lab = rng.integers(0, 333, 700)
    jobs = [
        lambda: csoftmax.softmax(x32, axis=-1),
        lambda: csoftmax.softmax(x64, axis=0),
        lambda: csoftmax.log_softmax(x64, axis=None),
        lambda: csoftmax.logsumexp(x32, axis=-1),
        lambda: csoftmax.softmax_backward(x32, x32, axis=0),
        lambda: csoftmax.log_softmax_backward(x64, x64, axis=-1),
        lambda: csoftmax.cross_entropy_grad(x32, lab)[1],
        lambda: csoftmax.softmax(x32, axis=-1, where=x32 > 0),
    ]
    want = [f() for f in jobs]
    stop = threading.Event()
    errors = []

    def flip():
        n = 0
        while not stop.is_set():
            csoftmax.set_num_threads(1 + n % 2)
            n += 1

    def work(k):
        try:
            for i in range(60):
                j = (k + i) % len(jobs)
                if not np.array_equal(jobs[j](), want[j]):
                    errors.append(f"job {j} differs")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    flipper = threading.Thread(target=flip)
    workers = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    flipper.start()
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in workers), "a worker thread did not finish"
    finally:
        stop.set()
        flipper.join()
        csoftmax.set_num_threads(before)
    assert not errors, errors[:5]


# ------------------------------------------------------------------ fork

_FORK = r"""
import os, signal, threading
import numpy as np
import csoftmax as cs

rng = np.random.default_rng(2)
x = rng.standard_normal((800, 400)).astype(np.float32)
lab = rng.integers(0, 400, 800)
calls = [lambda: cs.softmax(x, axis=-1), lambda: cs.log_softmax(x, axis=0),
         lambda: cs.logsumexp(x, axis=-1), lambda: cs.cross_entropy_grad(x, lab)[1],
         lambda: cs.softmax_backward(x, x, axis=-1)]
want = [f() for f in calls]
assert cs.get_num_threads() == 2

# other threads keep computing while the main thread forks
stop = threading.Event()
def busy():
    while not stop.is_set():
        cs.softmax(x, axis=-1)
threads = [threading.Thread(target=busy) for _ in range(2)]
for t in threads:
    t.start()

failed = 0
for i in range(FORKS):
    pid = os.fork()
    if pid == 0:
        signal.alarm(60)      # a hang ends the child with SIGALRM
        ok = all(np.array_equal(f(), w) for f, w in zip(calls, want)) and cs.get_num_threads() == 1
        try:
            cs.set_num_threads(2)
            ok = False        # must refuse: a new thread team would hang here
        except RuntimeError:
            pass
        cs.set_num_threads(1)
        ok = ok and all(np.array_equal(f(), w) for f, w in zip(calls, want))
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        failed += 1
        print("child", i, "exit", code)
stop.set()
for t in threads:
    t.join()
# the parent keeps its threads and its results
ok = cs.get_num_threads() == 2 and all(np.array_equal(f(), w) for f, w in zip(calls, want))
print("failed", failed, "parent", ok)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_fork_while_threads_compute():
    if not _runtime.has_openmp():
        pytest.skip("serial build: no OpenMP threads to lose in a fork")
    forks = 40
    res = run_python(f"FORKS = {forks}\n" + _FORK, env=dict(os.environ, OMP_NUM_THREADS="2"), timeout=1200)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-4:] == ["failed", "0", "parent", "True"], res.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_multiprocessing_fork_pool():
    """The common way a fork happens: a multiprocessing pool with the fork
    start method, after threaded calls in the parent."""
    if not _runtime.has_openmp():
        pytest.skip("serial build: no OpenMP threads to lose in a fork")
    code = r"""
import multiprocessing as mp, warnings
import numpy as np
import csoftmax as cs
x = np.random.default_rng(3).standard_normal((64, 500, 300))
want = cs.softmax(x, axis=-1)
def one(i):
    return cs.softmax(x[i], axis=-1)
warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads: what we test
with mp.get_context("fork").Pool(2) as pool:
    got = np.stack(pool.map(one, range(64)))
print(np.array_equal(got, want))
"""
    res = run_python(code, env=dict(os.environ, OMP_NUM_THREADS="2"), timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True"], res.stdout


# ------------------------------------------------------------------ > 2**31 elements

def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


BIG = 2**31 + 4099   # elements: past what a 32-bit index reaches, not a multiple of any vector width


def _need(nbytes):
    if _available_bytes() < nbytes + 2 * 2**30:
        pytest.skip(f"needs {nbytes / 2**30:.1f} GiB of free memory")


def _fill_pattern(x, base):
    """``x[i] = base[i % len(base)]``, written in pieces (no temporary of x's size)."""
    period = len(base)
    for start in range(0, len(x), 2**24):
        n = min(2**24, len(x) - start)
        x[start:start + n] = np.resize(np.roll(base, -(start % period)), n)


def test_long_slice_over_2_31_elements():
    """One slice of ``BIG`` float32 elements (8 GiB, written in place):
    logsumexp, log_softmax and softmax of a known pattern, checked where it
    matters (both ends, around 2**31, a sample in between)."""
    _need(BIG * 4)
    period = 1000
    base = (np.arange(period, dtype=np.float64) % 10 / 10).astype(np.float32)   # 0.0 .. 0.9
    x = np.empty(BIG, np.float32)
    _fill_pattern(x, base)
    # the exact sum: BIG // period whole periods plus the remainder
    e = np.exp(base.astype(np.float64))
    whole, rest = divmod(BIG, period)
    lse = float(np.log(whole * e.sum() + e[:rest].sum()))
    probe = np.r_[0:50, 2**31 - 50:2**31 + 50, BIG - 50:BIG,
                  np.random.default_rng(4).integers(0, BIG, 1000)]
    want_x = base[probe % period].astype(np.float64)

    got = float(csoftmax.logsumexp(x))
    assert abs(got - lse) <= 1e-6 * abs(lse), (got, lse)

    csoftmax.log_softmax(x, out=x)
    np.testing.assert_allclose(x[probe], want_x - lse, rtol=1e-6, atol=0)
    # equal inputs give equal outputs wherever they lie
    np.testing.assert_array_equal(x[:period], x[2**31 - 2**31 % period:][:period])

    _fill_pattern(x, base)
    csoftmax.softmax(x, out=x)
    np.testing.assert_allclose(x[probe], np.exp(want_x - lse), rtol=1e-5, atol=0)
    np.testing.assert_array_equal(x[:period], x[2**31 - 2**31 % period:][:period])
    del x


def test_many_rows_over_2_31_elements():
    """``(rows, 1024)`` float32 with more than 2**31 elements in all (8 GiB,
    in place): row offsets past 2**31 are computed right, for softmax, its
    backward pass and the cross-entropy gradient."""
    C = 1024
    rows = 2**31 // C + 1001     # row offsets past 2**31 by a thousand rows
    _need(rows * C * 4)
    x = np.empty((rows, C), np.float32)
    pattern = np.random.default_rng(5).standard_normal((64, C)).astype(np.float32)
    for start in range(0, rows, 2**14):
        n = min(2**14, rows - start)
        x[start:start + n] = pattern[(np.arange(start, start + n) % 64)]
    want = csoftmax.softmax(pattern, axis=-1)
    probe = np.r_[0:64, (2**31 // C) - 64:(2**31 // C) + 64, rows - 64:rows]

    csoftmax.softmax(x, axis=-1, out=x)
    np.testing.assert_array_equal(x[probe], want[probe % 64])

    # the backward pass with the softmax itself as the upstream gradient, in place
    want_b = csoftmax.softmax_backward(want, want, axis=-1)
    csoftmax.softmax_backward(x, x, axis=-1, out=x)
    np.testing.assert_array_equal(x[probe], want_b[probe % 64])
    del x


def test_cross_entropy_over_2_31_elements():
    """The fused loss and gradient over ``(rows, 1024)`` float32 logits with more
    than 2**31 elements: the loss is a sum over rows past 2**31 elements, the
    gradient written in place over the logits."""
    C = 1024
    rows = 2**31 // C + 1001     # row offsets past 2**31 by a thousand rows
    _need(rows * C * 4 + rows * 8)
    pattern = np.random.default_rng(6).standard_normal((64, C)).astype(np.float32)
    labels = np.random.default_rng(7).integers(0, C, 64)
    z = np.empty((rows, C), np.float32)
    for start in range(0, rows, 2**14):
        n = min(2**14, rows - start)
        z[start:start + n] = pattern[(np.arange(start, start + n) % 64)]
    y = labels[np.arange(rows) % 64]
    per = csoftmax.cross_entropy(pattern, labels, reduction="none").astype(np.float64)
    want_total = per[np.arange(rows) % 64].sum()
    _, want_grad = csoftmax.cross_entropy_grad(pattern, labels, reduction="sum")
    total, grad = csoftmax.cross_entropy_grad(z, y, reduction="sum", out=z)
    assert grad is z
    assert abs(float(total) - want_total) <= 1e-5 * want_total
    probe = np.r_[0:64, (2**31 // C) - 64:(2**31 // C) + 64, rows - 64:rows]
    np.testing.assert_array_equal(z[probe], want_grad[probe % 64])
