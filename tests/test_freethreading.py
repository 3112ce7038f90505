"""The module state under many Python threads at once, and the free-threaded
CPython (3.13t) build.

The state a call reads or changes outside its own arrays: the thread count
(``set_num_threads``, read by every call), the kernel table (looked up by every
call) and the block cache that large outputs are allocated from and freed back
to.  One test sets the thread count, empties the cache and computes from many
threads at once; it runs on any build.
With the GIL the threads interleave wherever a call releases it (the kernels
run without it); on a free-threaded CPython they run truly at once.  Every
result must be the one computed up front, bit for bit: results do not depend
on the thread count.

On a free-threaded build, importing csoftmax must leave the GIL off: every
extension module declares that it does not need it.
"""
import os
import sys
import sysconfig
import threading

import numpy as np
import pytest

import csoftmax
from csoftmax import _alloc, _runtime

from helpers import run_python

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
MODULES = ["_alloc", "_runtime", "_forward", "_backward", "_jacobian", "_loss"]

# just over the smallest block the cache keeps, in float64
BIG = (_alloc.LIMITS["min_block"] // 8 // 1000 + 1, 1000)


@pytest.fixture
def restore_threads():
    before = csoftmax.get_num_threads()
    yield before
    csoftmax.set_num_threads(before)


@pytest.fixture
def empty_cache():
    _alloc.clear_cache()
    yield
    _alloc.clear_cache()


def _same_bits(a, b):
    a, b = np.atleast_1d(a), np.atleast_1d(b)   # a loss is a scalar
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _jobs():
    """The input of the cached softmax, and (name, call) pairs: small calls (one thread, the kernel lookup and thread count
    read on every call), threaded ones (rows, column tiles, a long slice in
    pieces) and ones whose outputs come from the block cache."""
    rng = np.random.default_rng(7)
    small = rng.standard_normal((64, 10))
    x32 = rng.standard_normal((300, 1000)).astype(np.float32)
    x32[::17, 3] = -np.inf
    long_row = rng.standard_normal(70000)
    z32 = rng.standard_normal((700, 333)).astype(np.float32)
    lab32 = rng.integers(0, 333, 700)
    big = rng.standard_normal(BIG)
    big_lab = rng.integers(0, BIG[1], BIG[0])
    return big, [
        ("softmax small", lambda: csoftmax.softmax(small, axis=-1)),
        ("log_softmax small", lambda: csoftmax.log_softmax(small)),
        ("cross_entropy_grad small", lambda: csoftmax.cross_entropy_grad(small, [1] * 64)),
        ("softmax rows", lambda: csoftmax.softmax(x32, axis=-1)),
        ("log_softmax tiles", lambda: csoftmax.log_softmax(x32, axis=0)),
        ("softmax long slice", lambda: csoftmax.softmax(long_row)),
        ("cross_entropy_grad", lambda: csoftmax.cross_entropy_grad(z32, lab32)),
        ("softmax_backward", lambda: csoftmax.softmax_backward(x32, x32, axis=0)),
        ("softmax cached", lambda: csoftmax.softmax(big, axis=-1)),
        ("log_softmax cached", lambda: csoftmax.log_softmax(big, axis=-1)),
        ("cross_entropy_grad cached", lambda: csoftmax.cross_entropy_grad(big, big_lab)),
    ]


def _flatten(result):
    return list(result) if isinstance(result, tuple) else [result]


def test_state_hammered_from_many_threads(restore_threads, empty_cache):
    """Six threads call the functions (large outputs through the block cache,
    and blocks of their own from it, filled and checked) while two threads keep
    setting and reading the thread count and one keeps reading and emptying
    the cache.  Every result is the one computed up front, bit for bit; no
    block is handed to two arrays at once; the count read back is always one
    that was set (or OpenMP's limit)."""
    big, jobs = _jobs()
    want = [_flatten(call()) for _, call in jobs]
    want_big = csoftmax.softmax(big, axis=-1)
    csoftmax.set_num_threads(1 << 20)
    openmp_limit = csoftmax.get_num_threads()   # OpenMP's own (1 in a serial build)
    allowed = {min(n, openmp_limit) for n in (1, 2, 3)}
    n_workers, rounds = 6, 5
    start = threading.Barrier(n_workers + 3)
    stop = threading.Event()
    errors = []

    def worker(k):
        try:
            start.wait()
            for r in range(rounds):
                for i in range(len(jobs)):
                    j = (i + k) % len(jobs)
                    name, call = jobs[j]
                    if not all(map(_same_bits, _flatten(call()), want[j])):
                        errors.append(f"thread {k}, round {r}: {name} differs")
                # a block of our own from the cache, marked with who we are: a block
                # handed to two arrays at once would be overwritten by the other
                mark = float(k * rounds + r)
                own = _alloc.empty(BIG, np.float64)
                own.fill(mark)
                if not _same_bits(csoftmax.softmax(big, axis=-1), want_big):  # another cached block meanwhile
                    errors.append(f"thread {k}, round {r}: softmax with a block of its own differs")
                if own.min() != mark or own.max() != mark:
                    errors.append(f"thread {k}, round {r}: a block of the cache was handed out twice")
                del own
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"thread {k}: {exc!r}")

    def set_counts(k):
        try:
            start.wait()
            i = k
            while not stop.is_set():
                csoftmax.set_num_threads(1 + i % 3)
                got = csoftmax.get_num_threads()
                if got not in allowed:
                    errors.append(f"get_num_threads() gave {got}, not one of {sorted(allowed)}")
                i += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"setter {k}: {exc!r}")

    def watch_cache():
        try:
            start.wait()
            i = 0
            while not stop.is_set():
                blocks, nbytes = _alloc.cache_info()
                if blocks > _alloc.LIMITS["slots"] or nbytes > _alloc.LIMITS["max_bytes"]:
                    errors.append(f"the cache holds {blocks} blocks, {nbytes} bytes")
                if i % 8 == 0:
                    _alloc.clear_cache()
                i += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"cache watcher: {exc!r}")

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(n_workers)]
    others = [threading.Thread(target=set_counts, args=(k,)) for k in range(2)]
    others.append(threading.Thread(target=watch_cache))
    for t in workers + others:
        t.start()
    try:
        for t in workers:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in workers), "a worker thread did not finish"
    finally:
        stop.set()
        for t in others:
            t.join()
    assert not errors, errors[:5]
    blocks, nbytes = _alloc.cache_info()
    assert blocks <= _alloc.LIMITS["slots"] and nbytes <= _alloc.LIMITS["max_bytes"]


def test_show_config_says_which_build(capsys):
    info = csoftmax.show_config(mode="dicts")["python"]
    assert type(info["free_threaded"]) is bool and type(info["gil_enabled"]) is bool
    assert info["free_threaded"] is FREE_THREADED
    assert info["free_threaded"] or info["gil_enabled"]   # a build with a GIL always has it on
    csoftmax.show_config()
    printed = capsys.readouterr().out
    assert f"free_threaded: {info['free_threaded']}" in printed and f"gil_enabled: {info['gil_enabled']}" in printed


@pytest.mark.skipif(not FREE_THREADED, reason="not a free-threaded CPython: the GIL is always on")
def test_import_keeps_the_gil_off():
    """Each extension module imported alone, in a fresh interpreter left to its
    default (PYTHON_GIL unset: an import of a module that does not declare
    itself free-threading compatible turns the GIL on, with a RuntimeWarning)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(csoftmax.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, env.get("PYTHONPATH")]))
    for name in MODULES + [""]:
        target = f"csoftmax.{name}" if name else "csoftmax"
        code = ("import sys, warnings\n"
                "warnings.simplefilter('error')\n"
                "import numpy\n"
                f"import {target}\n"
                "print(sys._is_gil_enabled())\n")
        res = run_python(code, env=env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["False"], f"importing {target} turned the GIL on: {res.stderr}"
