"""Tests of the thread API (get/set_num_threads, OMP_NUM_THREADS, threadpoolctl)
and of calls from many Python threads at once.

The tests that compare one thread with two need OpenMP to allow two threads
(CI exports OMP_NUM_THREADS=2, which works on a one-core machine too).  They
skip, saying why, when it does not; with CSOFTMAX_REQUIRE_THREADS=1 in the
environment they fail instead, so a CI job cannot pass them by skipping.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import csoftmax
from csoftmax import _runtime, reference

from helpers import ASSERT, PIECE, assert_within, logits, run_python
from test_backward import bound as backward_bound

# Work of at least 8192 elements takes the multithreaded path.
BIG = [
    ((300, 1000), -1),     # wide rows
    ((1000, 300), 0),      # strided class axis, tiles of columns
    ((300, 1000), 0),
    ((6000, 20), 1),       # narrow rows, in blocks
    ((3080, 8), -1),       # each thread's share of narrow rows ends in a block
    ((1544, 16), -1),      # of one row (385 = 3 * 128 + 1, 193 = 3 * 64 + 1)
    ((70000,), None),      # one long slice, in pieces
    ((400, 300), None),
    ((1, 50001), -1),
    ((8, 50, 300), (0, 2)),
]


@pytest.fixture
def restore_threads():
    before = csoftmax.get_num_threads()
    yield before
    csoftmax.set_num_threads(before)


def _unavailable(reason):
    if os.environ.get("CSOFTMAX_REQUIRE_THREADS") == "1":
        pytest.fail(f"{reason} (CSOFTMAX_REQUIRE_THREADS=1 requires the thread tests to run)")
    pytest.skip(reason)


def _openmp_threads():
    """OpenMP's own limit in this process (omp_get_max_threads), whatever our
    set_num_threads says: ours is lifted for the look and put back."""
    before = csoftmax.get_num_threads()
    csoftmax.set_num_threads(1 << 20)
    try:
        return csoftmax.get_num_threads()
    finally:
        csoftmax.set_num_threads(before)


@pytest.fixture
def two_threads(restore_threads):
    """Skip (or, under CSOFTMAX_REQUIRE_THREADS=1, fail) unless OpenMP lets a call
    use two threads; the test may then set 1 or 2 and gets the old setting back."""
    if not _runtime.has_openmp():
        _unavailable("serial build: csoftmax was compiled without OpenMP, every call runs on one thread")
    n = _openmp_threads()
    if n < 2:
        _unavailable(f"OpenMP allows {n} thread here (omp_get_max_threads() == {n}); "
                     f"run with OMP_NUM_THREADS=2 to test one thread against two")
    return n


def _data(shape, dtype, seed=0):
    return logits(np.random.default_rng(seed), shape, dtype, scale=6.0, neg_inf_every=17)


def _in_subprocess(code, **env):
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(csoftmax.__file__)))
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, full.get("PYTHONPATH")]))
    res = run_python(code, env=full)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()



# -------------------------------------------------------------- thread API

@pytest.mark.parametrize("n", [1, 2, 3])
def test_omp_num_threads_sets_the_default(n):
    """OMP_NUM_THREADS=n gives n threads; set_num_threads lowers it and cannot
    raise it past OpenMP's limit."""
    if not _runtime.has_openmp():
        pytest.skip("serial build: OMP_NUM_THREADS has no effect (see test_serial_build_has_one_thread)")
    code = (
        "import numpy as np, csoftmax\n"
        "print(csoftmax.get_num_threads())\n"
        "csoftmax.set_num_threads(2)\n"
        "print(csoftmax.get_num_threads())\n"
        "csoftmax.set_num_threads(8)\n"
        "print(csoftmax.get_num_threads())\n"
        "csoftmax.set_num_threads(1)\n"
        "print(csoftmax.get_num_threads())\n"
        "x = np.random.default_rng(0).normal(size=(300, 1000))\n"
        "csoftmax.set_num_threads(8)\n"
        "print(np.allclose(csoftmax.softmax(x, axis=1).sum(axis=1), 1))\n"
    )
    out = _in_subprocess(code, OMP_NUM_THREADS=str(n))
    assert out == [str(n), str(min(2, n)), str(n), "1", "True"]


def test_serial_build_has_one_thread(restore_threads):
    if _runtime.has_openmp():
        pytest.skip("OpenMP build (see test_omp_num_threads_sets_the_default)")
    assert csoftmax.get_num_threads() == 1
    csoftmax.set_num_threads(4)
    assert csoftmax.get_num_threads() == 1


def test_set_num_threads(two_threads):
    csoftmax.set_num_threads(1)
    assert csoftmax.get_num_threads() == 1
    csoftmax.set_num_threads(2)
    assert csoftmax.get_num_threads() == 2
    # OpenMP's own limit caps ours
    csoftmax.set_num_threads(two_threads + 100)
    assert csoftmax.get_num_threads() == two_threads


@pytest.mark.parametrize("n, error", [(0, ValueError), (-1, ValueError), (-64, ValueError), ("many", TypeError)])
def test_set_num_threads_invalid(restore_threads, n, error):
    csoftmax.set_num_threads(1)
    with pytest.raises(error):
        csoftmax.set_num_threads(n)
    assert csoftmax.get_num_threads() == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape, axis", BIG, ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_same_bits_on_one_and_two_threads(isa, two_threads, name, shape, axis, dtype):
    x = _data(shape, dtype)
    f = getattr(csoftmax, name)
    csoftmax.set_num_threads(1)
    one = f(x, axis=axis)
    csoftmax.set_num_threads(2)
    two = f(x, axis=axis)
    np.testing.assert_array_equal(one.view(np.uint8), two.view(np.uint8))
    ASSERT[name](two, getattr(reference, name)(x, axis=axis), x, axis, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["plain", "where", "b", "b where"])
def test_logsumexp_long_row_same_bits_on_one_and_two_threads(isa, two_threads, kind, dtype):
    """One long row of logsumexp goes in pieces that the threads share: the
    pieces, and so the bits, do not depend on the number of threads."""
    x = _data((5 * PIECE + 3,), dtype)
    rng = np.random.default_rng(2)
    mask = rng.random(x.shape) < 0.7 if "where" in kind else None
    b = rng.uniform(0.1, 2, x.shape).astype(dtype) if "b" in kind else None
    csoftmax.set_num_threads(1)
    one = csoftmax.logsumexp(x, b=b, where=mask)
    csoftmax.set_num_threads(2)
    two = csoftmax.logsumexp(x, b=b, where=mask)
    assert np.asarray(one).tobytes() == np.asarray(two).tobytes()
    want = reference.logsumexp(x, b=b, where=mask)
    assert abs(float(two) - float(want)) <= 8 * np.finfo(dtype).eps * (1 + abs(float(want)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
def test_backward_long_row_same_bits_on_one_and_two_threads(isa, two_threads, name, dtype):
    """One long row of a backward pass goes in pieces that the threads
    share: the same bits on one thread and two."""
    x = _data((5 * PIECE + 3,), dtype)
    s = (csoftmax.log_softmax if name == "log_softmax_backward" else csoftmax.softmax)(x)
    g = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    f = getattr(csoftmax, name)
    csoftmax.set_num_threads(1)
    one = f(s, g)
    csoftmax.set_num_threads(2)
    two = f(s, g)
    np.testing.assert_array_equal(one.view(np.uint8), two.view(np.uint8))
    kind = "log_softmax" if name == "log_softmax_backward" else "softmax"
    assert_within(two, getattr(reference, name)(s, g), backward_bound(s, g, -1, dtype, kind))


# narrow and mid-width rows whose threads' shares end in a block of one row,
# or in a group of fewer than four
ROWS = [(3080, 8), (1928, 12), (1544, 16), (2300, 33), (1029, 64)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", ROWS, ids=str)
@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward", "cross_entropy_grad"])
def test_gradients_same_bits_on_one_and_two_threads(isa, two_threads, name, shape, dtype):
    x = _data(shape, dtype)
    rng = np.random.default_rng(1)
    if name == "cross_entropy_grad":
        y = rng.integers(0, shape[1], shape[0])
        def f():
            return csoftmax.cross_entropy_grad(x, y, reduction="none")
    else:
        s = (csoftmax.log_softmax if name == "log_softmax_backward" else csoftmax.softmax)(x, axis=-1)
        g = rng.standard_normal(shape).astype(dtype)
        def f():
            return (getattr(csoftmax, name)(s, g),)
    csoftmax.set_num_threads(1)
    one = f()
    csoftmax.set_num_threads(2)
    two = f()
    for a, b in zip(one, two):
        np.testing.assert_array_equal(np.asarray(a).view(np.uint8), np.asarray(b).view(np.uint8))


# ------------------------------------------------- OpenMP's limits honoured

def _openmp_pools():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return threadpoolctl, [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]


def test_threadpoolctl_sees_our_openmp():
    if not _runtime.has_openmp():
        pytest.skip("serial build: no OpenMP runtime for threadpoolctl to find")
    _, pools = _openmp_pools()
    assert pools, "threadpoolctl finds no OpenMP runtime in this process"
    assert any(p["num_threads"] == csoftmax.get_num_threads() for p in pools), pools


@pytest.mark.parametrize("user_api", [None, "openmp"])
def test_threadpool_limits(restore_threads, two_threads, user_api):
    threadpoolctl, _ = _openmp_pools()
    x = _data((300, 1000), np.float64)
    free = csoftmax.softmax(x, axis=1)
    with threadpoolctl.threadpool_limits(limits=1, user_api=user_api):
        assert csoftmax.get_num_threads() == 1
        limited = csoftmax.softmax(x, axis=1)
    assert csoftmax.get_num_threads() == restore_threads
    np.testing.assert_array_equal(free, limited)


# ------------------------------------------------------ many Python threads

def _jobs():
    jobs = []
    for i in range(16):
        shape, axis = BIG[i % len(BIG)]
        dtype = (np.float32, np.float64)[i % 2]
        name = ("softmax", "log_softmax")[(i // 2) % 2]
        jobs.append((name, _data(shape, dtype, seed=i), axis))
    return jobs


def test_many_python_threads_at_once():
    jobs = _jobs()
    want = [getattr(csoftmax, name)(x, axis=axis) for name, x, axis in jobs]

    def run(job):
        name, x, axis = job
        return getattr(csoftmax, name)(x, axis=axis)

    def run_out(job):
        name, x, axis = job
        out = np.empty_like(x)
        assert getattr(csoftmax, name)(x, axis=axis, out=out) is out
        return out

    with ThreadPoolExecutor(max_workers=8) as ex:
        for _ in range(3):
            got = list(ex.map(run, jobs)) + list(ex.map(run_out, jobs))
            for w, g in zip(want + want, got):
                np.testing.assert_array_equal(w, g)


def test_in_place_from_many_threads():
    jobs = _jobs()
    want = [getattr(csoftmax, name)(x, axis=axis) for name, x, axis in jobs]

    def run(job):
        name, x, axis = job
        y = x.copy()
        getattr(csoftmax, name)(y, axis=axis, out=y)
        return y

    with ThreadPoolExecutor(max_workers=8) as ex:
        for w, g in zip(want, ex.map(run, jobs)):
            np.testing.assert_array_equal(w, g)


SENTINEL = 2.0  # above any softmax (<= 1) or log_softmax (<= 0) value


def _caught_mid_write(out, probe):
    """Read ``out[i, 0]`` for the rows in ``probe``, one after another, each read
    a single element access that holds the GIL; True when a row read earlier
    already holds a result and a row read later still holds the sentinel."""
    written = [out.item(i, 0) != SENTINEL for i in probe]
    return any(w and not later for k, w in enumerate(written) for later in written[k + 1:])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_gil_released(restore_threads, name):
    """Another Python thread runs while a call is inside its kernel.

    A watcher thread samples rows of the output while the call runs and
    records when it sees a row written *before* (in its own reading order) a
    row that is not written yet.  Each sample holds the GIL, and rows are only
    ever written, never reset, during the call.  If the call held the GIL from
    start to return, every sample would be taken either before the call
    started (nothing written) or after it returned (everything written), so an
    earlier sample that is written forces every later one to be written too:
    the pattern is impossible and the test cannot pass.  With the GIL released
    the watcher samples a half-written output.  The rows are probed forwards
    and then backwards, so the order in which the kernel writes rows does not
    matter.  A loaded machine can only make an attempt miss the window (the
    watcher not scheduled during the call), so up to 20 calls are made.
    """
    csoftmax.set_num_threads(1)          # leave a core for the watcher
    x = np.random.default_rng(0).normal(size=(4000, 2000))
    out = np.empty_like(x)
    f = getattr(csoftmax, name)
    f(x, axis=1, out=out)                # pages of out faulted in
    rows = out.shape[0]
    forward = [0, rows // 4, rows // 2, 3 * rows // 4, rows - 1]
    probe = forward + forward[::-1][1:]
    caught = []
    for _ in range(20):
        out.fill(SENTINEL)
        ready, returned = threading.Event(), threading.Event()

        def watch():
            ready.set()
            while not returned.is_set():
                if _caught_mid_write(out, probe):
                    caught.append(True)
                    return

        watcher = threading.Thread(target=watch)
        watcher.start()
        ready.wait()
        assert f(x, axis=1, out=out) is out
        returned.set()
        watcher.join()
        assert not np.any(out == SENTINEL)
        if caught:
            return
    pytest.fail(f"in 20 calls of {name} the watcher thread never ran while the kernel was writing "
                "the output: is the GIL held during the call?")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_forked_child_computes_on_one_thread():
    """GNU OpenMP's threads do not survive a fork (a team started in the child
    hangs); a child forked after threaded calls gets one thread and its calls
    return."""
    if not _runtime.has_openmp():
        pytest.skip("serial build: no OpenMP threads to lose in a fork")
    code = r"""
import os, signal
import numpy as np
import csoftmax as cs
rng = np.random.default_rng(0)
x = rng.standard_normal((600, 300))
y = rng.integers(0, 300, 600)
calls = [lambda: cs.softmax(x, axis=-1), lambda: cs.softmax(x, axis=0), lambda: cs.log_softmax(x),
         lambda: cs.softmax_backward(x, x, axis=0), lambda: cs.log_softmax_backward(x, x),
         lambda: cs.softmax_jacobian(x[:, :100]), lambda: cs.cross_entropy_grad(x, y),
         lambda: cs.cross_entropy_grad(x, np.eye(300)[y])]
want = [f() for f in calls]
assert cs.get_num_threads() == 2
pid = os.fork()
if pid == 0:
    signal.alarm(20)
    got = [f() for f in calls]
    same = all(np.array_equal(np.asarray(a[1] if isinstance(a, tuple) else a),
                              np.asarray(b[1] if isinstance(b, tuple) else b)) for a, b in zip(got, want))
    os._exit(0 if same and cs.get_num_threads() == 1 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), cs.get_num_threads())
"""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    res = run_python(code, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "2"], res.stdout  # child fine; the parent keeps its threads


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "where"])
def test_long_slice_with_masked_pieces(isa, two_threads, name, dtype, masked):
    """Pieces of a long slice that are all -inf (a masked span; with where=,
    also a span where it is False) add nothing: 0 (log: -inf) there, the rest
    as the reference, the same bits on any number of threads and in place."""
    x = _data((5 * PIECE + 3,), dtype)
    x[PIECE:3 * PIECE] = -np.inf
    x[-3:] = -np.inf
    mask = None
    if masked:
        mask = np.random.default_rng(3).random(x.shape) < 0.7
        mask[3 * PIECE:4 * PIECE + 5] = False
    f = getattr(csoftmax, name)
    csoftmax.set_num_threads(1)
    one = f(x, where=mask)
    csoftmax.set_num_threads(2)
    two = f(x, where=mask)
    np.testing.assert_array_equal(one.view(np.uint8), two.view(np.uint8))
    np.testing.assert_array_equal(two[PIECE:3 * PIECE], 0.0 if name == "softmax" else -np.inf)
    ASSERT[name](two, getattr(reference, name)(x, where=mask), np.where(mask, x, -np.inf) if masked else x,
                 None, dtype)
    y = x.copy()
    f(y, where=mask, out=y)
    np.testing.assert_array_equal(y, two)
