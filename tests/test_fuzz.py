"""Differential fuzzing: every public function against ``csoftmax.reference``
(and ``scipy.special`` where installed) on random layouts, dtypes, axes, values,
``out`` arrays and the cross-entropy's options (class weights, ignored rows,
label smoothing), within the accuracy bounds of the other test files.

Case ``i`` is built from ``np.random.default_rng(i)`` alone, so any failure is
replayed by its number:

    CSOFTMAX_FUZZ_CASE=i pytest tests/test_fuzz.py       # just case i
    CSOFTMAX_FUZZ_CASES=20000 pytest tests/test_fuzz.py  # a long run (default 300)
    CSOFTMAX_FUZZ_START=k                                # first case of the run (default 0)

Every case also checks that no input was modified (unless passed as ``out``)
and that a refused ``out`` was left untouched; every fourth case, that one
thread gives bitwise the same result as the default count.
"""
import math
import os
import warnings

import numpy as np
import pytest

import csoftmax as cs
from csoftmax import _runtime, reference as ref

from helpers import ASSERT as FORWARD_ASSERT, F16, F32, F64, PIECE, assert_within, eps_of
from test_backward import bound as backward_bound
from test_jacobian import jacobian_bound
from test_logsumexp import cond as lse_cond
from test_loss import ce_bounds

try:
    import scipy.special as sp
except ImportError:  # pragma: no cover - SciPy is optional
    sp = None

FUNCS = ["softmax", "log_softmax", "softmax_jacobian", "softmax_backward", "log_softmax_backward",
         "cross_entropy", "cross_entropy_grad", "softmax_regression_loss_grad", "logsumexp"]
DTYPES = [F16, F32, F64, np.dtype(np.int64), np.dtype(np.int32), np.dtype(bool)]
LAYOUTS = ["C", "F", "broadcast", "none_index", "unaligned", "negative", "slice", "readonly"]
# the layouts in which axis 0 of a 2-D array keeps a stride of a row or more
# (not "F", which makes it contiguous, nor "broadcast", which may make it 0)
ROW_STRIDED_LAYOUTS = [name for name in LAYOUTS if name not in ("F", "broadcast")]
VALUES = ["normal", "huge", "specials", "neginf_rows", "constant_rows"]
SENTINEL = 12345.0
BIG_STRIDED = 0.01   # of the softmax and log_softmax cases
LONG_ROW = 0.03      # of the backward cases


def f16_rounding(want, rdt):
    """float16 results are computed in float32 (the bounds' eps) and rounded
    once more to float16 at the end: half an ulp of float16 on top (half the
    smallest subnormal below float16's normal range)."""
    if rdt != F16:
        return 0.0
    with np.errstate(all="ignore"):
        return float(np.finfo(F16).eps) / 2 * np.abs(np.asarray(want, F64)) + float(np.finfo(F16).smallest_subnormal) / 2


def f16_overflow(got, want, rdt):
    """Where the oracle lies beyond float16's largest finite value, an infinity
    of its sign is the right float16 result (round to nearest): the oracle's
    value is taken as that infinity there when the result holds it."""
    if rdt != F16:
        return want
    want = np.array(want, F64)
    g = np.broadcast_to(np.asarray(got, F64), want.shape)
    with np.errstate(invalid="ignore"):
        take = np.isfinite(want) & (np.abs(want) > float(np.finfo(F16).max)) & (g == np.copysign(np.inf, want))
    want[take] = g[take]
    return want


def result_dtype(dt):
    dt = np.dtype(dt)
    return dt if dt in (F16, F32, F64) else F64


# ------------------------------------------------------------------ inputs

def values(rng, shape, kind, dtype, axis=-1):
    """Logical values of one operand (float64, later cast to ``dtype``)."""
    dtype = np.dtype(dtype)
    if dtype == bool:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(-60, 60, size=shape)
    x = rng.normal(size=shape) * rng.choice([0.5, 3.0, 30.0]) + rng.uniform(-50, 50)
    if kind == "huge":
        x = x + rng.choice([-1e30, 0.0, 1e30], size=shape) * rng.uniform(0.5, 1.0, size=shape)
    elif kind == "specials":
        pick = rng.random(shape)
        x[pick < 0.08] = np.inf
        x[(pick >= 0.08) & (pick < 0.2)] = -np.inf
        x[(pick >= 0.2) & (pick < 0.26)] = np.nan
    elif kind in ("neginf_rows", "constant_rows") and x.ndim:
        ax = axis % x.ndim
        rows = rng.random(shape[:ax] + (1,) + shape[ax + 1:]) < 0.5
        fill = -np.inf if kind == "neginf_rows" else rng.choice([0.0, 7.5, -1e30, 1e30])
        x = np.where(rows, fill, x)
    return x.astype(dtype) if dtype.kind == "f" else x


def layout(rng, v, kind):
    """An array of ``v``'s shape and dtype in memory laid out as ``kind``; for
    "broadcast" and "none_index" the values are those of a smaller array."""
    if v.ndim == 0:
        return np.array(v)
    if kind == "C":
        return np.ascontiguousarray(v)
    if kind == "F":
        return np.asfortranarray(v)
    if kind == "broadcast":
        ax = int(rng.integers(v.ndim))
        return np.broadcast_to(np.take(v, [0], axis=ax), v.shape)
    if kind == "none_index":
        ones = [a for a in range(v.ndim) if v.shape[a] == 1]
        if not ones:
            return np.ascontiguousarray(v)
        idx = tuple(None if a in ones else slice(None) for a in range(v.ndim))
        return np.squeeze(v, axis=tuple(ones)).copy()[idx]
    if kind == "unaligned":
        k = int(rng.integers(1, 8))
        buf = bytearray(v.nbytes + k)
        a = np.frombuffer(buf, v.dtype, count=v.size, offset=k).reshape(v.shape)
        a[...] = v
        return a
    if kind == "negative":
        axes = tuple(a for a in range(v.ndim) if rng.random() < 0.6) or (v.ndim - 1,)
        return np.flip(np.ascontiguousarray(np.flip(v, axes)), axes)
    if kind == "slice":
        big = np.zeros(tuple(2 * n + 1 for n in v.shape), v.dtype)
        view = big[tuple(slice(1, None, 2) for _ in v.shape)]
        view[...] = v
        return view
    if kind == "readonly":
        a = np.array(v)
        a.flags.writeable = False
        return a
    raise AssertionError(kind)


def shape_for(rng, ndim_max=3, wide=True):
    ndim = int(rng.integers(1, ndim_max + 1))
    # (8, 16, 24: narrow rows of whole vectors at some level)
    sides = rng.choice([1, 1, 2, 3, 5, 7, 8, 10, 16, 17, 24, 32, 33], size=ndim)
    shape = [int(s) for s in sides]
    r = rng.random()
    if wide and r < 0.15:
        # (whole vectors at some level: 48, 64, 96, 128, 256; or not; 37 to 640:
        # float32 softmax_backward's rows held in registers at x86-64-v4, all
        # of them up to 224, the first 192 past it)
        shape[int(rng.integers(ndim))] = int(rng.choice([37, 48, 64, 96, 100, 128, 225, 256, 257, 640, 1000]))
    elif wide and r < 0.18:   # the threaded path
        shape = [int(rng.choice([70, 300])), 1000][:max(ndim, 2)] + [1] * (ndim - 2)
    elif wide and r < 0.20:   # rows past 8 KiB (softmax_backward's backwards output pass)
        shape = [int(rng.choice([1, 3])), 2100][:max(ndim, 2)] + [1] * (ndim - 2)
    return tuple(shape)


def forward_axis(rng, ndim, allow_tuple):
    r = rng.random()
    if r < 0.15:
        return None
    if allow_tuple and r < 0.35 and ndim >= 2:
        k = int(rng.integers(1, ndim + 1))
        axes = rng.choice(ndim, size=k, replace=False)
        return tuple(int(a) - ndim if rng.random() < 0.5 else int(a) for a in axes)
    a = int(rng.integers(ndim))
    return a - ndim if rng.random() < 0.5 else a


def choose(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def case(i):
    """Everything case ``i`` calls, drawn from ``default_rng(i)`` alone."""
    with np.errstate(over="ignore"):    # huge values overflow float16: inf is wanted
        return _draw(i, np.random.default_rng(i))


def _draw(i, rng):
    name = FUNCS[i % len(FUNCS)]
    c = {"i": i, "name": name, "values": choose(rng, VALUES), "out": choose(rng, OUT_MODES)}
    if name in ("softmax", "log_softmax", "softmax_jacobian"):
        shape = shape_for(rng, 4 if name != "softmax_jacobian" else 3, wide=name != "softmax_jacobian")
        if name == "softmax_jacobian":
            shape = tuple(min(n, 40) for n in shape)
            axis = int(rng.integers(-len(shape), len(shape)))
        elif np.random.default_rng([i, 1]).random() < BIG_STRIDED:
            # a strided class axis whose outer block is 8 MiB and more: the
            # packed tiles of a call that streams from memory, their output
            # written with streaming stores or without, x laid out so that
            # its class axis stays strided (drawn apart, so that the other
            # cases stay as they were)
            axis = choose(rng, [0, -2])
            c["stream"] = bool(rng.random() < 0.8)
        else:
            axis = forward_axis(rng, len(shape), True)
        dt = choose(rng, DTYPES)
        if "stream" in c:
            shape = (2100 if result_dtype(dt).itemsize <= 4 else 1100, 1024)
        v = values(rng, shape, c["values"], dt, axis if isinstance(axis, int) else -1)
        x = layout(rng, v, choose(rng, ROW_STRIDED_LAYOUTS if "stream" in c else LAYOUTS))
        c.update(args=[x], axis=axis)
        if name != "softmax_jacobian" and rng.random() < 0.35:
            # where=, laid out as any input: the second argument (see call)
            c["args"].append(layout(rng, rng.random(shape) < 0.6, choose(rng, LAYOUTS)))
    elif name == "logsumexp":
        shape = shape_for(rng, 4)
        axis = forward_axis(rng, len(shape), True)
        dt = choose(rng, DTYPES)
        x = layout(rng, values(rng, shape, c["values"], dt, axis if isinstance(axis, int) else -1),
                   choose(rng, LAYOUTS))
        b = w = None
        if rng.random() < 0.3:
            # weights of either sign (and zeros), of a shape that broadcasts
            # with x's
            bshape = tuple(n if rng.random() < 0.8 else 1 for n in shape)
            bv = values(rng, bshape, "normal", choose(rng, [F32, F64, np.dtype(np.int64)]))
            b = layout(rng, np.where(rng.random(bshape) < 0.15, 0, bv).astype(bv.dtype), choose(rng, LAYOUTS))
        if rng.random() < 0.25:
            w = layout(rng, rng.random(shape) < 0.6, choose(rng, LAYOUTS))
        # out receives the result, which has another shape than any input
        c.update(args=[x, b, w], axis=axis, out=choose(rng, [None, None, "fresh", "wrong_dtype", "wrong_shape"]),
                 kw={"keepdims": bool(rng.random() < 0.3), "return_sign": bool(rng.random() < 0.5)})
    elif name in ("softmax_backward", "log_softmax_backward"):
        if np.random.default_rng([i, 2]).random() < LONG_ROW:
            # one vector longer than two pieces, which the threads share
            # (drawn apart, so that the other cases stay as they were)
            shape = (2 * PIECE + int(rng.integers(1, 100)),)
        else:
            shape = shape_for(rng)
        axis = int(rng.integers(-len(shape), len(shape)))
        z = values(rng, shape, c["values"], F64, axis)
        with np.errstate(all="ignore"):
            a = getattr(ref, "softmax" if name == "softmax_backward" else "log_softmax")(z, axis=axis)
        if name == "log_softmax_backward" and rng.random() < 0.3:
            # entries above 0 (not a log-softmax): such rows take the general
            # exponential, the others in their group the one for arguments <= 0
            a = np.where(rng.random(np.shape(a)) < 0.05, rng.uniform(0.0, 3.0, np.shape(a)), a)
        dts = [choose(rng, [F16, F32, F64]), choose(rng, DTYPES)]
        a = layout(rng, np.asarray(a).astype(dts[0]), choose(rng, LAYOUTS))
        g = layout(rng, values(rng, shape, "normal", dts[1]), choose(rng, LAYOUTS))
        c.update(args=[a, g], axis=axis)
    elif name in ("cross_entropy", "cross_entropy_grad"):
        N, C = int(rng.choice([1, 2, 7, 33, 100])), int(rng.choice([1, 2, 3, 10, 16, 24, 32, 33, 48, 64, 96, 128, 300, 1000]))
        one = rng.random() < 0.1
        dt = choose(rng, [F16, F32, F64, F64, np.dtype(np.int64)])
        z = layout(rng, values(rng, (N, C), c["values"], dt), choose(rng, LAYOUTS))
        kw = {}
        if rng.random() < 0.5:
            t = rng.integers(0, C, N)
            tdt = np.dtype(choose(rng, [np.int64, np.int32, np.uint8, F64]))
            if rng.random() < 0.25:
                # ignored rows (some, all or none), labelled by the default
                # ignore_index, another negative one or a class's own index
                ignore = int(choose(rng, [-100, -100, -1, 0, C - 1] if tdt != np.uint8 else [0, C - 1]))
                if ignore != -100:
                    kw["ignore_index"] = ignore
                t = np.where(rng.random(N) < choose(rng, [0.3, 1.0]), ignore, t)
            t = layout(rng, t.astype(tdt), choose(rng, LAYOUTS))
        else:
            t = rng.random((N, C)) * (rng.random((N, C)) < 0.7)
            t = layout(rng, t.astype(choose(rng, [F32, F64])), choose(rng, LAYOUTS))
        if rng.random() < 0.25:
            # class weights, zeros among them (or all 0)
            cw = rng.random(C) * 2 * (rng.random(C) < choose(rng, [0.85, 0.0]))
            kw["weight"] = layout(rng, cw.astype(choose(rng, [F32, F64])), choose(rng, LAYOUTS))
        if rng.random() < 0.25:
            kw["label_smoothing"] = float(choose(rng, [1e-3, 0.1, 0.5, 1.0]))
        if one:
            z, t = z[0], t[0]
        kw["reduction"] = choose(rng, ["mean", "sum", "none"])
        if rng.random() < 0.5 and not one:
            w = rng.random(N) * 3
            w[0] = max(w[0], 0.5)
            kw["sample_weight"] = layout(rng, w, choose(rng, LAYOUTS))
        if name == "cross_entropy_grad":
            kw["grad_output"] = (rng.standard_normal(N) if kw["reduction"] == "none" and not one
                                 else float(rng.standard_normal()))
        c.update(args=[z, t], kw=kw)
    else:
        N, D, C = int(rng.choice([1, 5, 40])), int(rng.choice([1, 3, 8])), int(rng.choice([2, 3, 10]))
        dt = choose(rng, [F32, F64])
        W = layout(rng, (rng.standard_normal((C, D)) * 2).astype(dt), choose(rng, LAYOUTS))
        X = layout(rng, rng.standard_normal((N, D)).astype(dt), choose(rng, LAYOUTS))
        y = layout(rng, rng.integers(0, C, N), choose(rng, LAYOUTS))
        b = layout(rng, rng.standard_normal(C).astype(dt), choose(rng, LAYOUTS)) if rng.random() < 0.6 else None
        kw = {"l2": float(rng.choice([0.0, 0.1]))}
        if rng.random() < 0.5:
            kw["sample_weight"] = rng.random(N) + 0.1
        c.update(args=[W, X, y, b], kw=kw, out=None)
    return c


OUT_MODES = [None, None, "fresh", "input", "overlap", "wrong_dtype", "wrong_shape"]
OPTIONS = {"weight", "ignore_index", "label_smoothing"}   # the cross-entropy's
HAS_OUT = {"softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy_grad", "logsumexp"}


# ------------------------------------------------------------------ checks

def split_where(c, args):
    """softmax and log_softmax take a mask, when the case has one, as where=;
    logsumexp its weights and mask (or None) as b= and where=."""
    if c["name"] in ("softmax", "log_softmax") and len(args) == 2:
        return args[:1], {"where": args[1]}
    if c["name"] == "logsumexp":
        return args[:1], {"b": args[1], "where": args[2]}
    return args, {}


def call(c, args, out=None):
    func = getattr(cs, c["name"])
    args, kw = split_where(c, args)
    kw.update(c.get("kw", {}))
    if "axis" in c:
        kw["axis"] = c["axis"]
    if out is not None:
        kw["out"] = out
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # a mean over weights summing to 0 (ignored rows, class weights of 0) is nan, with a warning
        warnings.filterwarnings("ignore", "cross_entropy: the weights of the counted samples", RuntimeWarning)
        return func(*args, **kw)


def oracle(c, args):
    f = getattr(ref, c["name"])
    args, where = split_where(c, args)
    with np.errstate(all="ignore"):
        if c["name"] == "logsumexp":
            return f(*args, axis=c["axis"], **where, **c["kw"])
        if "axis" in c:
            return f(*args, axis=c["axis"], **where)
        return f(*args, **c.get("kw", {}))


def compare(c, args, got):
    """``got`` against the oracle on ``args`` (plain copies of the inputs)."""
    name = c["name"]
    want = oracle(c, args)
    if name in ("softmax", "log_softmax"):
        rdt = result_dtype(args[0].dtype)
        want = f16_overflow(got, want, rdt)
        if len(args) == 2:   # with where=: the bounds are over the entries that take part
            with np.errstate(all="ignore"):
                x = np.where(args[1], args[0], -np.inf)
            FORWARD_ASSERT[name](got, want, x, c["axis"], rdt)
        else:
            FORWARD_ASSERT[name](got, want, args[0], c["axis"], rdt)
        if sp is not None and args[0].dtype != bool and len(args) == 1:    # SciPy refuses bool; has no where=
            # float16 through SciPy in float32, as csoftmax computes it (in
            # float16 a sum of many exponentials overflows)
            xs = args[0].astype(F32) if args[0].dtype == F16 else args[0]
            with np.errstate(all="ignore"):
                s = getattr(sp, name)(xs, axis=c["axis"])
            np.testing.assert_array_equal(np.isnan(got), np.isnan(s), err_msg="nan positions vs SciPy")
            special = ~np.isfinite(s)
            np.testing.assert_array_equal(got[special], s[special].astype(got.dtype), err_msg="vs SciPy")
    elif name == "logsumexp":
        x, b, w = args
        rdt = np.result_type(*[result_dtype(a.dtype) for a in (x, b) if a is not None])
        kw = dict(c["kw"], return_sign=True)
        with np.errstate(all="ignore"):
            want, wsg = ref.logsumexp(x, axis=c["axis"], b=b, where=w, **kw)
        val, sg = got if c["kw"]["return_sign"] else (got, None)
        assert np.asarray(val).dtype == rdt and np.shape(val) == np.shape(want)
        # Weights of both signs can cancel (bool or integer input with integer
        # weights, exactly): where the sum lies within rounding of 0, below
        # 64 eps of the sum of its terms' magnitudes, its sign and value are
        # the rounding's (the oracle's long double rounds too).  There the
        # result must only lie as close to 0 (or be nan without return_sign).
        ill = np.zeros(np.shape(want), bool)
        if b is not None and np.any(np.asarray(b) < 0):
            with np.errstate(all="ignore"):
                r_abs = np.asarray(ref.logsumexp(x, axis=c["axis"], b=np.abs(b), where=w,
                                                 keepdims=c["kw"]["keepdims"]), F64)
                ill = np.asarray(np.asarray(want, F64) - r_abs < np.log(64 * eps_of(rdt)))
                v = np.asarray(val, F64)
                near0 = np.isnan(v) if sg is None else np.zeros(np.shape(v), bool)
                near0 |= v <= r_abs + np.log(2.0**12 * eps_of(rdt))
            assert np.all(near0[ill]), "a sum within rounding of 0 came out larger"
        if sg is None:      # a negative sum gives nan
            want = np.where(np.asarray(wsg) < 0, np.nan, want)
        else:               # the sign where the sum is not 0 (nor nan)
            assert np.asarray(sg).dtype == rdt and np.shape(sg) == np.shape(want)
            signed = (np.asarray(want) > -np.inf) & ~ill
            np.testing.assert_array_equal(np.asarray(sg)[signed], np.asarray(wsg, F64)[signed], err_msg="sign")
        want = np.where(ill, val, want)
        want = f16_overflow(val, want, rdt)
        k = lse_cond(x, c["axis"], b, c["kw"]["keepdims"], w)
        assert_within(val, want, 8 * eps_of(rdt) * (1 + np.abs(np.asarray(want, F64))) * k
                      + f16_rounding(want, rdt))
    elif name == "softmax_jacobian":
        rdt = result_dtype(args[0].dtype)
        assert got.dtype == rdt and got.shape == want.shape
        assert_within(got, want, jacobian_bound(args[0], c["axis"], rdt) + f16_rounding(want, rdt))
    elif name in ("softmax_backward", "log_softmax_backward"):
        rdt = np.result_type(result_dtype(args[0].dtype), result_dtype(args[1].dtype))
        assert got.dtype == rdt and got.shape == args[0].shape
        kind = "softmax" if name == "softmax_backward" else "log_softmax"
        want = f16_overflow(got, want, rdt)
        assert_within(got, want, backward_bound(args[0], args[1], c["axis"], rdt, kind) + f16_rounding(want, rdt))
    elif name in ("cross_entropy", "cross_entropy_grad"):
        z, t = args
        rdt = result_dtype(z.dtype)
        kw = c["kw"]
        go = kw.get("grad_output", 1.0)
        C = z.shape[-1]
        # the target coefficients a of each row (the options applied; one-hot
        # rows for labels, 0 where ignored) and the mean's denominator, from
        # the oracle.  Label smoothing's sum sum_k w_k (z_k - z_0) is taken in
        # the input's precision: up to C additions, each off by eps/2 of the
        # sum so far, scaled by eps_s / C, stay within eps_s eps sum_k w_k
        # |z_k - z_0|; m - z_0, rounded once, adds eps_s eps W |m - z_0|.
        # Twice that, a bound of its own.
        with np.errstate(all="ignore"):
            _, probs, _, _, d = ref._cross_entropy_terms(z, t, kw.get("sample_weight"), kw["reduction"],
                                                         **{k: kw[k] for k in OPTIONS & set(kw)})
            probs, denom = np.asarray(probs, F64), float(np.sum(np.asarray(d, F64)))
            zz = np.asarray(z, F64).reshape(-1, C)
            cw = np.ones(C) if kw.get("weight") is None else np.asarray(kw["weight"], F64)
            dev = np.abs(zz - zz[:, :1])
            dev = np.where(np.isfinite(dev), dev, 0)
            extra = 2 * kw.get("label_smoothing", 0.0) * eps_of(rdt) * (np.sum(cw * dev, axis=1) +
                                                                      cw.sum() * dev.max(axis=1, initial=0))
            lb, gb = ce_bounds(z.reshape(-1, C), probs.reshape(-1, C), kw.get("sample_weight"), kw["reduction"], go,
                               rdt, denom=denom, extra=extra)
        # the bounds are nan on rows holding inf or nan: exact results there
        lb, gb = np.nan_to_num(lb, nan=0.0, posinf=np.inf), np.nan_to_num(gb, nan=0.0, posinf=np.inf)
        loss, grad = (got, None) if name == "cross_entropy" else got
        want_loss, want_grad = (want, None) if name == "cross_entropy" else want
        assert np.asarray(loss).dtype == rdt
        want_loss = f16_overflow(loss, want_loss, rdt)
        if grad is not None:
            want_grad = f16_overflow(grad, want_grad, rdt)
        lb = lb.reshape(np.shape(want_loss)) if np.ndim(lb) else lb
        assert_within(loss, want_loss, lb + f16_rounding(want_loss, rdt), err_msg="loss")
        if grad is not None:
            assert grad.dtype == rdt and grad.shape == z.shape
            assert_within(grad, want_grad, gb.reshape(z.shape) + f16_rounding(want_grad, rdt), err_msg="grad")
            only = call(dict(c, name="cross_entropy", kw={k: v for k, v in kw.items() if k != "grad_output"}),
                        args)
            np.testing.assert_array_equal(only, loss, err_msg="cross_entropy differs from cross_entropy_grad")
    else:
        W, X, _, _ = args
        loss, dW, db = got
        rl, rdW, rdb = want
        tol = 8 * eps_of(W.dtype) * (1 + np.sqrt(X.shape[0]))
        # test_loss's tolerances, with the absolute part scaled by the terms
        # summed (|S - Y| <= 2 per sample, times |X| for dW), not by the
        # result: S - Y cancels when a softmax value is close to 1
        scale_w = max(float(np.abs(rdW).max()), 2 * float(np.abs(X).max(initial=0)) + c["kw"]["l2"] * float(np.abs(W).max()))
        # the loss: -log s_c cancels when s_c is close to 1, so it also gets the
        # cross-entropy bound of its logits Z = X W^T + b (and Z's rounding)
        Wd, Xd = W.astype(F64), X.astype(F64)
        Z = Xd @ Wd.T + (0 if args[3] is None else args[3].astype(F64))
        lb, _ = ce_bounds(Z, np.eye(W.shape[0])[args[2]], c["kw"].get("sample_weight"), "mean", 1.0, W.dtype)
        zerr = 2 * eps_of(W.dtype) * (W.shape[1] + 1) * float(np.abs(Xd).max()) * float(np.abs(Wd).max() + 1)
        np.testing.assert_allclose(loss, float(rl), rtol=tol, atol=float(lb) + zerr)
        np.testing.assert_allclose(dW, np.asarray(rdW, F64), rtol=tol, atol=tol * scale_w)
        if rdb is None:
            assert db is None
        else:
            np.testing.assert_allclose(db, np.asarray(rdb, F64), rtol=tol, atol=tol * max(float(np.abs(rdb).max()), 2.0))


def result_like(c, args):
    """(shape, dtype) of the array ``out`` receives."""
    name = c["name"]
    if name == "logsumexp":
        x, b, _ = args
        got = call(c, args)
        return np.shape(got[0] if c["kw"]["return_sign"] else got), \
            np.result_type(*[result_dtype(a.dtype) for a in (x, b) if a is not None])
    if name in ("softmax", "log_softmax", "cross_entropy_grad"):
        return args[0].shape, result_dtype(args[0].dtype)
    return args[0].shape, np.result_type(result_dtype(args[0].dtype), result_dtype(args[1].dtype))


def overlapping(rng_i, x, shape, dtype):
    """``(input, out)`` sharing memory with a shift: ``out`` starts ``k``
    elements past ``x`` in one buffer."""
    n = x.size
    k = 1 + rng_i % max(n - 1, 1) if n > 1 else 1
    buf = np.zeros(n + k, dtype)
    xin = buf[:n].reshape(shape)
    xin[...] = x
    return xin, buf[k:k + n].reshape(shape)


def same_on_one_thread(c, args, got):
    """Results are bitwise independent of the thread count."""
    before = cs.get_num_threads()
    cs.set_num_threads(1)
    try:
        again = call(c, args)
    finally:
        cs.set_num_threads(before)
    pairs = zip(got, again) if isinstance(got, tuple) else [(got, again)]
    for a, b in pairs:
        if a is not None:
            a, b = np.asarray(a), np.asarray(b)
            if a.dtype.kind == "f":
                # a nan's sign and payload carry nothing (which of two nans an
                # x86 operation passes on depends on the operands' order,
                # which may differ between a row's places in a group of rows)
                nan = np.isnan(a)
                np.testing.assert_array_equal(nan, np.isnan(b), err_msg="nan positions differ on one thread")
                a, b = np.where(nan, 0, a), np.where(nan, 0, b)
            assert a.tobytes() == b.tobytes(), "results differ on one thread"


def run(i):
    c = case(i)
    before = _runtime.stream_tiles(c.get("stream"))
    try:
        _run(i, c)
    finally:
        _runtime.stream_tiles(before)


def _run(i, c):
    args = list(c["args"])
    plain = [None if a is None else np.array(a) for a in args]   # the oracle's inputs and the snapshots
    mode = c["out"] if c["name"] in HAS_OUT else None
    if mode is None:
        got = call(c, args)
        compare(c, plain, got)
        if i % 4 == 0:
            same_on_one_thread(c, args, got)
    else:
        shape, rdt = result_like(c, args)
        rng = np.random.default_rng(i + 10**9)
        if mode == "fresh":
            out = layout(rng, np.full(shape, SENTINEL, rdt), choose(rng, ["C", "F", "negative", "slice"]))
            got = call(c, args, out)
            res = got[1] if c["name"] == "cross_entropy_grad" else \
                got[0] if c["name"] == "logsumexp" and c["kw"]["return_sign"] else got
            assert res is out, "the result is not out"
            compare(c, plain, got)
        elif mode in ("input", "overlap"):
            k = int(rng.integers(len(args))) if c["name"] not in ("softmax", "log_softmax", "cross_entropy_grad") \
                else 0
            if plain[k].dtype != rdt:
                args[k] = plain[k] = np.array(plain[k], dtype=rdt)
                plain = [np.array(a) for a in args]
            if mode == "input":
                args[k] = out = np.array(plain[k])
            else:
                args[k], out = overlapping(i, plain[k], shape, rdt)
            got = call(c, args, out)
            res = got[1] if c["name"] == "cross_entropy_grad" else got
            assert res is out, "the result is not out"
            compare(c, plain, got)
            args[k] = plain[k]    # overwritten on purpose: not checked below
        else:
            bad_shape = shape if mode == "wrong_dtype" else shape[:-1] + (shape[-1] + 1,) if shape else (2,)
            bad_dtype = (F32 if rdt == F64 else F64) if mode == "wrong_dtype" else rdt
            out = np.full(bad_shape, SENTINEL, bad_dtype)
            with pytest.raises(ValueError):
                call(c, args, out)
            assert np.all(out == SENTINEL), "a refused out was written"
    for a, p in zip(args, plain):
        if a is not None:
            np.testing.assert_array_equal(a, p, err_msg="an input was modified")


# ------------------------------------------------------------------ the runs

def _case_numbers():
    one = os.environ.get("CSOFTMAX_FUZZ_CASE")
    if one is not None:
        return [int(one)]
    start = int(os.environ.get("CSOFTMAX_FUZZ_START", "0"))
    return range(start, start + int(os.environ.get("CSOFTMAX_FUZZ_CASES", "300")))


def _describe(i):
    c = case(i)
    parts = [f"{c['name']}", f"values={c['values']}", f"out={c['out']}"]
    if "axis" in c:
        parts.append(f"axis={c['axis']}")
    if "stream" in c:
        parts.append(f"stream_tiles={c['stream']}")
    for a in c["args"]:
        if a is not None:
            parts.append(f"{np.asarray(a).dtype}{a.shape} strides={a.strides} "
                         f"aligned={a.flags.aligned} writeable={a.flags.writeable}")
    if c.get("kw"):
        parts.append("kw=" + ",".join(sorted(c["kw"])))
    return "; ".join(parts)


def test_fuzz():
    failures = []
    for i in _case_numbers():
        try:
            run(i)
        except Exception as exc:  # collect, to report every failing case of the run at once
            failures.append(f"case {i} ({_describe(i)}): {type(exc).__name__}: {str(exc)[:600]}")
    if failures:
        first = failures[0].split()[1]
        raise AssertionError(f"{len(failures)} fuzz case(s) failed; replay one with "
                             f"CSOFTMAX_FUZZ_CASE={first} pytest tests/test_fuzz.py\n" + "\n".join(failures[:20]))


def test_case_is_replayable():
    """The same number builds the same inputs."""
    for i in (0, 7, 12345):
        a, b = case(i), case(i)
        for x, y in zip(a["args"], b["args"]):
            if x is not None:
                np.testing.assert_array_equal(x, y)
                assert x.strides == y.strides
