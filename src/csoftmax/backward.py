"""The softmax Jacobian and the vector-Jacobian products of softmax and
log_softmax (seed 004: ds_i/dz_j = s_i (delta_ij - s_j))."""
import numpy as np

from . import _backward, _jacobian
from ._arrays import F32, F64, Plan, as_real, check_out, empty, normalize_axes, writable_view

__all__ = ["softmax_jacobian", "softmax_backward", "log_softmax_backward"]


def _single_axis(axis, ndim):
    """The class axis as a non-negative int; a tuple of one axis is accepted."""
    axes = normalize_axes(axis, ndim) if axis is not None else ()
    if len(axes) != 1:
        raise ValueError(f"axis must be a single axis, got {axis!r}")
    return axes[0]


def _common(a, adt, b, bdt):
    """Cast two operands to the dtype they are computed in; return the result dtype."""
    rdt = np.result_type(adt, bdt)
    work = F32 if rdt in (F32, np.float16) else F64
    return a.astype(work, copy=False), b.astype(work, copy=False), rdt


def _vjp(s, grad_output, axis, out, log):
    a, adt = as_real(s, "log_s" if log else "s")
    g, gdt = as_real(grad_output, "grad_output")
    if a.shape != g.shape:
        raise ValueError(f"grad_output has shape {g.shape}, expected {a.shape}")
    if a.ndim == 0:
        raise ValueError("softmax backward needs at least one dimension")
    a, g, rdt = _common(a, adt, g, gdt)
    if out is not None:
        check_out(out, a.shape, rdt)
    axes = (_single_axis(axis, a.ndim),)
    if a.size == 0:
        return out if out is not None else np.empty(a.shape, rdt)
    plan = Plan(a, axes)
    s3, g3 = plan.operand(a), plan.operand(g)
    kernel = _backward.backward_f32 if a.dtype == F32 else _backward.backward_f64
    o3 = writable_view(plan, out, (a, g)) if out is not None and out.dtype == a.dtype else None
    if o3 is not None:
        kernel(s3, g3, o3, log)
        return out
    res = plan.empty(a.dtype)
    kernel(s3, g3, plan.view(res), log)
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    return res if rdt == a.dtype else res.astype(rdt)


def softmax_backward(s, grad_output, axis=-1, *, out=None):
    r"""Vector-Jacobian product of softmax: the gradient with respect to the logits.

    .. math:: \frac{\partial L}{\partial z} = J^\top g = s \odot (g - \langle g, s \rangle)

    with :math:`J = \operatorname{diag}(s) - s s^\top` (symmetric) along ``axis``.

    Parameters
    ----------
    s : array_like
        The softmax output.
    grad_output : array_like
        The upstream gradient :math:`g = \partial L / \partial s`, shaped like ``s``.
    axis : int, optional
        The class axis (default -1).
    out : ndarray, optional
        Where to write the result (its shape and dtype); may be ``s`` or
        ``grad_output``.

    Returns
    -------
    ndarray
        Shaped like ``s``.

    Examples
    --------
    >>> from csoftmax import softmax_backward
    >>> softmax_backward([0.25, 0.75], [1.0, 0.0])
    array([ 0.1875, -0.1875])
    """
    return _vjp(s, grad_output, axis, out, False)


def log_softmax_backward(log_s, grad_output, axis=-1, *, out=None):
    r"""Vector-Jacobian product of log_softmax.

    .. math:: \frac{\partial L}{\partial z} = g - \exp(\log s) \sum_k g_k

    Parameters
    ----------
    log_s : array_like
        The log_softmax output.
    grad_output : array_like
        The upstream gradient, shaped like ``log_s``.
    axis : int, optional
        The class axis (default -1).
    out : ndarray, optional
        Where to write the result; may be ``log_s`` or ``grad_output``.

    Returns
    -------
    ndarray
        Shaped like ``log_s``.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import log_softmax_backward
    >>> log_softmax_backward(np.log([0.25, 0.75]), [1.0, 0.0])
    array([ 0.75, -0.75])
    """
    return _vjp(log_s, grad_output, axis, out, True)


def softmax_jacobian(x, axis=-1):
    r"""Jacobian of softmax with respect to its logits, for every slice along ``axis``.

    .. math:: J_{ij} = \frac{\partial s_i}{\partial x_j} = s_i (\delta_{ij} - s_j)

    Parameters
    ----------
    x : array_like
        Logits (not the softmax output).
    axis : int, optional
        The class axis (default -1).

    Returns
    -------
    ndarray
        The other axes in order followed by ``(C, C)``; a 1-D ``x`` gives ``(C, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import softmax_jacobian
    >>> softmax_jacobian(np.log([0.25, 0.75]))
    array([[ 0.1875, -0.1875],
           [-0.1875,  0.1875]])
    """
    a, rdt = as_real(x)
    if a.ndim == 0:
        raise ValueError("softmax_jacobian needs at least one dimension")
    ax = _single_axis(axis, a.ndim)
    moved = np.moveaxis(a, ax, -1)
    C = moved.shape[-1]
    res = empty(moved.shape + (C,), a.dtype)
    if res.size:
        rows = moved.reshape(-1, C)
        if rows.strides[1] != rows.itemsize:
            rows = np.ascontiguousarray(rows)
        kernel = _jacobian.jacobian_f32 if a.dtype == F32 else _jacobian.jacobian_f64
        kernel(rows, res.reshape(-1, C, C))
    return res if rdt == a.dtype else res.astype(rdt)
