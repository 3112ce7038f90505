"""The options users bring from the peers: softmax with where= (a mask) and the
cross-entropy with class weights, ignore_index and label smoothing, each beside
the plain csoftmax call and the peer that has the option."""
from functools import partial

import numpy as np

import csoftmax

from .data import F32, labels, logits
from .peers import jax, jnp, torch
from .registry import Setup, Target, case


def masked_softmax(shape, dtype):
    """softmax over the last axis with a random boolean mask (half True)."""
    def make(options):
        x = logits(shape, dtype)
        mask = np.random.default_rng(7).random(shape) < 0.5
        out, copy_out = np.empty_like(x), np.empty_like(x)
        impls = {
            "csoftmax where=": lambda: csoftmax.softmax(x, axis=-1, where=mask),
            "csoftmax where= out=": lambda: csoftmax.softmax(x, axis=-1, where=mask, out=out),
            "csoftmax unmasked": lambda: csoftmax.softmax(x, axis=-1),
            "copy": lambda: np.copyto(copy_out, x),
        }
        if jax:
            xj, mj = jnp.asarray(x), jnp.asarray(mask)
            jfn = jax.jit(partial(jax.nn.softmax, axis=-1))
            impls["jax where="] = lambda: jfn(xj, where=mj).block_until_ready()
        if torch:
            t, mt = torch.from_numpy(x), torch.from_numpy(~mask)
            impls["torch masked_fill+softmax"] = lambda: torch.softmax(t.masked_fill(mt, float("-inf")), dim=-1)
        return Setup(impls, reference=None,
                     notes=["torch: masked_fill(-inf) then softmax (a fully masked row gives nan there)"])
    return make


def ce_options(shape, dtype):
    """cross_entropy_grad with weight, ignore_index and label_smoothing all set."""
    def make(options):
        N, C = shape
        z, y = logits(shape, dtype), labels(N, C)
        y[::17] = -100  # ignored rows
        w = np.linspace(0.5, 2.0, C)
        opts = dict(weight=w, ignore_index=-100, label_smoothing=0.1)
        out, copy_out = np.empty_like(z), np.empty_like(z)
        impls = {
            "csoftmax options": lambda: csoftmax.cross_entropy_grad(z, y, **opts),
            "csoftmax options out=": lambda: csoftmax.cross_entropy_grad(z, y, out=out, **opts),
            "csoftmax plain": lambda: csoftmax.cross_entropy_grad(z, np.where(y < 0, 0, y)),
            "copy": lambda: np.copyto(copy_out, z),
        }
        if torch:
            F, yt = torch.nn.functional, torch.from_numpy(y)
            zt, wt = torch.from_numpy(z).requires_grad_(), torch.from_numpy(w.astype(dtype))

            def torch_fwd_bwd():
                zt.grad = None
                loss = F.cross_entropy(zt, yt, weight=wt, ignore_index=-100, label_smoothing=0.1)
                loss.backward()
                return loss, zt.grad
            impls["torch fwd+bwd options"] = torch_fwd_bwd
        return Setup(impls, reference=None)
    return make


case("softmax where= f32 (8192,1000)", masked_softmax((8192, 1000), F32), group="forward",
     targets=[Target("csoftmax unmasked", 1.3, impl="csoftmax where="),
              Target("jax where=", 0.5, impl="csoftmax where=")])
case("cross_entropy_grad options f32 (8192,1000)", ce_options((8192, 1000), F32), group="cross-entropy",
     targets=[Target("csoftmax plain", 1.15, impl="csoftmax options"),
              Target("torch fwd+bwd options", 0.3, impl="csoftmax options")])
# mid-width rows in cache, where the options' rows go four at a time as plain ones do
case("cross_entropy_grad options f32 (4096,100)", ce_options((4096, 100), F32), group="cross-entropy")
