"""What works without the optional peers: the core functions need only NumPy;
SoftmaxRegression requires scikit-learn and SciPy and says so when either is
missing.  Each check runs in a fresh interpreter in which importing the peers
fails, so it runs (and means the same) whatever this environment has installed.
"""
import sys
import textwrap

import pytest
from helpers import run_python

PEERS = ["sklearn", "scipy", "threadpoolctl", "torch", "tqdm"]


def run_without(modules, code):
    """Run ``code`` in a fresh interpreter in which importing ``modules`` fails."""
    block = "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    script = "import sys\n" + block + textwrap.dedent(code)
    return run_python(script)


def test_core_functions_need_only_numpy():
    result = run_without(PEERS, """
        import numpy as np
        import csoftmax as cs
        from csoftmax import reference
        x = np.array([[0.0, 1.0, 2.0], [3.0, -np.inf, 0.0]])
        s = cs.softmax(x, axis=-1)
        np.testing.assert_allclose(s, reference.softmax(x, axis=-1), rtol=1e-14)
        cs.log_softmax(x, axis=0)
        cs.softmax_backward(s, x, axis=-1)
        cs.log_softmax_backward(cs.log_softmax(x, axis=-1), s)
        cs.softmax_jacobian(x)
        loss, grad = cs.cross_entropy_grad(x, [2, 0])
        loss, dW, db = cs.softmax_regression_loss_grad(np.zeros((3, 2)), np.ones((4, 2)), [0, 1, 2, 0], np.zeros(3))
        cs.set_num_threads(cs.get_num_threads())
        assert all(sys.modules.get(m) is None for m in %r)
        print("ok")
    """ % (PEERS,))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("missing, named", [("sklearn", "scikit-learn"), ("scipy", "SciPy")])
def test_estimator_requires_sklearn_and_scipy(missing, named):
    """Without scikit-learn or without SciPy, ``import csoftmax`` works and asking
    for the estimator is an ImportError that names what is missing."""
    result = run_without([missing], """
        import csoftmax
        csoftmax.softmax([0.0, 1.0])
        try:
            from csoftmax import SoftmaxRegression
        except ImportError as exc:
            print("ImportError:", exc)
        else:
            print("imported")
    """)
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip()
    assert out.startswith("ImportError:"), out
    assert named.lower() in out.lower() or missing in out, out


@pytest.mark.parametrize("missing", [["sklearn"], ["scipy"], PEERS])
def test_star_import_needs_only_numpy(missing):
    """``from csoftmax import *`` works without the estimator's peers, and then
    leaves the estimator out."""
    result = run_without(missing, """
        from csoftmax import *
        print(sorted(n for n in ("softmax", "cross_entropy_grad", "show_config", "SoftmaxRegression")
                     if n in globals()))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['cross_entropy_grad',", "'show_config',", "'softmax']"], result.stdout


def test_star_import_exports_the_estimator_with_its_peers():
    pytest.importorskip("sklearn")
    pytest.importorskip("scipy")
    result = run_python("from csoftmax import *\nprint(SoftmaxRegression.__name__)")
    assert result.returncode == 0 and result.stdout.strip() == "SoftmaxRegression", result.stderr
