"""The fused cross-entropy loss and gradient, and the softmax-regression gradient (issue 3)."""
import numpy as np

import csoftmax

from .data import F32, F64, labels, logits, tag
from .peers import (np_cross_entropy, np_cross_entropy_grad, np_regression_loss_grad, sklearn_linear_loss,
                    sklearn_loss, torch)
from .registry import Bar, Setup, case


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
        if torch:
            F, yt = torch.nn.functional, torch.from_numpy(y)
            if grad:
                zt = torch.from_numpy(z).requires_grad_()

                def torch_fwd_bwd():
                    zt.grad = None
                    loss = F.cross_entropy(zt, yt)
                    loss.backward()
                    return loss, zt.grad
                impls["torch fwd+bwd"] = torch_fwd_bwd
            else:
                zt = torch.from_numpy(z)
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


def regression(n, d, n_classes, dtype, l2=1e-4):
    """``softmax_regression_loss_grad`` on ``X`` (n, d), ``n_classes`` classes, with intercept."""
    def make(options):
        X, y = logits((n, d), dtype, seed=3) / 3, labels(n, n_classes)
        W, b = logits((n_classes, d), dtype, seed=4) / 100, logits(n_classes, dtype, seed=5) / 10
        G = logits((n, n_classes), dtype, seed=6)
        impls = {
            "csoftmax": lambda: csoftmax.softmax_regression_loss_grad(W, X, y, b, l2=l2),
            "2 BLAS products": lambda: (X @ W.T, G.T @ X),
            "numpy": lambda: np_regression_loss_grad(W, X, y, b, l2),
        }
        if sklearn_linear_loss and sklearn_loss:
            lml = sklearn_linear_loss.LinearModelLoss(
                base_loss=sklearn_loss.HalfMultinomialLoss(n_classes=n_classes), fit_intercept=True)
            coef, yf = np.hstack([W, b[:, None]]), y.astype(dtype)
            impls["sklearn LinearModelLoss"] = lambda: lml.loss_gradient(
                coef, X, yf, l2_reg_strength=l2, n_threads=options.threads)
        return Setup(impls, baseline="2 BLAS products",
                     notes=["baseline: X @ W.T and G.T @ X alone (the BLAS floor)"])
    return make


for _shape in ((4096, 10), (8192, 1000), (1024, 32000)):
    for _dt in (F32, F64):
        _bars = ([Bar("copy", 1.5), Bar("torch fwd+bwd", 0.3), Bar("sklearn loss_gradient", 0.15)]
                 if _shape == (8192, 1000) else
                 [Bar("sklearn loss_gradient", 0.2)] if _shape == (4096, 10) else [])
        case(f"cross_entropy_grad {tag(_dt)} ({_shape[0]},{_shape[1]})", cross_entropy(_shape, _dt),
             issue=3, bars=_bars, slow=_shape == (1024, 32000))
case("cross_entropy (loss only) f32 (8192,1000)", cross_entropy((8192, 1000), F32, grad=False), issue=3)
case("softmax_regression_loss_grad f64 X(20000,784) 10 classes", regression(20000, 784, 10, F64), issue=3,
     bars=[Bar("2 BLAS products", 1.2)])
