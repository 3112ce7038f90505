"""Deterministic inputs shared by the cases."""
import numpy as np

F32, F64 = np.float32, np.float64


def tag(dtype):
    return {F32: "f32", F64: "f64"}[dtype]


def logits(shape, dtype, seed=0):
    """Standard-normal logits times 3: a spread like a trained network's."""
    return (3 * np.random.default_rng(seed).standard_normal(shape, dtype=np.float64)).astype(dtype)


def labels(n, n_classes, seed=1):
    return np.random.default_rng(seed).integers(0, n_classes, n)  # int64


PAGE = 4096
PAGE_OFFSET = 16


def placed(values):
    """A copy of the 1-D array ``values`` whose data begins PAGE_OFFSET bytes
    past a 4 KiB boundary, as NumPy's large arrays, mapped afresh, do.  Arrays
    placed so lie at the same offset from each other modulo 4 KiB; otherwise
    where they fall decides, by the run, how often a core mistakes a load for
    one that depends on an earlier store of the same low 12 address bits:
    log_softmax_backward float32 at C = 1000 took 12 % longer with its output
    64 bytes past its inputs than with the three at the same offset, and
    PyTorch's kernel 15 %."""
    raw = np.empty(values.nbytes + PAGE + PAGE_OFFSET, np.uint8)
    start = (PAGE_OFFSET - raw.ctypes.data) % PAGE
    out = raw[start:start + values.nbytes].view(values.dtype)
    out[...] = values
    return out
