from csoftmax._kernels cimport cs_intp, cs_kernel, cs_task

cdef int kernel_id(str name) except -1
cdef cs_kernel kernel(int kid, int dtype) noexcept nogil
cdef int threads_for(cs_intp work, int n_threads) noexcept nogil
cdef cs_intp tiles(cs_task *t, cs_intp outer, cs_intp inner, cs_intp itemsize, cs_intp packed) noexcept nogil
cdef int run(cs_kernel fn, const cs_task *t, cs_intp units, int nt, size_t scratch) except -1 nogil
