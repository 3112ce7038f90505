# cython: language_level=3, boundscheck=False, wraparound=False
"""Which compiled kernels run, and on how many threads.

The kernel table for the CPU's instruction-set level is chosen once at import;
the thread count for a call comes from its size, ``set_num_threads`` and the
OpenMP limit (``OMP_NUM_THREADS``, threadpoolctl).
"""
import os

from csoftmax._kernels cimport cs_ops, cs_intp, CS_TILE

cdef extern from "cs_dispatch.h" nogil:
    int cs_cpu_level()
    const cs_ops *cs_ops_for(int level)

cdef extern from "cs_threads.h" nogil:
    int omp_get_max_threads()
    enum: CS_HAVE_OPENMP

# A thread for every PAR_MIN elements; under 2 * PAR_MIN a call stays on the
# calling thread.  Starting an OpenMP team costs about a microsecond; two
# threads measured faster from about 5000 elements, wide rows or narrow.
cdef enum:
    PAR_MIN = 4096

_LEVELS = {"baseline": 0, "x86-64-v3": 3, "x86-64-v4": 4}

cdef const cs_ops *_ops = cs_ops_for(cs_cpu_level())
cdef int _thread_limit = 0   # 0: none of our own


cdef const cs_ops *current_ops() noexcept nogil:
    return _ops


cdef int threads_for(cs_intp work) noexcept nogil:
    if work < 2 * PAR_MIN:
        return 1
    cdef int n = omp_get_max_threads()
    if _thread_limit > 0 and _thread_limit < n:
        n = _thread_limit
    if work // PAR_MIN < n:
        n = <int>(work // PAR_MIN)
    return n if n > 1 else 1


cdef cs_intp tile_width(cs_intp C, cs_intp itemsize) noexcept nogil:
    # Columns per tile of a reduction over a strided axis: as many as make a
    # tile of about 1 MiB, up to CS_TILE.  Long contiguous pieces of each class
    # row matter more than an L2-sized tile: with a power-of-two row stride,
    # narrow tiles map onto a few cache sets and pages (measured: (1000, 8192)
    # float32 over axis 0 took 13 ms with 32 columns, 5.6 ms with 256).
    cdef cs_intp w = (1 << 20) // (C * itemsize)
    w = (w // 16) * 16
    if w < 16:
        w = 16
    if w > CS_TILE:
        w = CS_TILE
    return w


def cpu_level():
    """The highest instruction-set level this CPU runs: "baseline",
    "x86-64-v3" or "x86-64-v4" (what this build can use)."""
    return cs_ops_for(cs_cpu_level()).name.decode()


def isa():
    """The instruction-set level of the kernels in use."""
    return _ops.name.decode()


def set_isa(name):
    """Use the kernels of another level (at most the CPU's), e.g. to test them.

    Not thread-safe: for tests and benchmarks, not for use during calls.
    """
    global _ops
    if name not in _LEVELS:
        raise ValueError(f"unknown instruction-set level {name!r}; expected one of {list(_LEVELS)}")
    level = _LEVELS[name]
    if level > _LEVELS[cpu_level()]:
        raise ValueError(f"this CPU or build does not run {name!r} (highest: {cpu_level()!r})")
    _ops = cs_ops_for(level)


def get_num_threads():
    """The number of threads a large call uses."""
    cdef int n = omp_get_max_threads()
    if _thread_limit > 0 and _thread_limit < n:
        n = _thread_limit
    return n


def set_num_threads(n):
    """Set the number of threads large calls use (in every Python thread).

    OpenMP's own limit (``OMP_NUM_THREADS``, threadpoolctl) still caps it.  A
    process forked from one that has used threads starts with one thread
    (GNU OpenMP's threads do not survive a fork); raising it there hangs.
    """
    global _thread_limit
    n = int(n)
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    _thread_limit = n


def has_openmp():
    """Whether this build runs its kernels in parallel."""
    return bool(CS_HAVE_OPENMP)


def _one_thread_in_child():
    # GNU OpenMP's threads do not survive a fork: a team started in the child
    # of a process that has run one waits for them forever.  A forked child
    # (multiprocessing's default on Linux) computes on its own thread.
    global _thread_limit
    _thread_limit = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_thread_in_child)

_env = os.environ.get("CSOFTMAX_ISA")
if _env:
    set_isa(_env)
