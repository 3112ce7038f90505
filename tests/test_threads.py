"""Tests of the thread API (get/set_num_threads, OMP_NUM_THREADS, threadpoolctl)
and of calls from many Python threads at once."""
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import csoftmax
from csoftmax import _runtime, reference

from test_forward import ASSERT

# Work of at least 8192 elements takes the multithreaded path.
BIG = [
    ((300, 1000), -1),     # wide rows
    ((1000, 300), 0),      # strided class axis, tiles of columns
    ((300, 1000), 0),
    ((6000, 20), 1),       # narrow rows, in blocks
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


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 6).astype(dtype)
    x.flat[::17] = -np.inf
    return x


def _needs_two_threads(n):
    if not _runtime.has_openmp():
        pytest.skip("serial build (no OpenMP)")
    if n < 2:
        pytest.skip("OpenMP allows one thread here (OMP_NUM_THREADS=1?)")


# -------------------------------------------------------------- thread API

def test_get_num_threads_is_a_positive_int():
    n = csoftmax.get_num_threads()
    assert isinstance(n, int) and n >= 1
    if not _runtime.has_openmp():
        assert n == 1


def test_set_num_threads(restore_threads):
    default = restore_threads
    _needs_two_threads(default)
    csoftmax.set_num_threads(1)
    assert csoftmax.get_num_threads() == 1
    csoftmax.set_num_threads(2)
    assert csoftmax.get_num_threads() == 2
    # OpenMP's own limit caps ours
    csoftmax.set_num_threads(default + 100)
    assert csoftmax.get_num_threads() == default


@pytest.mark.parametrize("n", [0, -1, -64, "many"])
def test_set_num_threads_invalid(restore_threads, n):
    csoftmax.set_num_threads(1)
    with pytest.raises(ValueError):
        csoftmax.set_num_threads(n)
    assert csoftmax.get_num_threads() == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape, axis", BIG, ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_same_bits_on_one_and_two_threads(isa, restore_threads, name, shape, axis, dtype):
    _needs_two_threads(restore_threads)
    x = _data(shape, dtype)
    f = getattr(csoftmax, name)
    csoftmax.set_num_threads(1)
    one = f(x, axis=axis)
    csoftmax.set_num_threads(2)
    two = f(x, axis=axis)
    np.testing.assert_array_equal(one.view(np.uint8), two.view(np.uint8))
    ASSERT[name](two, getattr(reference, name)(x, axis=axis), x, axis, dtype)


# ------------------------------------------------- OpenMP's limits honoured

def _openmp_pools():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return threadpoolctl, [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]


def test_threadpoolctl_sees_our_openmp():
    if not _runtime.has_openmp():
        pytest.skip("serial build (no OpenMP)")
    _, pools = _openmp_pools()
    assert pools, "threadpoolctl finds no OpenMP runtime in this process"
    assert any(p["num_threads"] == csoftmax.get_num_threads() for p in pools), pools


@pytest.mark.parametrize("user_api", [None, "openmp"])
def test_threadpool_limits(restore_threads, user_api):
    _needs_two_threads(restore_threads)
    threadpoolctl, _ = _openmp_pools()
    x = _data((300, 1000), np.float64)
    free = csoftmax.softmax(x, axis=1)
    with threadpoolctl.threadpool_limits(limits=1, user_api=user_api):
        assert csoftmax.get_num_threads() == 1
        limited = csoftmax.softmax(x, axis=1)
    assert csoftmax.get_num_threads() == restore_threads
    np.testing.assert_array_equal(free, limited)


def _in_subprocess(code, **env):
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(csoftmax.__file__)))
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, full.get("PYTHONPATH")]))
    res = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


@pytest.mark.parametrize("n", [1, 3])
def test_omp_num_threads_honoured(n):
    if not _runtime.has_openmp():
        pytest.skip("serial build (no OpenMP)")
    code = (
        "import numpy as np, csoftmax\n"
        "print(csoftmax.get_num_threads())\n"
        "csoftmax.set_num_threads(8)\n"
        "print(csoftmax.get_num_threads())\n"
        "x = np.random.default_rng(0).normal(size=(300, 1000))\n"
        "print(np.allclose(csoftmax.softmax(x, axis=1).sum(axis=1), 1))\n"
    )
    out = _in_subprocess(code, OMP_NUM_THREADS=str(n))
    assert out == [str(n), str(n), "True"]


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


def test_gil_released(restore_threads):
    """While one thread is inside a long call, another keeps running Python."""
    csoftmax.set_num_threads(1)          # leave a core for the watcher
    x = np.random.default_rng(0).normal(size=(4000, 2000))
    out = np.empty_like(x)
    csoftmax.softmax(x, axis=1, out=out)     # warm up: pages of out faulted in
    ratios = []
    for _ in range(3):
        span = {}
        done = threading.Event()

        def work():
            span["t0"] = time.perf_counter()
            csoftmax.softmax(x, axis=1, out=out)
            span["t1"] = time.perf_counter()
            done.set()

        stamps = []
        t = threading.Thread(target=work)
        t.start()
        while not done.is_set():
            stamps.append(time.perf_counter())
        t.join()
        t0, t1 = span["t0"], span["t1"]
        inside = np.array([t0] + [s for s in stamps if t0 < s < t1] + [t1])
        ratios.append(np.max(np.diff(inside)) / (t1 - t0))
        # The watcher runs all through the call (held, the GIL would stall it
        # for the whole call: ratio 1).
        if (t1 - t0) > 0.005 and ratios[-1] < 0.5:
            return
    pytest.fail(f"the watcher thread stalled while softmax ran: longest gap / call = {ratios}")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_forked_child_computes_on_one_thread(restore_threads):
    """GNU OpenMP's threads do not survive a fork (a team started in the child
    hangs); a child forked after threaded calls gets one thread and its calls
    return."""
    _needs_two_threads(restore_threads)
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
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "2"], res.stdout  # child fine; the parent keeps its threads


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_long_slice_with_masked_pieces(isa, restore_threads, name, dtype):
    """Pieces of a long slice that are all -inf (a masked span) add nothing:
    0 (log: -inf) there, the rest as the reference, the same bits on any
    number of threads and in place."""
    _needs_two_threads(restore_threads)
    x = _data((5 * 16384 + 3,), dtype)
    x[16384:3 * 16384] = -np.inf
    x[-3:] = -np.inf
    f = getattr(csoftmax, name)
    csoftmax.set_num_threads(1)
    one = f(x)
    csoftmax.set_num_threads(2)
    two = f(x)
    np.testing.assert_array_equal(one.view(np.uint8), two.view(np.uint8))
    np.testing.assert_array_equal(two[16384:3 * 16384], 0.0 if name == "softmax" else -np.inf)
    ASSERT[name](two, getattr(reference, name)(x), x, None, dtype)
    y = x.copy()
    f(y, out=y)
    np.testing.assert_array_equal(y, two)
