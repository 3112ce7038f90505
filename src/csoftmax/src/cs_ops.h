/*
 * cs_ops.h -- the table of compiled kernels for one instruction-set level.
 *
 * Every kernel exists once per level (baseline, x86-64-v3, x86-64-v4) and per
 * dtype; _runtime.pyx picks a table at import time and the other .pyx modules
 * call through it.  Strides are in elements.  The kernels only compute: the
 * Python layer has checked shapes, labels and aliasing before they run.
 */
#ifndef CS_OPS_H
#define CS_OPS_H

#include <stddef.h>

typedef ptrdiff_t cs_intp;

/* Widest tile of columns a *_cols kernel takes (reductions over a strided
   axis run across W contiguous columns at once). */
#define CS_TILE 256

enum { CS_PIECE_SCALE = 0, CS_PIECE_LOG = 1, CS_PIECE_EXP = 2 };

#define CS_DECLARE_OPS(T, S) \
    /* rows: nrows rows of C contiguous entries, row strides xs / ys */ \
    void (*softmax_rows_##S)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp nrows, cs_intp C); \
    void (*log_softmax_rows_##S)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp nrows, cs_intp C); \
    /* cols: C classes of W <= CS_TILE contiguous columns, class strides xs / ys; \
       buf: scratch for C * W entries (the tile, packed) */ \
    void (*softmax_cols_##S)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp C, cs_intp W, T *buf); \
    void (*log_softmax_cols_##S)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp C, cs_intp W, T *buf); \
    void (*softmax_backward_rows_##S)(const T *s, cs_intp ss, const T *g, cs_intp gs, T *out, cs_intp os, cs_intp nrows, cs_intp C); \
    void (*log_softmax_backward_rows_##S)(const T *ls, cs_intp ss, const T *g, cs_intp gs, T *out, cs_intp os, cs_intp nrows, cs_intp C); \
    void (*softmax_backward_cols_##S)(const T *s, cs_intp ss, const T *g, cs_intp gs, T *out, cs_intp os, cs_intp C, cs_intp W); \
    void (*log_softmax_backward_cols_##S)(const T *ls, cs_intp ss, const T *g, cs_intp gs, T *out, cs_intp os, cs_intp C, cs_intp W); \
    /* J: nrows contiguous C x C blocks */ \
    void (*jacobian_rows_##S)(const T *x, cs_intp xs, T *J, cs_intp nrows, cs_intp C); \
    /* cross-entropy: loss[i] per row; grad (may be NULL) scaled by rscale[i] \
       (or gscale when rscale is NULL) */ \
    void (*ce_index_rows_##S)(const T *z, cs_intp zs, const cs_intp *label, T *grad, cs_intp gs, \
                              const double *rscale, double gscale, double *loss, cs_intp nrows, cs_intp C); \
    void (*ce_prob_rows_##S)(const T *z, cs_intp zs, const T *target, cs_intp ts, T *grad, cs_intp gs, \
                             const double *rscale, double gscale, double *loss, cs_intp nrows, cs_intp C); \
    /* one piece of a row too long for one thread: returns its max, *s = sum of \
       exp(x - max), e (unless NULL) the exponentials; then, once the pieces are \
       combined, by mode: y *= a (CS_PIECE_SCALE), y = (x - a) - b (CS_PIECE_LOG), \
       y = exp(x - a) * b (CS_PIECE_EXP) */ \
    T (*piece_sumexp_##S)(const T *x, cs_intp n, T *e, double *s); \
    void (*piece_finish_##S)(const T *x, T *y, cs_intp n, int mode, T a, T b);

typedef struct cs_ops {
    const char *name;
    CS_DECLARE_OPS(float, f32)
    CS_DECLARE_OPS(double, f64)
} cs_ops;

#endif /* CS_OPS_H */
