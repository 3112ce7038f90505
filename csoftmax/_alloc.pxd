# The layout plan and the rule for out, for the compiled entries to cimport:
# a call plans once how its arrays map onto the kernels' (outer, C, inner)
# view, then takes each array's view as a pointer and element strides, with
# no array object made for it.
cimport numpy as cnp

from csoftmax._kernels cimport cs_intp


cdef struct Plan:
    cs_intp outer, C, inner   # the split: a C-ordered (outer, C, inner) index
    bint transposed           # the split is of the array's transpose (Fortran order)


cdef struct View:
    char *data
    cs_intp s0, s1, s2        # strides in elements; 1 for an axis of length 1


cdef int plan_init(Plan *p, cnp.ndarray a, tuple axes) except -1
cdef bint view_of(const Plan *p, cnp.ndarray a, View *v) except -1
cdef cnp.ndarray operand(const Plan *p, cnp.ndarray a, View *v)
cdef cnp.ndarray output(const Plan *p, object out, cnp.ndarray like, tuple inputs, tuple in_place, View *v)
cdef bint may_write_c(cnp.ndarray out, tuple inputs, tuple in_place) except -1
cdef cnp.ndarray empty_c(int nd, cnp.npy_intp *dims, int type_num, bint fortran)
