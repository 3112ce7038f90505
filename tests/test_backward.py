"""softmax_backward and log_softmax_backward (the vector-Jacobian products)
against the oracle, finite differences, PyTorch's autograd and their identities."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import csoftmax as cs
from csoftmax import reference as ref

from gradcheck import assert_grad_matches
from helpers import EPS64, F16, F32, F64, FLOATS, PIECE, assert_within, eps_of

FUNCS = {"softmax": (cs.softmax_backward, ref.softmax_backward, ref.softmax),
         "log_softmax": (cs.log_softmax_backward, ref.log_softmax_backward, ref.log_softmax)}


@pytest.fixture
def rng():
    return np.random.default_rng(3003)


def make(rng, shape, axis, dtype, kind, scale=3.0):
    """(forward output, upstream gradient) in ``dtype`` for logits drawn at ``scale``."""
    z = scale * rng.standard_normal(shape)
    fwd = FUNCS[kind][2](z, axis=axis)
    return np.asarray(fwd).astype(dtype), rng.standard_normal(shape).astype(dtype)


def bound(a, g, axis, dtype, kind):
    """The error allowed in the product computed from the same (rounded) inputs:
    a few roundings of the result's terms in ``dtype`` plus the class-axis sum
    accumulated in double."""
    a, g = np.asarray(a, F64), np.asarray(g, F64)
    C = a.shape[axis] if a.ndim else 1
    eps = eps_of(dtype)
    with np.errstate(all="ignore"):
        if kind == "softmax":
            s = np.abs(a)
            dot = np.sum(np.abs(g * a), axis=axis, keepdims=True)
            b = 4 * eps * s * (np.abs(g) + dot) + 4 * (C + 2) * EPS64 * s * dot
        else:
            s = np.exp(a)
            sg = np.sum(np.abs(g), axis=axis, keepdims=True)
            b = 4 * eps * (np.abs(g) + s * sg) + 4 * (C + 2) * EPS64 * s * sg + np.finfo(dtype).tiny * sg
    return b + np.finfo(dtype).tiny


def check(kind, a, g, axis, dtype, got=None, **kw):
    func, oracle, _ = FUNCS[kind]
    got = func(a, g, axis=axis, **kw) if got is None else got
    want = oracle(a, g, axis=axis)
    assert got.shape == np.shape(a)
    assert_within(got, want, bound(a, g, axis, dtype, kind), err_msg=f"{kind} axis={axis}")
    return got


# ------------------------------------------------------------------ vs oracle

SHAPES_AXES = [
    ((1,), 0), ((2,), -1), ((10,), 0), ((33,), -1), ((1000,), 0),
    ((1, 10), -1), ((7, 1), -1), ((7, 2), -1), ((7, 10), -1), ((7, 32), 1), ((7, 33), -1), ((7, 1000), -1),
    ((1, 7), 0), ((2, 7), 0), ((10, 7), 0), ((33, 7), -2), ((1000, 7), 0), ((10, 1), 0),
    ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), -1), ((2, 3, 4), -2), ((2, 3, 4), -3),
    ((3, 33, 5), 1), ((4, 2, 3, 5), 2),
    # >= 65536 elements: the threaded row and column (strided class axis) paths
    ((600, 128), -1), ((128, 600), 0), ((3, 100, 300), 1), ((70000,), 0), ((2, 33000), 0), ((66000, 1), 1),
    ((5, 14000), 0),
]


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape, axis", SHAPES_AXES, ids=str)
def test_matches_reference(isa, shape, axis, dtype, kind, rng):
    a, g = make(rng, shape, axis, dtype, kind)
    a0, g0 = a.copy(), g.copy()
    got = check(kind, a, g, axis, dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("axis", [0, -1])
def test_extreme_inputs(isa, axis, dtype, kind):
    z = np.array([[1e4, 0.0, -1e4, 5.0, 1.0],
                  [0.0, -np.inf, 0.0, -np.inf, 1.0],
                  [-1e4, -1e4 + 1, -1e4 + 2, -1e4, -1e4 - 50],
                  [0.0, 1.0, 2.0, 3.0, 4.0]])
    z = z if axis == -1 else z.T
    a = np.asarray(FUNCS[kind][2](z, axis=axis)).astype(dtype)
    g = np.linspace(-3, 7, a.size).reshape(a.shape).astype(dtype)
    g[np.unravel_index(3, a.shape)] = 1e30 if dtype == F32 else 1e300
    got = check(kind, a, g, axis, dtype)
    assert np.isfinite(got).all()


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("shape, axis", [((0, 5), -1), ((5, 0), -1), ((0, 5), 0), ((0,), 0), ((2, 0, 3), 0)],
                         ids=str)
def test_empty(shape, axis, kind):
    func = FUNCS[kind][0]
    r = func(np.zeros(shape), np.zeros(shape), axis=axis)
    assert r.shape == shape and r.dtype == F64
    out = np.empty(shape, F32)
    assert func(np.zeros(shape, F32), np.zeros(shape, F32), axis=axis, out=out) is out


# ------------------------------------------------------------------ finite differences

@pytest.mark.parametrize("shape, axis", [((7,), 0), ((3, 5), -1), ((5, 3), 0), ((2, 4, 3), 1), ((3, 2, 4), -3)],
                         ids=str)
def test_softmax_backward_is_the_gradient_of_g_dot_softmax(shape, axis, rng):
    z = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    got = cs.softmax_backward(cs.softmax(z, axis=axis), g, axis=axis)
    assert_grad_matches(lambda x: np.vdot(g, cs.softmax(x, axis=axis)), z, got)


@pytest.mark.parametrize("shape, axis", [((7,), 0), ((3, 5), -1), ((5, 3), 0), ((2, 4, 3), 1), ((3, 2, 4), -3)],
                         ids=str)
def test_log_softmax_backward_is_the_gradient_of_g_dot_log_softmax(shape, axis, rng):
    z = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    got = cs.log_softmax_backward(cs.log_softmax(z, axis=axis), g, axis=axis)
    assert_grad_matches(lambda x: np.vdot(g, cs.log_softmax(x, axis=axis)), z, got)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_backward_is_the_jacobian_product(axis, rng):
    z = rng.standard_normal((4, 6, 5))
    g = rng.standard_normal(z.shape)
    J = cs.softmax_jacobian(z, axis=axis)
    want = np.moveaxis(np.einsum("...ij,...i->...j", J, np.moveaxis(g, axis, -1)), -1, axis)
    np.testing.assert_allclose(cs.softmax_backward(cs.softmax(z, axis=axis), g, axis=axis), want,
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("rows", [1, 5, 70])
def test_whole_vector_rows(isa, rows, dtype, kind, rng):
    # rows of 1 to 8 whole vectors at every level take loops unrolled to
    # their width (row counts that leave a remainder of the four-row groups)
    for C in (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256):
        a, g = make(rng, (rows, C), -1, dtype, kind)
        check(kind, a, g, -1, dtype)


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_row_bits_do_not_depend_on_where_the_rows_start(isa, dtype, kind, rng):
    # mid-width rows go in groups of four, counted from the first row a call
    # (or a thread) is given, the last few with spare rows; narrow rows go a
    # block at a time: a row must come out the same wherever it falls.  For
    # log_softmax some rows hold entries above 0 (not a log-softmax), which
    # take the general exponential, the other rows the one for arguments <= 0.
    func = FUNCS[kind][0]
    for C in (8, 12, 16, 20, 24, 40, 48, 64, 96, 128, 200):
        a, g = make(rng, (23, C), -1, dtype, kind)
        if kind == "log_softmax":
            a[[2, 9, 10, 17]] = rng.standard_normal((4, C)).astype(dtype)
        whole = func(a, g)
        for start in (1, 2, 3, 5):
            np.testing.assert_array_equal(func(a[start:], g[start:]), whole[start:],
                                          err_msg=f"C = {C}, rows from {start}")
        for i in (0, 2, 9, 22):
            np.testing.assert_array_equal(func(a[i:i + 1], g[i:i + 1]), whole[i:i + 1],
                                          err_msg=f"C = {C}, row {i} alone")
        for which in ("s", "g"):
            a2, g2 = a.copy(), g.copy()
            target = a2 if which == "s" else g2
            func(a2, g2, out=target)
            np.testing.assert_array_equal(target, whole, err_msg=f"C = {C}, in place over {which}")
        check(kind, a, g, -1, dtype, got=whole)


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_every_width_to_700(isa, dtype, kind, rng):
    # every length of a row's last partial vector at every level; at
    # x86-64-v4, float32 rows go one at a time held in vector registers
    # (softmax_backward 37 to 640 entries, wider than 224 their first 192;
    # log_softmax_backward 16 to 159), their last 16 entries as one
    # more vector over the whole ones: against the oracle, the same bits
    # with the rows padded apart (starting anywhere in a line), and in place
    # over s and over g.  For log_softmax one row holds entries above 0 (not
    # a log-softmax), which takes the general exponential, and one holds
    # entries far below -87.5, whose exponentials underflow to 0 (the
    # vector exponential's scale must not overflow there: the sanitizers
    # run this test).
    func = FUNCS[kind][0]
    for C in range(1, 701):
        a, g = make(rng, (5, C), -1, dtype, kind)
        if kind == "log_softmax":
            a[2] = rng.standard_normal(C).astype(dtype)
            a[3] = FUNCS[kind][2](300.0 * rng.standard_normal(C)).astype(dtype)
        want = check(kind, a, g, -1, dtype)
        pa, pg = np.zeros((5, C + 3), dtype), np.zeros((5, C + 5), dtype)
        pa[:, 1:C + 1], pg[:, 3:C + 3] = a, g
        np.testing.assert_array_equal(func(pa[:, 1:C + 1], pg[:, 3:C + 3]), want, err_msg=f"C = {C}, padded")
        for which in ("s", "g"):
            a2, g2 = a.copy(), g.copy()
            target = a2 if which == "s" else g2
            func(a2, g2, out=target)
            np.testing.assert_array_equal(target, want, err_msg=f"C = {C}, in place over {which}")


def _at_offset(a, offset):
    """A copy of the C-contiguous ``a`` whose data lies ``offset`` bytes past
    a 64-byte line."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = (offset - buf.ctypes.data) % 64
    v = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    v[...] = a
    return v


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_bits_do_not_depend_on_where_the_arrays_lie(isa, dtype, kind, rng):
    # wide rows take their output pass from the inputs' first line boundary
    # when the two inputs lie as far into their lines, whatever the output's
    # offset (rows wider than 8 KiB backwards, a block at a time): the same
    # bits wherever the three arrays lie
    func = FUNCS[kind][0]
    size = np.dtype(dtype).itemsize
    for C in (200, 1000, 3000):
        a, g = make(rng, (6, C), -1, dtype, kind)
        want = func(a, g)
        for sa, sg, so in ((0, 0, 16), (16, 16, 0), (16, 16, 48), (16, 16, 16), (40, 40, 8),
                           (56, 56, 56), (16, 48, 16), (size, 2 * size, 0)):
            out = _at_offset(np.zeros_like(a), so)
            got = func(_at_offset(a, sa), _at_offset(g, sg), out=out)
            assert got is out
            np.testing.assert_array_equal(got, want, err_msg=f"C = {C}, offsets {sa}, {sg}, {so}")


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_a_call_large_enough_to_stream(isa, dtype, kind, rng):
    # a call of 8 MiB or more takes its mid-width rows one at a time, not four
    # side by side: the same bits as the same rows in smaller calls, on one
    # and two threads, in place and in other layouts.  Widths given as
    # constants and not; log_softmax with rows holding entries above 0.
    func = FUNCS[kind][0]
    for C in (24, 40, 64, 100):
        n = (8 << 20) // (C * np.dtype(dtype).itemsize) + 7
        a, g = make(rng, (n, C), -1, dtype, kind)
        if kind == "log_softmax":
            a[5::997] = rng.standard_normal((len(a[5::997]), C)).astype(dtype)
        whole = func(a, g)
        step = n // 3 + 1
        for lo in range(0, n, step):
            np.testing.assert_array_equal(func(a[lo:lo + step], g[lo:lo + step]), whole[lo:lo + step],
                                          err_msg=f"C = {C}, rows from {lo}")
        before = cs.get_num_threads()
        cs.set_num_threads(1)
        try:
            np.testing.assert_array_equal(func(a, g), whole, err_msg=f"C = {C}, one thread")
        finally:
            cs.set_num_threads(before)
        # other layouts of the same rows: reversed, rows padded apart, and g
        # one row broadcast (row stride 0)
        np.testing.assert_array_equal(func(a[::-1], g[::-1]), whole[::-1], err_msg=f"C = {C}, reversed")
        pad = np.zeros((n, C + 3), dtype)
        pad[:, 1:C + 1] = a
        np.testing.assert_array_equal(func(pad[:, 1:C + 1], g), whole, err_msg=f"C = {C}, padded rows")
        g0 = np.broadcast_to(g[:1], g.shape)
        bcast = func(a, g0)
        for lo in range(0, n, step):
            np.testing.assert_array_equal(func(a[lo:lo + step], g0[lo:lo + step]), bcast[lo:lo + step],
                                          err_msg=f"C = {C}, g broadcast, rows from {lo}")
        func(a, g, out=g)
        np.testing.assert_array_equal(g, whole, err_msg=f"C = {C}, in place")


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("shape, dtype", [((2000, 1100), F32), ((300, 7001), F32), ((1000, 1100), F64)], ids=str)
def test_strided_axis_from_memory(isa, shape, dtype, kind, rng):
    # over a strided axis, a call of 8 MiB or more prefetches its tiles'
    # strips (float32 tiles of more than 512 KiB): each column gets the bits
    # it gets in a narrow copy (in cache), on one and two threads; and the
    # oracle's values.  log_softmax with columns holding entries above 0.
    func = FUNCS[kind][0]
    a, g = make(rng, shape, 0, dtype, kind)
    if kind == "log_softmax":
        a[:, 5::97] = rng.standard_normal((shape[0], len(range(5, shape[1], 97)))).astype(dtype)
    whole = func(a, g, axis=0)
    n = shape[1]
    for j0, j1 in [(0, 40), (n // 2 - 17, n // 2 + 20), (n - 37, n)]:
        np.testing.assert_array_equal(func(np.ascontiguousarray(a[:, j0:j1]), np.ascontiguousarray(g[:, j0:j1]),
                                           axis=0), whole[:, j0:j1], err_msg=f"columns {j0}-{j1}")
    before = cs.get_num_threads()
    cs.set_num_threads(1)
    try:
        np.testing.assert_array_equal(func(a, g, axis=0), whole, err_msg="one thread")
    finally:
        cs.set_num_threads(before)
    check(kind, a[:, ::11], g[:, ::11], 0, dtype)


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_extreme_inputs_in_mid_width_rows(isa, dtype, kind):
    # rows of 8 to 100 classes go four at a time: a row of -inf and 0 (a
    # class of probability 0), a nan, an infinite gradient, a huge entry and
    # (log_softmax) an entry above 0 each in a group with ordinary rows
    for C in (8, 16, 24, 32, 48, 100):
        z = np.tile(np.linspace(-4.0, 4.0, C), (13, 1))
        z[1, ::3] = -np.inf
        a = np.asarray(FUNCS[kind][2](z, axis=-1)).astype(dtype)
        g = np.cos(np.arange(a.size, dtype=F64)).reshape(a.shape).astype(dtype)
        a[5, C // 2] = np.nan
        g[6, 1] = np.inf
        g[7, 0] = np.finfo(dtype).max / 4
        if kind == "log_softmax":
            a[9, C - 1] = 2.0
            a[10, 0] = np.inf
        got = check(kind, a, g, -1, dtype)
        assert np.isnan(got[5, C // 2]) and np.isnan(got[6, 1])
        assert np.isfinite(got[[0, 1, 2, 3, 4, 7, 8, 11, 12]]).all()


# ------------------------------------------------------------------ layouts, out=, in place

def _layout_pairs(rng, dtype, kind):
    a, g = make(rng, (40, 24), -1, dtype, kind)
    a0, _ = make(rng, (24, 40), 0, dtype, kind)   # classes on axis 0 of this one
    ro_a, ro_g = a.copy(), g.copy()
    ro_a.flags.writeable = ro_g.flags.writeable = False
    a3, g3 = make(rng, (4, 24, 10), 1, dtype, kind)
    yield "fortran", np.asfortranarray(a), np.asfortranarray(g), -1
    yield "mixed C/F", a, np.asfortranarray(g), -1
    yield "transposed", a0.T, np.asfortranarray(g), -1
    yield "strided", a[::2], g[1::2], -1
    yield "negative", a[::-1, ::-1], g[::-1], -1
    yield "column slice", np.asfortranarray(a0)[:, 3:30], g.T[:, 3:30], 0
    yield "readonly", ro_a, ro_g, -1
    yield "3d fortran", np.asfortranarray(a3), g3, 1
    yield "3d strided", a3[::-1, :, ::2], g3[:, :, 1::2], 1


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_layouts(isa, dtype, kind, rng):
    for name, a, g, axis in _layout_pairs(rng, dtype, kind):
        a0, g0 = a.copy(), g.copy()
        check(kind, a, g, axis, dtype)
        np.testing.assert_array_equal(a, a0, err_msg=name)
        np.testing.assert_array_equal(g, g0, err_msg=name)



@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("n", [PIECE + 1, 3 * PIECE + 5])
def test_long_row_in_pieces(isa, n, dtype, kind, rng):
    """One long row goes in pieces: each piece's sum, the sums added, then
    each piece's output.  Against the oracle; in place over s and over g with
    the same bits; a piece holding a log-softmax entry above 0 (the general
    exponential there); a nan or an inf among g reaching every entry, as the
    row's sum does."""
    func = FUNCS[kind][0]
    a, g = make(rng, (n,), -1, dtype, kind)
    got = check(kind, a, g, -1, dtype)
    for which in ("s", "g"):
        a2, g2 = a.copy(), g.copy()
        target = a2 if which == "s" else g2
        assert func(a2, g2, out=target) is target
        np.testing.assert_array_equal(target, got, err_msg=f"in place over {which}")
    if kind == "log_softmax":
        a2 = a.copy()
        a2[n - PIECE // 2] = 0.5
        check(kind, a2, g, -1, dtype)
    for special in (np.nan, np.inf):
        g2 = g.copy()
        g2[n - 2] = special
        want = FUNCS[kind][1](a, g2)
        np.testing.assert_array_equal(np.isnan(func(a, g2)), np.isnan(want))


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("order, axis", [("C", -1), ("C", 0), ("F", -1), ("F", 0)])
def test_out(isa, order, axis, dtype, kind, rng):
    func = FUNCS[kind][0]
    a, g = make(rng, (9, 40), axis, dtype, kind)
    a, g = np.asarray(a, order=order), np.asarray(g, order=order)
    want = func(a, g, axis=axis)
    for out in (np.empty_like(a, order="C"), np.empty_like(a, order="F"), np.empty((9, 80), dtype)[:, ::2]):
        assert func(a, g, axis=axis, out=out) is out
        np.testing.assert_array_equal(out, want)
    for which in ("s", "g"):
        a2, g2 = a.copy(order=order), g.copy(order=order)
        target = a2 if which == "s" else g2
        assert func(a2, g2, axis=axis, out=target) is target
        np.testing.assert_array_equal(target, want, err_msg=f"in place over {which}")


@pytest.mark.parametrize("kind", FUNCS)
def test_out_in_place_with_mixed_layouts_and_float16(isa, kind, rng):
    func = FUNCS[kind][0]
    a, g = make(rng, (30, 12), -1, F64, kind)
    want = FUNCS[kind][1](a, g)
    for which in ("s", "g"):
        a2, g2 = np.asfortranarray(a), g.copy()
        target = a2 if which == "s" else g2
        assert func(a2, g2, out=target) is target
        assert_within(target, want, bound(a, g, -1, F64, kind), err_msg=f"in place over {which}")
    a16, g16 = a.astype(F16), g.astype(F16)
    want = func(a16, g16)
    out = np.empty(a.shape, F16)
    assert func(a16, g16, out=out) is out
    np.testing.assert_array_equal(out, want)
    assert func(a16, g16, out=g16) is g16
    np.testing.assert_array_equal(g16, want)


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_out_in_place_over_contiguous_narrow_rows(isa, kind, dtype, rng):
    # narrow rows whose three arrays are contiguous take a flat output pass:
    # written over s or over g, the bits are those of a separate output
    func = FUNCS[kind][0]
    for n_classes in (2, 3, 10):
        a, g = make(rng, (70, n_classes), -1, dtype, kind)
        want = func(a, g)
        for which in ("s", "g"):
            a2, g2 = a.copy(), g.copy()
            target = a2 if which == "s" else g2
            assert func(a2, g2, out=target) is target
            np.testing.assert_array_equal(target, want, err_msg=f"C = {n_classes}, in place over {which}")


@pytest.mark.parametrize("kind", FUNCS)
def test_out_overlapping_an_input(kind, rng):
    func = FUNCS[kind][0]
    a, g = make(rng, (6, 10), -1, F64, kind)
    want = func(a, g)
    buf = np.empty((6, 11))
    buf[:, :10] = a
    assert np.shares_memory(buf[:, :10], buf[:, 1:])
    out = func(buf[:, :10], g, out=buf[:, 1:])
    np.testing.assert_array_equal(out, want)
    buf = np.empty((6, 11))
    buf[:, 1:] = g
    out = func(a, buf[:, 1:], out=buf[:, :10])
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("kind", FUNCS)
def test_out_with_a_big_threaded_input(kind, rng):
    func = FUNCS[kind][0]
    for shape, axis in (((600, 128), -1), ((128, 600), 0)):
        a, g = make(rng, shape, axis, F32, kind)
        want = func(a, g, axis=axis)
        assert func(a, g, axis=axis, out=g) is g
        np.testing.assert_array_equal(g, want)


# ------------------------------------------------------------------ dtypes and bad input

@pytest.mark.parametrize("kind", FUNCS)
def test_dtypes(kind, rng):
    func = FUNCS[kind][0]
    a, g = make(rng, (3, 5), -1, F64, kind)
    cases = [
        (a.astype(F16), g.astype(F16), F16, 2e-3),
        (a.astype(F32), g.astype(F64), F64, 1e-14),
        (a.astype(F16), g.astype(F32), F32, 1e-6),
        (a, g.astype(np.int64), F64, 1e-14),
        (a.astype(F32), (g > 0), F64, 1e-6),  # bool inputs give float64, as integers do
        (a.tolist(), g.tolist(), F64, 1e-14),
    ]
    for x, y, dt, tol in cases:
        r = func(x, y)
        assert r.dtype == dt, (np.asarray(x).dtype, np.asarray(y).dtype)
        assert_within(r, FUNCS[kind][1](np.asarray(x).astype(dt), np.asarray(y).astype(dt)),
                      tol * (1 + np.abs(np.asarray(r, F64))))
    assert func([0, 1], [1, 0]).dtype == F64  # one-hot integer s


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("bad", ["s", "g"])
def test_non_real_input_raises_type_error(kind, bad):
    func = FUNCS[kind][0]
    for x in (np.array([0.5 + 1j, 0.5]), np.array([0.5, 0.5], object), np.array(["0.5", "0.5"])):
        args = (x, [1.0, 0.0]) if bad == "s" else ([0.5, 0.5], x)
        with pytest.raises(TypeError):
            func(*args)


def _bad_calls():
    s = np.full((4, 5), 0.2)
    g = np.ones((4, 5))
    yield "shape mismatch", (s, g[:, :4]), {}
    yield "broadcastable g", (s, g[:1]), {}
    yield "0-d", (np.float64(1.0), np.float64(1.0)), {}
    yield "axis out of range", (s, g), {"axis": 2}
    yield "negative axis out of range", (s, g), {"axis": -3}
    yield "two axes", (s, g), {"axis": (0, 1)}
    yield "axis None", (s, g), {"axis": None}
    yield "out shape", (s, g), {"out": np.full((5, 4), 7.0)}
    yield "out dtype", (s, g), {"out": np.full((4, 5), 7.0, F32)}
    yield "out dtype f16", (s.astype(F16), g.astype(F16)), {"out": np.full((4, 5), 7.0, F32)}
    ro = np.full((4, 5), 7.0)
    ro.flags.writeable = False
    yield "out read-only", (s, g), {"out": ro}
    yield "out with bad g", (s, g[:, :4]), {"out": np.full((4, 5), 7.0)}
    yield "out with bad axis", (s, g), {"axis": 5, "out": np.full((4, 5), 7.0)}


@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("name, args, kwargs", list(_bad_calls()), ids=[c[0] for c in _bad_calls()])
def test_bad_input_raises_and_writes_nothing(name, args, kwargs, kind):
    out = kwargs.get("out")
    before = None if out is None else out.copy()
    with pytest.raises(ValueError):
        FUNCS[kind][0](*args, **kwargs)
    if out is not None:
        np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("kind", FUNCS)
def test_out_must_be_an_ndarray(kind):
    with pytest.raises(TypeError):
        FUNCS[kind][0]([0.5, 0.5], [1.0, 0.0], out=[0.0, 0.0])


# ------------------------------------------------------------------ PyTorch

@pytest.mark.parametrize("kind", FUNCS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape, axis", [((8, 10), -1), ((8, 10), 0), ((3, 4, 33), 1), ((1000,), 0)], ids=str)
def test_matches_torch_autograd(shape, axis, dtype, kind, rng):
    torch = pytest.importorskip("torch")
    z = torch.tensor((3 * rng.standard_normal(shape)).astype(dtype), requires_grad=True)
    g = rng.standard_normal(shape).astype(dtype)
    fwd = torch.softmax(z, dim=axis) if kind == "softmax" else torch.log_softmax(z, dim=axis)
    fwd.backward(torch.from_numpy(g))
    a = fwd.detach().numpy()
    got = FUNCS[kind][0](a, g, axis=axis)
    want = z.grad.numpy()
    # torch accumulates its class-axis sums in the input's dtype
    s = np.abs(a) if kind == "softmax" else np.exp(a)
    tol = bound(a, g, axis, dtype, kind) + 8 * shape[axis] * eps_of(dtype) * s * np.abs(g).max()
    assert_within(got, want, tol)


# ------------------------------------------------------------------ properties

_arrays = hnp.arrays(st.sampled_from([F32, F64]), hnp.array_shapes(min_dims=1, max_dims=3, max_side=12),
                     elements=st.floats(-30, 30, width=32))


@settings(max_examples=60, deadline=None)
@given(z=_arrays, data=st.data())
def test_property_sums_to_zero_and_matches_reference(z, data):
    axis = data.draw(st.integers(-z.ndim, z.ndim - 1))
    g = data.draw(hnp.arrays(z.dtype, z.shape, elements=st.floats(-100, 100, width=32)))
    for kind in FUNCS:
        a = np.asarray(FUNCS[kind][2](z, axis=axis)).astype(z.dtype)
        got = check(kind, a, g, axis, z.dtype)
        # Σ_i s_i (g_i - <g, s>) = <g, s>(1 - Σ s) and Σ g - Σ s · Σ g: zero up to Σ s - 1
        C = z.shape[axis]
        scale = np.sum(np.abs(g), axis=axis) + 1
        assert_within(np.sum(got, axis=axis), 0, 4 * (C + 2) * eps_of(z.dtype) * scale)
