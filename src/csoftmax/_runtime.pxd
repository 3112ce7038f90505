from csoftmax._kernels cimport cs_ops, cs_intp

cdef const cs_ops *current_ops() noexcept nogil
cdef int threads_for(cs_intp work) noexcept nogil
cdef cs_intp tile_width(cs_intp C, cs_intp itemsize) noexcept nogil
