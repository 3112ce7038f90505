"""Softmax, log-softmax, log-sum-exp and the softmax cross-entropy on Dask arrays, lazily.

Each function takes ``dask.array`` inputs (array_likes are wrapped) and returns
Dask arrays; a reduced loss is a 0-d Dask array.  Nothing is computed until the
caller asks, and any chunking is accepted:

* When every reduced axis lies inside one chunk, the compiled in-memory function
  runs on each block (one ``map_blocks``).
* When a reduced axis spans several chunks, no chunk is merged.  Each block
  reports the pair ``(m, s)``: its maximum ``m`` and ``s = Σ exp(x - m)``.  Pairs
  are combined by Dask's tree reduction,

      M = max(m₁, m₂),   S = s₁ exp(m₁ - M) + s₂ exp(m₂ - M),

  and every block is then finished on its own: ``softmax = exp(x - M) / S``,
  ``log_softmax = (x - M) - log S``, and the cross-entropy's part
  ``Σ_k a_k ((M - z_k) + log S)`` over the block's classes.  Sums are
  kept in float64, also for float32 data.  A slice holding ``nan`` or ``+inf``, or
  only ``-inf``, gives what SciPy gives (see :func:`_pair_combine`).  Entries
  masked off by ``where`` (or of weight 0 in ``logsumexp``) are left out of every
  block's pair, and a weighted block's ``s = Σ b exp(x - m)`` may be negative.

Install with ``pip install csoftmax[dask]``.

Examples
--------
>>> import numpy as np, dask.array as da
>>> import csoftmax, csoftmax.dask
>>> x = da.from_array(np.log([[1.0, 1.0, 2.0, 4.0]]), chunks=(1, 2))  # classes split in 2
>>> csoftmax.dask.softmax(x, axis=1).compute()
array([[0.125, 0.125, 0.25 , 0.5  ]])
"""
import numbers
import warnings

import dask.array as da
import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

import csoftmax
from csoftmax.loss import _NO_WEIGHT, _class_weight, _ignore_index, _smoothing

__all__ = ["softmax", "log_softmax", "cross_entropy", "cross_entropy_grad"]

_F8 = np.dtype(np.float64)
# The partial reduction of a block: maximum and sum of exponentials below it.
_PAIR = np.dtype([("m", _F8), ("s", _F8)])
_REDUCTIONS = ("mean", "sum", "none")


def __getattr__(name):
    # logsumexp follows the in-memory package: offered only where csoftmax has one
    if name == "logsumexp" and hasattr(csoftmax, "logsumexp"):
        return _logsumexp
    raise AttributeError(f"module 'csoftmax.dask' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + (["logsumexp"] if hasattr(csoftmax, "logsumexp") else []))


# ---------------------------------------------------------------------------
# dtypes and axes

def _dtypes(dtype):
    """``(result dtype, working dtype)`` as the in-memory functions have them:
    float32/float64 kept, float16 computed in float32, integers and bools in
    float64; anything else is refused by the in-memory function itself."""
    rdt = csoftmax.softmax(np.zeros(1, dtype), axis=0).dtype
    return rdt, (np.dtype(np.float32) if rdt.itemsize <= 4 else _F8)


def _as_dask(x):
    return x if isinstance(x, da.Array) else da.asarray(x)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axis = (int(axis),)
    return normalize_axis_tuple(axis, ndim)


def _split(x, axes):
    """Whether some reduced axis spans more than one chunk."""
    return any(x.numblocks[a] > 1 for a in axes)


# ---------------------------------------------------------------------------
# the (max, sum of exponentials) reduction

def _shift(m):
    """The shift a pair's sum was taken with: its maximum, or 0 where that is not finite."""
    return np.where(np.isfinite(m), m, 0.0)


def _pair_chunk(x, axis, keepdims, work=_F8, b=None, mask=None):
    """The block's pair ``(m, s)``; with weights ``b`` or a mask, the entries of weight
    0 or masked off take no part (not as nan or inf either) and ``s = Σ b exp(x - m)``
    (signed)."""
    x = x.astype(work, copy=False)
    take = None
    if b is not None or mask is not None:
        take = np.broadcast_to(True, x.shape) if mask is None else mask
        if b is not None:
            take = take & (b != 0)
        x = np.where(take, x, np.asarray(-np.inf, work))
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(x, axis=axis, keepdims=True) if x.size else np.full(
            tuple(1 if i in axis else n for i, n in enumerate(x.shape)), -np.inf, work)
        e = np.exp(x - _shift(m).astype(work))
        if b is not None:
            e = np.where(take, b * e, 0.0)
        s = np.sum(e, axis=axis, keepdims=True, dtype=_F8)
    out = np.empty(m.shape, _PAIR)
    out["m"], out["s"] = m, s
    return out


def _pair_combine(p, axis, keepdims):
    """Combine pairs along ``axis``; every pair holds ``s = Σ exp(x - shift(m))``.

    With a finite maximum ``M`` each term is ``s_k exp(m_k - M) ≤ s_k``: no overflow.
    A block of only ``-inf`` has ``s = 0`` and adds nothing (its ``exp(0 - M)`` might
    overflow, so it is left out rather than multiplied).  ``nan`` in a block makes
    its ``m`` and ``s`` nan, and the combined pair nan; ``+inf`` makes ``M = +inf``
    and ``S = +inf``.  The finishing functions turn those into SciPy's results.
    """
    m, s = p["m"], p["s"]
    with np.errstate(invalid="ignore", over="ignore"):
        M = np.max(m, axis=axis, keepdims=True)
        term = np.where(s == 0, 0.0, s * np.exp(_shift(m) - _shift(M)))
        S = np.sum(term, axis=axis, keepdims=True)
    out = np.empty(M.shape, _PAIR)
    out["m"], out["s"] = M, S
    return out


def _pair(x, axes, work, b=None, mask=None):
    """The ``(M, S)`` pair of every slice, shaped like ``x`` with 1 along ``axes``;
    ``b`` and ``mask`` (None, or chunked like ``x``) as in :func:`_pair_chunk`."""
    meta = np.empty((0,) * x.ndim, _PAIR)
    if b is None and mask is None:
        return da.reduction(x, lambda v, axis, keepdims: _pair_chunk(v, axis, keepdims, work),
                            _pair_combine, axis=axes, keepdims=True, dtype=_PAIR, combine=_pair_combine,
                            concatenate=True, meta=meta, name="softmax-pair")
    # each block's pair from the aligned blocks of x, b and the mask, then the same tree
    def chunk(v, *more):
        return _pair_chunk(v, axes, True, work, more[0] if b is not None else None,
                           more[-1] if mask is not None else None)

    chunks = tuple((1,) * x.numblocks[i] if i in axes else c for i, c in enumerate(x.chunks))
    blocks = da.map_blocks(chunk, x, *[v for v in (b, mask) if v is not None], chunks=chunks, dtype=_PAIR,
                           meta=meta, name="softmax-pair-blocks")
    return da.reduction(blocks, lambda p, axis, keepdims: p, _pair_combine, axis=axes, keepdims=True, dtype=_PAIR,
                        combine=_pair_combine, concatenate=True, meta=meta, name="softmax-pair")


def _mask(where, x):
    """``where`` broadcast to ``x``'s shape and chunked like it, or None."""
    if where is None:
        return None
    w = _as_dask(where)
    if w.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {w.dtype}")
    try:
        ok = np.broadcast_shapes(w.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"where has shape {w.shape}, which does not broadcast to {x.shape}")
    return da.broadcast_to(w, x.shape).rechunk(x.chunks)


def _finish_softmax(x, p, mask=None, some=None, *, work, rdt):
    """``exp(x - M) / S``; with a mask, 0 where it is False, and 0 throughout a slice
    with no True entry (``some`` False)."""
    M, S = p["m"], p["s"]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        e = np.exp(x.astype(work, copy=False) - _shift(M).astype(work))
        y = e / S if mask is None else np.where(mask, e / S, 0.0)
        # a slice with nan, +inf or only -inf (among its entries that count) is nan
        # throughout, as in SciPy
        y = np.where(np.isfinite(M), y, np.nan if some is None else np.where(some, np.nan, 0.0))
    return y.astype(rdt, copy=False)


def _finish_log_softmax(x, p, mask=None, some=None, *, work, rdt):
    """``(x - M) - log S``; with a mask, ``-inf`` where it is False."""
    M, S = p["m"], p["s"]
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (x.astype(work, copy=False) - _shift(M).astype(work)) - np.log(S)
        if mask is not None:
            y = np.where(mask, y, -np.inf)
    return y.astype(rdt, copy=False)


def _forward(x, axis, log, where):
    x = _as_dask(x)
    rdt, work = _dtypes(x.dtype)
    axes = _axes(axis, x.ndim)
    mask = _mask(where, x)
    meta = np.empty((0,) * x.ndim, rdt)
    if not _split(x, axes) or x.size == 0:
        fn = csoftmax.log_softmax if log else csoftmax.softmax
        if mask is None:
            return x.map_blocks(fn, axis=axes, dtype=rdt, meta=meta)
        return da.map_blocks(lambda v, w: fn(v, axis=axes, where=w), x, mask, dtype=rdt, meta=meta)
    finish = _finish_log_softmax if log else _finish_softmax
    pair = _pair(x, axes, work, mask=mask)
    if mask is None:
        return da.map_blocks(finish, x, pair, work=work, rdt=rdt, dtype=rdt, meta=meta)
    some = mask.any(axis=axes, keepdims=True)
    return da.map_blocks(finish, x, pair, mask, some, work=work, rdt=rdt, dtype=rdt, meta=meta)


def softmax(x, axis=None, *, where=None):
    r"""Softmax of a Dask array, lazily: ``exp(x - max) / Σ exp(x - max)`` over ``axis``.

    The same results as :func:`csoftmax.softmax` (and ``scipy.special.softmax``),
    for any chunking: a reduced axis split over chunks is combined by a tree
    reduction of per-chunk maxima and sums, never merged into one chunk.

    Parameters
    ----------
    x : dask.array.Array or array_like
    axis : int, tuple of ints or None, optional
        The axes of each slice; ``None`` (the default, as in SciPy) is all of them.
    where : dask.array.Array or array_like of bool, optional
        Broadcast to ``x``; False entries take no part and give 0 (log_softmax:
        ``-inf``), and a slice with no True entry gives all 0 (all ``-inf``).

    Returns
    -------
    dask.array.Array
        Chunked like ``x``, with the dtype :func:`csoftmax.softmax` gives.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from csoftmax.dask import softmax
    >>> x = da.from_array(np.log([1.0, 3.0, 2.0, 2.0]), chunks=2)
    >>> softmax(x).compute()
    array([0.125, 0.375, 0.25 , 0.25 ])
    """
    return _forward(x, axis, False, where)


def log_softmax(x, axis=None, *, where=None):
    r"""Log-softmax of a Dask array, lazily: ``(x - max) - log Σ exp(x - max)`` over ``axis``.

    The same results as :func:`csoftmax.log_softmax` (and
    ``scipy.special.log_softmax``) for any chunking; see :func:`softmax`.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from csoftmax.dask import log_softmax
    >>> log_softmax(da.from_array(np.array([-np.inf, 0.0, 0.0]), chunks=1)).compute()
    array([       -inf, -0.69314718, -0.69314718])
    """
    return _forward(x, axis, True, where)


def _lse_finish(p, rec, return_sign):
    """``log |S| + M`` and the sign of ``S`` from the pair; without ``return_sign`` a
    negative sum gives nan."""
    M, S = p["m"], p["s"]
    out = np.empty(M.shape, rec)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = _shift(M) + np.log(np.abs(S))
    if return_sign:
        out["r"], out["sign"] = r, np.sign(S)
    else:
        out["r"] = np.where(S < 0, np.nan, r)
    return out


def _logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, *, where=None):
    r"""``log Σ b exp(a)`` over ``axis`` of Dask arrays, lazily (as ``scipy.special.logsumexp``
    and :func:`csoftmax.logsumexp`).

    One ``map_blocks`` of :func:`csoftmax.logsumexp` when the reduced axes lie in one
    chunk each, else the same tree of per-chunk maxima and sums as :func:`softmax`
    (with weights, signed sums: ``S = Σ b exp(a - M)`` over the entries of nonzero
    weight and, with ``where``, of a True mask).

    Parameters
    ----------
    a : dask.array.Array or array_like
    axis : int, tuple of ints or None, optional
    b : dask.array.Array or array_like, optional
        Weights, broadcast with ``a``; zeros take no part, negatives subtract.
    keepdims : bool, optional
    return_sign : bool, optional
        Also return the sign of the sum; without it a negative sum gives nan.
    where : dask.array.Array or array_like of bool, optional
        Broadcast to ``a``; False entries take no part.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from csoftmax.dask import logsumexp
    >>> float(logsumexp(da.from_array(np.log([1.0, 3.0, 4.0]), chunks=1)).compute())
    2.0794415416798357
    >>> r, sign = logsumexp(da.from_array(np.log([1.0, 3.0, 4.0]), chunks=1), b=[1, 1, -2], return_sign=True)
    >>> float(r.compute()), float(sign.compute())   # log |1 + 3 - 8|, and the sum is negative
    (1.3862943611198906, -1.0)
    """
    a = _as_dask(a)
    if b is None:
        rdt, work = _dtypes(a.dtype)
    else:
        b = _as_dask(b)
        rdt = np.asarray(csoftmax.logsumexp(np.zeros(1, a.dtype), b=np.ones(1, b.dtype))).dtype
        work = np.dtype(np.float32) if rdt.itemsize <= 4 else _F8
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"b has shape {b.shape}, which does not broadcast with a's {a.shape}") from None
        a = da.broadcast_to(a, shape)
        b = da.broadcast_to(b, shape).rechunk(a.chunks)
    mask = _mask(where, a)
    axes = _axes(axis, a.ndim)
    rec = np.dtype([("r", rdt), ("sign", rdt)] if return_sign else [("r", rdt)])
    more = [v for v in (b, mask) if v is not None]
    if not _split(a, axes) or a.size == 0:
        def block(v, *more_blocks):
            got = csoftmax.logsumexp(v, axis=axes, b=more_blocks[0] if b is not None else None, keepdims=True,
                                     return_sign=return_sign, where=more_blocks[-1] if mask is not None else None)
            out = np.empty(np.shape(got[0] if return_sign else got), rec)
            if return_sign:
                out["r"], out["sign"] = got
            else:
                out["r"] = got
            return out

        chunks = tuple((1,) if i in axes else c for i, c in enumerate(a.chunks))
        both = da.map_blocks(block, a, *more, chunks=chunks, dtype=rec, meta=np.empty((0,) * a.ndim, rec))
    else:
        both = _pair(a, axes, work, b, mask).map_blocks(_lse_finish, rec=rec, return_sign=return_sign, dtype=rec,
                                                         meta=np.empty((0,) * a.ndim, rec))
    meta = np.empty((0,) * a.ndim, rdt)
    res = both.map_blocks(lambda o: o["r"], dtype=rdt, meta=meta)
    res = res if keepdims else res.squeeze(axis=axes)
    if not return_sign:
        return res
    sign = both.map_blocks(lambda o: o["sign"], dtype=rdt, meta=meta)
    return res, sign if keepdims else sign.squeeze(axis=axes)


# ---------------------------------------------------------------------------
# cross-entropy

def _check_labels(t, C, ignore):
    """Refuse labels that are not integers in ``[0, C)`` (``ignore`` aside), naming the first."""
    t = np.asarray(t)
    if t.dtype.kind == "f":
        bad = ~np.isfinite(t) | (t != np.trunc(t))
        if bad.any():
            raise ValueError(f"class labels must be integers, got {t[bad].flat[0].item()!r}")
    elif t.dtype.kind not in "biu":
        raise TypeError(f"class labels must be integers, got dtype {t.dtype}")
    bad = (t < 0) | (t >= C)
    if bad.any():
        bad &= t != ignore
        if bad.any():
            raise ValueError(f"class label {t[bad].flat[0].item()!r} is out of range for {C} classes")
    return t.astype(np.intp)


def _check_weights(w):
    if not np.all(np.isfinite(w) & (w >= 0)):
        raise ValueError(f"sample weights must be finite and >= 0, got {w[~(np.isfinite(w) & (w >= 0))][0]!r}")
    return w


def _rows(v, chunks, name, N):
    """A per-sample Dask vector ``(N,)`` chunked like the logits' rows."""
    v = _as_dask(v)
    if v.shape != (N,):
        raise ValueError(f"{name} has shape {v.shape}, expected ({N},)")
    return v.rechunk((chunks,))


class _Options:
    """The class weights ``ω`` (None: all 1), ``ignore_index`` and label smoothing ``ε``,
    checked as the in-memory functions check them, with the number of classes ``C``."""

    def __init__(self, C, weight, ignore_index, label_smoothing):
        self.C = C
        if isinstance(weight, da.Array):
            weight = weight.compute()  # (C,): small
        self.cw = _class_weight(weight, C)
        self.ignore = _ignore_index(ignore_index)
        self.eps = _smoothing(label_smoothing)
        self.cwsum = float(C) if self.cw is None else float(np.sum(self.cw))

    def kwargs(self):
        return dict(weight=self.cw, ignore_index=self.ignore, label_smoothing=self.eps)

    def labels(self, t):
        """The class indices checked, as intp, and which rows count (those not
        labelled ``ignore_index``)."""
        lab = _check_labels(t, self.C, self.ignore)
        return lab, lab != self.ignore

    def row_weight(self, lab, keep):
        """``ω_{c_i}`` of every row's class, 0 on the rows that do not count."""
        return keep.astype(_F8) if self.cw is None else np.where(keep, self.cw[np.where(keep, lab, 0)], 0.0)

    def denominator(self, T, W):
        """A mean's denominator for class indices: ``Σ_i w_i ω_{c_i}`` over the rows not
        ignored (``w_i`` 1 without sample weights), a 0-d Dask array."""
        def part(t, w=None):
            d = self.row_weight(*self.labels(t))
            return np.array([np.sum(d if w is None else d * w, dtype=_F8)])

        args = [T] + ([] if W is None else [W])
        return da.map_blocks(part, *args, chunks=((1,) * T.numblocks[0],), dtype=_F8,
                             meta=np.empty((0,), _F8)).sum()

    def coefficients(self, y, c0, c1, lab=None, keep=None):
        """The target coefficients ``a_ik = ω_k ((1 - ε) y_ik + ε / C)`` of classes
        ``c0 ≤ k < c1`` in float64: from the probabilities ``y``, or from the checked
        labels ``lab`` (``y`` None), all 0 on the rows that do not count (``keep``)."""
        if lab is None:
            a = y.astype(_F8)  # a new array: scaled in place below
        else:
            a = np.zeros((lab.size, c1 - c0))
            rows = np.nonzero(keep & (lab >= c0) & (lab < c1))[0]
            a[rows, lab[rows] - c0] = 1.0
        if self.eps:
            a *= 1.0 - self.eps
            a += self.eps / self.C if keep is None else np.where(keep, self.eps / self.C, 0.0)[:, None]
        if self.cw is not None:
            a *= self.cw[c0:c1]
        return a

    def targets(self, t, probs, c0, c1):
        """A block's ``coefficients``, from its probabilities or from its labels
        (``t``, a column), with the checked labels and which rows count:
        ``(a, lab, keep)``, the last two None for probabilities."""
        lab, keep = (None, None) if probs else self.labels(t[:, 0])
        return self.coefficients(t if probs else None, c0, c1, lab, keep), lab, keep

    def row_sums(self, ysum=None, lab=None, keep=None):
        """``Σ_k a_ik`` of every row (a column): from ``ysum``, the probability rows'
        ``Σ_k ω_k y_ik``, or from the checked labels (ignored rows' too: their
        gradient is set to 0 after)."""
        y = ysum if lab is None else self.row_weight(lab, keep)[:, None]
        return (1.0 - self.eps) * y + self.eps * self.cwsum / self.C


def _per_row_split(Z, T, probs, pair, opt, work):
    """``L_i = Σ_k a_ik (log S_i - (z_ik - M_i))`` of every row when the class axis spans
    chunks, ``(N,)`` float64: each block's part, summed over the class chunks by a
    tree reduction.  A term of coefficient 0 adds nothing, even where ``z_ik`` is
    infinite."""
    def block(z, t, p, block_info=None):
        c0, c1 = block_info[0]["array-location"][1]
        a, _, _ = opt.targets(t, probs, c0, c1)
        M, S = p["m"], p["s"]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            nll = (_shift(M) - z.astype(work, copy=False)) + np.log(S)
            part = np.sum(np.where(a != 0, a * nll, 0.0), axis=1, dtype=_F8)
        return part[:, None]

    parts = da.map_blocks(block, Z, T if probs else T[:, None], pair, dtype=_F8,
                          chunks=(Z.chunks[0], (1,) * Z.numblocks[1]), meta=np.empty((0, 0), _F8))
    return parts.sum(axis=1)


def _grad_split(Z, T, probs, pair, scale, opt, work, rdt):
    """``scale_i (s_i Σ_k a_ik - a_i)`` block by block, the softmax finished from the
    pair; a row labelled ``ignore_index`` gets 0, whatever its logits and scale."""
    def block(z, t, p, c, ysum=None, block_info=None):
        c0, c1 = block_info[0]["array-location"][1]
        s = _finish_softmax(z, p, work=work, rdt=_F8)
        a, lab, keep = opt.targets(t, probs, c0, c1)
        with np.errstate(invalid="ignore", over="ignore"):
            g = c * (s * opt.row_sums(ysum, lab, keep) - a)
        if keep is not None:
            g[~keep] = 0.0
        return g.astype(rdt, copy=False)

    args = [Z, T if probs else T[:, None], pair, scale[:, None]]
    if probs:
        Y = T.astype(_F8)
        args.append((Y if opt.cw is None else Y * opt.cw).sum(axis=1, keepdims=True, dtype=_F8))
    return da.map_blocks(block, *args, dtype=rdt, meta=np.empty((0, 0), rdt))


def _mean_of(total, denominator, warn=False):
    """``total / denominator``; nan where the denominator is 0 (no sample counts), as
    the in-memory functions give for the mean and for its gradient's scale, and with
    ``warn`` their warning (where the task runs: on a worker of a cluster)."""
    if warn and np.any(denominator == 0):
        warnings.warn(_NO_WEIGHT, RuntimeWarning, stacklevel=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator == 0, np.nan, total / denominator)


def _cross_entropy(logits, target, sample_weight, reduction, grad_output, want_grad, weight, ignore_index,
                   label_smoothing):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    Z = _as_dask(logits)
    rdt, work = _dtypes(Z.dtype)
    if Z.ndim not in (1, 2):
        raise ValueError(f"logits must be (N, C) or (C,), got shape {Z.shape}")
    single = Z.ndim == 1
    if single:
        Z = Z[None, :]
    N, C = Z.shape
    if C == 0:
        raise ValueError("logits need at least one class")
    opt = _Options(C, weight, ignore_index, label_smoothing)
    T = _as_dask(target)
    if T.shape == Z.shape[int(single):]:
        probs = True
        T = T.reshape(Z.shape).rechunk(Z.chunks)
    elif T.shape == Z.shape[int(single):-1]:
        probs = False
        T = T.reshape((N,)).rechunk((Z.chunks[0],))
    else:
        raise ValueError(f"target has shape {T.shape}; expected class indices of shape "
                         f"{Z.shape[int(single):-1]} or probabilities of shape {Z.shape[int(single):]}")
    W = None
    if sample_weight is not None:
        W = _as_dask(sample_weight).astype(_F8)
        W = _rows(W.reshape((N,)) if W.shape in ((), (1,)) and single else W, Z.chunks[0], "sample_weight", N)
        W = W.map_blocks(_check_weights, dtype=_F8)
    go = _as_dask(grad_output).astype(_F8)
    if reduction == "none":
        if go.shape not in ((), (N,)) and not (single and go.shape == (1,)):
            raise ValueError(f"grad_output has shape {go.shape}; with reduction='none' it must be a scalar or ({N},)")
    elif go.ndim != 0:
        raise ValueError(f"grad_output must be a scalar with reduction={reduction!r}, got shape {go.shape}")
    total = None
    if reduction == "mean":
        # Σ w_i over the rows, weighted by their classes and without the ignored
        # ones for class indices (where it is 0, _mean_of gives nan)
        if not probs:
            total = opt.denominator(T, W)
        else:
            total = da.asarray(float(N)) if W is None else W.sum()
    # the factor on each row's gradient: grad_output, times 1/Σw for a mean
    scale = go if total is None else da.map_blocks(_mean_of, go, total, dtype=_F8)
    scale = scale.reshape(-1).rechunk((Z.chunks[0],)) if scale.ndim else \
        da.broadcast_to(scale, (N,), chunks=(Z.chunks[0],))

    if Z.numblocks[1] == 1:
        per, grad = _fused_rows(Z, T, W, scale, probs, want_grad, opt, rdt)
    else:
        pair = _pair(Z, (1,), work)
        per = _per_row_split(Z, T, probs, pair, opt, work)
        if W is not None:
            per = per * W
        per = per.astype(rdt)
        grad = None
        if want_grad:
            rscale = scale if W is None else scale * W
            grad = _grad_split(Z, T, probs, pair, rscale, opt, work, rdt)

    if reduction == "none":
        loss = per[0] if single else per
    else:
        loss = per.sum(dtype=_F8)
        if reduction == "mean":
            loss = da.map_blocks(_mean_of, loss, total, warn=True, dtype=_F8)
        loss = loss.astype(rdt)
    if not want_grad:
        return loss
    return loss, grad[0] if single else grad


def _fused_rows(Z, T, W, scale, probs, want_grad, opt, rdt):
    """The class axis in one chunk: the compiled kernel on each row block, once.
    The loss and the gradient come out of one task each block (a generalised
    ufunc of two outputs), so neither is copied on the way."""
    options = opt.kwargs()

    def block(z, t, g, w=None):
        if not want_grad:
            return csoftmax.cross_entropy(z, t, sample_weight=w, reduction="none", **options)
        # grad_output carries 1/Σw of a mean; the loss comes back as w_i L_i
        return csoftmax.cross_entropy_grad(z, t, sample_weight=w, reduction="none", grad_output=g, **options)

    t_core = "(c)" if probs else "()"
    w_in = "" if W is None else ",()"
    outs = "(),(c)" if want_grad else "()"
    per = da.apply_gufunc(block, f"(c),{t_core},(){w_in}->{outs}", Z, T, scale, *([] if W is None else [W]),
                          output_dtypes=(rdt, rdt) if want_grad else rdt, allow_rechunk=False)
    return per if want_grad else (per, None)


def cross_entropy(logits, target, *, sample_weight=None, weight=None, ignore_index=-100, label_smoothing=0.0,
                  reduction="mean"):
    r"""Softmax cross-entropy of Dask logits, lazily, as :func:`csoftmax.cross_entropy`.

    ``L_i = -Σ_k a_ik log s_ik`` with the target coefficients
    ``a_ik = ω_k ((1 - ε) y_ik + ε / C)``: ``y`` the one-hot rows of class indices
    (all 0 on a row labelled ``ignore_index``) or the probabilities, ``ω`` the class
    weights and ``ε`` the label smoothing, as in PyTorch's ``cross_entropy``.
    Reduced to the weighted mean ``Σ w_i L_i / Σ d_i`` (``d_i = w_i ω_{c_i}`` for
    class indices, 0 on ignored rows; ``w_i`` for probabilities), the sum, or kept
    per sample (``"none"``: ``w_i L_i``).  A mean over no weight is nan, with a
    ``RuntimeWarning`` as in memory (raised where the task runs).

    Parameters
    ----------
    logits : dask.array.Array or array_like, (N, C) or (C,)
        Any chunking; a class axis over several chunks is reduced by a tree.
    target : dask.array.Array or array_like
        Class indices ``(N,)`` or probabilities ``(N, C)``, rechunked to the logits' rows.
        A label outside ``[0, C)`` (but ``ignore_index``) raises ``ValueError`` when computed.
    sample_weight : dask.array.Array or array_like, (N,), optional
    weight : array_like, (C,), optional
        Class weights ``ω``, finite and ``>= 0`` (a Dask array is computed: it is small).
    ignore_index : int, default -100
        Rows labelled so add nothing, count in no mean and get a zero gradient.
    label_smoothing : float in [0, 1], default 0
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    dask.array.Array
        0-d for ``"mean"`` and ``"sum"``, ``(N,)`` for ``"none"``; the logits' result dtype.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from csoftmax.dask import cross_entropy
    >>> z = da.from_array(np.log([[0.25, 0.75], [0.5, 0.5]]), chunks=1)
    >>> cross_entropy(z, [1, 0]).compute().round(6)   # (-log 0.75 - log 0.5) / 2
    np.float64(0.490415)
    >>> cross_entropy(z, [1, -100]).compute().round(6)   # the second row ignored
    np.float64(0.287682)
    """
    return _cross_entropy(logits, target, sample_weight, reduction, 1.0, False, weight, ignore_index,
                          label_smoothing)


def cross_entropy_grad(logits, target, *, sample_weight=None, weight=None, ignore_index=-100, label_smoothing=0.0,
                       reduction="mean", grad_output=1.0):
    r"""Cross-entropy and its gradient with respect to Dask logits, lazily.

    As :func:`csoftmax.cross_entropy_grad`, with the options of :func:`cross_entropy`:
    the gradient of row ``i`` is ``grad_output · c_i (s_i Σ_k a_ik - a_i)`` with
    ``c_i = w_i / Σ d`` for ``"mean"`` and ``w_i`` otherwise, and 0 on a row labelled
    ``ignore_index``.  When the class axis lies in one chunk each row block goes once
    through the fused compiled kernel.

    Returns
    -------
    loss : dask.array.Array
        As :func:`cross_entropy`.
    grad : dask.array.Array
        Shaped and chunked like ``logits``.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from csoftmax.dask import cross_entropy_grad
    >>> loss, grad = cross_entropy_grad(da.from_array(np.log([[0.25, 0.75]])), [1])
    >>> grad.compute()
    array([[ 0.25, -0.25]])
    """
    return _cross_entropy(logits, target, sample_weight, reduction, grad_output, True, weight, ignore_index,
                          label_smoothing)
