"""Shared fixtures: run kernel tests on every instruction-set level this CPU has."""
import pytest

from csoftmax import _runtime

_ALL = ["baseline", "x86-64-v3", "x86-64-v4"]
_RANK = {name: i for i, name in enumerate(_ALL)}
LEVELS = [name for name in _ALL if _RANK[name] <= _RANK[_runtime.cpu_level()]]


@pytest.fixture(params=LEVELS)
def isa(request):
    """Switch the kernel table to each available level for the test's duration."""
    before = _runtime.isa()
    _runtime.set_isa(request.param)
    yield request.param
    _runtime.set_isa(before)
