# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Which compiled kernels run, on how many threads, and the one loop that runs
them.

The kernel table for the CPU's instruction-set level is chosen once at import;
the other modules look kernels up by name (``kernel_id`` at their import,
``kernel`` per call) and hand a task to ``run``, which splits its units between
the threads.  The thread count of a call comes from its size and the count the
caller passes (``get_num_threads()``: ``set_num_threads`` under the OpenMP
limit, ``OMP_NUM_THREADS`` or threadpoolctl).
"""
import numbers
import os
import warnings

from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc

from csoftmax._kernels cimport CS_STREAM_BYTES, CS_TILE, cs_intp, cs_kernel, cs_task

cdef extern from "cs_dispatch.h" nogil:
    ctypedef struct cs_ops:
        const char *name
    int cs_cpu_level()
    int cs_cpu_stream_tiles()
    const cs_ops *cs_ops_for(int level)
    int cs_kernel_id(const char *name)
    cs_kernel cs_pick(const cs_ops *ops, int kid, int dtype)

cdef extern from "cs_threads.h" nogil:
    int omp_get_max_threads()
    enum: CS_HAVE_OPENMP

cdef extern from "cs_atomic.h" nogil:
    int cs_load_int(const int *p)
    void cs_store_int(int *p, int v)
    const void *cs_load_ptr(const void **p)
    void cs_store_ptr(const void **p, const void *v)
    void *cs_swap_ptr(void **p, void *v)

cdef extern from *:
    """
    #ifdef _OPENMP
    #define CS_OPENMP_VERSION _OPENMP
    #else
    #define CS_OPENMP_VERSION 0
    #endif
    """
    enum: CS_OPENMP_VERSION

# A thread for every PAR_MIN elements; under 2 * PAR_MIN a call stays on the
# calling thread.  Starting an OpenMP team costs about a microsecond; two
# threads measured faster from about 5000 elements, wide rows or narrow.
cdef enum:
    PAR_MIN = 4096

_LEVELS = {"baseline": 0, "x86-64-v3": 3, "x86-64-v4": 4}

# The settings below are read by calls in any thread, without the GIL (and on a
# free-threaded CPython there is none), while another thread may change them:
# each is only ever read and written through cs_atomic.h's relaxed loads and
# stores, once per use.
cdef const void *_ops = cs_ops_for(cs_cpu_level())  # the const cs_ops * in use
cdef int _thread_limit = 0   # 0: none of our own
cdef int _forked = 0         # 1 in a process forked from one that imported csoftmax
cdef int _stream_tiles = cs_cpu_stream_tiles()  # see tiles()
_MAX_THREADS = (1 << 31) - 1


cdef inline const cs_ops *_current_ops() noexcept nogil:
    return <const cs_ops *>cs_load_ptr(&_ops)


cdef int kernel_id(str name) except -1:
    cdef int k = cs_kernel_id(name.encode())
    if k < 0:
        raise ImportError(f"no compiled kernel named {name!r}")
    return k


cdef cs_kernel kernel(int kid, int dtype) noexcept nogil:
    return cs_pick(_current_ops(), kid, dtype)


cdef int threads_for(cs_intp work, int n_threads) noexcept nogil:
    if work < 2 * PAR_MIN:
        return 1
    cdef int n = n_threads
    if work // PAR_MIN < n:
        n = <int>(work // PAR_MIN)
    return n if n > 1 else 1


# The scratch block of the last call that needed one, kept for the next
# (NULL: none).  A block this large comes from mmap, and its pages are faulted
# in and zeroed by the kernel on first touch, in every call: for softmax over
# axis 0 of (1000, 8192) float32 (2 MiB of tiles on two threads) that was an
# eighth of the call's time.  Any thread takes it or puts it back with one
# atomic exchange, so concurrent calls each get a block of their own (the
# second a fresh one).  Each block starts with its size (SCRATCH_HEAD bytes,
# keeping malloc's alignment); blocks over SCRATCH_KEEP are not kept.
cdef void *_spare = NULL
cdef enum:
    SCRATCH_HEAD = 64
cdef size_t SCRATCH_KEEP = 16 << 20


cdef char *_scratch_take(size_t n) noexcept nogil:
    cdef size_t *b = <size_t *>cs_swap_ptr(&_spare, NULL)
    if b != NULL and b[0] >= n:
        return <char *>b + SCRATCH_HEAD
    free(b)
    b = <size_t *>malloc(n + SCRATCH_HEAD)
    if b == NULL:
        return NULL
    b[0] = n
    return <char *>b + SCRATCH_HEAD


cdef void _scratch_give(char *buf) noexcept nogil:
    cdef size_t *b = <size_t *>(buf - SCRATCH_HEAD)
    if b[0] > SCRATCH_KEEP:
        free(b)
        return
    free(cs_swap_ptr(&_spare, b))


def scratch_kept():
    """The bytes of scratch kept for the next call (0: none)."""
    cdef size_t *b = <size_t *>cs_swap_ptr(&_spare, NULL)
    cdef size_t n = b[0] if b != NULL else 0
    if b != NULL:
        free(cs_swap_ptr(&_spare, b))
    return n


cdef int run(cs_kernel fn, const cs_task *t, cs_intp units, int nt, size_t scratch) except -1 nogil:
    """The units [0, units) of a task on nt threads, one block of consecutive
    units a thread, each thread with scratch bytes of its own.  One block,
    not several taken in turn: a kernel prefetches the unit after the one it
    works on only within its block, so each block's first unit waits on
    memory (the tiles of softmax over axis 0 of (1000, 8192) float32, two
    threads, 3.4-3.6 against 3.7-4.0 ms in four blocks a thread; logsumexp's
    2.2-2.3 against 2.7-2.8)."""
    cdef char *buf = NULL
    cdef cs_intp per, k, lo
    if units <= 0:
        return 0
    if nt > units:
        nt = <int>units
    if nt < 1:
        nt = 1
    if scratch:
        buf = _scratch_take(nt * scratch)
        if buf == NULL:
            with gil:
                raise MemoryError(f"cannot allocate {nt * scratch} bytes of scratch")
    if nt == 1:
        fn(t, 0, units, buf)
    else:
        per = (units + nt - 1) // nt
        for k in prange((units + per - 1) // per, num_threads=nt, schedule="static"):
            lo = k * per
            fn(t, lo, lo + per if units - lo > per else units, buf + threadid() * scratch if buf != NULL else NULL)
    if buf != NULL:
        _scratch_give(buf)
    return 0


cdef cs_intp tile_width(cs_intp C, cs_intp itemsize) noexcept nogil:
    # Columns per tile of a reduction over a strided axis that reads its
    # tiles in place (the backward passes), or packs tiles that lie in cache:
    # as many as make a tile of about 1 MiB, up to CS_TILE.  Long contiguous
    # pieces of each class row matter more than an L2-sized tile: with a
    # power-of-two row stride, narrow tiles map onto a few cache sets and
    # pages.
    cdef cs_intp w = (1 << 20) // (C * itemsize)
    w = (w // 16) * 16
    if w < 16:
        w = 16
    if w > CS_TILE:
        w = CS_TILE
    return w


cdef cs_intp packed_width(cs_intp C, cs_intp itemsize) noexcept nogil:
    # Columns per tile of a kernel that packs its tiles into scratch
    # (softmax, log_softmax, logsumexp; itemsize: the bytes a column packs per
    # class) where an outer block of x is larger than CS_STREAM_BYTES: a tile
    # of about 256 KiB, in whole 128-byte pieces, leaving room in L2 for the
    # next tile and this tile's output, which the kernel prefetches
    # meanwhile; but pieces of at least 256 bytes of each class row while the
    # tile stays within 2 MiB (the prefetchers and the cache sets do poorly
    # with shorter ones); past that, tiles of about 1 MiB, 16 columns or more.
    # AMD Zen 4, two threads, x86-64-v4, softmax over axis 0, against tiles of
    # about 1 MiB: float32 (300, 30000) 0.90, (1000, 8192) 0.86-0.90,
    # (8192, 1000) 0.89-0.92; float64 (300, 15000) 0.78-0.82, (8192, 500)
    # 0.86-0.91, (1000, 4096) 1.02-1.07; logsumexp float32 (8192, 1000)
    # 0.79; the same tiles at C <= 100.  In cache the tiles of about 1 MiB
    # did better (float32 (1000, 256), one thread, 0.12-0.14 against
    # 0.16-0.22 ms); so did the backward passes, which read their tiles in
    # place ((1000, 8192) float32: 1.23).
    cdef cs_intp q = 128 // itemsize if itemsize < 128 else 1
    cdef cs_intp w = ((256 << 10) // (C * itemsize)) // q * q
    if w * itemsize < 256:
        w = (256 + itemsize - 1) // itemsize
    if C * w * itemsize > (2 << 20):
        return tile_width(C, itemsize)
    return w if w < CS_TILE else CS_TILE


cdef inline bint _on_lines(cs_intp step, cs_intp itemsize) noexcept nogil:
    # a stride of whole 64-byte lines (either sign)
    return (step * itemsize) % 64 == 0


cdef inline bint _strips_on_lines(cs_intp s0, cs_intp s1, cs_intp outer, cs_intp itemsize) noexcept nogil:
    # class rows (s1 apart) and outer blocks (s0 apart, if more than one) a
    # whole number of lines apart: a tile's strips share one offset in a line
    return _on_lines(s1, itemsize) and (outer == 1 or _on_lines(s0, itemsize))


cdef cs_intp tiles(cs_task *t, cs_intp outer, cs_intp inner, cs_intp itemsize, cs_intp packed) noexcept nogil:
    """The tiling of a reduction over a strided axis with a contiguous inner
    axis, set in t (inner, W, shift, nt; t.x, its strides and t.C set, and
    t.y with its strides where the kernel writes an output shaped like x),
    for a kernel that packs `packed` arrays of a tile (0: none, its tiles
    are as one array's); returns the number of tiles.

    NumPy puts an array's data 16 bytes past a line, so every strip of a tile
    would straddle one line more than it holds and every vector load would
    be split over two.  When the strips of x all share one offset in their
    line (their strides whole lines), the first tile of each outer block is
    narrower by that offset, and the others start on a line: (1000, 8192)
    float32 over axis 0, kernel-only, two threads, AMD Zen 4, 3.9 against
    4.7 ms, as fast as on aligned data.  A column's result does not depend on
    the tile it falls in.

    With stream_tiles on, softmax and log_softmax write the output strips of
    such tiles (a few lines of each class row, a row stride apart) with
    streaming stores where they are at most 512 bytes long: Intel Xeon
    (family 6 model 207), two threads, x86-64-v4, interleaved in one process,
    ms: float32 (1000, 8192) 3.8 against 4.7, (2000, 4096) 5.1 against 5.4,
    (8192, 1000) 5.85 against 6.0; float64 (4096, 1000) 5.2 against 5.5,
    (8192, 500) 5.8 against 6.2.  Longer strips, which the prefetchers
    follow, did worse: float32 (300, 30000), 832 bytes, 3.2 against 3.0.
    Those tiles put the output's strips on lines (the shift taken from y's
    address, when its strides are whole lines), not x's: a new output is
    seldom at x's offset in a line (those of 16 MiB and more are on a line,
    NumPy's arrays 16 bytes past one), and its strips stream only on lines.
    Same machine, x 16 bytes past a line and y on one, ms, against the
    shift taken from x: float32 (1000, 8192) 3.8-4.4 against 5.3-10,
    (2000, 4096) 4.2-4.6 against 5.5-5.9; float64 (4096, 1000) 3.9-4.6
    against 5.0-6.1."""
    cdef size_t addr = <size_t>t.x
    t.inner = inner
    t.nt = 0
    if packed and t.C * inner * itemsize >= CS_STREAM_BYTES:  # an outer block streams from memory
        t.W = min(packed_width(t.C, packed * itemsize), inner)
        t.nt = cs_load_int(&_stream_tiles) and t.W * itemsize <= 512
    else:
        t.W = min(tile_width(t.C, (packed if packed > 1 else 1) * itemsize), inner)
    cdef bint lines = _strips_on_lines(t.xs0, t.xs1, outer, itemsize)
    if t.nt and t.y != NULL and _strips_on_lines(t.ys0, t.ys1, outer, itemsize):
        addr, lines = <size_t>t.y, True   # the output's strips go on lines, where they can stream
    t.shift = 0
    if t.W < inner and _on_lines(t.W, itemsize) and lines and addr % itemsize == 0:
        t.shift = <cs_intp>(addr % 64) // itemsize
    return outer * ((inner + t.shift + t.W - 1) // t.W)


def cpu_level():
    """The highest instruction-set level this CPU runs: "baseline",
    "x86-64-v3" or "x86-64-v4" (what this build can use)."""
    return cs_ops_for(cs_cpu_level()).name.decode()


def isa():
    """The instruction-set level of the kernels in use."""
    return _current_ops().name.decode()


def set_isa(name):
    """Use the kernels of another level (at most the CPU's), e.g. to test them.

    For tests and benchmarks: a call running in another thread meanwhile may
    take some of its passes from each table.
    """
    if name not in _LEVELS:
        raise ValueError(f"unknown instruction-set level {name!r}; expected one of {list(_LEVELS)}")
    level = _LEVELS[name]
    if level > _LEVELS[cpu_level()]:
        raise ValueError(f"this CPU or build does not run {name!r} (highest: {cpu_level()!r})")
    cs_store_ptr(&_ops, cs_ops_for(level))


def stream_tiles(flag=None):
    """Whether the packed tiles of softmax and log_softmax over a strided axis
    write their output with streaming stores, in calls that stream from
    memory (the default: on Intel CPUs); with flag, set it (for every thread)
    and return the previous setting.  For tests and benchmarks: the results
    are the same either way."""
    cdef int before = cs_load_int(&_stream_tiles)
    if flag is not None:
        cs_store_int(&_stream_tiles, 1 if flag else 0)
    return bool(before)


def get_num_threads():
    """The number of threads a large call uses."""
    cdef int n = omp_get_max_threads()
    cdef int limit = cs_load_int(&_thread_limit)  # read once: another thread may set it meanwhile
    if 0 < limit < n:
        n = limit
    return n


def set_num_threads(n):
    """Set the number of threads large calls use (in every Python thread).

    OpenMP's own limit (``OMP_NUM_THREADS``, threadpoolctl) still caps it.  A
    process forked from one that has used threads starts with one thread
    (GNU OpenMP's threads do not survive a fork), and raising it there is an error.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"the number of threads must be an integer, got {n!r}")
    n = int(n)
    if not 1 <= n <= _MAX_THREADS:
        raise ValueError(f"the number of threads must be in [1, {_MAX_THREADS}], got {n}")
    if n > 1 and cs_load_int(&_forked):
        raise RuntimeError("this process was forked from one that may have run OpenMP threads, which do not "
                           "survive a fork (a new team would wait for them forever): csoftmax computes on one "
                           "thread here. Start worker processes with the 'spawn' or 'forkserver' method to "
                           "use more.")
    cs_store_int(&_thread_limit, <int>n)


def has_openmp():
    """Whether this build runs its kernels in parallel."""
    return bool(CS_HAVE_OPENMP)


def openmp_version():
    """The OpenMP specification the build was compiled for (the ``_OPENMP``
    date, e.g. 201511 for 4.5), or 0 without OpenMP."""
    return int(CS_OPENMP_VERSION)


def _one_thread_in_child():
    # GNU OpenMP's threads do not survive a fork: a team started in the child
    # of a process that has run one waits for them forever.  A forked child
    # (multiprocessing's default on Linux) computes on its own thread.  This
    # runs in the child before any other thread exists there, so the two
    # stores cannot interleave with a set_num_threads.
    cs_store_int(&_thread_limit, 1)
    cs_store_int(&_forked, 1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_thread_in_child)

# A bad CSOFTMAX_ISA must not make `import csoftmax` fail: warn, keep the CPU's level.
_env = os.environ.get("CSOFTMAX_ISA")
if _env:
    try:
        set_isa(_env)
    except ValueError as exc:
        warnings.warn(f"CSOFTMAX_ISA={_env!r} ignored: {exc}; using {isa()!r}", RuntimeWarning, stacklevel=2)
