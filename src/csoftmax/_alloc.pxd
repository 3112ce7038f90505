cimport numpy as cnp

cdef cnp.ndarray new_array(int nd, cnp.npy_intp *dims, int typenum, bint fortran)

cdef object output_like(cnp.ndarray x, object out)
