"""The peers csoftmax is timed against, each imported only if installed, and
the plain NumPy formulas (in the input's own dtype) that play "numpy".

JAX reads its thread settings from ``XLA_FLAGS`` when imported, so
``__main__`` sets them before importing this module.
"""
import importlib
import os
import platform
from contextlib import contextmanager

import numpy as np

import csoftmax


def _optional(name):
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or an install that fails to import
        return None


scipy_special = _optional("scipy.special")
torch = _optional("torch")
jax = _optional("jax")
jnp = _optional("jax.numpy") if jax else None
if jax:
    jax.config.update("jax_enable_x64", True)
sklearn_loss = _optional("sklearn._loss.loss")
sklearn_linear_loss = _optional("sklearn.linear_model._linear_loss")
sklearn_linear_model = _optional("sklearn.linear_model")
threadpoolctl = _optional("threadpoolctl")


def limit_threads(n):
    """Run csoftmax, PyTorch, BLAS and OpenMP on ``n`` threads; keep the returned
    threadpoolctl handle alive for as long as the limit should hold."""
    csoftmax.set_num_threads(n)
    if torch:
        torch.set_num_threads(n)
    return threadpoolctl.threadpool_limits(limits=n) if threadpoolctl else None


@contextmanager
def num_threads(n):
    """:func:`limit_threads` for the length of a ``with`` block; the settings before it after."""
    before = csoftmax.get_num_threads(), torch.get_num_threads() if torch else None
    limit = limit_threads(n)
    try:
        yield
    finally:
        if limit is not None:
            limit.restore_original_limits()
        csoftmax.set_num_threads(before[0])
        if torch:
            torch.set_num_threads(before[1])


def machine_info(threads):
    def version(module):
        return getattr(module, "__version__", None) if module else None

    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "load_average": load_average(),
        "csoftmax": csoftmax.__version__,
        "csoftmax_file": csoftmax.__file__,
        "csoftmax_isa": csoftmax._runtime.isa(),
        "csoftmax_cpu_level": csoftmax._runtime.cpu_level(),
        "numpy": np.__version__,
        "scipy": version(_optional("scipy")),
        "torch": version(torch),
        # the vector level PyTorch's CPU kernels run at (ATEN_CPU_CAPABILITY lowers it)
        "torch_cpu_capability": (getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)()
                                 if torch else None),
        "jax": version(jax),
        "sklearn": version(_optional("sklearn")),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "threadpools": threadpoolctl.threadpool_info() if threadpoolctl else None,
    }


def load_average():
    """The 1-minute load average: above the core count, timings of threaded code are noise."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


# The "numpy" peer: what a NumPy user would write, in the input's dtype.

def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    e /= e.sum(axis, keepdims=True)
    return e


def np_log_softmax(x, axis=-1):
    t = x - x.max(axis, keepdims=True)
    t -= np.log(np.exp(t).sum(axis, keepdims=True))
    return t


def np_softmax_jacobian(x):
    s = np_softmax(x)
    return s[..., :, None] * (np.eye(s.shape[-1], dtype=s.dtype) - s[..., None, :])


def np_softmax_backward(s, g):
    return s * (g - (g * s).sum(-1, keepdims=True))


def np_log_softmax_backward(log_s, g):
    return g - np.exp(log_s) * g.sum(-1, keepdims=True)


def np_cross_entropy(z, y):
    t = z - z.max(1, keepdims=True)
    return np.mean(np.log(np.exp(t).sum(1)) - t[np.arange(len(z)), y])


def np_cross_entropy_grad(z, y):
    """Mean cross-entropy of logits ``z`` (N, C) and labels ``y``, and its gradient."""
    rows = np.arange(len(z))
    t = z - z.max(1, keepdims=True)
    e = np.exp(t)
    se = e.sum(1)
    loss = np.mean(np.log(se) - t[rows, y])
    e /= se[:, None]
    e[rows, y] -= 1
    e /= len(z)
    return loss, e


def torch_cross_entropy_fwd_bwd(z, y):
    """A call that runs PyTorch's mean cross-entropy of the NumPy logits ``z``
    and targets ``y`` (class indices or probabilities), forward and backward,
    and returns the loss and the gradient (PyTorch must be installed)."""
    F, zt, yt = torch.nn.functional, torch.from_numpy(z).requires_grad_(), torch.from_numpy(y)

    def run():
        zt.grad = None
        loss = F.cross_entropy(zt, yt)
        loss.backward()
        return loss, zt.grad
    return run


def np_regression_loss_grad(W, X, y, b, l2):
    loss, G = np_cross_entropy_grad(X @ W.T + b, y)
    return loss + l2 / 2 * np.vdot(W, W), G.T @ X + l2 * W, G.sum(0)
