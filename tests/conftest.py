"""Shared fixtures and options.

* ``isa``: run a kernel test on every instruction-set level this CPU has
  (``CSOFTMAX_TEST_LEVELS=highest``: on the CPU's own level only, for a run
  whose concern is not the levels, such as a build without OpenMP, whose
  kernel units are compiled as in any other build).
* ``slow`` tests (several seconds each) run only with ``--runslow`` or
  ``CSOFTMAX_SLOW=1`` in the environment.
"""
import os

import pytest

from csoftmax import _runtime

_ALL = ["baseline", "x86-64-v3", "x86-64-v4"]
_RANK = {name: i for i, name in enumerate(_ALL)}
LEVELS = [name for name in _ALL if _RANK[name] <= _RANK[_runtime.cpu_level()]]
_ONLY = os.environ.get("CSOFTMAX_TEST_LEVELS", "all")
if _ONLY == "highest":
    LEVELS = LEVELS[-1:]
elif _ONLY != "all":
    raise pytest.UsageError(f"CSOFTMAX_TEST_LEVELS must be 'all' or 'highest', got {_ONLY!r}")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked slow (as CSOFTMAX_SLOW=1 does)")


def pytest_configure(config):
    # registered here, not only in pyproject.toml: CI runs a copy of tests/ against the installed wheel
    config.addinivalue_line("markers", "slow: takes several seconds; skipped unless --runslow or CSOFTMAX_SLOW=1")


def _run_slow(config):
    return config.getoption("--runslow") or os.environ.get("CSOFTMAX_SLOW", "") not in ("", "0")


def pytest_collection_modifyitems(config, items):
    if _run_slow(config):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or CSOFTMAX_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=[False, True], ids=["cached", "streamed"])
def stream_tiles(request):
    """Each way of writing the packed tiles' output (streaming stores or not)
    for the test's duration."""
    before = _runtime.stream_tiles(request.param)
    yield request.param
    _runtime.stream_tiles(before)


@pytest.fixture(params=LEVELS)
def isa(request):
    """Switch the kernel table to each available level for the test's duration."""
    before = _runtime.isa()
    _runtime.set_isa(request.param)
    yield request.param
    _runtime.set_isa(before)
