# Filling a kernel task from ndarrays: their dtype as the kernels' code and
# their strides in elements.  The kernels load entries through typed pointers,
# so an array read as it lies must be aligned (the Python layer copies one
# that is not; check_aligned refuses it, should one get through).
from libc.stdlib cimport free, malloc

cimport numpy as cnp

from csoftmax._kernels cimport CS_F32, CS_F64, CS_PIECE, cs_intp, cs_task


cdef inline int dtype_code(cnp.ndarray a) except -1:
    cdef int typenum = cnp.PyArray_TYPE(a)
    if typenum == cnp.NPY_FLOAT:
        return CS_F32
    if typenum == cnp.NPY_DOUBLE:
        return CS_F64
    raise TypeError(f"the kernels take float32 or float64 arrays, got {(<object>a).dtype}")


cdef inline cs_intp stride(cnp.ndarray a, int k) noexcept:
    """The stride of axis k in elements; 1 for an axis of length 1, whose
    stride NumPy leaves arbitrary (0 after None-indexing) and no index uses."""
    if cnp.PyArray_DIM(a, k) == 1:
        return 1
    return cnp.PyArray_STRIDE(a, k) // cnp.PyArray_ITEMSIZE(a)


cdef inline int check_like(cnp.ndarray x, cnp.ndarray y, int ndim) except -1:
    """y has x's dtype and shape, of ndim dimensions (the kernels index both alike)."""
    if (cnp.PyArray_NDIM(x) != ndim or cnp.PyArray_TYPE(x) != cnp.PyArray_TYPE(y)
            or not cnp.PyArray_SAMESHAPE(x, y)):
        raise ValueError(f"kernel arrays must share one dtype and a {ndim}-d shape, "
                         f"got {(<object>x).dtype} {(<object>x).shape} and {(<object>y).dtype} {(<object>y).shape}")
    return 0


cdef inline int check_aligned(cnp.ndarray a, str what) except -1:
    """a (unless None) is aligned for its dtype: its address and every stride
    used multiples of the itemsize's alignment (NumPy's flag), so that the
    strides in elements are exact and every load is aligned."""
    if a is not None and not cnp.PyArray_ISALIGNED(a):
        raise ValueError(f"{what} must be aligned for its dtype (the kernel reads it as it lies)")
    return 0


cdef inline void pieces_free(cs_task *t) noexcept nogil:
    free(t.pmax)
    free(t.psum)
    t.pmax = t.psum = NULL


cdef inline cs_intp pieces_alloc(cs_task *t, int sums) noexcept nogil:
    """Splits t's one row of t.C entries into pieces of CS_PIECE and allocates
    each piece's max and ``sums`` sums (t.pmax, t.psum; pieces_free releases
    them): the number of pieces, or 0, with nothing held, when memory is
    short."""
    cdef cs_intp npc = (t.C + CS_PIECE - 1) // CS_PIECE
    t.piece = CS_PIECE
    t.pmax = <double *>malloc(npc * sizeof(double))
    t.psum = <double *>malloc(sums * npc * sizeof(double))
    if t.pmax == NULL or t.psum == NULL:
        pieces_free(t)
        return 0
    return npc
