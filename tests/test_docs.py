"""The examples in the public docstrings run and print what they say."""
import doctest
import importlib

import pytest

MODULES = ["csoftmax.forward", "csoftmax.backward", "csoftmax.loss", "csoftmax.reference", "csoftmax.regression"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "csoftmax.regression":
        # the estimator requires both (pip install csoftmax[sklearn])
        pytest.importorskip("sklearn", reason="SoftmaxRegression requires scikit-learn")
        pytest.importorskip("scipy", reason="SoftmaxRegression requires SciPy")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
