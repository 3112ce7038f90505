"""What this process runs: the kernel level, OpenMP, threads, the block cache
and how the package was built (``csoftmax.show_config()``, ``python -m csoftmax``)."""
import os
import platform
import sys
import sysconfig

import numpy as np

from . import _alloc, _runtime

__all__ = ["show_config"]

# OpenMP's `_OPENMP` macro is the date of the specification the compiler implements
_OPENMP_SPECS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5",
                 201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0"}
_OPENMP_RUNTIMES = ("libgomp", "libomp", "libiomp")


def _openmp_library():
    """The file of the OpenMP runtime loaded in this process (Linux), else None."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(maxsplit=5)[-1].strip()
                if os.path.basename(path).startswith(_OPENMP_RUNTIMES):
                    return path
    except OSError:
        pass
    return None


def _build_info():
    try:
        from ._build_info import BUILD_INFO
    except ImportError:
        return None
    return dict(BUILD_INFO)


def config():
    """This process's configuration, as a dict of dicts."""
    from . import __version__

    omp = _runtime.openmp_version()
    blocks, nbytes = _alloc.cache_info()
    return {
        "csoftmax": {"version": __version__, "path": os.path.dirname(__file__)},
        # free_threaded: a free-threaded (3.13t) build; gil_enabled: whether the GIL
        # is on now (on such a build, an import of a module that needs it, or PYTHON_GIL=1)
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                   "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)()},
        "numpy": {"version": np.__version__},
        "kernels": {"level": _runtime.isa(), "cpu_level": _runtime.cpu_level(),
                    "stream_tiles": _runtime.stream_tiles(),
                    "CSOFTMAX_ISA": os.environ.get("CSOFTMAX_ISA")},
        "openmp": {"enabled": _runtime.has_openmp(),
                   "specification": _OPENMP_SPECS.get(omp, str(omp)) if omp else None,
                   "runtime": _openmp_library()},
        "threads": {"num_threads": _runtime.get_num_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "block_cache": {"enabled": _alloc.enabled(), "blocks": blocks, "bytes": nbytes, **_alloc.LIMITS},
        "build": _build_info(),
    }


def show_config(mode="stdout"):
    """Print which kernels, OpenMP runtime, threads and build this process uses.

    Parameters
    ----------
    mode : {"stdout", "dicts"}
        Print a readable summary, or return it as a dict of dicts.

    Examples
    --------
    >>> import csoftmax
    >>> csoftmax.show_config(mode="dicts")["kernels"]["level"] in ("baseline", "x86-64-v3", "x86-64-v4")
    True
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    info = config()
    if mode == "dicts":
        return info
    for section, entries in info.items():
        print(f"{section}:")
        if entries is None:
            print("  unknown (no build record: not built by setup.py)")
            continue
        for key, value in entries.items():
            if isinstance(value, list):
                value = " ".join(value)
            print(f"  {key}: {value}")
    return None
