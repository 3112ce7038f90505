"""softmax and log_softmax with where=: only the entries where the mask is
True take part; the others give 0 (log: -inf), as does a slice with no True
entry -- never nan (jax.nn.softmax's rule)."""
import numpy as np
import pytest

import csoftmax as cs
from csoftmax import reference as ref
from helpers import PIECE, assert_log_softmax_close, assert_softmax_close

SHAPES_AXES = [((7,), None), ((5, 9), -1), ((5, 9), 0), ((4, 3, 6), 1), ((4, 3, 6), (0, 2)),
               ((3, 40), None), ((300, 70), -1), ((600, 12), -1), ((40, 1000), -1), ((5, 5000), -1)]


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def effective(x, mask):
    """x with the excluded entries at -inf: what the bounds are taken over."""
    return np.where(mask, x, -np.inf)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", SHAPES_AXES, ids=str)
def test_against_the_oracle(isa, rng, log, dtype, shape, axis):
    x = (6 * rng.standard_normal(shape)).astype(dtype)
    mask = rng.random(shape) < 0.6
    if len(shape) > 1:
        mask[0] = False  # slices with no True entry
    fn, rfn = (cs.log_softmax, ref.log_softmax) if log else (cs.softmax, ref.softmax)
    got = fn(x, axis=axis, where=mask)
    want = rfn(x, axis=axis, where=mask)
    check = assert_log_softmax_close if log else assert_softmax_close
    with np.errstate(all="ignore"):
        check(got, want, effective(x, mask), axis, dtype)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[~mask], -np.inf if log else 0)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_all_true_is_the_unmasked_call(rng, log):
    fn = cs.log_softmax if log else cs.softmax
    x = rng.standard_normal((64, 33))
    np.testing.assert_allclose(fn(x, axis=-1, where=np.ones(x.shape, bool)), fn(x, axis=-1), rtol=1e-14)


def test_broadcast_mask_and_out(rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    row = np.array([True, False, True, True, False])
    out = np.empty_like(x)
    got = cs.softmax(x, axis=1, where=row, out=out)
    assert got is out
    np.testing.assert_allclose(out, ref.softmax(x, axis=1, where=np.broadcast_to(row, x.shape)), rtol=1e-6)
    x64 = x.astype(np.float64)
    assert cs.softmax(x64, axis=1, where=row, out=x64) is x64  # in place
    np.testing.assert_allclose(x64, out, rtol=1e-6)


def test_specials_among_the_unmasked(rng):
    x = np.array([[np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [-np.inf, -np.inf, 5.0]])
    mask = np.array([[True, True, False], [False, True, True], [True, True, False]])
    for fn, rfn in ((cs.softmax, ref.softmax), (cs.log_softmax, ref.log_softmax)):
        np.testing.assert_allclose(fn(x, axis=1, where=mask), rfn(x, axis=1, where=mask).astype(float),
                                   rtol=1e-15, equal_nan=True)


@pytest.mark.parametrize("C", [3, 12, 100, 1000, 5000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_rows_at_every_width(isa, rng, C, dtype):
    """Rows whose set entries are all -inf, hold a nan or a +inf, or that have
    none set, among ordinary rows, at the narrow, mid-width and wide paths."""
    x = rng.standard_normal((40, C)).astype(dtype)
    mask = rng.random(x.shape) < 0.5
    mask[:, 0] = True
    mask[:, 1] = False
    x[3, mask[3]] = -np.inf              # every set entry -inf
    x[5, 0] = np.nan                     # a set nan
    x[7, 1] = np.nan                     # a masked nan: no part
    x[9, 0] = np.inf                     # a set +inf
    x[11, 1] = np.inf                    # a masked +inf: no part
    mask[13] = False                     # none set
    for fn, rfn in ((cs.softmax, ref.softmax), (cs.log_softmax, ref.log_softmax)):
        with np.errstate(all="ignore"):
            want = rfn(x, axis=1, where=mask)
        got = fn(x, axis=1, where=mask)
        tol = 2e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(got, want.astype(dtype), rtol=tol, atol=tol, equal_nan=True, err_msg=fn.__name__)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_width_to_300(isa, rng, dtype):
    """The mask's select goes a vector of mask bytes at a time, a row's last
    entries as one more step over entries already selected: at every width,
    rows that lie apart (selected one at a time) get the same bits as the
    same rows back to back (one flat run), and the oracle's values; a masked
    nan or +inf as the row's last entry takes no part."""
    for C in range(1, 301):
        x = (4 * rng.standard_normal((6, C))).astype(dtype)
        mask = rng.random(x.shape) < 0.6
        mask[:, 0] = True
        mask[1, -1], x[1, -1] = False, np.nan
        mask[2, -1], x[2, -1] = False, np.inf
        padded = np.zeros((6, C + 5), dtype)
        padded[:, 2:C + 2] = x
        for fn, rfn, check in ((cs.softmax, ref.softmax, assert_softmax_close),
                               (cs.log_softmax, ref.log_softmax, assert_log_softmax_close)):
            got = fn(x, axis=1, where=mask)
            np.testing.assert_array_equal(fn(padded[:, 2:C + 2], axis=1, where=mask), got,
                                          err_msg=f"{fn.__name__} C = {C}, rows apart")
            with np.errstate(all="ignore"):
                check(got, rfn(x, axis=1, where=mask), effective(x, mask), 1, dtype)
        lse = cs.logsumexp(x, axis=1, where=mask)
        np.testing.assert_array_equal(cs.logsumexp(padded[:, 2:C + 2], axis=1, where=mask), lse,
                                      err_msg=f"logsumexp C = {C}, rows apart")
        with np.errstate(all="ignore"):
            want = np.log(np.sum(np.where(mask, np.exp(x.astype(np.float64)), 0.0), axis=1))
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(lse, want, rtol=4 * eps, atol=8 * eps * np.abs(x[mask]).max(),
                                   err_msg=f"logsumexp C = {C}")


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [100, 300])
def test_a_call_large_enough_to_stream(isa, rng, C, dtype, log):
    """A masked call of 8 MiB or more takes its rows of 512 bytes or more
    one at a time (log_softmax: of more than 1024), each prefetching the
    next: the same bits as the same rows in smaller calls, on one thread, in
    place, and with the mask's rows in reverse order in memory; rows with
    none set or with specials among them."""
    fn = cs.log_softmax if log else cs.softmax
    N = (8 << 20) // (C * np.dtype(dtype).itemsize) + 7
    x = (4 * rng.standard_normal((N, C))).astype(dtype)
    mask = rng.random(x.shape) < 0.7
    mask[5] = False
    x[8, mask[8]] = -np.inf
    x[N - 2, 0], mask[N - 2, 0] = np.nan, True
    got = fn(x, axis=-1, where=mask)
    step = 500000 // C
    for lo in range(0, N, step):
        part = fn(x[lo:lo + step], axis=-1, where=mask[lo:lo + step])
        np.testing.assert_array_equal(part, got[lo:lo + step], err_msg=f"rows from {lo}")
    before = cs.get_num_threads()
    cs.set_num_threads(1)
    try:
        np.testing.assert_array_equal(fn(x, axis=-1, where=mask), got, err_msg="one thread")
    finally:
        cs.set_num_threads(before)
    in_place = x.copy()
    assert fn(in_place, axis=-1, where=mask, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, got, err_msg="in place")
    backwards = mask[::-1].copy()[::-1]   # mask's values, its rows a negative stride apart
    assert backwards.strides[0] < 0
    np.testing.assert_array_equal(fn(x, axis=-1, where=backwards), got, err_msg="mask rows reversed")
    np.testing.assert_array_equal(got[5], -np.inf if log else 0)
    assert np.isnan(got[N - 2, mask[N - 2]]).all()
    np.testing.assert_array_equal(got[N - 2, ~mask[N - 2]], -np.inf if log else np.nan)
    rows = np.r_[0:N:97, 5, 8]
    with np.errstate(all="ignore"):
        if log:
            tol = 2e-6 if dtype == np.float32 else 1e-14
            np.testing.assert_allclose(got[rows], ref.log_softmax(x[rows], axis=1, where=mask[rows]).astype(dtype),
                                       rtol=tol, atol=tol)
        else:
            assert_softmax_close(got[rows], ref.softmax(x[rows], axis=1, where=mask[rows]),
                                 effective(x[rows], mask[rows]), 1, dtype)



@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [PIECE + 1, 2 * PIECE, 5 * PIECE + 7])
def test_long_slice_in_pieces(isa, rng, log, dtype, n):
    """One long slice with a mask goes in pieces that the threads share, each
    piece selected first: against the oracle, in place with the same bits,
    with spans of whole pieces masked out and a piece whose set entries are
    all -inf; a slice with none set, or holding a set nan or +inf, goes to
    the row kernel and its rules (a masked nan or +inf takes no part)."""
    fn, rfn = (cs.log_softmax, ref.log_softmax) if log else (cs.softmax, ref.softmax)
    check = assert_log_softmax_close if log else assert_softmax_close
    x = (6 * rng.standard_normal(n)).astype(dtype)
    mask = rng.random(n) < 0.6
    mask[PIECE // 2: PIECE // 2 + PIECE + 3] = False     # a whole piece and more
    x[n - 5:] = -np.inf                                  # a short last piece's set entries -inf
    x[3], mask[3] = np.nan, False                        # a masked nan: no part
    x[PIECE - 2], mask[PIECE - 2] = np.inf, False        # a masked +inf
    got = fn(x, where=mask)
    with np.errstate(all="ignore"):
        check(got, rfn(x, where=mask), effective(x, mask), None, dtype)
    np.testing.assert_array_equal(got[~mask], -np.inf if log else 0)
    y = x.copy()
    assert fn(y, where=mask, out=y) is y
    np.testing.assert_array_equal(y, got)
    for at, special in ((PIECE // 4, np.nan), (n - 1, np.inf)):
        xs, ks = x.copy(), mask.copy()
        xs[at], ks[at] = special, True
        with np.errstate(all="ignore"):
            want = rfn(xs, where=ks).astype(dtype)
        np.testing.assert_array_equal(fn(xs, where=ks), want)
    np.testing.assert_array_equal(fn(x, where=np.zeros(n, bool)), np.full(n, -np.inf if log else 0, dtype))


STRIDED = [((1000, 300), 0), ((300, 1000), 0), ((7, 257), 0), ((3, 33, 300), 1), ((2, 5, 17), 1),
           ((5000, 16), 0), ((16, 5000), 0), ((4, 3, 2, 1000), 1)]


def _specials(rng, x, mask, axis):
    """Slices along axis (x and mask moved so that it is last) with none set,
    with every set entry -inf, with a set or a masked nan or +inf."""
    xm, km = np.moveaxis(x, axis, -1), np.moveaxis(mask, axis, -1)
    xs, ks = xm.reshape(-1, xm.shape[-1]), km.reshape(-1, km.shape[-1])   # views: x is C-ordered
    n = len(ks)
    ks[:, 0], ks[:, 1] = True, False
    pick = rng.permutation(n)[:6]
    ks[pick[0]] = False                                          # none set
    xs[pick[1], ks[pick[1]]] = -np.inf                           # every set entry -inf
    xs[pick[2], 0], xs[pick[3], 1] = np.nan, np.nan              # a set nan, a masked nan
    xs[pick[4], 0], xs[pick[5], 1] = np.inf, np.inf              # a set +inf, a masked +inf


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", STRIDED, ids=str)
def test_over_a_strided_axis(isa, rng, log, dtype, shape, axis):
    """Over an axis that is not the last of a C-ordered array, in tiles of
    columns (several, a partial one, one of a few columns): the oracle's
    values, special slices among ordinary ones; the masked entries 0 (-inf)."""
    x = (6 * rng.standard_normal(shape)).astype(dtype)
    mask = rng.random(shape) < 0.6
    _specials(rng, x, mask, axis)
    fn, rfn = (cs.log_softmax, ref.log_softmax) if log else (cs.softmax, ref.softmax)
    got = fn(x, axis=axis, where=mask)
    with np.errstate(all="ignore"):
        want = rfn(x, axis=axis, where=mask)
    tol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, want.astype(dtype), rtol=tol, atol=tol, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want.astype(dtype)), err_msg="nan positions")
    # a slice whose set entries hold a nan or +inf, or are all -inf, is nan throughout
    with np.errstate(invalid="ignore"):
        top = np.where(mask, x, -np.inf).max(axis=axis, keepdims=True)
    plain = np.isfinite(top) | ~mask.any(axis=axis, keepdims=True)
    np.testing.assert_array_equal(got[~mask & plain], -np.inf if log else 0)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_axis_layouts(isa, rng, log, dtype):
    """A strided class axis with the mask broadcast along each axis, its
    classes a negative stride apart, out= of several layouts and in place:
    the same bits as a C-ordered mask of the same values; x in Fortran order
    (its axis 0 then a row) within rounding."""
    fn = cs.log_softmax if log else cs.softmax
    x = (4 * rng.standard_normal((6, 90, 300))).astype(dtype)
    masks = {
        "classes": rng.random((6, 1, 300)) < 0.5,      # stride 0 along the reduced axis
        "outer": rng.random((1, 90, 300)) < 0.5,
        "inner": rng.random((6, 90, 1)) < 0.5,         # no contiguous inner axis: copied
        "reversed": (rng.random((6, 90, 300)) < 0.5)[:, ::-1].copy()[:, ::-1],
        "steps": np.repeat(rng.random((6, 90, 300)) < 0.5, 2, axis=2)[..., ::2],
    }
    for name, m in masks.items():
        want = fn(x, axis=1, where=np.ascontiguousarray(np.broadcast_to(m, x.shape)))
        np.testing.assert_array_equal(fn(x, axis=1, where=m), want, err_msg=name)
    m = masks["steps"]
    want = fn(x, axis=1, where=m)
    for order in ("C", "F"):
        out = np.empty(x.shape, dtype, order=order)
        assert fn(x, axis=1, where=m, out=out) is out
        np.testing.assert_array_equal(out, want, err_msg=f"out {order}")
    out = np.empty((6, 90, 600), dtype)[..., ::2]
    np.testing.assert_array_equal(fn(x, axis=1, where=m, out=out), want, err_msg="out strided")
    in_place = x.copy()
    assert fn(in_place, axis=1, where=m, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, want, err_msg="in place")
    tol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(fn(np.asfortranarray(x), axis=1, where=m), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_strided_axis_without_a_transposed_copy(rng, log):
    """Over axis 0 of a C-ordered array the kernels read x and the mask in
    place: the call allocates its result and nothing of x's size besides."""
    tracemalloc = pytest.importorskip("tracemalloc")
    fn = cs.log_softmax if log else cs.softmax
    x = rng.standard_normal((300, 1000))
    mask = rng.random(x.shape) < 0.5
    fn(x, axis=0, where=mask)
    tracemalloc.start()
    try:
        fn(x, axis=0, where=mask)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * x.nbytes


def test_float16_and_integers(rng):
    x = rng.integers(-5, 5, (4, 8))
    mask = rng.random((4, 8)) < 0.5
    got = cs.softmax(x, axis=1, where=mask)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref.softmax(x, axis=1, where=mask).astype(float), rtol=1e-14)
    h = cs.softmax(x.astype(np.float16), axis=1, where=mask)
    assert h.dtype == np.float16


@pytest.mark.parametrize("bad, error", [(np.ones((2, 3)), TypeError), (np.ones((3, 2), bool), ValueError)])
def test_bad_masks(bad, error):
    with pytest.raises(error, match="where"):
        cs.softmax(np.zeros((2, 3)), axis=1, where=bad)


def test_against_jax(rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    x = rng.standard_normal((8, 13))
    mask = rng.random((8, 13)) < 0.5
    mask[3] = False
    want = np.asarray(jax.nn.softmax(x, axis=-1, where=mask))
    np.testing.assert_allclose(cs.softmax(x, axis=-1, where=mask), want, rtol=1e-13, atol=1e-300)
    want_log = np.asarray(jax.nn.log_softmax(x, axis=-1, where=mask))
    got_log = cs.log_softmax(x, axis=-1, where=mask)
    np.testing.assert_allclose(got_log[mask], want_log[mask], rtol=1e-13)


def test_jacobian_out(rng):
    x = rng.standard_normal((5, 4))
    out = np.full((5, 4, 4), 7.0)
    assert cs.softmax_jacobian(x, out=out) is out
    np.testing.assert_allclose(out, ref.softmax_jacobian(x).astype(float), rtol=1e-14, atol=1e-17)
    for bad in (np.empty((5, 4, 4), np.float32), np.empty((5, 4)), np.empty((4, 4, 4))):
        with pytest.raises(ValueError):
            cs.softmax_jacobian(x, out=bad)
    strided = np.zeros((5, 4, 8))[:, :, ::2]
    assert cs.softmax_jacobian(x, out=strided) is strided
    np.testing.assert_allclose(strided, out, rtol=1e-15)
