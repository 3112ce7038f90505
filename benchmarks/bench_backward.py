"""The Jacobian and the backward passes (vector-Jacobian products)."""
import numpy as np

import csoftmax

from .data import F32, F64, logits
from .peers import jax, jnp, np_log_softmax_backward, np_softmax_backward, np_softmax_jacobian, torch
from .registry import Setup, Target, case


def jacobian(shape, dtype):
    """``softmax_jacobian`` of ``(N, C)`` logits: an ``(N, C, C)`` result."""
    def make(options):
        x = logits(shape, dtype)
        src = np.ones(shape + shape[-1:], dtype)
        copy_out = np.empty_like(src)
        impls = {
            "csoftmax": lambda: csoftmax.softmax_jacobian(x),
            "copy": lambda: np.copyto(copy_out, src),
            "numpy": lambda: np_softmax_jacobian(x),
        }
        if jax:
            xj, jax_jac = jnp.asarray(x), jax.jit(jax.vmap(jax.jacfwd(jax.nn.softmax)))
            impls["jax vmap(jacfwd)"] = lambda: jax_jac(xj).block_until_ready()
        if torch:
            t = torch.from_numpy(x)
            torch_jac = torch.func.vmap(torch.func.jacrev(lambda row: torch.softmax(row, dim=-1)))
            impls["torch vmap(jacrev)"] = lambda: torch_jac(t)
        return Setup(impls, notes=[f"copy: np.copyto of a {shape + shape[-1:]} array, the output's size; "
                                   "numpy: the broadcast s[..., :, None] * (eye - s[..., None, :])"])
    return make


def backward(log, shape, dtype):
    """``softmax_backward(s, g)`` or ``log_softmax_backward(log_s, g)`` on ``(N, C)``."""
    def make(options):
        x, g = logits(shape, dtype), logits(shape, dtype, seed=2)
        s = csoftmax.log_softmax(x, axis=-1) if log else csoftmax.softmax(x, axis=-1)
        out, copy_out = np.empty_like(s), np.empty_like(s)
        ours = csoftmax.log_softmax_backward if log else csoftmax.softmax_backward
        ref = np_log_softmax_backward if log else np_softmax_backward
        impls = {
            "csoftmax": lambda: ours(s, g),
            "csoftmax out=": lambda: ours(s, g, out=out),
            "copy": lambda: np.copyto(copy_out, s),
            "numpy": lambda: ref(s, g),
        }
        if torch:
            st, gt, tdt = torch.from_numpy(s), torch.from_numpy(g), torch.from_numpy(s).dtype
            aten = torch.ops.aten._log_softmax_backward_data if log else torch.ops.aten._softmax_backward_data
            impls[f"torch {'_log' if log else ''}_softmax_backward_data"] = lambda: aten(gt, st, -1, tdt)
        return Setup(impls, notes=["torch: the aten kernel behind autograd's softmax backward"])
    return make


for _shape, _slow in (((1000, 10), False), ((1000, 100), False), ((100, 1000), True)):
    _targets = ([Target("copy", 1.5), Target("jax vmap(jacfwd)", 0.2), Target("numpy", 0.5)]
                if _shape == (1000, 100) else [])
    case(f"softmax_jacobian f64 ({_shape[0]},{_shape[1]})", jacobian(_shape, F64), group="backward", slow=_slow,
         targets=_targets)
case("softmax_backward f32 (8192,1000)", backward(False, (8192, 1000), F32), group="backward",
     targets=[Target("copy", 1.6), Target("torch _softmax_backward_data", 1.0)])
case("log_softmax_backward f32 (8192,1000)", backward(True, (8192, 1000), F32), group="backward")
