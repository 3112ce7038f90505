# Declarations of the C kernel table (src/cs_ops.h); see that header for the
# meaning of each kernel and its strides.
cdef extern from "cs_ops.h" nogil:
    ctypedef Py_ssize_t cs_intp
    enum: CS_TILE
    enum: CS_PIECE_SCALE, CS_PIECE_LOG, CS_PIECE_EXP

    ctypedef struct cs_ops:
        const char *name
        void (*softmax_rows_f32)(const float *x, cs_intp xs, float *y, cs_intp ys, cs_intp nrows, cs_intp C) noexcept nogil
        void (*log_softmax_rows_f32)(const float *x, cs_intp xs, float *y, cs_intp ys, cs_intp nrows, cs_intp C) noexcept nogil
        void (*softmax_cols_f32)(const float *x, cs_intp xs, float *y, cs_intp ys, cs_intp C, cs_intp W, float *buf) noexcept nogil
        void (*log_softmax_cols_f32)(const float *x, cs_intp xs, float *y, cs_intp ys, cs_intp C, cs_intp W, float *buf) noexcept nogil
        void (*softmax_backward_rows_f32)(const float *s, cs_intp ss, const float *g, cs_intp gs, float *out, cs_intp os, cs_intp nrows, cs_intp C) noexcept nogil
        void (*log_softmax_backward_rows_f32)(const float *s, cs_intp ss, const float *g, cs_intp gs, float *out, cs_intp os, cs_intp nrows, cs_intp C) noexcept nogil
        void (*softmax_backward_cols_f32)(const float *s, cs_intp ss, const float *g, cs_intp gs, float *out, cs_intp os, cs_intp C, cs_intp W) noexcept nogil
        void (*log_softmax_backward_cols_f32)(const float *s, cs_intp ss, const float *g, cs_intp gs, float *out, cs_intp os, cs_intp C, cs_intp W) noexcept nogil
        void (*jacobian_rows_f32)(const float *x, cs_intp xs, float *J, cs_intp nrows, cs_intp C) noexcept nogil
        void (*ce_index_rows_f32)(const float *z, cs_intp zs, const cs_intp *label, float *grad, cs_intp gs, const double *rscale, double gscale, double *loss, cs_intp nrows, cs_intp C) noexcept nogil
        void (*ce_prob_rows_f32)(const float *z, cs_intp zs, const float *target, cs_intp ts, float *grad, cs_intp gs, const double *rscale, double gscale, double *loss, cs_intp nrows, cs_intp C) noexcept nogil
        float (*piece_sumexp_f32)(const float *x, cs_intp n, float *e, double *s) noexcept nogil
        void (*piece_finish_f32)(const float *x, float *y, cs_intp n, int mode, float a, float b) noexcept nogil
        void (*softmax_rows_f64)(const double *x, cs_intp xs, double *y, cs_intp ys, cs_intp nrows, cs_intp C) noexcept nogil
        void (*log_softmax_rows_f64)(const double *x, cs_intp xs, double *y, cs_intp ys, cs_intp nrows, cs_intp C) noexcept nogil
        void (*softmax_cols_f64)(const double *x, cs_intp xs, double *y, cs_intp ys, cs_intp C, cs_intp W, double *buf) noexcept nogil
        void (*log_softmax_cols_f64)(const double *x, cs_intp xs, double *y, cs_intp ys, cs_intp C, cs_intp W, double *buf) noexcept nogil
        void (*softmax_backward_rows_f64)(const double *s, cs_intp ss, const double *g, cs_intp gs, double *out, cs_intp os, cs_intp nrows, cs_intp C) noexcept nogil
        void (*log_softmax_backward_rows_f64)(const double *s, cs_intp ss, const double *g, cs_intp gs, double *out, cs_intp os, cs_intp nrows, cs_intp C) noexcept nogil
        void (*softmax_backward_cols_f64)(const double *s, cs_intp ss, const double *g, cs_intp gs, double *out, cs_intp os, cs_intp C, cs_intp W) noexcept nogil
        void (*log_softmax_backward_cols_f64)(const double *s, cs_intp ss, const double *g, cs_intp gs, double *out, cs_intp os, cs_intp C, cs_intp W) noexcept nogil
        void (*jacobian_rows_f64)(const double *x, cs_intp xs, double *J, cs_intp nrows, cs_intp C) noexcept nogil
        void (*ce_index_rows_f64)(const double *z, cs_intp zs, const cs_intp *label, double *grad, cs_intp gs, const double *rscale, double gscale, double *loss, cs_intp nrows, cs_intp C) noexcept nogil
        void (*ce_prob_rows_f64)(const double *z, cs_intp zs, const double *target, cs_intp ts, double *grad, cs_intp gs, const double *rscale, double gscale, double *loss, cs_intp nrows, cs_intp C) noexcept nogil
        double (*piece_sumexp_f64)(const double *x, cs_intp n, double *e, double *s) noexcept nogil
        void (*piece_finish_f64)(const double *x, double *y, cs_intp n, int mode, double a, double b) noexcept nogil
