"""Forward: softmax, log_softmax and logsumexp."""
from functools import partial

import numpy as np

import csoftmax

from .data import F32, F64, logits, tag
from .peers import jax, jnp, np_log_softmax, np_softmax, scipy_special, torch
from .registry import Setup, Target, case

_NUMPY = {"softmax": np_softmax, "log_softmax": np_log_softmax}


def forward(fn, shape, dtype, axis=-1):
    """``fn`` of a C-contiguous ``shape`` array along ``axis``, beside each peer."""
    def make(options):
        x = logits(shape, dtype)
        out, copy_out = np.empty_like(x), np.empty_like(x)
        ours, ref = getattr(csoftmax, fn), _NUMPY[fn]
        impls = {
            "csoftmax": lambda: ours(x, axis=axis),
            "csoftmax out=": lambda: ours(x, axis=axis, out=out),
            "copy": lambda: np.copyto(copy_out, x),
            "numpy": lambda: ref(x, axis),
        }
        if scipy_special:
            scipy_fn = getattr(scipy_special, fn)
            impls["scipy"] = lambda: scipy_fn(x, axis=axis)
        if torch:
            t, torch_fn = torch.from_numpy(x), getattr(torch, fn)
            if axis is None:  # over every element, as SciPy's default
                impls["torch"] = lambda: torch_fn(t.reshape(-1), dim=0).reshape(t.shape)
            else:
                impls["torch"] = lambda: torch_fn(t, dim=axis)
        if jax:
            xj, jax_fn = jnp.asarray(x), jax.jit(partial(getattr(jax.nn, fn), axis=axis))
            impls["jax"] = lambda: jax_fn(xj).block_until_ready()
        return Setup(impls)
    return make


for _fn in ("softmax", "log_softmax"):
    for _dt, _copy, _torch in ((F32, 1.3, 1.0), (F64, 1.2, 0.3)):
        case(f"{_fn} {tag(_dt)} (8192,1000) axis=-1", forward(_fn, (8192, 1000), _dt), group="forward",
             targets=[Target("copy", _copy), Target("torch", _torch), Target("scipy", 0.15)])
    case(f"{_fn} f32 (4096,10) axis=-1", forward(_fn, (4096, 10), F32), group="forward",
         targets=[Target("torch", 0.1), Target("jax", 0.5), Target("scipy", 0.15)])

case("softmax f32 (1000,8192) axis=0", forward("softmax", (1000, 8192), F32, axis=0), group="forward",
     targets=[Target("csoftmax", 1.5, peer_case="softmax f32 (8192,1000) axis=-1"), Target("scipy", 0.15)])
case("softmax f32 (8192,1000) axis=None", forward("softmax", (8192, 1000), F32, axis=None), group="forward")
case("softmax f64 (10,) vector", forward("softmax", (10,), F64), group="forward",
     targets=[Target(None, 1.5e-6), Target("scipy", 0.15)])


_MAX = "x.max(axis=-1)"


def np_logsumexp(x, axis):
    """The plain NumPy formula, in the input's dtype: max, shift, exp, sum, log."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def reduction(shape, dtype, axis=-1):
    """``logsumexp`` of a C-contiguous ``shape`` array along ``axis``, beside
    each peer; the baseline is one read of the array, ``x.max(axis)``."""
    def make(options):
        x = logits(shape, dtype)
        out = np.empty(() if axis is None else x.shape[:axis % x.ndim] + x.shape[axis % x.ndim + 1:], x.dtype)
        impls = {
            "csoftmax": lambda: csoftmax.logsumexp(x, axis=axis),
            "csoftmax out=": lambda: csoftmax.logsumexp(x, axis=axis, out=out),
            f"x.max(axis={axis})": lambda: x.max(axis=axis),
            "numpy": lambda: np_logsumexp(x, axis),
        }
        if scipy_special:
            impls["scipy"] = lambda: scipy_special.logsumexp(x, axis=axis)
        if torch:
            t = torch.from_numpy(x)
            dim = tuple(range(x.ndim)) if axis is None else axis
            impls["torch"] = lambda: torch.logsumexp(t, dim=dim)
        if jax:
            xj = jnp.asarray(x)
            jax_fn = jax.jit(partial(jax.scipy.special.logsumexp, axis=axis))
            impls["jax"] = lambda: jax_fn(xj).block_until_ready()
        return Setup(impls, baseline=f"x.max(axis={axis})")
    return make


for _dt in (F32, F64):
    case(f"logsumexp {tag(_dt)} (8192,1000) axis=-1", reduction((8192, 1000), _dt), group="forward",
         targets=[Target("scipy", 0.1), Target("torch", 0.8), Target(_MAX, 1.5)])
    case(f"logsumexp {tag(_dt)} (4096,10) axis=-1", reduction((4096, 10), _dt), group="forward",
         targets=[Target("scipy", 0.1), Target("torch", 0.8)])
case("logsumexp f32 (1000,8192) axis=0", reduction((1000, 8192), F32, axis=0), group="forward",
     targets=[Target("scipy", 0.15), Target("torch", 0.8)])
# SciPy's default: the whole array as one sum, in pieces that the threads share
case("logsumexp f32 (8192,1000) axis=None", reduction((8192, 1000), F32, axis=None), group="forward",
     targets=[Target("scipy", 0.1), Target("torch", 0.8)])
# a small call, where the time is the call's own, not the kernel's
case("logsumexp f64 (10,) vector", reduction((10,), F64), group="forward")
