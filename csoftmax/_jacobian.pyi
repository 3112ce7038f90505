# Stub for the compiled module: the Jacobian kernels' entry.
import numpy as np

def jacobian(x: np.ndarray, J: np.ndarray, n_threads: int) -> None: ...
