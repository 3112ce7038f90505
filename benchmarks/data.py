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
