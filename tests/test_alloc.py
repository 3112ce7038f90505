"""The block cache behind large outputs (csoftmax._alloc)."""
import os
import threading

import numpy as np
import pytest

import csoftmax as cs
from csoftmax import _alloc, reference
from helpers import run_python

LIMITS = _alloc.LIMITS
BIG = (LIMITS["min_block"] // 8 // 1000 + 1, 1000)  # just over the threshold in float64


@pytest.fixture(autouse=True)
def empty_cache():
    _alloc.clear_cache()
    yield
    _alloc.clear_cache()


def _handler(a):
    from numpy._core.multiarray import get_handler_name
    return get_handler_name(a)


def test_small_outputs_use_numpys_allocator():
    y = cs.softmax(np.ones((100, 10)), axis=-1)
    assert _handler(y) != "csoftmax_block_cache"
    assert _alloc.empty((10, 10), np.float32).flags.owndata


@pytest.mark.parametrize("order", ["C", "F"])
def test_large_output_owns_aligned_memory(order):
    a = _alloc.empty(BIG, np.float64, order=order)
    assert _handler(a) == "csoftmax_block_cache"
    assert a.flags.owndata and a.flags.writeable
    assert a.flags.c_contiguous if order == "C" else a.flags.f_contiguous
    assert a.ctypes.data % 64 == 0
    a[...] = 3.0  # every byte is ours to write
    assert a.sum() == 3.0 * a.size


def test_freed_block_is_reused_for_the_same_size_only():
    x = np.random.default_rng(0).standard_normal(BIG)
    y = cs.softmax(x, axis=-1)
    p = y.ctypes.data
    del y
    assert _alloc.cache_info() == (1, x.nbytes)
    z = cs.softmax(x, axis=-1)
    assert z.ctypes.data == p and _alloc.cache_info() == (0, 0)
    np.testing.assert_allclose(z, reference.softmax(x, axis=-1), rtol=1e-13)
    w = cs.softmax(x, axis=-1)  # z is alive: a block of its own
    assert w.ctypes.data != z.ctypes.data
    assert not np.shares_memory(w, z)
    v = _alloc.empty((BIG[0] + 1, BIG[1]), np.float64)
    del z
    u = _alloc.empty((BIG[0] + 1, BIG[1]), np.float64)  # another size: not the cached block
    assert u.ctypes.data != p
    del v, u, w


def test_cache_is_bounded():
    blocks = [_alloc.empty((BIG[0] + k, BIG[1]), np.float64) for k in range(LIMITS["slots"] + 3)]
    sizes = [b.nbytes for b in blocks]
    while blocks:
        del blocks[0]  # freed in order of size
    n, nbytes = _alloc.cache_info()
    assert n == LIMITS["slots"]
    assert nbytes == sum(sizes[-n:]) <= LIMITS["max_bytes"]  # the most recent ones
    huge = _alloc.empty((LIMITS["max_bytes"] // 8 + 8,), np.float64)
    del huge  # larger than the whole cache: given back at once
    assert _alloc.cache_info() == (n, nbytes)
    _alloc.clear_cache()
    assert _alloc.cache_info() == (0, 0)


def test_resize_keeps_the_data():
    a = _alloc.empty(BIG, np.float64)
    a.ravel()[:5] = np.arange(5)
    a.resize((5,), refcheck=False)
    assert a.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    a.resize((BIG[0] * BIG[1] + 100,), refcheck=False)
    assert a[:5].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and a.flags.owndata


def test_arrays_freed_from_many_threads():
    arrays = [_alloc.empty(BIG, np.float64) for _ in range(8)]
    for a in arrays:
        a.fill(1.0)
    barrier = threading.Barrier(4)

    def drop(chunk):
        barrier.wait()
        for _ in range(len(chunk)):
            chunk.pop().fill(2.0)

    chunks = [arrays[k::4] for k in range(4)]
    del arrays
    threads = [threading.Thread(target=drop, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n, nbytes = _alloc.cache_info()
    assert n <= LIMITS["slots"] and nbytes <= LIMITS["max_bytes"]
    again = [_alloc.empty(BIG, np.float64) for _ in range(3)]
    assert len({a.ctypes.data for a in again}) == 3


def test_cache_switched_off_by_the_environment():
    code = ("import numpy as np, csoftmax as cs\n"
            "from numpy._core.multiarray import get_handler_name\n"
            f"y = cs.softmax(np.ones({BIG}), axis=-1)\n"
            "print(get_handler_name(y), y.flags.owndata)\n")
    for value, name in (("0", "default_allocator"), ("1", "csoftmax_block_cache")):
        env = dict(os.environ, CSOFTMAX_BLOCK_CACHE=value)
        res = run_python(code, env=env, timeout=60)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [name, "True"]


def test_scratch_is_kept_for_the_next_call():
    # a strided axis packs its tiles into scratch: the block is kept for the
    # next call that needs one (its pages stay mapped), and results do not
    # depend on what an earlier call left in it
    from csoftmax import _runtime
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 2000)).astype(np.float32)
    first = cs.softmax(x, axis=0)
    kept = _runtime.scratch_kept()
    assert kept >= 300 * 16 * 4
    assert cs.log_softmax(-3 * x, axis=0).shape == x.shape  # other values through the same block
    np.testing.assert_array_equal(cs.softmax(x, axis=0), first)
    assert _runtime.scratch_kept() >= kept
    # tiles of more classes than the block kept holds (an earlier call, of
    # another test, may have left a bigger one than this test's first): a
    # bigger block, kept in its place (float64 tiles of 16 columns)
    wide = rng.standard_normal((max(10000, kept // (16 * 8) + 1000), 40))
    np.testing.assert_allclose(cs.softmax(wide, axis=0), reference.softmax(wide, axis=0), rtol=1e-12, atol=1e-300)
    assert _runtime.scratch_kept() > kept


def test_scratch_under_concurrent_calls():
    # calls in several threads each take a block of their own
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal((500, 700)) * (k + 1) for k in range(4)]
    want = [reference.softmax(x, axis=0) for x in xs]
    barrier = threading.Barrier(4)
    errors = []

    def work(k):
        barrier.wait()
        for _ in range(20):
            got = cs.softmax(xs[k], axis=0)
            if not np.allclose(got, want[k], rtol=1e-13, atol=0):
                errors.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
