# Stub for the compiled module: the backward kernels' entry.
import numpy as np

def backward(s: np.ndarray, g: np.ndarray, axis: int, out: np.ndarray | None, log: bool, n_threads: int) -> np.ndarray: ...
