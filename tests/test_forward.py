"""Tests of ``softmax`` and ``log_softmax``: the compiled kernels against
``csoftmax.reference`` within the accuracy bounds of docs/derivations.md
("Accuracy", defined once in helpers.py), and against
``scipy.special`` for the edge cases (``-inf``, ``+inf``, ``nan``, 0-d, axes).

The kernel tests take the ``isa`` fixture, so every instruction-set level this
CPU runs is checked; the sizes cover every kernel path: narrow rows (C <= 32, in
blocks of rows), wide rows, a strided class axis (tiles of columns) and the
multithreaded path (>= 65536 elements).
"""
import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import csoftmax
from csoftmax import reference

from helpers import ASSERT, F16, F32, F64, FLOATS, INF, LD, NAN, PIECE, axes_of, log_softmax_abs_bound, logits, \
    result_dtype, slice_max, softmax_rel_bound, spread

NAMES = ["softmax", "log_softmax"]


# ------------------------------------------------------------------ helpers

def check(name, x, axis=None):
    """Compiled ``name`` against the oracle; returns the compiled result."""
    got = getattr(csoftmax, name)(x, axis=axis)
    ref = getattr(reference, name)(x, axis=axis)
    ASSERT[name](got, ref, x, axis, result_dtype(x))
    return got


def all_axes(ndim):
    """Every way to name axes: each int, each negative int, tuples of 2 and more,
    all of them, and None."""
    specs = [None, tuple(range(ndim))]
    specs += list(range(ndim)) + [a - ndim for a in range(ndim)]
    for k in range(2, ndim):
        specs += list(combinations(range(ndim), k))
    if ndim >= 2:
        specs.append((-1, 0))
    return specs


@pytest.fixture
def rng():
    return np.random.default_rng(20240613)


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


@pytest.fixture(params=FLOATS, ids=str)
def dtype(request):
    return request.param


# ------------------------------------------------------- kernels vs oracle

@pytest.mark.parametrize("shape, axis", [
    ((1,), None), ((1,), 0), ((1, 1), -1), ((1, 1), 0), ((1, 1, 1), (0, 2)), ((1, 1, 1), None),
])
def test_one_element(isa, name, dtype, shape, axis):
    x = np.full(shape, 3.5, dtype)
    got = check(name, x, axis)
    assert got.shape == shape
    np.testing.assert_array_equal(got, 1.0 if name == "softmax" else 0.0)


@pytest.mark.parametrize("shape, axis", [
    ((7, 1), 1), ((1, 300), 0), ((3, 1, 5), 1), ((70000, 1), -1), ((1, 70000), 0),
])
def test_single_class(isa, name, dtype, rng, shape, axis):
    x = logits(rng, shape, dtype, scale=1e3)
    got = check(name, x, axis)
    np.testing.assert_allclose(got, 1.0 if name == "softmax" else 0.0, atol=1e-6)


@pytest.mark.parametrize("shape, axis", [((2, 32000), -1), ((32000,), None), ((32000, 2), 0)])
def test_many_classes(isa, name, dtype, rng, shape, axis):
    check(name, logits(rng, shape, dtype), axis)


LONG_SLICES = [((32000,), None), ((2, 32000), 1), ((32000, 3), 0), ((4, 4099), 1),
               ((3, 1000, 40), 1), ((8, 5, 1000), (0, 2))]


def _one_big_many_small(shape, axis, small, dtype):
    """Each slice: one entry 0, the rest ``small`` (so exp(small) is under an ulp
    of the running sum: naive accumulation rounds every term the same way)."""
    x = np.full(shape, small, dtype)
    axes = axes_of(axis, len(shape))
    first = tuple(slice(0, 1) if a in axes else slice(None) for a in range(len(shape)))
    x[first] = 0
    return x


@pytest.mark.parametrize("shape, axis", LONG_SLICES, ids=str)
def test_long_slice_sums(isa, name, dtype, rng, shape, axis):
    """The bound has no term in C: summing C terms one after another (off by
    up to ~C/4 ulp) fails it, pairwise or compensated sums pass.  float32 sums
    are accumulated in float64 (docs/derivations.md, "Sums")."""
    check(name, logits(rng, shape, dtype, scale=1.0), axis)
    ulp = 2.0**-52 if dtype == F64 else 2.0**-23
    check(name, _one_big_many_small(shape, axis, math.log(0.75 * ulp), dtype), axis)


@pytest.mark.parametrize("rows", [1, 7, 1025, 3000])
def test_narrow_rows(isa, name, dtype, rng, rows):
    # C <= 32 goes to the kernel that handles blocks of rows: row counts that
    # are no multiple of a block, and C on both sides of the switch.
    widths = range(1, 41)
    if rows > 1000:
        widths = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40)
    for C in widths:
        check(name, logits(rng, (rows, C), dtype), -1)


def test_narrow_rows_apart(isa, name, dtype, rng):
    # narrow rows go into their block and out of it a vector of rows at a
    # time, by small transposes whose last piece of a row overlaps the one
    # before: rows that lie apart in the input and in the output, widths
    # below, at and past a piece, row counts with a remainder, must come out
    # as from contiguous rows, with nothing written beside them
    f = getattr(csoftmax, name)
    for C in (2, 3, 4, 5, 6, 7, 9, 10, 13, 17, 31):
        for rows in (16, 53):
            x = logits(rng, (rows, C + 3), dtype)[:, 1:C + 1]
            want = f(np.ascontiguousarray(x), axis=-1)
            np.testing.assert_array_equal(f(x, axis=-1), want, err_msg=f"C = {C}")
            out = np.full((rows, C + 5), 7.0, dtype)
            f(x, axis=-1, out=out[:, 2:C + 2])
            np.testing.assert_array_equal(out[:, 2:C + 2], want, err_msg=f"C = {C}, out=")
            assert (out[:, :2] == 7).all() and (out[:, C + 2:] == 7).all(), f"C = {C}: written beside"
            check(name, x, -1)


@pytest.mark.parametrize("C, axis", [(5, -1), (10, -1), (31, -1), (10, 0), (300, 0)])
def test_float64_exponential_of_each_entry(isa, rng, C, axis):
    # A softmax over a 0, one entry t and -inf elsewhere: for t <= -37, e^t is
    # below half an ulp of 1, the sum comes out 1 exactly and the entry is
    # the kernel's exponential of t itself.  Narrow rows (in blocks, their
    # exponentials down the block's rows) and a strided class axis (tiles
    # of columns, the last ones past the tile's whole vectors) share one
    # exponential: at x86-64-v4 it picks 2^(j/16) from a table and rounds
    # once at the end, within 0.5 ulp and the polynomial's 1.3e-17 (about
    # 0.56 eps relative); elsewhere the general one, within one ulp with
    # fused multiply-adds, half an ulp of t more without (the baseline on
    # x86-64).  Below exp(-708.4) the result may be flushed to 0.
    n = 4003
    t = -rng.uniform(37.0, 708.0, n)
    t[:8] = [-37.0, -100.0, -700.0, -708.0, -708.39, -708.5, -720.0, -745.0]
    pos = rng.integers(1, C, n)
    x = np.full((n, C), -INF)
    x[:, 0] = 0.0
    x[np.arange(n), pos] = t
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    y = csoftmax.softmax(x, axis=axis)
    got = y[np.arange(n), pos] if axis == -1 else y[pos, np.arange(n)]
    want = np.exp(t.astype(LD))
    tiny = want < np.finfo(F64).tiny
    assert np.all(np.abs(got[tiny] - want[tiny]) < np.finfo(F64).tiny)
    rel = np.abs((got[~tiny] - want[~tiny]) / want[~tiny])
    eps = np.finfo(F64).eps
    bound = eps * {"x86-64-v4": 0.6, "x86-64-v3": 1.0}.get(isa, 1.0 + np.abs(t[~tiny]) / 2)
    assert np.all(rel <= bound), f"max {np.max(rel / eps):.3f} eps"
    if axis == 0:
        # a column takes the same bits in any tile, in the tile's whole
        # vectors or past them (13 columns: 8 and 5)
        for j0 in range(0, 130, 13):
            np.testing.assert_array_equal(csoftmax.softmax(np.ascontiguousarray(x[:, j0:j0 + 13]), axis=0),
                                          y[:, j0:j0 + 13], err_msg=f"columns {j0}-{j0 + 13}")


@pytest.mark.parametrize("C", [33, 100, 1000, 4099])
@pytest.mark.parametrize("rows", [1, 3, 70])
def test_wide_rows(isa, name, dtype, rng, rows, C):
    check(name, logits(rng, (rows, C), dtype), 1)


@pytest.mark.parametrize("rows", [1, 5, 70])
def test_whole_vector_rows(isa, name, dtype, rng, rows):
    # rows of 1 to 8 whole vectors at every level take loops unrolled to
    # their width (row counts that leave a remainder of the four-row groups)
    for C in (48, 64, 96, 128, 192, 256):
        check(name, logits(rng, (rows, C), dtype), -1)


def test_row_bits_do_not_depend_on_where_the_rows_start(isa, name, dtype, rng):
    # mid-width rows go four at a time, counted from the first row a call (or
    # a thread) is given, the last few through a buffer; narrow rows go a
    # block at a time: a row must come out the same wherever it falls
    f = getattr(csoftmax, name)
    for C in (3, 8, 12, 16, 24, 33, 40, 48, 64, 100, 128, 200, 500, 600):
        x = logits(rng, (23, C), dtype)
        whole = f(x, axis=-1)
        for start in (1, 2, 3, 5):
            np.testing.assert_array_equal(f(x[start:], axis=-1), whole[start:],
                                          err_msg=f"C = {C}, rows from {start}")
        for i in (0, 9, 22):
            np.testing.assert_array_equal(f(x[i:i + 1], axis=-1), whole[i:i + 1],
                                          err_msg=f"C = {C}, row {i} alone")


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C", [24, 100, 200, 300, 500])
def test_a_call_large_enough_to_prefetch(isa, name, dtype, C, rng):
    # a call of 8 MiB or more prefetches its narrow blocks' next block
    # (softmax, float32) and its mid-width rows of under 512 bytes (softmax),
    # and takes longer ones one at a time, not four side by side: the same
    # bits as the same rows in calls below that size, on one and two threads
    fn = getattr(csoftmax, name)
    x = logits(rng, ((8 << 20) // (C * np.dtype(dtype).itemsize) + 7, C), dtype)
    whole = fn(x, axis=-1)
    step = 500000 // C
    for lo in range(0, len(x), step):
        np.testing.assert_array_equal(fn(x[lo:lo + step], axis=-1), whole[lo:lo + step],
                                      err_msg=f"rows from {lo}")
    before = csoftmax.get_num_threads()
    csoftmax.set_num_threads(1)
    try:
        np.testing.assert_array_equal(fn(x, axis=-1), whole, err_msg="one thread")
    finally:
        csoftmax.set_num_threads(before)
    check(name, x[::97], -1)


@pytest.mark.parametrize("shape, axis", [
    ((1000, 300), 0),      # multithreaded, inner not a multiple of the tile
    ((300, 1000), 0),      # multithreaded, tiles of a few dozen columns
    ((7, 257), 0),
    ((40, 257), 0),
    ((3, 33, 300), 1),
    ((2, 5, 17), 1),
    ((1, 2, 4099), 1),
    ((5000, 16), 0),       # narrowest tile
    ((16, 5000), 0),       # widest tile
    ((3, 2000, 100), 1),
    ((4, 3, 2, 1000), 1),
])
def test_strided_axis(isa, name, dtype, rng, shape, axis):
    check(name, logits(rng, shape, dtype), axis)


@pytest.mark.parametrize("shape, dtype", [
    ((300, 7001), F32),     # tiles of about 256 KiB
    ((2000, 1100), F32),    # pieces of 256 bytes of each class row
    ((40000, 60), F32),     # past 2 MiB of such pieces: tiles of 16 columns
    ((1000, 1100), F64),
    ((2100, 1024), F32),    # class rows of whole lines: output strips that can stream
    ((1100, 1024), F64),
], ids=str)
@pytest.mark.parametrize("where", [False, True], ids=["plain", "where"])
def test_strided_axis_from_memory(isa, stream_tiles, name, rng, shape, dtype, where):
    # over a strided axis, an outer block of 8 MiB or more is packed in tiles
    # of another width, its strips prefetched, its output written with
    # streaming stores or not: each column gets the bits it gets in a narrow
    # copy (in cache, the same arithmetic), on one and two threads, with
    # -inf, +inf and nan among the values, and with a mask
    fn = getattr(csoftmax, name)
    x = logits(rng, shape, dtype)
    x[:, 3] = -INF
    x[shape[0] // 2, 4] = INF
    x[shape[0] - 1, 5] = NAN
    x[rng.random(shape) < 0.01] = -INF
    kw = {}
    if where:
        kw["where"] = rng.random(shape) < 0.8
        kw["where"][:, 6] = False
    whole = fn(x, axis=0, **kw)
    for off in (0, 48):   # out at another offset in a line than x: the tiles laid on either's lines
        buf = np.empty(x.nbytes + 64, np.uint8)
        out = buf[(off - buf.ctypes.data) % 64:][:x.nbytes].view(dtype).reshape(shape)
        assert fn(x, axis=0, out=out, **kw) is out
        np.testing.assert_array_equal(out, whole, err_msg=f"out {off} bytes past a line")
    n = shape[1]
    for j0, j1 in [(0, 40), (n // 2 - 17, n // 2 + 20), (n - 37, n)]:
        part = {k: np.ascontiguousarray(v[:, j0:j1]) for k, v in kw.items()}
        np.testing.assert_array_equal(fn(np.ascontiguousarray(x[:, j0:j1]), axis=0, **part), whole[:, j0:j1],
                                      err_msg=f"columns {j0}-{j1}")
    before = csoftmax.get_num_threads()
    csoftmax.set_num_threads(1)
    try:
        np.testing.assert_array_equal(fn(x, axis=0, **kw), whole, err_msg="one thread")
    finally:
        csoftmax.set_num_threads(before)
    if not where:
        check(name, x[:, ::7], 0)


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (6, 40, 30, 12)], ids=str)
def test_every_axis(isa, name, dtype, rng, shape):
    x = logits(rng, shape, dtype)
    for axis in all_axes(len(shape)):
        check(name, x, axis)


@pytest.mark.parametrize("shape, axis", [
    ((3000, 5), 1), ((1025, 32), 1), ((50, 1000), 1), ((50, 1000), 0), ((1000, 300), 0),
    ((300, 1000), 1), ((8, 9, 10), 1), ((4000,), None),
])
def test_special_values_on_every_path(isa, name, dtype, rng, shape, axis):
    """-inf (many), rows all -inf, +inf, nan and huge values scattered over the
    inputs of each kernel path: nan and exact values where SciPy has them,
    within the bounds elsewhere."""
    sp = pytest.importorskip("scipy.special")
    x = logits(rng, shape, dtype)
    flat = x.reshape(-1)
    n = flat.size
    flat[rng.random(n) < 0.3] = -INF
    flat[rng.random(n) < 0.002] = INF
    flat[rng.random(n) < 0.002] = NAN
    flat[rng.random(n) < 0.01] = rng.choice([1e30, -1e30, 1e4, -1e4], size=1)
    if x.ndim == 2:
        x[::7] = -INF                       # whole rows (axis=1) of -inf
        x[:, 3::11] = -INF                  # whole columns (axis=0) of -inf
    _against_scipy(name, x, axis, sp)


def _against_scipy(name, x, axis, sp):
    with np.errstate(all="ignore"):
        want = getattr(sp, name)(x, axis=axis)
    got = check(name, x, axis)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="nan positions")
    special = ~np.isfinite(want)
    np.testing.assert_array_equal(got[special], want[special])
    # -inf entries of a slice with a finite max are exactly 0 / -inf.
    gone = np.isneginf(np.asarray(x)) & np.isfinite(slice_max(x, axis))
    np.testing.assert_array_equal(got[gone], 0.0 if name == "softmax" else -INF)


# ------------------------------------------------------------ extreme values

EXTREMES = [
    ([1e4, -1e4, 0.0], None),
    ([-1e4, -1e4 + 1, -1e4 + 30], None),
    ([1e30, -1e30, 0.0], None),
    ([1e30, 1e30, 1e30], None),
    ([-1e30, -1e30 * 0.999], None),
    ([-INF, -INF, -INF], None),
    ([-INF, 0.0], None),
    ([-INF, -INF, 5.0, -INF], None),
    ([INF, 0.0, 1.0], None),
    ([INF, INF], None),
    ([INF, -INF], None),
    ([NAN, 1.0], None),
    ([NAN, -INF], None),
    ([[-INF, -INF, -INF], [0.0, 1.0, 2.0], [INF, 0.0, 1.0], [NAN, 0.0, 1.0],
      [-INF, 0.0, -INF], [1e30, -1e30, 0.0]], 1),
    ([[-INF, -INF, -INF], [0.0, 1.0, 2.0], [INF, 0.0, 1.0], [NAN, 0.0, 1.0],
      [-INF, 0.0, -INF], [1e30, -1e30, 0.0]], 0),
    ([[-INF, 0.0], [-INF, -INF]], None),
    ([0.0, -50.0, -87.0, -88.0, -100.0, -103.0, -104.0, -110.0], None),   # f32 subnormals
    ([0.0, -700.0, -708.0, -740.0, -745.0, -746.0, -800.0, -1e4], None),  # f64 subnormals
    ([1e4 + 0.5, 1e4, 1e4 - 0.25, 1e4 - 20.0], None),
]


@pytest.mark.parametrize("values, axis", EXTREMES, ids=lambda v: repr(v)[:40])
def test_extremes(isa, name, dtype, values, axis):
    sp = pytest.importorskip("scipy.special")
    x = np.array(values, dtype)
    _against_scipy(name, x, axis, sp)


@pytest.mark.parametrize("dt", [F32, F64], ids=str)
def test_dtype_max(isa, name, dt):
    sp = pytest.importorskip("scipy.special")
    big = np.finfo(dt).max
    for values in ([big, -big, 0.0], [big, big], [-big, -big], [big, big / 2]):
        _against_scipy(name, np.array(values, dt), None, sp)


def test_log_softmax_minus_inf():
    got = csoftmax.log_softmax([-INF, 0.0])
    np.testing.assert_array_equal(got, [-INF, 0.0])
    assert got.dtype == F64
    np.testing.assert_array_equal(csoftmax.log_softmax(np.array([-INF, 0.0], F32)), [-INF, 0.0])
    np.testing.assert_array_equal(csoftmax.softmax([-INF, 0.0]), [0.0, 1.0])


def test_uniform_on_large_constant(name, dtype):
    for c in (1e4, -1e4, 1e30, -1e30):
        x = np.full((3, 5), c, dtype)
        got = getattr(csoftmax, name)(x, axis=1)
        want = 0.2 if name == "softmax" else math.log(0.2)
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps)


# ------------------------------------------------------------------- dtypes

def test_float_dtypes_kept(name, dtype, rng):
    x = logits(rng, (4, 9), dtype)
    assert check(name, x, 1).dtype == dtype


def test_float16(name, rng):
    x = logits(rng, (20, 37), F16, scale=2.0)
    for axis in (None, 0, 1):
        got = check(name, x, axis)
        assert got.dtype == F16
        # computed in float32, rounded once
        want = getattr(csoftmax, name)(x.astype(F32), axis=axis).astype(F16)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dt", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64])
def test_integers_give_float64(name, dt, rng):
    sp = pytest.importorskip("scipy.special")
    info = np.iinfo(dt)
    x = rng.integers(max(info.min, -100), min(info.max, 100), size=(5, 7), endpoint=True).astype(dt)
    for axis in (None, 0, 1):
        got = check(name, x, axis)
        assert got.dtype == F64
        # SciPy 1.17 computes small integer types in float16 and wraps uint8
        # differences; ours is float64, what SciPy gives for a float64 input.
        want = getattr(sp, name)(x.astype(F64), axis=axis)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_huge_int64(name):
    x = np.array([2**62, 2**62 - 2**12, -(2**62)], np.int64)
    got = check(name, x)
    assert got.dtype == F64


def test_bool_gives_float64(name):
    x = np.array([[True, False, True], [False, False, False]])
    got = check(name, x, 1)
    assert got.dtype == F64
    np.testing.assert_allclose(got, getattr(reference, name)(x.astype(F64), axis=1), rtol=1e-15)


@pytest.mark.parametrize("bad", [
    np.array([1 + 2j, 3 + 0j]),
    np.array([1.0, 2.0], np.complex64),
    np.array([1.0, 2.0], dtype=object),
    np.array(["a", "b"]),
    np.array([b"a", b"b"]),
    ["1.0", "2.0"],
    np.array([1, 2], dtype="timedelta64[s]"),
    np.array([1, 2], dtype="datetime64[s]"),
], ids=lambda a: str(np.asarray(a).dtype))
def test_non_real_dtypes_rejected(name, bad):
    with pytest.raises(TypeError):
        getattr(csoftmax, name)(bad)
    with pytest.raises(TypeError):
        getattr(csoftmax, name)(bad, axis=0, out=np.empty(2))


# ------------------------------------------------------------------ layouts

def _unaligned(a):
    buf = np.empty(a.nbytes + 1, np.uint8)
    v = np.frombuffer(buf.data, a.dtype, count=a.size, offset=1).reshape(a.shape)
    v[...] = a
    assert not v.flags.aligned
    return v


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {
    "C": lambda a: a,
    "F": np.asfortranarray,
    "steps": lambda a: np.repeat(np.repeat(a, 2, axis=0), 3, axis=2)[::2, :, ::3],
    "negative": lambda a: a[::-1, :, ::-1],
    "all-negative": lambda a: a[::-1, ::-1, ::-1],
    "transposed": lambda a: a.transpose(2, 0, 1),
    "swapaxes": lambda a: a.swapaxes(0, 1),
    "readonly": _readonly,
    "unaligned": _unaligned,
    "byteswapped": lambda a: a.astype(a.dtype.newbyteorder()),
    "broadcast": lambda a: np.broadcast_to(a[:1], a.shape),
}


@pytest.mark.parametrize("size", [(5, 6, 7), (40, 30, 100)], ids=str)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layouts(name, dtype, rng, layout, size):
    x = LAYOUTS[layout](logits(rng, size, dtype))
    before = x.copy()
    axes = (None, 0, 1, 2, -1, (0, 2), (1, 2)) if x.size < 1000 else (None, 0, 2, (0, 2))
    for axis in axes:
        check(name, x, axis)
    np.testing.assert_array_equal(x, before, err_msg="input modified")


def test_input_not_modified(name, dtype, rng):
    for shape, axis in (((3000, 10), 1), ((300, 1000), 0), ((4, 5, 6), (0, 2)), ((7,), None)):
        x = logits(rng, shape, dtype)
        x.flat[::5] = -INF
        before = x.copy()
        getattr(csoftmax, name)(x, axis=axis)
        np.testing.assert_array_equal(x, before)


# ---------------------------------------------------------------------- out

@pytest.mark.parametrize("shape, axis", [((4, 9), 1), ((4, 9), 0), ((3, 4, 5), (0, 2)),
                                         ((3, 4, 5), None), ((300, 1000), 0), ((3000, 30), 1)])
@pytest.mark.parametrize("out_layout", ["C", "F", "strided"])
def test_out(name, dtype, rng, shape, axis, out_layout):
    x = logits(rng, shape, dtype)
    if out_layout == "C":
        out = np.empty(shape, dtype)
    elif out_layout == "F":
        out = np.empty(shape, dtype, order="F")
    else:
        out = np.empty(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
    res = getattr(csoftmax, name)(x, axis=axis, out=out)
    assert res is out
    ASSERT[name](out, getattr(reference, name)(x, axis=axis), x, axis, dtype)


@pytest.mark.parametrize("xdt, odt", [(F16, F16), (np.int32, F64), (np.bool_, F64)])
def test_out_converted_dtypes(name, xdt, odt):
    x = np.array([[1, 0, 1], [0, 0, 0]]).astype(xdt)
    out = np.empty((2, 3), odt)
    assert getattr(csoftmax, name)(x, axis=1, out=out) is out
    ASSERT[name](out, getattr(reference, name)(x, axis=1), x, 1, odt)


def test_out_zero_d(name):
    out = np.empty((), F64)
    assert getattr(csoftmax, name)(2.0, out=out) is out
    assert out[()] == (1.0 if name == "softmax" else 0.0)


@pytest.mark.parametrize("x, out", [
    (np.zeros((3, 4)), np.zeros((4, 3))),
    (np.zeros((3, 4)), np.zeros((3, 4, 1))),
    (np.zeros((3, 4)), np.zeros(12)),
    (np.zeros((3, 4)), np.zeros((3, 4), F32)),
    (np.zeros((3, 4), F32), np.zeros((3, 4))),
    (np.zeros((3, 4), F16), np.zeros((3, 4), F32)),
    (np.zeros((3, 4), np.int64), np.zeros((3, 4), np.int64)),
    (np.zeros((3, 4), np.int32), np.zeros((3, 4), F32)),
    (np.zeros((0, 4)), np.zeros((4, 0))),
    (np.zeros((300, 1000)), np.zeros((1000, 300))),
], ids=lambda a: f"{a.shape}{a.dtype}")
def test_bad_out_raises_and_writes_nothing(name, x, out):
    out[...] = 7
    for axis in (None, 0, 1):
        with pytest.raises(ValueError):
            getattr(csoftmax, name)(x, axis=axis, out=out)
        assert (out == 7).all()


def test_readonly_out_raises(name):
    out = np.full((3, 4), 7.0)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        getattr(csoftmax, name)(np.zeros((3, 4)), axis=1, out=out)
    assert (out == 7).all()


def test_out_not_an_array(name):
    with pytest.raises((TypeError, ValueError)):
        getattr(csoftmax, name)(np.zeros(3), out=[0.0, 0.0, 0.0])


@pytest.mark.parametrize("shape", [(3, 4, 5), (60, 40, 30)], ids=str)
def test_in_place(name, dtype, rng, shape):
    x0 = logits(rng, shape, dtype)
    axes = all_axes(len(shape)) if x0.size < 1000 else (None, 0, 1, -1, (0, 2))
    for axis in axes:
        for layout in ("C", "F", "negative"):
            x = LAYOUTS[layout](x0.copy())
            orig = x.copy()
            res = getattr(csoftmax, name)(x, axis=axis, out=x)
            assert res is x
            ASSERT[name](x, getattr(reference, name)(orig, axis=axis), orig, axis, dtype)


def _overlaps(rng, dtype, n, C):
    """(x, out) pairs whose memory overlaps in part."""
    base = logits(rng, (n, C), dtype)
    pairs = []
    x = base.copy()
    pairs.append(("reversed rows", x, x[::-1], 1))
    x = base.copy()
    pairs.append(("reversed rows", x, x[::-1], 0))
    x = base.copy()
    pairs.append(("reversed cols", x, x[:, ::-1], 1))
    x = base.copy()
    pairs.append(("reversed cols", x, x[:, ::-1], 0))
    buf = np.empty((n + 1, C), dtype)
    buf[:-1] = base
    pairs.append(("shifted one row", buf[:-1], buf[1:], 1))
    buf = np.empty((n + 1, C), dtype)
    buf[1:] = base
    pairs.append(("shifted one row back", buf[1:], buf[:-1], 0))
    buf = np.empty(n * C + 1, dtype)
    buf[:-1] = base.ravel()
    pairs.append(("shifted one element", buf[:-1].reshape(n, C), buf[1:].reshape(n, C), 1))
    x = base.ravel().copy()
    pairs.append(("reversed vector", x, x[::-1], None))
    if n == C:
        x = base.copy()
        pairs.append(("transposed", x, x.T, 1))
    return pairs


@pytest.mark.parametrize("n, C", [(6, 6), (300, 17), (400, 400)])
def test_out_overlapping_input(name, dtype, rng, n, C):
    for what, x, out, axis in _overlaps(rng, dtype, n, C):
        orig = x.copy()
        res = getattr(csoftmax, name)(x, axis=axis, out=out)
        assert res is out
        try:
            ASSERT[name](out, getattr(reference, name)(orig, axis=axis), orig, axis, dtype)
        except AssertionError as e:
            raise AssertionError(f"{what}, axis={axis}: {e}") from None


# -------------------------------------------------------- empty, 0-d, Python

@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 5), (2, 0, 3), (0, 2, 3), (2, 3, 0)], ids=str)
def test_empty(name, shape):
    for dt, rdt in ((F64, F64), (F32, F32), (F16, F16), (np.int32, F64)):
        x = np.zeros(shape, dt)
        for axis in all_axes(len(shape)) + [()]:
            got = getattr(csoftmax, name)(x, axis=axis)
            assert isinstance(got, np.ndarray) and got.shape == shape and got.dtype == rdt
            out = np.empty(shape, rdt)
            assert getattr(csoftmax, name)(x, axis=axis, out=out) is out


ZERO_D = [3.0, -2.5, 0.0, 7, np.float32(1.5), np.float16(2.0), np.float64(-1e30),
          np.array(7.0), np.array(np.float32(-3.0)), INF, -INF, NAN, np.array(NAN, F32)]


@pytest.mark.parametrize("x", ZERO_D, ids=repr)
def test_zero_d_like_scipy(name, x):
    sp = pytest.importorskip("scipy.special")
    with np.errstate(all="ignore"):
        want = getattr(sp, name)(x)
    got = getattr(csoftmax, name)(x)
    assert type(got) is type(want), (type(got), type(want))
    assert np.ndim(got) == 0
    np.testing.assert_array_equal(got, want)


def test_zero_d_axis(name):
    sp = pytest.importorskip("scipy.special")
    for axis in (None, ()):
        got, want = getattr(csoftmax, name)(3.0, axis=axis), getattr(sp, name)(3.0, axis=axis)
        assert type(got) is type(want) and got == want
    with pytest.raises(np.exceptions.AxisError):
        getattr(csoftmax, name)(3.0, axis=0)


def test_empty_axis_tuple_is_elementwise(name, rng):
    # axis=() normalises every element on its own, as in SciPy.
    sp = pytest.importorskip("scipy.special")
    x = logits(rng, (3, 4), F64)
    x[0, :3] = [INF, -INF, NAN]
    with np.errstate(all="ignore"):
        want = getattr(sp, name)(x, axis=())
    got = getattr(csoftmax, name)(x, axis=())
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("x", [
    [1.0, 2.0, 3.0], (1.0, 2.0, 3.0), [[1, 2], [3, 4]], [1, 2, 3], ((0.5,), (1.5,)), [[-INF, 0.0]],
], ids=repr)
def test_python_sequences(name, x):
    sp = pytest.importorskip("scipy.special")
    for axis in (None, 0, -1):
        got = check(name, x, axis)
        assert isinstance(got, np.ndarray) and got.dtype == F64
        with np.errstate(invalid="ignore"):
            want = getattr(sp, name)(np.asarray(x, F64), axis=axis)
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


def test_numpy_integer_axis(name, rng):
    x = logits(rng, (4, 5), F64)
    np.testing.assert_array_equal(getattr(csoftmax, name)(x, axis=np.int64(1)),
                                  getattr(csoftmax, name)(x, axis=1))
    np.testing.assert_array_equal(getattr(csoftmax, name)(x, axis=[0, 1]),
                                  getattr(csoftmax, name)(x, axis=None))


@pytest.mark.parametrize("axis", [2, -3, (0, 2), (5,), (-3, 0)])
def test_axis_out_of_range(name, axis):
    sp = pytest.importorskip("scipy.special")
    x = np.zeros((2, 3))
    with pytest.raises(np.exceptions.AxisError):
        getattr(sp, name)(x, axis=axis)
    with pytest.raises(np.exceptions.AxisError):
        getattr(csoftmax, name)(x, axis=axis)


@pytest.mark.parametrize("axis", [(0, 0), (1, -1), (0, 1, 0)])
def test_duplicate_axes(name, axis):
    x = np.zeros((2, 3))
    out = np.full((2, 3), 7.0)
    with pytest.raises(ValueError):
        getattr(csoftmax, name)(x, axis=axis)
    with pytest.raises(ValueError):
        getattr(csoftmax, name)(x, axis=axis, out=out)
    assert (out == 7).all()


@pytest.mark.parametrize("axis", [1.0, "1", [0.5]])
def test_non_integer_axis(name, axis):
    with pytest.raises(TypeError):
        getattr(csoftmax, name)(np.zeros((2, 3)), axis=axis)


# --------------------------------------------------------------- properties

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw, min_side=0, neg_inf=True, grid=False):
    """(x, axis): a float32/float64 array of 1-4 dims with finite values in a
    bounded range (multiples of 1/8 with ``grid``), -inf mixed in, and an axis
    spec (None, an int, or a tuple)."""
    dt = draw(st.sampled_from(FLOATS))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=min_side, max_side=7))
    if grid:
        finite = st.integers(-8000, 8000).map(lambda k: k / 8)
    else:
        finite = st.floats(-1e3, 1e3, width=32 if dt == F32 else 64)
    elem = st.one_of(finite, st.just(-INF)) if neg_inf else finite
    x = draw(hnp.arrays(dt, shape, elements=elem))
    nd = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-nd, nd - 1),
        st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple),
    ))
    return x, axis


@PROPS
@given(cases())
def test_prop_matches_reference(case):
    x, axis = case
    for name in NAMES:
        check(name, x, axis)


def _has_finite(x, axis):
    return np.any(np.isfinite(x), axis=axes_of(axis, x.ndim), keepdims=True)


@PROPS
@given(cases(min_side=1))
def test_prop_slices_sum_to_one(case):
    x, axis = case
    axes = axes_of(axis, x.ndim)
    s = csoftmax.softmax(x, axis=axis)
    sums = np.sum(s.astype(LD), axis=axes, keepdims=True)
    delta, C = spread(x, axis)
    with np.errstate(invalid="ignore"):
        rel = np.where(np.isfinite(delta), softmax_rel_bound(x.dtype, delta), 0)
    tol = np.max(rel, axis=axes, keepdims=True) + C * np.finfo(x.dtype).tiny
    live = _has_finite(x, axis)
    assert np.all(np.abs(sums[live] - 1) <= np.broadcast_to(tol, sums.shape)[live]), (sums, tol)
    assert np.all(np.isnan(np.broadcast_to(sums, sums.shape)[~live]))


@PROPS
@given(cases(grid=True), st.integers(-80000, 80000).map(lambda k: k / 8))
def test_prop_shift_invariance(case, c):
    x, axis = case
    y = x + x.dtype.type(c)            # exact: multiples of 1/8 below 2**14
    assert np.array_equal(y - x.dtype.type(c), x)
    delta, C = spread(x, axis)
    a, b = csoftmax.softmax(y, axis=axis), csoftmax.softmax(x, axis=axis)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    tiny = np.finfo(x.dtype).tiny
    with np.errstate(all="ignore"):
        # each side within the bound of the exact value
        tol = 2.01 * softmax_rel_bound(x.dtype, delta) * np.abs(b.astype(LD)) + 2 * tiny
        ok = np.isnan(b) | (a == b) | (np.abs(a.astype(LD) - b) <= tol)
    assert ok.all(), (x, c, a, b)
    la, lb = csoftmax.log_softmax(y, axis=axis), csoftmax.log_softmax(x, axis=axis)
    np.testing.assert_array_equal(np.isnan(la), np.isnan(lb))
    with np.errstate(all="ignore"):
        tol = 2 * log_softmax_abs_bound(x.dtype, delta, C)
        ok = np.isnan(lb) | (la == lb) | (np.abs(la.astype(LD) - lb) <= tol)
    assert ok.all(), (x, c, la, lb)


@PROPS
@given(cases(min_side=1))
def test_prop_log_softmax_is_log_of_softmax(case):
    x, axis = case
    s = csoftmax.softmax(x, axis=axis)
    ls = csoftmax.log_softmax(x, axis=axis)
    delta, C = spread(x, axis)
    with np.errstate(all="ignore"):
        # log(s (1 + r)) = log s + r (1 + O(r)), r within the softmax bound
        tol = 1.01 * softmax_rel_bound(x.dtype, delta) + log_softmax_abs_bound(x.dtype, delta, C)
        logs = np.log(s.astype(LD))
        where = np.isfinite(ls) & (s >= np.finfo(x.dtype).tiny)
        assert np.all(np.abs(logs - ls)[where] <= tol[where]), (x, axis, s, ls)
    # -inf logits of live slices: softmax 0 and log_softmax -inf, exactly
    gone = np.isneginf(x) & _has_finite(x, axis)
    assert np.all(s[gone] == 0) and np.all(np.isneginf(ls[gone]))
    assert np.array_equal(np.isnan(s), np.isnan(ls))


# ------------------------------------------- one slice too long for a thread


@pytest.mark.parametrize("n", [PIECE + 1, 2 * PIECE, 5 * PIECE + 7])
def test_long_slice_in_pieces(isa, name, dtype, rng, n):
    x = logits(rng, (n,), dtype)
    check(name, x)
    check(name, x.reshape(1, n), -1)
    # the max in the last piece, the rest far below it: whole pieces underflow
    x = np.full(n, -200.0, dtype)
    x[-1] = 0.0
    x[: PIECE // 2] = rng.normal(size=PIECE // 2) - 60
    check(name, x)
    # every piece's own max far from the row's
    x = np.arange(n, dtype=dtype) * dtype.type(1e-2)
    check(name, x)


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("special", [INF, NAN, -INF])
def test_long_slice_special_values(isa, name, dtype, rng, special, where):
    """A piece holding +inf or nan, or a piece all -inf: the row kernel's rules
    (SciPy's) whichever piece it is in."""
    sp = pytest.importorskip("scipy.special")
    n = 3 * PIECE
    x = logits(rng, (n,), dtype)
    part = slice(0, PIECE) if where == "first" else slice(2 * PIECE, n)
    if special == -INF:
        x[part] = -INF
    else:
        x[part][5] = special
    _against_scipy(name, x, None, sp)
    f = getattr(csoftmax, name)
    got = f(x)
    if special == -INF:
        np.testing.assert_array_equal(got[part], 0.0 if name == "softmax" else -INF)
    # in place: the fallback to the row kernel must see x as it was
    y = x.copy()
    assert f(y, out=y) is y
    np.testing.assert_array_equal(y, got)
    x[:] = -INF
    _against_scipy(name, x, None, sp)


@pytest.mark.parametrize("n", [PIECE + 1, 3 * PIECE + 5])
def test_long_slice_in_place(isa, name, dtype, rng, n):
    x = logits(rng, (n,), dtype)
    want = getattr(reference, name)(x)
    y = x.copy()
    assert getattr(csoftmax, name)(y, out=y) is y
    ASSERT[name](y, want, x, None, dtype)
    np.testing.assert_array_equal(y, getattr(csoftmax, name)(x))  # the same bits as out of place
