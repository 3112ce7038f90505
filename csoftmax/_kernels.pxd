# What the Cython modules see of the C kernels (include/cs_kernels.h): the task
# a kernel runs on and the arithmetic between runs (include/cs_reduce.h).  The
# kernels themselves are looked up by name through _runtime.kernel.
cdef extern from "cs_kernels.h" nogil:
    ctypedef Py_ssize_t cs_intp
    enum: CS_F32, CS_F64, CS_TILE, CS_WHERE_BYTES, CS_SCAN, CS_STREAM_BYTES, CS_PIECE

    ctypedef struct cs_task:
        const void *x
        cs_intp xs0, xs1
        const void *g
        cs_intp gs0, gs1
        void *y
        cs_intp ys0, ys1
        cs_intp C
        cs_intp N
        cs_intp inner, W, shift
        const cs_intp *label
        const double *rscale
        double gscale
        double *loss
        const double *cweight
        const void *cweight_t
        double cwsum, smooth
        cs_intp ignore
        cs_intp nlabel
        cs_intp *scan
        cs_intp piece
        double *pmax
        double *psum
        double M, S
        int keep
        void *sign
        const unsigned char *mask
        cs_intp ms0, ms1
        int nt

    ctypedef void (*cs_kernel)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch) noexcept nogil

cdef extern from "cs_reduce.h" nogil:
    double cs_sum(const double *v, const double *w, cs_intp n)
    int cs_pieces_combine(cs_task *t, cs_intp npc)
    int cs_lse_pieces_combine(const cs_task *t, cs_intp npc, int f64, double *v, double *sg)
    double cs_mean_weight(const cs_intp *label, cs_intp n, const double *cw, const double *sw, cs_intp ignore)
    double NAN
