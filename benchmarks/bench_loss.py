"""The fused cross-entropy loss and gradient."""
import numpy as np

import csoftmax

from .data import F32, F64, labels, logits, tag
from .peers import np_cross_entropy, np_cross_entropy_grad, sklearn_loss, torch, torch_cross_entropy_fwd_bwd
from .registry import Setup, Target, case


def cross_entropy(shape, dtype, grad=True):
    """Mean cross-entropy of ``(N, C)`` logits and int64 labels, with its gradient if ``grad``."""
    def make(options):
        z, y = logits(shape, dtype), labels(*shape)
        out, copy_out = np.empty_like(z), np.empty_like(z)
        impls = {"csoftmax": lambda: csoftmax.cross_entropy_grad(z, y),
                 "csoftmax out=": lambda: csoftmax.cross_entropy_grad(z, y, out=out)} if grad else \
                {"csoftmax": lambda: csoftmax.cross_entropy(z, y)}
        impls["copy"] = lambda: np.copyto(copy_out, z)
        impls["numpy"] = (lambda: np_cross_entropy_grad(z, y)) if grad else (lambda: np_cross_entropy(z, y))
        notes = []
        if torch and grad:
            impls["torch fwd+bwd"] = torch_cross_entropy_fwd_bwd(z, y)
        elif torch:
            F, zt, yt = torch.nn.functional, torch.from_numpy(z), torch.from_numpy(y)
            impls["torch"] = lambda: F.cross_entropy(zt, yt)
        if sklearn_loss and grad:
            hml = sklearn_loss.HalfMultinomialLoss(n_classes=shape[1])
            yf, loss_out, grad_out = y.astype(dtype), np.empty(shape[0], dtype), np.empty_like(z)
            impls["sklearn loss_gradient"] = lambda: hml.loss_gradient(
                yf, z, None, loss_out, grad_out, n_threads=options.threads)
            notes.append("sklearn: HalfMultinomialLoss.loss_gradient (per-sample losses, unscaled "
                         f"gradient, preallocated outputs, n_threads={options.threads})")
        return Setup(impls, notes=notes)
    return make


def cross_entropy_prob(shape, dtype):
    """Mean cross-entropy of ``(N, C)`` logits and probability targets (each
    row a softmax of its own random logits), with its gradient."""
    def make(options):
        z = logits(shape, dtype)
        y = csoftmax.softmax(logits(shape, dtype, seed=2))
        out, copy_out = np.empty_like(z), np.empty_like(z)
        impls = {"csoftmax": lambda: csoftmax.cross_entropy_grad(z, y),
                 "csoftmax out=": lambda: csoftmax.cross_entropy_grad(z, y, out=out),
                 "copy": lambda: np.copyto(copy_out, z)}
        if torch:
            impls["torch fwd+bwd"] = torch_cross_entropy_fwd_bwd(z, y)
        return Setup(impls)
    return make


for _shape in ((4096, 10), (8192, 1000), (1024, 32000)):
    for _dt in (F32, F64):
        _targets = ([Target("copy", 1.5), Target("torch fwd+bwd", 0.3), Target("sklearn loss_gradient", 0.15)]
                    if _shape == (8192, 1000) else
                    [Target("sklearn loss_gradient", 0.2)] if _shape == (4096, 10) else [])
        case(f"cross_entropy_grad {tag(_dt)} ({_shape[0]},{_shape[1]})", cross_entropy(_shape, _dt),
             group="cross-entropy", targets=_targets, slow=_shape == (1024, 32000))
case("cross_entropy (loss only) f32 (8192,1000)", cross_entropy((8192, 1000), F32, grad=False),
     group="cross-entropy")
for _shape, _dt in (((8192, 128), F32), ((8192, 64), F64)):
    case(f"cross_entropy_grad probabilities {tag(_dt)} ({_shape[0]},{_shape[1]})", cross_entropy_prob(_shape, _dt),
         group="cross-entropy")
