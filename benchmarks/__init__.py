"""The csoftmax benchmark suite: every public kernel timed side by side with the
peers that are installed (NumPy, SciPy, PyTorch, JAX, scikit-learn) and a
memory-copy baseline; and a sweep over the number of classes beside PyTorch
(``sweep.py``, ``python -m benchmarks --sweep``).

Run ``python -m benchmarks`` from the repository root (``--help`` for options).
Cases live in modules that mirror the package (``bench_forward.py``,
``bench_backward.py``, ``bench_loss.py``, ``bench_regression.py``); each is a
function that builds its data and returns the callables to time, registered
under the group of functions it belongs to (forward, backward, cross-entropy,
regression, training) with the speed targets it is held to.
"""
import os
import sys

# The installed, compiled csoftmax must be the one timed, not a source folder in the repository root.
_ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), os.pardir))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _ROOT]
